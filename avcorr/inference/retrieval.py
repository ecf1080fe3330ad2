"""Cross-modal retrieval with a trained audio-visual model: embed a split (:func:`embed_split`), build
or extend a FAISS index of it (:func:`build_index`), and query it with an audio, video or image file
(:func:`query_index`); the library of ``python -m avcorr.retrieve``.

A clip is embedded from F frames and the audio windows centred on them, pooled per clip. An index
records the model it came from (:class:`EmbeddingModel` ``.info``: model, embedding size, config
hash, weights hash), and a query with a checkpoint of another model, dimension or weights is refused.

Best-cell scoring (``cells="auto"``, the default): for a model trained to match a sound to a frame's
best cell (:func:`avcorr.retrieval.scores_by_cells`, AVE-Net with ``visual_pool="cells"``) the index
also keeps every cell of every embedded frame (:data:`avcorr.retrieval.CELLS`), and a cross-modal
query is scored as the model was trained: a sound against each frame's best cell, those F scores
pooled by the index's ``pool`` (mean: their average; max: the best cell of any frame). An audio query
searches the cells, a picture or video query searches the audio index with its own cells.
``cells="off"`` keeps one pooled vector a frame (the max over its cells). Audio -> audio and
picture -> picture queries always compare pooled vectors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._atomic import atomic_path
from .._lazy import no_grad as _no_grad

if TYPE_CHECKING:
    import torch

    from ..retrieval import ClipEmbeddings, Hit, IndexConfig, RetrievalIndex

logger = logging.getLogger(__name__)

__all__ = ["CELL_MODES", "EmbeddingModel", "build_index", "contact_sheet", "cross_modal_search", "embed_query",
           "embed_split", "embeddings_index", "load_embedding_model", "query_index", "use_cells"]

CELL_MODES = ("auto", "off")
"""``cells`` settings: ``auto`` scores cross-modal pairs by the best cell for a model trained so, ``off`` never."""


def use_cells(model, cells: str) -> bool:
    """Whether retrieval with ``model`` scores cross-modal pairs by the best cell under the setting ``cells``.

    Raises:
        ValueError: ``cells`` is not one of :data:`CELL_MODES`.
    """
    from ..retrieval import scores_by_cells

    if cells not in CELL_MODES:
        raise ValueError(f"cells must be one of {CELL_MODES}, got {cells!r}")
    return cells == "auto" and scores_by_cells(model)


# ----------------------------------------------------------------------------------------------
# the model and its fingerprint


class EmbeddingModel:
    """A checkpoint's model with the input settings of its config and its fingerprint.

    Attributes:
        model: the network (eval mode, on ``device``).
        cfg: the resolved :class:`~avcorr.config.Config` stored in the checkpoint.
        device: where it runs.
        info: ``model``, ``embed_dim``, ``config_hash``, ``weights_sha256``, ``checkpoint``, ``epoch``
            (what an index records).
    """

    def __init__(self, model: torch.nn.Module, cfg, device: torch.device, info: dict[str, Any]):
        self.model, self.cfg, self.device, self.info = model, cfg, device, info

    @property
    def image_size(self) -> int:
        return int(self.cfg.data.image_size)

    @property
    def sample_rate(self) -> int:
        """The model's audio rate (``model.input_spec``)."""
        return int(self.model.input_spec.sample_rate)

    @property
    def seconds(self) -> float:
        """The model's audio window (``model.input_spec``)."""
        return float(self.model.input_spec.clip_seconds)

    @property
    def amp(self) -> bool:
        return bool(self.cfg.train.amp)

    @_no_grad
    def encode(self, modality: str, x: torch.Tensor, pool: str = "mean") -> np.ndarray:
        """Embed F frames (F, 3, S, S) or F audio windows (F, T) of one query; pooled to (D,)."""
        from ..retrieval import pool_embeddings
        from .._amp import autocast as _autocast

        fn = self.model.encode_visual if modality == "visual" else self.model.encode_audio
        with _autocast(self.device, self.amp):
            e = fn(x.to(self.device))
        return pool_embeddings(e.float()[None], pool)[0].cpu().numpy()

    @_no_grad
    def encode_cells(self, x: torch.Tensor) -> np.ndarray:
        """Cell embeddings of F frames (F, 3, S, S) of one query: float32 (F, C, D), unit vectors."""
        import torch.nn.functional as F
        from .._amp import autocast as _autocast

        with _autocast(self.device, self.amp):
            c = self.model.encode_visual_cells(x.to(self.device))
        return F.normalize(c.float().flatten(2), dim=1).transpose(1, 2).cpu().numpy()


