"""Checkpoints: atomic writes, ``weights_only=True`` reads, the resolved config inside."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path, stale_temporaries
from .._torch_load import load_tensors_only

logger = logging.getLogger(__name__)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that were killed (``.NAME.tmp<pid>``, pid not alive).

    Args:
        folder: a checkpoint folder (missing is fine).

    Returns:
        The files removed.
    """
    removed = [p for p in stale_temporaries(folder) if p.is_file()]
    for p in removed:
        p.unlink(missing_ok=True)
    if removed:
        logger.info("removed %d temporary file(s) of interrupted checkpoint writes in %s", len(removed), folder)
    return removed


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` through a temporary file, so a kill never leaves a torn checkpoint."""
    with atomic_path(path) as tmp:  # a full disk, Ctrl-C: no temporary is left behind
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``, on the CPU).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an avcorr checkpoint (no ``model`` / ``config`` entries, Python objects that
            would need unpickling, or not a torch file).
    """
    path = Path(path)
    state = load_tensors_only(path)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path}: not an avcorr training checkpoint (needs 'model' and 'config' entries)")
    return state
