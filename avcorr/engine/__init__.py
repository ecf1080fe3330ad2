"""The training engine: one loop for every task (see :mod:`avcorr.tasks`).

It imports ``config``, ``data``, ``metrics`` and the Task protocol (``avcorr.tasks.base``), never a
task module (rules in :mod:`avcorr`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .trainer import Trainer, evaluate_loader

__all__ = ["Trainer", "evaluate_loader", "load_checkpoint", "save_checkpoint"]
