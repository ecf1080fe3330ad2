"""Clip embeddings: run an audio-visual model over batches of frames / audio windows and pool per clip.

The model is anything with ``encode_audio(wave (N, T)) -> (N, D)`` and
``encode_visual(image (N, 3, H, W)) -> (N, D)`` (AVE-Net, L3-Net ...); batches are the dicts of
:func:`avcorr.data.embed.collate_clips` (``frames`` (B, F, 3, S, S), ``audio`` (B, F, T)).

A model trained to match a sound to a frame's BEST CELL (:func:`scores_by_cells`: AVE-Net with
``visual_pool="cells"``) also has ``encode_visual_cells(image) -> (N, D, h, w)``; with ``cells=True``
:func:`encode_clips` keeps every cell of every frame (``visual_cells``, (N, F, h w, D)), which cross-modal
retrieval then scores as the model was trained: the sound against each frame's best cell, and those F
scores pooled like the frames' embeddings are (:mod:`avcorr.metrics.multivector`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .._amp import autocast as _autocast

logger = logging.getLogger(__name__)

__all__ = ["ClipEmbeddings", "POOLINGS", "encode_clips", "pool_embeddings", "scores_by_cells"]

POOLINGS = ("mean", "max")


def pool_embeddings(x: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """Pool per-frame embeddings into one L2-normalised embedding per clip.

    Args:
        x: (B, F, D) embeddings of F frames / windows per clip.
        pool: ``"mean"`` (average, then re-normalise) or ``"max"`` (element-wise max, then re-normalise).

    Returns:
        (B, D) unit-norm embeddings.
    """
    if x.dim() != 3:
        raise ValueError(f"expected (B, F, D) embeddings, got shape {tuple(x.shape)}")
    if pool == "mean":
        y = x.mean(1)
    elif pool == "max":
        y = x.amax(1)
    else:
        raise ValueError(f"pool must be one of {POOLINGS}, got {pool!r}")
    return F.normalize(y.float(), dim=-1)


def scores_by_cells(model: torch.nn.Module) -> bool:
    """Whether ``model`` scores a sound against a frame by the frame's best cell (AVE-Net with
    ``visual_pool="cells"``), so that cross-modal retrieval should too."""
    return getattr(model, "visual_pool", None) == "cells" and callable(getattr(model, "encode_visual_cells", None))


@dataclass
class ClipEmbeddings:
    """Pooled embeddings of the clips of one pass, in loader order.

    Args:
        audio: float32 (N, D).
        visual: float32 (N, D).
        items: N dicts ``{id, labels, video, audio, time}`` (``time``: the middle frame's time).
        skipped: ``(vid, reason)`` of clips that could not be decoded.
        paths: ``{vid: file}`` of the pass's clips, to name the skipped ones (filled by the caller
            that knows the split, e.g. :func:`avcorr.inference.retrieval.embed_split`).
        visual_cells: float32 (N, F, C, D) unit cell embeddings of each clip's F frames (C = h w
            cells a frame), when asked for (``encode_clips(cells=True)``); else None.
    """

    audio: np.ndarray
    visual: np.ndarray
    items: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    visual_cells: np.ndarray | None = None

    @property
    def ids(self) -> list[str]:
        return [it["id"] for it in self.items]

    @property
    def labels(self) -> list[list[str]]:
        return [list(it["labels"]) for it in self.items]


@torch.no_grad()
def encode_clips(model: torch.nn.Module, loader: Iterable[dict[str, Any]], *, device: torch.device | str = "cpu",
                 pool: str = "mean", amp: bool = False, progress: bool = False, desc: str = "embed",
                 total: int | None = None, cells: bool = False) -> ClipEmbeddings:
    """Embed every clip the loader yields.

    Args:
        model: has ``encode_audio`` and ``encode_visual``; put in eval mode for the pass.
        loader: batches of :func:`avcorr.data.embed.collate_clips`.
        device: where to run the model.
        pool: how the F per-frame embeddings of a clip are pooled (:func:`pool_embeddings`).
        cells: also keep every frame's cells (``encode_visual_cells``, L2-normalised) as
            ``visual_cells``. For a model that :func:`scores_by_cells` the pooled visual embedding is
            then made from those cells (max over the cells, as its ``encode_visual``), not a second pass.
        amp: autocast on CUDA.
        progress: show a tqdm bar (one step per batch).
        desc: the bar's label.
        total: batches, for the bar (default ``len(loader)`` when it has one).

    Returns:
        :class:`ClipEmbeddings`; decoding failures are in ``skipped`` (logged once each).
    """
    from .._progress import progress as progress_bar  # one iterator of the loader (tqdm.auto would make two)

    for name in ("encode_audio", "encode_visual") + (("encode_visual_cells",) if cells else ()):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"{type(model).__name__} has no {name}(): retrieval needs an audio-visual embedding model"
                            + (" with cell embeddings" if name == "encode_visual_cells" else ""))
    device = torch.device(device)
    was_training = model.training
    model.eval()
    audio_parts, visual_parts, cell_parts, items, skipped = [], [], [], [], []
    from_cells = cells and scores_by_cells(model)
    try:
        bar = progress_bar(loader, desc=desc, total=total, disable=not progress, leave=False, dynamic_ncols=True)
        for batch in bar:
            for vid, reason in batch.get("skipped", ()):
                logger.warning("skipped clip %s: %s", vid, reason)
                skipped.append((vid, reason))
            if "frames" not in batch:
                continue
            frames, audio = batch["frames"], batch["audio"]
            b, f = frames.shape[:2]
            with _autocast(device, amp):
                image = frames.flatten(0, 1).to(device, non_blocking=True)
                if cells:
                    c = F.normalize(model.encode_visual_cells(image).float().flatten(2), dim=1)  # (B F, D, h w)
                    cell_parts.append(c.transpose(1, 2).reshape(b, f, c.shape[2], -1).cpu())
                v = F.normalize(c.amax(2), dim=-1) if from_cells else model.encode_visual(image)
                a = model.encode_audio(audio.flatten(0, 1).to(device, non_blocking=True))
            visual_parts.append(pool_embeddings(v.float().view(b, f, -1), pool).cpu())
            audio_parts.append(pool_embeddings(a.float().view(b, f, -1), pool).cpu())
            times = batch["times"]
            for i in range(b):
                items.append({"id": batch["vid"][i], "labels": list(batch["labels"][i]), "video": batch["video"][i],
                              "audio": batch["audio_path"][i], "time": float(times[i, f // 2])})
    finally:
        model.train(was_training)
    if not items:
        raise RuntimeError(f"no clip could be embedded ({len(skipped)} skipped"
                           + (f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else "") + ")")
    return ClipEmbeddings(torch.cat(audio_parts).numpy(), torch.cat(visual_parts).numpy(), items, skipped,
                          visual_cells=torch.cat(cell_parts).numpy() if cells else None)
