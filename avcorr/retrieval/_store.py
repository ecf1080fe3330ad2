"""An embedding index on disk: one FAISS index per modality plus the items and the model they came from.

Folder layout (written by :meth:`RetrievalIndex.save`)::

    IDX/
      index.json      format tag and version, the model fingerprint (``info``), the index settings,
                      per modality its FAISS file, vector count and sha256, and the items
                      (``id``, ``labels``, ``video``, ``audio``, ``time``) in FAISS position order
      audio.faiss     audio embeddings
      visual.faiss    visual embeddings
      visual_cells.faiss   only for a model that matches a sound to a frame's best cell: every cell
                      of every embedded frame (F frames x C cells a clip, clip after clip; ``index.json``
                      records ``groups`` = F and ``cells`` = C of the modality, and ``version`` 2)

FAISS files are written first and ``index.json`` last, each through a temporary file and
``os.replace``; the checksums in ``index.json`` catch a folder whose files do not belong together.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .._atomic import write_json

from ._errors import IndexFormatError, IndexMismatchError
from ._faiss import IndexConfig, VectorIndex
from ._multivector import max_sim_search, query_sets

logger = logging.getLogger(__name__)

__all__ = ["CELLS", "COMPAT_KEYS", "Hit", "INDEX_FORMAT", "INDEX_VERSION", "META_FILE", "MODALITIES",
           "RetrievalIndex", "merge_sources"]

INDEX_FORMAT = "avcorr-retrieval-index"
INDEX_VERSION = 2
"""Version 2 adds modalities of several vectors per clip (``groups``, ``cells``); an index without one is
still written as version 1, which older avcorr reads."""
META_FILE = "index.json"
MODALITIES = ("audio", "visual")
CELLS = "visual_cells"
"""The modality of a clip's frames x cells (best-cell matching), beside the pooled ``visual``."""
COMPAT_KEYS = ("model", "embed_dim", "config_hash", "weights_sha256")
"""``info`` entries that must agree between an index and the model that queries it."""


@dataclass
class Hit:
    """One search result.

    Args:
        rank: 1-based rank.
        position: the item's position in the index.
        id: clip id.
        score: cosine similarity to the query.
        labels: the clip's labels.
        video: the clip's video file (None when it had none).
        time: representative frame time in the video (s).
    """

    rank: int
    position: int
    id: str
    score: float
    labels: list[str] = field(default_factory=list)
    video: str | None = None
    time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "id": self.id, "score": self.score, "labels": self.labels,
                "video": self.video, "time": self.time, "position": self.position}


def _check_item(item: dict[str, Any], i: int) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise ValueError(f"item {i} needs a non-empty string 'id'")
    labels = item.get("labels", [])
    if isinstance(labels, str):
        labels = [labels]
    time = item.get("time")
    return {"id": item["id"], "labels": [str(x) for x in labels],
            "video": None if item.get("video") is None else str(item["video"]),
            "audio": None if item.get("audio") is None else str(item["audio"]),
            "time": None if time is None or not math.isfinite(float(time)) else float(time)}


