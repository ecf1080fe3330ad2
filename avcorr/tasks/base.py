"""What avcorr's task families share on top of the engine's contract (:mod:`avcorr.engine.protocol`).

:class:`Task` adds the config, the baseline test of the main metric (failure made visible) and
the batch size of the families' batches; :class:`Evaluator` is the engine's. :func:`argmax_hits`
scores classifier logits, for the families' :meth:`~avcorr.engine.protocol.Task.train_metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..config import Config
from ..engine.protocol import Batch, Evaluator
from ..engine.protocol import Task as TaskProtocol
from ..metrics.chance import ChanceTest, db_test, proportion_test

__all__ = ["Evaluator", "Task", "argmax_hits"]


def argmax_hits(logits: torch.Tensor | None, labels: torch.Tensor | None) -> tuple[int, int] | None:
    """Correct argmax predictions of a classifier: ``(correct, judged)``, or None when nothing is judged.

    Args:
        logits: (B, C) scores, or anything else (None, a mixture's output with no logits) to judge nothing.
        labels: (B,) class indices.
    """
    if logits is None or labels is None or logits.dim() != 2:
        return None
    return int((logits.argmax(-1) == labels).sum()), int(labels.shape[0])


class Task(TaskProtocol):
    """Base class of avcorr's task families: builds the pieces of one family from a :class:`Config`.

    ``Task(cfg, resolved)``: ``resolved`` is what an earlier run of the task resolved from its data
    (:attr:`resolved`, stored in its checkpoints); families that resolve nothing ignore it.

    Attributes:
        main_metric: the validation metric that selects ``best.pt``.
        higher_is_better: direction of ``main_metric``.
        baseline_name: how sentences name the baseline of ``main_metric`` (``"chance"``, ``"the
            centre prior"`` ...); its value is the evaluation's :meth:`baseline_key` entry.
        count_key: the evaluation's entry counting the items ``main_metric`` is a proportion of.
        count_unit: what ``count_key`` counts, for sentences.
        metric_unit: ``"dB"`` for a decibel ``main_metric`` (tested with the dB margin), else ``""``.
    """

    baseline_name: str = "chance"
    count_key: str | None = None
    count_unit: str = "items"
    metric_unit: str = ""

    def __init__(self, cfg: Config, resolved: dict[str, Any] | None = None):
        self.cfg = cfg

    def batch_size(self, batch: Batch) -> int:
        """The examples of a batch: the length of its ``label`` (every family's batches have one), else 1."""
        return batch["label"].shape[0] if "label" in batch else 1

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
