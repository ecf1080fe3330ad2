"""Where tagging clips come from: the four readers of a :class:`~avcorr.data.records.Manifest` and the
folder-per-class writer.

Used through :mod:`avcorr.data.tagging` (which re-exports every public name here); the module
docstring there describes each format, how duplicates are found and how splits are made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._atomic import atomic_path

from .errors import LayoutError
from .layout import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_split, read_class_csv
from .records import Clip, LabelSpace, Manifest

logger = logging.getLogger(__name__)

__all__ = [
    "FOLDER_SPLITS",
    "FORMATS",
    "MEDIA_EXTENSIONS",
    "ast_json_source",
    "folder_source",
    "hdf5_source",
    "layout_source",
    "layout_to_folders",
    "open_source",
    "read_label_csv",
]

MEDIA_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS
FOLDER_SPLITS = ("train", "val", "test")


def _file_clip(vid: str, labels: tuple[str, ...], path: Path, row: int = -1) -> Clip:
    """A clip read from one file: a video extension puts it in ``video``, any other in ``audio``."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return Clip(vid, labels, video=path, row=row)
    return Clip(vid, labels, audio=path, row=row)


def _multilabel(clips: Sequence[Clip]) -> bool:
    return any(len(c.labels) > 1 for c in clips)


# ---------------------------------------------------------------------------------------------- sources


def layout_source(root: str | Path, split: str, classes: Sequence[str] | None = None) -> Manifest:
    """Clips of one split of the vid2genre layout (see :mod:`avcorr.data.layout`).

    The clips are the layout's own records (:func:`~avcorr.data.layout.load_split`); a clip with
    neither an audio nor a video file is skipped.

    Args:
        root: the dataset root.
        split: ``train``, ``val`` or ``test``.
        classes: the class names to index into (e.g. a checkpoint's); None = the root's classes.

    Raises:
        LayoutError: from :func:`~avcorr.data.layout.load_split`, or a label not in ``classes``.
    """
    index = load_split(root, split)
    space = LabelSpace(list(classes) if classes else list(index.classes), index.is_multilabel)
    clips, skipped = [], []
    v2g = index.root / split / "vid2genre.json"
    for clip in index.clips:
        if clip.media is None:
            skipped.append((clip.vid, "no audio or video file"))
            continue
        space.indices(clip.labels, f"{v2g}: id {clip.vid!r}")  # every label must be a class
        clips.append(clip)
    return Manifest(f"{index.root / split}", clips, space, skipped)


DIGEST_CACHE_SIZE = 1 << 16
"""Files whose content digest a process remembers (about 16 MB at most), the least recently used forgotten first."""
_DIGESTS: OrderedDict[str, tuple[int, int, bytes]] = OrderedDict()  # path -> (size, mtime_ns, digest)


def _content_digest(path: Path) -> bytes:
    """BLAKE2b-128 of a file's bytes (remembered while the file's size and mtime stay the same).

    One entry a path, replaced when the file changes; at most :data:`DIGEST_CACHE_SIZE` of them.
    """
    st = path.stat()
    key, stamp = str(path), (st.st_size, st.st_mtime_ns)
    known = _DIGESTS.get(key)
    if known is not None and known[:2] == stamp:
        _DIGESTS.move_to_end(key)
        return known[2]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    d = h.digest()
    _DIGESTS[key] = (*stamp, d)
    _DIGESTS.move_to_end(key)
    while len(_DIGESTS) > DIGEST_CACHE_SIZE:
        _DIGESTS.popitem(last=False)
    return d


def _class_files(tree: Path) -> dict[str, list[Path]]:
    """class folder name -> media files under it (recursively, sorted), for one folder-per-class tree."""
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in tree.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(d).parts))
        out[d.name] = files
    return out


def _group_identical(entries: list[tuple[Path, str]], hash_all: bool) -> list[tuple[list[Path], set[str], bytes | None]]:
    """Group ``(file, class)`` entries whose files have identical contents.

    Files of a size no other file has cannot be copies: they are hashed only when ``hash_all``.

    Returns:
        ``(files, classes, digest or None)`` per distinct clip, in order of first file.
    """
    by_size: dict[int, list[int]] = {}
    sizes = []
    for i, (p, _) in enumerate(entries):
        s = p.stat().st_size
        sizes.append(s)
        by_size.setdefault(s, []).append(i)
    keys: list[Any] = []
    digests: list[bytes | None] = []
    for i, (p, _) in enumerate(entries):
        if hash_all or len(by_size[sizes[i]]) > 1:
            d = _content_digest(p)
            keys.append(("h", d))
            digests.append(d)
        else:
            keys.append(("p", i))
            digests.append(None)
    groups: dict[Any, tuple[list[Path], set[str], bytes | None]] = {}
    for (p, cls), key, d in zip(entries, keys, digests):
        g = groups.setdefault(key, ([], set(), d))
        g[0].append(p)
        g[1].add(cls)
    return list(groups.values())