class RetrievalIndex:
    """Audio and visual embeddings of a set of clips, searchable across modalities.

    Example:
        >>> idx = RetrievalIndex(info={"model": "avenet", "embed_dim": 128, ...})
        >>> idx.add(items, {"audio": audio_emb, "visual": visual_emb})   # (N, 128) each
        >>> idx.save("runs/avenet/index_test")
        >>> hits = RetrievalIndex.load("runs/avenet/index_test").search(query_emb, "visual", k=10)[0]

    Args:
        info: where the embeddings come from: at least ``model`` and ``embed_dim``; also
            ``config_hash``, ``weights_sha256``, ``checkpoint``, the embedding settings and the
            data sources (free-form, stored as given).
        config: FAISS settings, shared by both modalities.
        modalities: the embedding spaces held.
        layouts: ``{modality: (groups, cells)}`` for a modality of ``groups * cells`` vectors a clip
            (e.g. ``{CELLS: (F, C)}``, a clip's F frames of C cells); the others hold one vector a clip.
    """

    def __init__(self, info: dict[str, Any], config: IndexConfig | None = None,
                 modalities: Sequence[str] = MODALITIES, layouts: dict[str, tuple[int, int]] | None = None):
        if "embed_dim" not in info or "model" not in info:
            raise ValueError("info needs 'model' and 'embed_dim'")
        self.info = dict(info)
        self.dim = int(info["embed_dim"])
        self.config = config or IndexConfig()
        self.modalities = tuple(modalities)
        self.layouts = {m: (1, 1) for m in self.modalities}
        for m, layout in (layouts or {}).items():
            groups, cells = (int(x) for x in layout)
            if m not in self.layouts or groups < 1 or cells < 1:
                raise ValueError(f"layout {layout!r} of {m!r}: needs a modality of the index and groups, cells >= 1")
            self.layouts[m] = (groups, cells)
        self.items: list[dict[str, Any]] = []
        self._positions: dict[str, int] = {}
        self.indexes = {m: VectorIndex(self.dim, IndexConfig.from_dict(self.config.to_dict()))
                        for m in self.modalities}

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [it["id"] for it in self.items]

    def position(self, vid: str) -> int | None:
        """Position of clip ``vid`` in the index, or None."""
        return self._positions.get(vid)

    # -- building ------------------------------------------------------------------------
    def add(self, items: Sequence[dict[str, Any]], embeddings: dict[str, np.ndarray]) -> int:
        """Append clips and their embeddings; clips whose id is already indexed are skipped (logged).

        Args:
            items: N dicts with ``id`` and optionally ``labels``, ``video``, ``audio``, ``time``.
            embeddings: ``{modality: (N, embed_dim) array}`` for every modality of the index;
                ``(N, groups, cells, embed_dim)`` for a modality of that layout.

        Returns:
            The number of clips added.

        Raises:
            IndexMismatchError: an embedding matrix of another dimension.
            ValueError: a missing modality, or items and embeddings of different lengths.
        """
        missing = [m for m in self.modalities if m not in embeddings]
        if missing:
            raise ValueError(f"embeddings for {missing} missing (index modalities: {list(self.modalities)})")
        n = len(items)
        embs = {m: np.asarray(embeddings[m], dtype=np.float32) for m in self.modalities}
        for m, e in embs.items():
            shape = (n, self.dim) if self.layouts[m] == (1, 1) else (n, *self.layouts[m], self.dim)
            if e.ndim != len(shape) or e.shape[:-1] != shape[:-1]:
                raise ValueError(f"{m} embeddings have shape {e.shape}, expected {shape}")
            if e.shape[-1] != self.dim:
                raise IndexMismatchError(f"{m} embeddings have dimension {e.shape[-1]}, the index holds {self.dim}")
            embs[m] = e.reshape(n, -1, self.dim)
        checked = [_check_item(it, i) for i, it in enumerate(items)]
        keep, seen = [], set()
        for i, it in enumerate(checked):
            if it["id"] in self._positions or it["id"] in seen:
                logger.warning("clip %s is already in the index; not added again", it["id"])
                continue
            seen.add(it["id"])
            keep.append(i)
        if not keep:
            return 0
        sel = np.asarray(keep)
        for m in self.modalities:
            self.indexes[m].add(embs[m][sel].reshape(-1, self.dim))
        for i in keep:
            self._positions[checked[i]["id"]] = len(self.items)
            self.items.append(checked[i])
        return len(keep)

    # -- searching -----------------------------------------------------------------------
    def search(self, queries: np.ndarray, target: str, k: int = 10, *, pool: str = "mean") -> list[list[Hit]]:
        """The ``k`` nearest clips of each query in the ``target`` modality's index.

        A query of one vector against a modality of one vector a clip is a plain FAISS search. A query
        set (a frame's cells) or a modality of several vectors a clip (:data:`CELLS`) is scored by the
        best-matching vectors of each pair of groups, pooled over the groups by ``pool``
        (:func:`~avcorr.retrieval.max_sim_search`; exact on a flat index).

        Args:
            queries: (Q, embed_dim) or (embed_dim,) query embeddings, or (Q, groups, cells, embed_dim) sets.
            target: a modality of the index: ``"audio"``, ``"visual"`` or :data:`CELLS`.
            k: results per query.
            pool: ``"mean"`` or ``"max"`` over groups (frames), for sets only.

        Returns:
            Q lists of :class:`Hit`, best first.
        """
        if target not in self.indexes:
            raise ValueError(f"target must be one of {list(self.modalities)}, got {target!r}")
        if self.layouts[target] == (1, 1) and np.ndim(queries) <= 2:
            scores, pos = self.indexes[target].search(queries, k)
        else:
            groups, cells = self.layouts[target]
            scores, pos = max_sim_search(self.indexes[target], query_sets(queries, self.dim), k, groups=groups,
                                         cells=cells, pool=pool)
        out = []
        for srow, prow in zip(scores, pos):
            hits = []
            for s, p in zip(srow, prow):
                if p < 0:
                    continue
                it = self.items[p]
                hits.append(Hit(len(hits) + 1, int(p), it["id"], float(s), list(it["labels"]), it["video"], it["time"]))
            out.append(hits)
        return out

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the IVF ``nprobe`` / HNSW ``ef_search`` knobs of every modality."""
        for index in self.indexes.values():
            if nprobe is not None:
                index.nprobe = nprobe
            if ef_search is not None:
                index.ef_search = ef_search

    # -- compatibility -------------------------------------------------------------------
    def check_compatible(self, other: dict[str, Any], what: str = "the model") -> None:
        """Raise :class:`IndexMismatchError` when ``other`` (a model's info) differs on :data:`COMPAT_KEYS`.

        Keys absent from either side are not compared.
        """
        diffs = [f"{k}: index has {self.info[k]!r}, {what} has {other[k]!r}"
                 for k in COMPAT_KEYS if k in self.info and k in other and self.info[k] != other[k]]
        if diffs:
            where = f" ({self.info['path']})" if "path" in self.info else ""
            raise IndexMismatchError(f"the index{where} was built with another model than {what}: "
                                     + "; ".join(diffs) + ". Rebuild the index with this checkpoint, or query "
                                     "with the checkpoint that built it.")

    # -- files ---------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the index folder (FAISS files first, ``index.json`` last, each atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        mods = {}
        for m in self.modalities:
            name = f"{m}.faiss"
            digest = self.indexes[m].save(folder / name)
            mods[m] = {"file": name, "ntotal": self.indexes[m].ntotal, "sha256": digest}
            if self.layouts[m] != (1, 1):
                mods[m]["groups"], mods[m]["cells"] = self.layouts[m]
        info = {k: v for k, v in self.info.items() if k != "path"}
        version = INDEX_VERSION if any(x != (1, 1) for x in self.layouts.values()) else 1
        meta = {"format": INDEX_FORMAT, "version": version, "info": info, "index_config": self.config.to_dict(),
                "embed_dim": self.dim, "modalities": mods, "items": self.items}
        write_json(folder / META_FILE, meta, indent=1)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, nprobe: int | None = None, ef_search: int | None = None,
             use_gpu: bool | None = None) -> "RetrievalIndex":
        """Read an index folder written by :meth:`save`.

        Args:
            folder: the index folder.
            nprobe: override the stored IVF ``nprobe``.
            ef_search: override the stored HNSW ``ef_search``.
            use_gpu: override where the indexes live.

        Raises:
            IndexFormatError: naming the file, when the folder or a file is missing, ``index.json``
                is not valid or not an avcorr index, or the files disagree with it (checksum,
                vector counts).
            IndexMismatchError: a FAISS file of another dimension than ``index.json`` says.
        """
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not folder.is_dir():
            raise IndexFormatError(f"{folder}: index folder not found")
        if not meta_path.is_file():
            raise IndexFormatError(f"{meta_path}: missing; {folder} is not an avcorr retrieval index "
                                   "(build one with `python -m avcorr.retrieve index`)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise IndexFormatError(f"{meta_path}: not valid JSON ({e}); the index is corrupt, rebuild it") from None
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise IndexFormatError(f"{meta_path}: not an avcorr retrieval index (format tag missing)")
        if not isinstance(meta.get("version"), int) or meta["version"] > INDEX_VERSION:
            raise IndexFormatError(f"{meta_path}: index format version {meta.get('version')!r} is newer than this "
                                   f"avcorr understands ({INDEX_VERSION}); upgrade avcorr")
        try:
            info, dim, mods, items = meta["info"], int(meta["embed_dim"]), meta["modalities"], meta["items"]
            config = IndexConfig.from_dict(meta["index_config"])
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(f"{meta_path}: incomplete or invalid metadata ({type(e).__name__}: {e})") from None
        if not isinstance(info, dict) or info.get("embed_dim") != dim:
            got = info.get("embed_dim") if isinstance(info, dict) else None
            raise IndexFormatError(f"{meta_path}: info.embed_dim {got!r} disagrees with embed_dim {dim}")
        if nprobe is not None:
            config.nprobe = nprobe
        if ef_search is not None:
            config.ef_search = ef_search
        if use_gpu is not None:
            config.use_gpu = use_gpu
        try:
            layouts = {m: (int(e.get("groups", 1)), int(e.get("cells", 1))) for m, e in mods.items()}
            obj = cls(info, config, modalities=tuple(mods), layouts=layouts)
        except (AttributeError, TypeError, ValueError) as e:
            raise IndexFormatError(f"{meta_path}: invalid modalities ({type(e).__name__}: {e})") from None
        obj.info["path"] = str(folder)
        try:
            obj.items = [_check_item(it, i) for i, it in enumerate(items)]
        except ValueError as e:
            raise IndexFormatError(f"{meta_path}: {e}") from None
        obj._positions = {it["id"]: i for i, it in enumerate(obj.items)}
        if len(obj._positions) != len(obj.items):
            raise IndexFormatError(f"{meta_path}: repeated clip ids")
        for m, entry in mods.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "/" in entry["file"]:
                raise IndexFormatError(f"{meta_path}: modality {m!r} has no valid 'file' entry")
            index = VectorIndex.load(folder / entry["file"], IndexConfig.from_dict(config.to_dict()), dim=dim,
                                     sha256=entry.get("sha256"))
            per = obj.layouts[m][0] * obj.layouts[m][1]
            if index.ntotal != len(obj.items) * per or index.ntotal != entry.get("ntotal"):
                each = f" of {per} vectors each" if per > 1 else ""
                raise IndexFormatError(f"{folder / entry['file']}: holds {index.ntotal} vectors but {meta_path} lists "
                                       f"{len(obj.items)} items{each} ({entry.get('ntotal')} recorded); rebuild the "
                                       "index")
            obj.indexes[m] = index
        return obj


def merge_sources(info: dict[str, Any], sources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``info`` with ``sources`` appended to its ``sources`` list (a record of what was indexed)."""
    out = dict(info)
    out["sources"] = list(out.get("sources", [])) + list(sources)
    return out
