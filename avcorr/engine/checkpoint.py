"""Checkpoints: atomic writes, ``weights_only=True`` reads, the resolved config inside."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from .._torch_load import load_tensors_only

logger = logging.getLogger(__name__)

_TMP = re.compile(r"^\..+\.tmp(\d+)$")  # what save_checkpoint writes before the rename


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that were killed (``.NAME.tmp<pid>``, pid not alive).

    Args:
        folder: a checkpoint folder (missing is fine).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _TMP.match(p.name)
            if m and p.is_file() and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        logger.info("removed %d temporary file(s) of interrupted checkpoint writes in %s", len(removed), folder)
    return removed


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` through a temporary file, so a kill never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: leave no temporary behind
        tmp.unlink(missing_ok=True)
        raise


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
