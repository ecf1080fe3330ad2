"""The training engine: one loop for every task (see :mod:`avcorr.tasks`)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .trainer import Trainer, evaluate_loader

__all__ = ["Trainer", "evaluate_loader", "load_checkpoint", "save_checkpoint"]
