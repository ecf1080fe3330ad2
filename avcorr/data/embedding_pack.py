"""AudioSet embedding packs: HDF5 files of per-second embeddings with clip labels (Kong et al.).

A pack is the format the AudioSet attention papers distribute the released AudioSet embeddings
in (``bal_train.h5``, ``unbal_train.h5``, ``eval.h5``), and the format
``data_tools/pack_vggish_embeddings.py`` writes from any audio::

    x              uint8 (N, T, D)   T embeddings of D dimensions per clip (AudioSet: T = 10, D = 128),
                                     VGGish PCA embeddings quantised to 0..255
    y              bool  (N, C)      multi-hot labels (AudioSet: C = 527); integer 0/1 is accepted
    video_id_list  bytes (N,)        clip ids (optional here: without it ids are ``<file>#<row>``)

Several packs make one split (``"bal_train.h5,unbal_train.h5"``: the rows of each, in order); they
must agree on T, D and C. Class names come from a ``class_labels_indices.csv`` (AudioSet's
``index,mid,display_name``) when given, else ``class_0 .. class_{C-1}``.

Memory: labels are read in chunks and kept as sparse rows (a few bytes per clip), ids as one
bytes array; embeddings are loaded into RAM for packs below ``preload_bytes`` (default 512 MiB;
AudioSet's ``bal_train`` and ``eval`` packs are ~30 MB) and read row by row from an HDF5 handle
opened once per (worker) process otherwise (``unbal_train``, ~2.6 GB). :attr:`EmbeddingPackDataset.targets`
builds the dense bool (N, C) matrix only when asked (the samplers ask once: ~1.1 GB for the whole
of AudioSet).

Batch dict of :func:`collate_embeddings` (B clips)::

    embeddings  uint8 (B, T, D)  (float32 for float packs), in pack units; the model normalises
    target      float32 (B, C)   multi-hot labels
    label       int64 (B,)       the class index for single-label data, -1 for multi-label data
    vid         list[str]        clip ids
    skipped     list[(vid, reason)]
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._clip_media import ClipFailed, draw_with_retries
from .errors import BadClipError, LayoutError
from .tagging import _h5py, read_label_csv

logger = logging.getLogger(__name__)

__all__ = [
    "EmbeddingPackDataset",
    "EmbeddingPackSource",
    "PackInfo",
    "collate_embeddings",
    "inspect_pack",
    "open_embedding_source",
    "split_pack_list",
]

_LABEL_CHUNK = 1 << 16  # rows of 'y' read at a time


@dataclass(frozen=True)
class PackInfo:
    """Shape of one embedding pack.

    Args:
        path: the file.
        rows: clips N.
        frames: embeddings per clip T.
        dim: embedding dimension D.
        num_classes: label columns C.
        dtype: numpy dtype name of ``x``.
        has_ids: whether the pack has ``video_id_list``.
    """

    path: str
    rows: int
    frames: int
    dim: int
    num_classes: int
    dtype: str
    has_ids: bool


def inspect_pack(path: str | Path) -> PackInfo:
    """Check an embedding pack's structure (without reading its data).

    Raises:
        LayoutError: missing file, not HDF5, no ``x`` / ``y``, ``x`` not 3-d numeric, ``y`` not 2-d,
            row counts of ``x``, ``y`` and ``video_id_list`` that differ; the message names the file.
    """
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise LayoutError(f"{path}: embedding pack not found")
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise LayoutError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        missing = [k for k in ("x", "y") if k not in f or not isinstance(f[k], h5py.Dataset)]
        if missing:
            raise LayoutError(f"{path}: not an embedding pack: no {' or '.join(repr(k) for k in missing)} dataset "
                              f"(expected x (N, T, D) uint8, y (N, C) bool, video_id_list (N,); has "
                              f"{', '.join(sorted(f.keys())) or 'nothing'})")
        x, y = f["x"], f["y"]
        if x.ndim != 3:
            raise LayoutError(f"{path}: 'x' has shape {x.shape}; expected (clips, frames, dims), e.g. (N, 10, 128)")
        if x.dtype.kind not in "uif":
            raise LayoutError(f"{path}: 'x' has dtype {x.dtype}; expected uint8 embeddings")
        if y.ndim != 2:
            raise LayoutError(f"{path}: 'y' has shape {y.shape}; expected (clips, classes), e.g. (N, 527)")
        if y.dtype.kind not in "biu":
            raise LayoutError(f"{path}: 'y' has dtype {y.dtype}; expected bool (or 0/1 integers)")
        if x.shape[0] != y.shape[0]:
            raise LayoutError(f"{path}: 'x' has {x.shape[0]} rows but 'y' has {y.shape[0]}; they must match")
        if min(x.shape[1:]) < 1 or y.shape[1] < 1:
            raise LayoutError(f"{path}: empty dimension in 'x' {x.shape} or 'y' {y.shape}")
        has_ids = "video_id_list" in f
        if has_ids and f["video_id_list"].shape != (x.shape[0],):
            raise LayoutError(f"{path}: 'video_id_list' has shape {f['video_id_list'].shape}; expected ({x.shape[0]},)")
        return PackInfo(str(path), int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(y.shape[1]),
                        str(x.dtype), has_ids)


def split_pack_list(spec: str) -> list[str]:
    """``"a.h5,b.h5"`` -> ``["a.h5", "b.h5"]`` (blank entries dropped)."""
    return [s.strip() for s in str(spec).split(",") if s.strip()]


def _decode(x: Any) -> str:
    return x.decode("utf-8", errors="replace") if isinstance(x, (bytes, np.bytes_)) else str(x)


class EmbeddingPackSource:
    """The clips of one split: one or more packs, with sparse labels and ids held in memory.

    Args:
        paths: the packs, in order (global row ``r`` is row ``r - offset[p]`` of pack ``p``).
        label_csv: ``class_labels_indices.csv`` naming the label columns; None = ``classes`` or
            ``class_0 .. class_{C-1}``.
        classes: class names to check against (e.g. a checkpoint's); must have C entries.

    Raises:
        LayoutError: a bad pack (:func:`inspect_pack`), packs that disagree on T, D or C, or a
            class list of the wrong length; the message names the file.
    """

    def __init__(self, paths: Sequence[str | Path], *, label_csv: str | Path | None = None,
                 classes: Sequence[str] | None = None):
        if not paths:
            raise LayoutError("no embedding pack given (data.train_split etc. name .h5 files, comma-separated)")
        self.packs = [inspect_pack(p) for p in paths]
        first = self.packs[0]
        for p in self.packs[1:]:
            for what, a, b in (("frames per clip", p.frames, first.frames), ("embedding dims", p.dim, first.dim),
                               ("classes", p.num_classes, first.num_classes)):
                if a != b:
                    raise LayoutError(f"{p.path}: {a} {what}, but {first.path} has {b}; packs of one split must agree")
        n_cls = first.num_classes
        if label_csv:
            names = [r[2] for r in read_label_csv(label_csv)]
            where = str(label_csv)
        elif classes:
            names, where = list(classes), "the configured class list"
        else:
            names, where = [f"class_{i}" for i in range(n_cls)], ""
            logger.warning("%s: no class_labels_indices.csv; naming the %d classes class_0 .. class_%d",
                           first.path, n_cls, n_cls - 1)
        if len(names) != n_cls:
            raise LayoutError(f"{first.path}: 'y' has {n_cls} columns but {where} names {len(names)} classes")
        if classes and list(classes) != names:
            raise LayoutError(f"{first.path}: the classes of {where} differ from the configured classes")
        self.classes: list[str] = names
        self.name = ",".join(p.path for p in self.packs)
        self.skipped: list[tuple[str, str]] = []
        self.offsets = np.cumsum([0] + [p.rows for p in self.packs]).astype(np.int64)
        self.num_rows = int(self.offsets[-1])
        self._read_labels_and_ids()

    # -- reading -------------------------------------------------------------------------------
    def _read_labels_and_ids(self) -> None:
        h5py = _h5py()
        counts, cols, ids = [], [], []
        for p in self.packs:
            with h5py.File(p.path, "r") as f:
                y = f["y"]
                for a in range(0, p.rows, _LABEL_CHUNK):
                    chunk = np.asarray(y[a : a + _LABEL_CHUNK]) != 0  # (n, C) bool
                    counts.append(chunk.sum(axis=1))
                    cols.append(np.nonzero(chunk)[1].astype(np.int32))  # row-major: sorted by row
                if p.has_ids:
                    v = np.asarray(f["video_id_list"][:])
                    ids.append(v if v.dtype.kind == "S" else np.array([_decode(s).encode() for s in v]))
                else:
                    name = Path(p.path).name
                    ids.append(np.array([f"{name}#{i}".encode() for i in range(p.rows)]))
        self.label_counts = np.concatenate(counts).astype(np.int32) if counts else np.zeros(0, np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(self.label_counts)]).astype(np.int64)
        self.indices = np.concatenate(cols) if cols else np.zeros(0, np.int32)
        width = max(1, max(a.dtype.itemsize for a in ids)) if ids else 1
        self._ids = np.concatenate([a.astype(f"S{width}") for a in ids]) if ids else np.zeros(0, "S1")

    # -- queries -------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        """Embeddings per clip T."""
        return self.packs[0].frames

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self.packs[0].dim

    @property
    def is_multilabel(self) -> bool:
        """Whether some clip has two or more labels."""
        return bool((self.label_counts > 1).any())

    def labels(self, row: int) -> np.ndarray:
        """int32 class indices of global row ``row``."""
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def vid(self, row: int) -> str:
        """The id of global row ``row``."""
        return _decode(self._ids[row])

    def locate(self, row: int) -> tuple[int, int]:
        """Global row -> ``(pack index, row in that pack)``."""
        p = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return p, int(row - self.offsets[p])

    def label_pairs(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The labels of ``rows`` (default all rows) as pairs: int64 (L,) position in ``rows``
        (ascending) and int32 (L,) class index."""
        rows = np.arange(self.num_rows) if rows is None else np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        r = np.repeat(np.arange(len(rows)), lens)  # output row of each label
        first = np.repeat(np.cumsum(lens) - lens, lens)  # position of each output row's first label
        pos = np.repeat(starts, lens) + (np.arange(int(lens.sum())) - first)
        return r, self.indices[pos]

    def targets(self, rows: np.ndarray | None = None) -> np.ndarray:
        """bool (len(rows), C) dense labels of ``rows`` (default all rows)."""
        r, c = self.label_pairs(rows)
        out = np.zeros((self.num_rows if rows is None else len(rows), len(self.classes)), dtype=bool)
        out[r, c] = True
        return out


def open_embedding_source(root: str | Path, split: str, *, label_csv: str | Path | None = None,
                          classes: Sequence[str] | None = None) -> EmbeddingPackSource:
    """Open the packs of one split.

    Args:
        root: the folder relative pack paths (and ``label_csv``) are resolved against; "" = cwd.
        split: pack file(s), comma-separated (``"bal_train.h5,unbal_train.h5"``).
        label_csv: the class csv; None = ``ROOT/class_labels_indices.csv`` when it exists.
        classes: class names to check against.
    """
    base = Path(root).expanduser() if root else None

    def resolve(p: str | Path) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() or base is None else base / q

    csv = resolve(label_csv) if label_csv else None
    if csv is None and base is not None and (base / "class_labels_indices.csv").is_file():
        csv = base / "class_labels_indices.csv"
    files = split_pack_list(split)
    if not files:
        raise LayoutError(f"empty list of embedding packs: {split!r}")
    return EmbeddingPackSource([resolve(p) for p in files], label_csv=csv, classes=classes)


class EmbeddingPackDataset(Dataset):
    """Embedding sequences and multi-hot targets from an :class:`EmbeddingPackSource`.

    Args:
        source: the split's packs.
        train: training (a bad row is replaced by another random row, up to ``max_bad_retries``)
            or evaluation (a bad row is left out of its batch and reported).
        multilabel: multi-label data (``label`` = -1) or single-label (every clip must have one
            label; clips without a label are skipped, clips with several are an error).
        input_dim: the model's embedding dimension; a pack of another D is an error.
        max_bad_retries: training: bad rows in a row tolerated while drawing one example.
        preload_bytes: packs whose ``x`` is at most this size are read into RAM once; larger
            ones are read row by row.

    Raises:
        LayoutError: ``input_dim`` mismatch, or a multi-label clip in single-label mode.
        BadClipError: no usable clip.
    """

    def __init__(self, source: EmbeddingPackSource, *, train: bool, multilabel: bool, input_dim: int | None = None,
                 max_bad_retries: int = 20, preload_bytes: int = 512 << 20):
        if input_dim is not None and source.dim != int(input_dim):
            raise LayoutError(f"{source.packs[0].path}: embeddings have {source.dim} dimensions but the model "
                              f"takes {input_dim} (model.embed_dim)")
        self.name, self.source = source.name, source
        self.classes = list(source.classes)
        self.train, self.multilabel, self.max_bad_retries = train, multilabel, max_bad_retries
        self.init_skipped: list[tuple[str, str]] = list(source.skipped)
        rows = np.arange(source.num_rows, dtype=np.int64)
        if not multilabel:
            several = np.flatnonzero(source.label_counts > 1)
            if len(several):
                r = int(several[0])
                raise LayoutError(f"{source.name}: clip {source.vid(r)!r} has {int(source.label_counts[r])} labels but "
                                  f"label_mode is 'single'; use tagging.label_mode='multi' (or 'auto')")
            none = np.flatnonzero(source.label_counts == 0)
            if len(none):
                self.init_skipped += [(source.vid(int(r)), "no label (single-label training needs one)") for r in none]
                rows = np.flatnonzero(source.label_counts == 1).astype(np.int64)
        self.rows = rows
        if not len(self.rows):
            raise BadClipError(self.name, f"no usable clip ({len(self.init_skipped)} skipped)")
        self._ram: dict[int, np.ndarray] = {}
        h5py = _h5py()
        for k, p in enumerate(source.packs):
            if p.rows * p.frames * p.dim * np.dtype(p.dtype).itemsize <= preload_bytes:
                with h5py.File(p.path, "r") as f:
                    self._ram[k] = np.asarray(f["x"][:])
        self._h5: dict[int, Any] = {}
        self._h5_pid = os.getpid()
        self._bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def targets(self) -> np.ndarray:
        """bool (N, C) labels of the dataset's clips (for the samplers; dense, built on each call)."""
        return self.source.targets(self.rows)

    def class_indices(self) -> list[np.ndarray]:
        """C int64 arrays: the dataset indices of each class's clips (no dense matrix is built)."""
        from ._tag_samplers import group_by_class

        r, c = self.source.label_pairs(self.rows)
        return group_by_class(r, c, len(self.source.classes))

    def _handle(self, k: int):
        if self._h5_pid != os.getpid():  # h5py handles must not cross a fork
            self._h5, self._h5_pid = {}, os.getpid()
        f = self._h5.get(k)
        if f is None:
            path = self.source.packs[k].path
            try:
                f = _h5py().File(path, "r")
            except OSError as err:
                raise BadClipError(path, f"cannot open embedding pack ({err})") from err
            self._h5[k] = f
        return f

    def load(self, i: int) -> np.ndarray:
        """(T, D) embeddings of clip ``i`` (pack dtype).

        Raises:
            BadClipError: unreadable row, or non-finite values in a float pack.
        """
        k, r = self.source.locate(int(self.rows[i]))
        arr = self._ram.get(k)
        path = self.source.packs[k].path
        try:
            x = arr[r] if arr is not None else np.asarray(self._handle(k)["x"][r])
        except (OSError, KeyError, ValueError) as err:
            raise BadClipError(path, f"row {r}: cannot read 'x' ({err})") from err
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise BadClipError(path, f"row {r}: NaN or Inf embeddings")
        return x

    def _item(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        vid = self.source.vid(row)
        try:
            x = self.load(i)
        except BadClipError as e:
            raise ClipFailed(vid, str(e)) from e
        labels = self.source.labels(row)
        target = torch.zeros(len(self.classes), dtype=torch.float32)
        target[torch.from_numpy(labels.astype(np.int64))] = 1.0
        x_t = torch.from_numpy(np.ascontiguousarray(x))
        if x_t.dtype not in (torch.uint8, torch.float32):
            x_t = x_t.float()
        label = int(labels[0]) if not self.multilabel else -1
        return {"embeddings": x_t, "target": target, "label": label, "vid": vid}

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not self.train:
            vid = self.source.vid(int(self.rows[i]))
            if vid in self._bad:
                return {"embeddings": None, "vid": vid, "skipped": [(vid, self._bad[vid])]}
            try:
                item = self._item(i)
            except ClipFailed as e:
                self._bad[e.vid] = e.reason
                return {"embeddings": None, "vid": e.vid, "skipped": [(e.vid, e.reason)]}
            item["skipped"] = []
            return item
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        n = len(self.rows)
        return draw_with_retries(self._item, lambda j: self.source.vid(int(self.rows[j])), n, i,
                                 lambda j: int(rng.integers(0, n)), self._bad, max_bad_retries=self.max_bad_retries,
                                 name=self.name, failure="failed to load")


def collate_embeddings(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate :class:`EmbeddingPackDataset` items (module docstring); failed clips are left out.

    With every clip of the batch failed, ``embeddings`` is (0, 0, 0) and ``target`` (0, 0).
    """
    skipped = [s for b in batch for s in b.get("skipped", ())]
    good = [b for b in batch if b.get("embeddings") is not None]
    if not good:
        return {"embeddings": torch.zeros(0, 0, 0, dtype=torch.uint8), "target": torch.zeros(0, 0),
                "label": torch.zeros(0, dtype=torch.long), "vid": [], "skipped": skipped}
    return {"embeddings": torch.stack([b["embeddings"] for b in good]),
            "target": torch.stack([b["target"] for b in good]),
            "label": torch.tensor([b["label"] for b in good], dtype=torch.long),
            "vid": [b["vid"] for b in good], "skipped": skipped}