def _hash_fraction(digest: bytes) -> float:
    return int.from_bytes(digest[:8], "big") / 2.0**64


def folder_source(root: str | Path, split: str, *, val_fraction: float = 0.1,
                  classes: Sequence[str] | None = None) -> Manifest:
    """Clips of a folder-per-class tree (see the module docstring for duplicates and splits).

    Args:
        root: ``ROOT`` with ``ROOT/<class>/<file>``, or ``ROOT/{train,val,test}/<class>/<file>``.
        split: ``train``, ``val`` or ``test`` (``test`` needs a ``test/`` sub-folder).
        val_fraction: without split sub-folders, the expected share of clips in ``val``.
        classes: class names to index into; None = the sorted class folder names.

    Raises:
        LayoutError: missing root or split, no class folders, a class folder not in ``classes``.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise LayoutError(f"{root}: folder-per-class root {'is not a folder' if root.exists() else 'does not exist'}")
    sub_roots = [s for s in FOLDER_SPLITS if (root / s).is_dir()]
    layout_split = next((root / s for s in sub_roots if (root / s / "vid2genre.json").is_file()), None)
    if layout_split is not None:
        raise LayoutError(f"{layout_split}: an avcorr layout split (vid2genre.json, audio/, video/), not a folder "
                          f"per class: use tagging.format=layout for it (or python -m data_tools.make_folder_dataset "
                          f"{root} OUT to make a folder per class)")
    if split not in FOLDER_SPLITS:
        raise ValueError(f"split must be one of {FOLDER_SPLITS}, got {split!r}")
    explicit = bool(sub_roots)
    if explicit:
        if split not in sub_roots:
            raise LayoutError(f"{root / split}: split folder does not exist (present: {', '.join(sub_roots)})")
        trees = {s: _class_files(root / s) for s in sub_roots}
        found = sorted({c for t in trees.values() for c in t})
        tree = trees[split]
    else:
        if split == "test":
            raise LayoutError(f"{root}: no test/ sub-folder; a folder-per-class root without train/ val/ test/ "
                              f"sub-folders only has the hash split into 'train' and 'val'")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        tree = _class_files(root)
        found = sorted(tree)
    if not found:
        raise LayoutError(f"{root}: no class folders (expected ROOT/<class>/<audio files>)")
    names = list(classes) if classes else found
    unknown = [c for c in found if c not in names]
    if unknown:
        raise LayoutError(f"{root}: class folder(s) {unknown} are not among the {len(names)} classes {names}")
    entries = [(p, cls) for cls, files in tree.items() for p in files]
    groups = _group_identical(entries, hash_all=not explicit)
    order = {n: i for i, n in enumerate(names)}
    clips: list[Clip] = []
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per label set, shared by its clips
    base = root / split if explicit else root
    for files, cls_set, digest in groups:
        if not explicit:
            in_val = _hash_fraction(digest) < val_fraction  # type: ignore[arg-type]
            if in_val != (split == "val"):
                continue
        labels = tuple(sorted(cls_set, key=order.__getitem__))
        labels = shared.setdefault(labels, labels)
        vid = files[0].relative_to(base).as_posix()
        clips.append(_file_clip(vid, labels, files[0]))
    for cls, files in tree.items():
        if not files:
            logger.warning("%s: class folder %s has no audio files", base, cls)
    used = {name for c in clips for name in c.labels}
    empty = [n for n in names if n not in used]
    if empty and clips:
        logger.warning("%s (%s): no clip of class(es) %s in this split", base, split, ", ".join(empty[:10]))
    # hash split: the groups span both splits, so both agree; explicit splits: this split's clips
    multi = any(len(g[1]) > 1 for g in groups) if not explicit else _multilabel(clips)
    return Manifest(f"{base} ({split})", clips, LabelSpace(names, multi))


def read_label_csv(path: str | Path) -> list[tuple[int, str, str]]:
    """Rows ``(index, mid, display_name)`` of a ``class_labels_indices.csv``, sorted by index.

    Raises:
        LayoutError: missing or malformed file, or indices that are not ``0 .. C-1``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise LayoutError(f"{path}: class label csv not found")
    labels = read_class_csv(path)
    rows = sorted((c.index, c.mid, c.display_name) for c in labels)
    if [r[0] for r in rows] != list(range(len(rows))):
        raise LayoutError(f"{path}: indices must be 0 .. {len(rows) - 1} (each once)")
    return rows


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("HDF5 packs need h5py: pip install h5py") from exc
    return h5py


