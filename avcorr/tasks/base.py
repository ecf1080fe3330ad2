"""The task interface the trainer and the evaluation CLI rely on."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from ..config import Config
from ..metrics.chance import ChanceTest, db_test, proportion_test


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
        baseline_name: how sentences name the baseline of ``main_metric`` (``"chance"``, ``"the
            centre prior"`` ...); its value is the evaluation's :meth:`baseline_key` entry.
        count_key: the evaluation's entry counting the items ``main_metric`` is a proportion of.
        count_unit: what ``count_key`` counts, for sentences.
        metric_unit: ``"dB"`` for a decibel ``main_metric`` (tested with the dB margin), else ``""``.
    """

    main_metric: str = "loss"
    higher_is_better: bool = False
    baseline_name: str = "chance"
    count_key: str | None = None
    count_unit: str = "items"
    metric_unit: str = ""

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

    # -- failure made visible ------------------------------------------------------------------
    def baseline_key(self, metric: str) -> str:
        """The evaluation's entry holding the baseline of ``metric`` (default ``baseline/<metric>``)."""
        return f"baseline/{metric}"

    def chance_test(self, metrics: dict[str, Any]) -> ChanceTest | None:
        """``main_metric`` of an evaluation against its baseline; None when it has none (e.g. ``loss``).

        Args:
            metrics: an evaluator's :meth:`Evaluator.compute` result.
        """
        metric = self.main_metric
        value, base = metrics.get(metric), metrics.get(self.baseline_key(metric))
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (value, base)):
            return None
        if self.metric_unit == "dB":
            return db_test(metric, value, base, baseline_name=self.baseline_name)
        count = metrics.get(self.count_key) if self.count_key else None
        if not isinstance(count, int) or count < 1:
            return None
        return proportion_test(metric, value, base, count, baseline_name=self.baseline_name,
                               count_unit=self.count_unit)

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """Task-specific signs of a failed run in an evaluation's metrics (e.g. trivial masks), as sentences."""
        return []

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
