"""The task interface the trainer and the evaluation CLI rely on."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from ..config import Config


class Evaluator:
    """Accumulates a task's outputs over an evaluation pass and computes its metrics."""

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class Task:
    """Base class: subclasses build the pieces of one task family from a :class:`Config`.

    Attributes:
        main_metric: the validation metric that selects ``best.pt``.
        higher_is_better: direction of ``main_metric``.
    """

    main_metric: str = "loss"
    higher_is_better: bool = False

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def build_model(self) -> nn.Module:
        """The registry model this task trains."""
        raise NotImplementedError

    def wrap(self, model: nn.Module) -> nn.Module:
        """A module whose ``forward(batch)`` returns ``{'loss': scalar, **parts}``."""
        raise NotImplementedError

    def build_dataset(self, split: str, train: bool) -> Dataset:
        raise NotImplementedError

    collate_fn: Callable[[list], dict[str, Any]] | None = None

    def build_sampler(self, dataset: Dataset, *, train: bool, seed: int, distributed: bool) -> Sampler | None:
        """A task-specific sampler (e.g. class-balanced), or ``None`` for the trainer's default.

        The default is a seeded :class:`RandomSampler` for training (a :class:`DistributedSampler`
        under DDP) and sequential order for evaluation. A returned sampler with a ``set_epoch(epoch)``
        method is called at the start of every epoch; under DDP it must shard by rank itself.
        """
        return None

    def new_evaluator(self) -> Evaluator:
        raise NotImplementedError

    @staticmethod
    def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
        """Move the batch's tensors to ``device`` (4-d tensors in channels-last when asked)."""
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=True)
                if channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out