def _decode_name(x: Any) -> str:
    return x.decode("utf-8", errors="replace") if isinstance(x, (bytes, np.bytes_)) else str(x)


def hdf5_source(path: str | Path, *, label_csv: str | Path | None = None,
                classes: Sequence[str] | None = None) -> Manifest:
    """Clips of a PANNs HDF5 pack, or of a PANNs index file pointing into packs.

    Args:
        path: the ``.h5`` file.
        label_csv: ``class_labels_indices.csv`` naming the target columns (None: ``classes``, else
            ``"0"``, ``"1"``, ...).
        classes: class names (e.g. a checkpoint's); must have as many entries as ``target`` columns.

    Raises:
        LayoutError: missing datasets, inconsistent sizes, a class count that does not match.
    """
    h5py = _h5py()
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise LayoutError(f"{path}: HDF5 file not found")
    with h5py.File(path, "r") as f:
        if "target" not in f or "audio_name" not in f:
            raise LayoutError(f"{path}: not a PANNs pack or index (needs 'audio_name' and 'target')")
        names = [_decode_name(x) for x in f["audio_name"][:]]
        target = np.asarray(f["target"][:]).astype(bool)
        if "waveform" in f:
            if f["waveform"].shape[0] != len(names):
                raise LayoutError(f"{path}: 'waveform' has {f['waveform'].shape[0]} rows, 'audio_name' {len(names)}")
            refs = [(str(path), i) for i in range(len(names))]
        elif "hdf5_path" in f and "index_in_hdf5" in f:
            packs = [_decode_name(x) for x in f["hdf5_path"][:]]
            rows = np.asarray(f["index_in_hdf5"][:]).astype(int)
            refs = [(str(p if os.path.isabs(p) else (path.parent / p)), int(r)) for p, r in zip(packs, rows)]
        else:
            raise LayoutError(f"{path}: neither a pack ('waveform') nor an index ('hdf5_path', 'index_in_hdf5')")
    if target.ndim != 2 or target.shape[0] != len(names):
        raise LayoutError(f"{path}: 'target' has shape {target.shape}, expected ({len(names)}, classes)")
    n_cls = target.shape[1]
    if label_csv:
        cls_names = [r[2] for r in read_label_csv(label_csv)]
    elif classes:
        cls_names = list(classes)
    else:
        cls_names = [str(i) for i in range(n_cls)]
    if len(cls_names) != n_cls:
        raise LayoutError(f"{path}: 'target' has {n_cls} columns but {label_csv or 'the class list'} "
                          f"names {len(cls_names)} classes")
    if classes and list(classes) != cls_names:
        raise LayoutError(f"{path}: classes of {label_csv} differ from the configured classes")
    clips, skipped = [], []
    for i, (name, ref) in enumerate(zip(names, refs)):
        if not name:
            skipped.append((f"{path.name}#{i}", "empty audio_name: the packer did not find this clip"))
            continue
        clips.append(Clip(name, tuple(cls_names[j] for j in np.flatnonzero(target[i])), h5=ref, row=i))
    return Manifest(str(path), clips, LabelSpace(cls_names, _multilabel(clips)), skipped, num_rows=len(names))


def ast_json_source(path: str | Path, *, label_csv: str | Path,
                    classes: Sequence[str] | None = None) -> Manifest:
    """Clips of an AST datafile ``{"data": [{"wav": path, "labels": "mid1,mid2"}, ...]}``.

    Relative ``wav`` paths are resolved against the json file's folder. Labels are mids (or
    display names) of ``label_csv``.

    Args:
        path: the json datafile.
        label_csv: the ``class_labels_indices.csv`` of the labels.
        classes: class names to index into (must be the csv's display names in order, when given).

    Raises:
        LayoutError: unreadable json, wrong structure, an unknown label; the message names the entry.
    """
    path = Path(path).expanduser().absolute()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"{path}: AST datafile not found") from None
    except (OSError, ValueError) as err:
        raise LayoutError(f"{path}: cannot be read as JSON ({err})") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise LayoutError(f'{path}: expected {{"data": [{{"wav": ..., "labels": ...}}, ...]}}')
    rows = read_label_csv(label_csv)
    cls_names = [r[2] for r in rows]
    if classes and list(classes) != cls_names:
        raise LayoutError(f"{path}: classes of {label_csv} differ from the configured classes")
    lookup = {mid: name for _, mid, name in rows}  # a label is a mid or a display name
    lookup.update({name: name for _, _, name in rows})
    clips = []
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per label set, shared by its clips
    for k, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("wav"), str) or not isinstance(entry.get("labels"), str):
            raise LayoutError(f"{path}: entry {k} must be an object with string 'wav' and 'labels'")
        wav = entry["wav"]
        full = Path(wav) if os.path.isabs(wav) else path.parent / wav
        labels = [s.strip() for s in entry["labels"].split(",") if s.strip()]
        unknown = [s for s in labels if s not in lookup]
        if unknown:
            raise LayoutError(f"{path}: entry {k} ({wav}): label(s) {unknown} not in {label_csv}")
        names = tuple(dict.fromkeys(lookup[s] for s in labels))
        clips.append(_file_clip(Path(wav).stem, shared.setdefault(names, names), full, row=k))
    return Manifest(str(path), clips, LabelSpace(cls_names, _multilabel(clips)), num_rows=len(data))