def _config_hash(cfg) -> str:
    """sha256 of the config entries that decide what an embedding means (model and input format)."""
    from ..config import config_to_dict

    d = config_to_dict(cfg)
    model = {k: v for k, v in d["model"].items() if k != "checkpoint_path"}
    audio = {k: v for k, v in d["data"]["audio"].items() if k != "gain_jitter"}
    key = {"task": d["task"], "model": model, "image_size": d["data"]["image_size"], "audio": audio}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and values (order independent)."""
    import torch
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_embedding_model(checkpoint: str | Path, device: str = "auto") -> EmbeddingModel:
    """Rebuild the model of a training checkpoint for embedding.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: not an avcorr checkpoint, or weights that do not fit; :class:`avcorr.runs.RunKindError`
            when its model has no ``encode_audio`` / ``encode_visual``.
    """
    import torch

    from ..runs import load_run

    run = load_run(checkpoint, device, expect="embedding", keep_weights=True)
    model, cfg, dev = run.model, run.cfg, run.device
    size = cfg.data.image_size
    with torch.no_grad():  # the embedding size (L3-Net's is its pooled feature size, not embed_dim)
        dim = int(model.encode_visual(torch.zeros(1, 3, size, size, device=dev)).shape[-1])
    info = {"model": cfg.model.name, "embed_dim": dim, "config_hash": _config_hash(cfg),
            "weights_sha256": _weights_sha256(run.weights), "checkpoint": str(Path(checkpoint).resolve()),
            "epoch": run.epoch}
    return EmbeddingModel(model, cfg, dev, info)


# ----------------------------------------------------------------------------------------------
# embedding a split / building an index


def _data_root(cfg, data_root: str | Path | None, progress: bool) -> str:
    if data_root:
        return str(data_root)
    if cfg.data.root:
        return cfg.data.root
    from ..data.synthetic import ensure_default_dataset

    root = str(ensure_default_dataset(progress=progress))
    logger.info("data.root not set: using the embedded synthetic dataset at %s", root)
    return root


def embed_split(em: EmbeddingModel, root: str | Path, split: str, *, frames: int = 3, pool: str = "mean",
                batch_size: int = 16, num_workers: int = 0, progress: bool = False, clips=None, cells: bool = False):
    """Pooled audio and visual embeddings of every clip of a split (and the frames' cells with ``cells``).

    Args:
        em: from :func:`load_embedding_model`.
        root: dataset root.
        split: split name.
        frames: frames / audio windows per clip.
        pool: ``"mean"`` or ``"max"``.
        batch_size: clips per batch.
        num_workers: DataLoader workers.
        progress: tqdm bar.
        clips: embed only these clips of the split (:class:`~avcorr.data.layout.Clip` s, e.g. a sample of
            ``load_split(root, split).clips``; default all).
        cells: also keep every frame's cells (``visual_cells`` (N, F, C, D)).

    Returns:
        :class:`avcorr.retrieval.ClipEmbeddings` (undecodable clips skipped, logged and counted; ``paths``
        names the file of every clip of the split).

    Raises:
        ValueError: ``root`` holds shards (:func:`~avcorr.data.storage.require_files`).
    """
    from torch.utils.data import DataLoader

    from ..data.skipped import clip_paths
    from ..data.embed import ClipEmbedDataset, collate_clips
    from ..data.layout import load_split
    from ..data.storage import require_files
    from ..retrieval import encode_clips

    require_files(root, "embedding a split")
    index = load_split(root, split)
    if clips is not None:
        index = dataclasses.replace(index, clips=list(clips))
    ds = ClipEmbedDataset(index, frames=frames, sample_rate=em.sample_rate, seconds=em.seconds,
                          image_size=em.image_size, video_backend=em.cfg.data.video_backend or None)
    if len(ds) == 0:
        raise ValueError(f"{Path(root) / split}: no clip with a video file to embed")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_clips)
    emb = encode_clips(em.model, loader, device=em.device, pool=pool, amp=em.amp, progress=progress,
                       desc=f"embed {split}", cells=cells)
    emb.skipped = list(ds.init_skipped) + emb.skipped
    emb.paths = clip_paths(index.clips)
    return emb


def build_index(checkpoint: str | Path, out: str | Path, *, data_root: str | Path | None = None, split: str = "test",
                frames: int = 3, pool: str = "mean", config=None, append: bool = False, batch_size: int = 16,
                num_workers: int = 0, device: str = "auto", progress: bool = False, cells: str = "auto"):
    """Embed a split with a checkpoint and save (or extend) a :class:`~avcorr.retrieval.RetrievalIndex`.

    Args:
        checkpoint: a training checkpoint.
        out: the index folder.
        data_root: dataset root (default: the checkpoint config's, else the embedded synthetic one).
        split: split to embed.
        frames: frames / audio windows per clip.
        pool: per-clip pooling.
        config: :class:`~avcorr.retrieval.IndexConfig` (default: exact flat index).
        append: add to the index already in ``out`` (same model required; ids already there skipped).
        batch_size: clips per batch.
        num_workers: DataLoader workers.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        progress: tqdm bar.
        cells: ``auto``: for a model that scores by the best cell, also index every frame's cells
            (module docstring; ``info.embedding.cells`` records it); ``off``: pooled vectors only.

    Returns:
        ``(index, embeddings)``. The skipped clips of each indexed split are listed in ``index.json``
        (``info.sources[i].skipped_list``: id, path, reason) and, for every source of the index, in
        ``out/skipped.csv``.

    Raises:
        FileExistsError: ``out`` holds an index and ``append`` is False.
        IndexMismatchError: ``append`` to an index of another model or embedding settings.
    """
    from ..data.skipped import SKIPPED_FILE, skipped_rows, write_skipped_csv
    from ..retrieval import META_FILE, IndexMismatchError, RetrievalIndex, merge_sources

    out = Path(out)
    if (out / META_FILE).exists() and not append:
        raise FileExistsError(f"{out} already holds an index; pass --append to add to it or choose another --out")
    em = load_embedding_model(checkpoint, device)
    by_cells = use_cells(em.model, cells)
    existing = RetrievalIndex.load(out) if append and (out / META_FILE).exists() else None
    if existing is not None:
        existing.check_compatible(em.info, what=str(checkpoint))
        e = existing.info.get("embedding", {})
        if e.get("frames") != frames or e.get("pool") != pool or bool(e.get("cells", False)) != by_cells:
            raise IndexMismatchError(f"{out}: built with frames={e.get('frames')} pool={e.get('pool')!r} "
                                     f"cells={bool(e.get('cells', False))}, not frames={frames} pool={pool!r} "
                                     f"cells={by_cells}; use the same embedding settings to append")
    root = _data_root(em.cfg, data_root, progress)
    t0 = time.time()
    emb = embed_split(em, root, split, frames=frames, pool=pool, batch_size=batch_size, num_workers=num_workers,
                      progress=progress, cells=by_cells)
    dim = int(emb.audio.shape[1])
    skipped = skipped_rows(emb.skipped, emb.paths)
    source = {"root": str(Path(root).resolve()), "split": split, "clips": len(emb.items), "skipped": len(skipped),
              "skipped_list": skipped}
    if existing is None:
        info = {**em.info, "embed_dim": dim,  # the dimension actually produced
                "embedding": {"frames": frames, "pool": pool, "image_size": em.image_size,
                              "sample_rate": em.sample_rate, "seconds": em.seconds, "cells": by_cells}}
        index = embeddings_index(merge_sources(info, [source]), emb, config)
    else:
        index = existing
        if index.dim != dim:
            raise IndexMismatchError(f"{out}: holds {index.dim}-d embeddings, this model makes {dim}-d ones")
        index.info = merge_sources(index.info, [source])
    added = index.add(emb.items, _vectors(emb))
    index.save(out)
    write_skipped_csv(out / SKIPPED_FILE, [row for src in index.info.get("sources", [])
                                           for row in src.get("skipped_list", ())])
    logger.info("indexed %d clips of %s/%s in %.1f s (%d skipped, %d already present); %d in %s",
                added, root, split, time.time() - t0, len(emb.skipped), len(emb.items) - added, len(index), out)
    return index, emb


def _vectors(emb: ClipEmbeddings) -> dict[str, np.ndarray]:
    """``{modality: vectors}`` of :class:`~avcorr.retrieval.ClipEmbeddings`, the cells included when it has them."""
    from ..retrieval import CELLS

    vectors = {"audio": emb.audio, "visual": emb.visual}
    if emb.visual_cells is not None:
        vectors[CELLS] = emb.visual_cells
    return vectors


def embeddings_index(info: dict[str, Any], emb: ClipEmbeddings, config: IndexConfig | None = None, *,
                     add: bool = False) -> RetrievalIndex:
    """A :class:`~avcorr.retrieval.RetrievalIndex` laid out for ``emb``: the pooled audio and visual vectors,
    and the frames' cells (:data:`~avcorr.retrieval.CELLS`, F x C vectors a clip) when ``emb`` holds them.

    Args:
        info: the index's ``info`` (model, ``embed_dim``, ...).
        emb: :class:`~avcorr.retrieval.ClipEmbeddings` (``visual_cells`` (N, F, C, D) or None).
        config: :class:`~avcorr.retrieval.IndexConfig` (default: exact flat index).
        add: also add ``emb``'s clips.

    Returns:
        The index (empty unless ``add``).
    """
    from ..retrieval import CELLS, MODALITIES, RetrievalIndex

    by_cells = emb.visual_cells is not None
    index = RetrievalIndex(info, config, modalities=(*MODALITIES, CELLS) if by_cells else MODALITIES,
                           layouts={CELLS: emb.visual_cells.shape[1:3]} if by_cells else None)
    if add:
        index.add(emb.items, _vectors(emb))
    return index


def cross_modal_search(index: RetrievalIndex, source: str, queries: np.ndarray, k: int, *, by_cells: bool,
                       pool: str = "mean") -> list[list[Hit]]:
    """Search the other modality of ``index`` with queries of modality ``source``.

    With ``by_cells`` (an index that holds :data:`~avcorr.retrieval.CELLS`) the pairs are scored by the best
    cell (module docstring): an audio query searches the clips' cells, a visual query is its frames' cells
    searched against the audio; the scores over the frames are pooled by ``pool``. Else pooled against pooled.

    Args:
        index: a :class:`~avcorr.retrieval.RetrievalIndex`.
        source: ``"audio"`` or ``"visual"``.
        queries: (Q, D) pooled vectors; for a visual query with ``by_cells``, (Q, F, C, D) cell sets.
        k: hits per query.
        by_cells: score by the best cell.
        pool: ``"mean"`` or ``"max"`` over the frames (the embedding's pooling).

    Returns:
        Per query, its :class:`~avcorr.retrieval.Hit` s, best first.
    """
    from ..retrieval import CELLS

    if source not in ("audio", "visual"):
        raise ValueError(f"source must be 'audio' or 'visual', got {source!r}")
    target = "audio" if source == "visual" else (CELLS if by_cells else "visual")
    return index.search(queries, target, k, pool=pool)


# ----------------------------------------------------------------------------------------------
# queries


def embed_query(em: EmbeddingModel, *, audio: str | Path | None = None, video: str | Path | None = None,
                image: str | Path | None = None, modality: str = "visual", frames: int = 3,
                pool: str = "mean", cells: bool = False) -> tuple[np.ndarray, str, torch.Tensor | None]:
    """Embed one query file.

    Args:
        em: the model.
        audio: an audio file (or any media file with an audio track): ``frames`` windows spread over it.
        video: a video file: its frames (``modality="visual"``) or its audio track (``"audio"``).
        image: a picture file.
        modality: which side of ``video`` to use.
        frames: frames / windows to pool (the index's setting).
        pool: pooling (the index's setting).
        cells: a picture or video query is embedded as its frames' cells, not pooled (an audio query
            is pooled either way).

    Returns:
        ``(embedding, query modality, preview uint8 (3, H, W) or None)``; the embedding is (D,), or
        (F, C, D) unit cell vectors of F frames (one for a picture) with ``cells``.
    """
    import torch
    from ..data import decode
    from ..data.embed import audio_windows, frame_times, read_image
    from ..data.transforms import frame_transform

    given = [x for x in (audio, video, image) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --audio, --video, --image")
    transform = frame_transform(em.image_size, train=False)
    if audio is not None or (video is not None and modality == "audio"):
        waves = audio_windows(audio if audio is not None else video, frames, em.seconds, em.sample_rate)
        return em.encode("audio", waves, pool), "audio", None
    if image is not None:
        x = read_image(image, transform)
        from torchvision.io import ImageReadMode, decode_image

        preview = decode_image(torch.frombuffer(bytearray(Path(image).read_bytes()), dtype=torch.uint8),
                               mode=ImageReadMode.RGB)
        return (em.encode_cells(x[None]) if cells else em.encode("visual", x[None], pool)), "visual", preview
    info = decode.probe_video(video)
    times = frame_times(info.fps, info.num_frames, info.duration, em.seconds, frames)
    with decode.VideoReader(video) as reader:
        pix = reader.get_frames(times)
    x = torch.stack([transform(f) for f in pix])
    return (em.encode_cells(x) if cells else em.encode("visual", x, pool)), "visual", pix[len(pix) // 2]


def query_index(index_dir: str | Path, *, audio=None, video=None, image=None, modality: str = "visual",
                target: str | None = None, k: int = 10, checkpoint: str | Path | None = None, device: str = "auto",
                nprobe: int | None = None, ef_search: int | None = None, cells: str = "auto") -> dict[str, Any]:
    """Load an index, embed a query with the index's model and search.

    ``cells="auto"``: a cross-modal query of an index that holds the frames' cells is scored by the best
    cell (module docstring); ``"off"``: against the pooled vectors.

    Returns:
        ``{"query": {...}, "index": path, "k": k, "scoring": "best_cell" or "pooled", "hits":
        [Hit.to_dict(), ...], "preview": tensor or None}``.

    Raises:
        IndexFormatError: the index is missing or corrupt.
        IndexMismatchError: the checkpoint is of another model / weights / dimension than the index.
    """
    from ..retrieval import CELLS, IndexMismatchError, RetrievalIndex

    if cells not in CELL_MODES:
        raise ValueError(f"cells must be one of {CELL_MODES}, got {cells!r}")
    index = RetrievalIndex.load(index_dir, nprobe=nprobe, ef_search=ef_search)
    ckpt = checkpoint or index.info.get("checkpoint")
    if not ckpt:
        raise ValueError(f"{index_dir}: the index records no checkpoint; pass --checkpoint")
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt} (recorded in {index_dir}); pass --checkpoint")
    em = load_embedding_model(ckpt, device)
    index.check_compatible(em.info, what=str(ckpt))
    e = index.info.get("embedding", {})
    qmod = "audio" if audio is not None or (video is not None and modality == "audio") else "visual"
    target = target or ("visual" if qmod == "audio" else "audio")
    by_cells = cells == "auto" and CELLS in index.indexes and qmod != target
    emb, qmod, preview = embed_query(em, audio=audio, video=video, image=image, modality=modality,
                                     frames=int(e.get("frames", 3)), pool=str(e.get("pool", "mean")),
                                     cells=by_cells)
    if emb.shape[-1] != index.dim:
        raise IndexMismatchError(f"{ckpt} makes {emb.shape[-1]}-d embeddings, the index at {index_dir} holds "
                                 f"{index.dim}-d ones")
    pool = str(e.get("pool", "mean"))
    if qmod != target:  # cross-modal: by the best cell when by_cells
        hits = cross_modal_search(index, qmod, emb[None], k, by_cells=by_cells, pool=pool)[0]
    else:
        hits = index.search(emb, target, k, pool=pool)[0]
    src = next(str(x) for x in (audio, video, image) if x is not None)
    return {"query": {"file": src, "modality": qmod, "target": target}, "index": str(index_dir), "k": k,
            "checkpoint": str(ckpt), "preview": preview, "scoring": "best_cell" if by_cells else "pooled",
            "hits": [{**h.to_dict(), "audio": index.items[h.position].get("audio")} for h in hits]}


SHEET_SECONDS = 10.0
"""Audio drawn per spectrogram thumbnail of a contact sheet (centred on the item's time, else its start)."""
SHEET_RATE = 16000


def _audio_thumbnail(path: str | Path, time: float | None, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) spectrogram of up to :data:`SHEET_SECONDS` of a media file's audio (DecodeError if none)."""
    from ..data import decode
    from ..viz.spectrogram import spectrogram_thumbnail

    start = 0.0 if time is None else max(0.0, time - SHEET_SECONDS / 2)
    wave = decode.read_audio(path, start, SHEET_SECONDS, SHEET_RATE, pad=False).numpy()
    return spectrogram_thumbnail(wave, SHEET_RATE, size)


def _show_audio(ax: Any, path: str | Path, time: float | None) -> None:
    """Draw a spectrogram thumbnail on a sheet panel, labelled as one (frame and axis off, label on)."""
    ax.imshow(_audio_thumbnail(path, time, (96, 160)))
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"audio: spectrogram, mel 0-{SHEET_RATE // 2000} kHz", fontsize=7)


def contact_sheet(result: dict[str, Any], out: str | Path, *, cols: int = 5) -> Path:
    """Draw the query and each hit, with rank, score and labels: a frame for a visual item, a
    spectrogram thumbnail (mel axis, 0 Hz at the bottom, :func:`avcorr.viz.spectrogram.spectrogram_thumbnail`)
    for an audio item, each panel saying which it is.

    Args:
        result: :func:`query_index`'s answer (hits with ``video``, ``audio``, ``time``).
        out: the PNG (written atomically).
        cols: panels per row.

    Returns:
        ``out``. A hit whose frame or audio cannot be read gets an empty panel saying so (logged).
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("--sheet needs matplotlib: pip install matplotlib") from e
    from ..data import decode
    from ..data.errors import BadClipError, DecodeError

    hits = result["hits"]
    n = len(hits) + 1
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(2.6 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    q = result["query"]
    ax = axes.flat[0]
    try:
        if q["modality"] == "audio":
            _show_audio(ax, q["file"], None)
        elif result.get("preview") is not None:
            ax.imshow(result["preview"].permute(1, 2, 0).numpy())
        else:
            raise DecodeError(q["file"], "no preview")
    except (BadClipError, DecodeError) as e:
        logger.warning("contact sheet: no picture of the query %s: %s", q["file"], e)
        ax.text(0.5, 0.5, f"{q['modality']} query\n{Path(q['file']).name}", ha="center", va="center", fontsize=9,
                wrap=True)
    ax.set_title(f"query ({q['modality']} -> {q['target']})\n{Path(q['file']).name}"[:60], fontsize=8)
    audio_hits = q["target"] == "audio"
    for ax, h in zip(list(axes.flat)[1:], hits):
        try:
            if audio_hits:
                src = h.get("audio") or h.get("video")
                if not src:
                    raise BadClipError(h["id"], "no audio file")
                _show_audio(ax, src, h["time"])
            else:
                if not h["video"]:
                    raise BadClipError(h["id"], "no video file")
                with decode.VideoReader(h["video"]) as r:
                    t = h["time"] if h["time"] is not None else r.duration / 2
                    frame = r.get_frames([min(max(t, 0.0), r.duration - 1e-3)])[0]
                ax.imshow(frame.permute(1, 2, 0).numpy())
        except (BadClipError, DecodeError) as e:
            logger.warning("contact sheet: nothing to draw for %s: %s", h["id"], e)
            ax.text(0.5, 0.5, ("audio" if audio_hits else "frame") + " unreadable", ha="center", va="center",
                    fontsize=8)
        labels = ", ".join(h["labels"])[:28]
        ax.set_title(f"{h['rank']}. {h['id']}\n{h['score']:.3f}  {labels}", fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return out
