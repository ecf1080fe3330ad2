"""Tasks turn a config into datasets, a model and a ``batch -> {'loss': ..., **parts}`` module.

One trainer (:mod:`avcorr.engine`) serves every task family through the contract it defines
(:mod:`avcorr.engine.protocol`); :mod:`avcorr.tasks.base` holds what the families share on top of it.
Tasks import ``config``, ``data``, ``models``, ``losses``, ``metrics``, ``viz`` and that contract,
never the trainer (rules in :mod:`avcorr`).
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from .avc import AVCTask
from .base import Evaluator, Task
from .localization import LocalizationTask
from .separation import SeparationTask
from .tagging import TaggingTask

TASKS: dict[str, type[Task]] = {"avc": AVCTask, "localization": LocalizationTask, "separation": SeparationTask, "tagging": TaggingTask}


def build_task(cfg: Config, resolved: dict[str, Any] | None = None) -> Task:
    """Instantiate the task named by ``cfg.task``.

    Args:
        cfg: the config.
        resolved: what an earlier run of it resolved from the data (``checkpoint["resolved"]``), if any.
    """
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[cfg.task](cfg, resolved)


__all__ = ["TASKS", "AVCTask", "Evaluator", "LocalizationTask", "SeparationTask", "TaggingTask", "Task", "build_task"]