FORMATS = ("layout", "folder", "hdf5", "ast_json")


def open_source(fmt: str, root: str | Path, split: str, *, label_csv: str | Path | None = None,
                val_fraction: float = 0.1, classes: Sequence[str] | None = None) -> Manifest:
    """Read one split of a dataset in any of the :data:`FORMATS`.

    Args:
        fmt: ``layout``, ``folder``, ``hdf5`` or ``ast_json``.
        root: the dataset root; for ``hdf5`` / ``ast_json`` a relative ``split`` is resolved against it.
        split: a split name (``layout``, ``folder``) or the split's file (``hdf5``, ``ast_json``).
        label_csv: the class csv (``hdf5``: optional; ``ast_json``: default ``ROOT/class_labels_indices.csv``).
        val_fraction: ``folder`` without split sub-folders, see :func:`folder_source`.
        classes: class names to index into.
    """
    if fmt == "layout":
        return layout_source(root, split, classes)
    if fmt == "folder":
        return folder_source(root, split, val_fraction=val_fraction, classes=classes)
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; use one of {', '.join(FORMATS)}")
    base = Path(root).expanduser() if root else None

    def resolve(p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() or base is None else base / p

    csv = resolve(label_csv) if label_csv else None
    if fmt == "hdf5":
        if csv is None and base is not None and (base / "class_labels_indices.csv").is_file():
            csv = base / "class_labels_indices.csv"
        return hdf5_source(resolve(split), label_csv=csv, classes=classes)
    if csv is None:
        if base is None:
            raise ValueError("the ast_json format needs a class_labels_indices.csv (label_csv, or ROOT/class_labels_indices.csv)")
        csv = base / "class_labels_indices.csv"
    return ast_json_source(resolve(split), label_csv=csv, classes=classes)


# ---------------------------------------------------------------------------------------------- writer


def layout_to_folders(root: str | Path, out: str | Path, *, splits: Sequence[str] = FOLDER_SPLITS,
                      link: bool = True) -> dict[str, int]:
    """Write a layout dataset's audio as a folder-per-class tree ``OUT/<split>/<class>/<vid>.<ext>``.

    A clip with several labels is placed in each of its class folders (the same bytes: one clip,
    several labels, see :func:`folder_source`). Only clips with an audio file are written (a clip
    with only a video is skipped with a warning). Files are hard links when ``link`` and the file
    system allows, else copies.

    Args:
        root: a dataset root in the vid2genre layout (e.g. the synthetic dataset).
        out: the folder to write (must not exist or be empty).
        splits: splits to convert (absent ones are skipped).
        link: hard-link instead of copying where possible.

    Returns:
        clips written per split.
    """
    import shutil

    from .layout import available_splits

    out = Path(out).expanduser().absolute()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty")
    counts: dict[str, int] = {}
    present = available_splits(root)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for split in splits:
            if split not in present:
                continue
            index = load_split(root, split)
            n = 0
            for clip in index.clips:
                if clip.audio is None:
                    logger.warning("%s: clip %s has no audio file; not written", root, clip.vid)
                    continue
                for label in clip.labels:
                    dst = tmp / split / _safe_folder(label) / f"{clip.vid}{clip.audio.suffix.lower()}"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        if not link:
                            raise OSError
                        os.link(clip.audio, dst)
                    except OSError:
                        shutil.copyfile(clip.audio, dst)
                n += 1
            counts[split] = n
        if out.exists():
            out.rmdir()  # empty (checked above): the finished tree takes its place
    return counts


def _safe_folder(label: str) -> str:
    name = label.replace("/", "_").replace("\\", "_").strip()
    if name in ("", ".", ".."):
        raise LayoutError(f"label {label!r} cannot name a folder")
    return name
