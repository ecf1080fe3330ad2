"""Chance levels, trivial baselines, and whether a score is significantly above them.

A number means little without the score that needs no learning. The tasks put such a baseline
beside their metrics (``baseline/<metric>``; the centre prior's ``center/<metric>`` for
localization), and :class:`ChanceTest` says whether a model's score is significantly above it:

* **proportions** (``avc_acc``, ``acc``, ``ciou@0.5``; ``auc_ciou`` and ``mAP`` as if they were
  one): the score is at its baseline ``b`` unless it exceeds ``b + Z * SE``, with the binomial
  standard error ``SE = sqrt(p (1 - p) / n)`` of ``n`` evaluated items at ``p = (b n + 1) / (n + 2)``
  (``b`` pulled towards 1/2 by one item on each side, so a baseline of exactly 0 or 1 still has a
  margin of about one item). A mean of n values in [0, 1] (``auc_ciou``) has at most this spread.
* **decibels** (``nsdr``): at the baseline unless it exceeds it by :data:`DB_MARGIN`.

Baselines of the classification metrics, from the labels of the evaluated items alone:

* accuracy: always answering the most frequent class (:func:`majority_rate`);
* mAP: the expected AP of a random ranking (:func:`random_ranking_ap`), which is what an untrained
  model with distinct scores gets on average; it is at least the class prevalence that a
  constant score gets (for 2 positives among 100 clips 0.062, against a prevalence of 0.02).

Everything here takes numbers and arrays; nothing imports models or data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DB_MARGIN", "Z", "ChanceTest", "binomial_margin", "chance_map", "db_test", "majority_rate",
           "proportion_test", "random_ranking_ap"]

Z = 2.0
"""Standard errors a proportion must clear to count as above its baseline."""

DB_MARGIN = 0.5
"""Decibels a dB score (``nsdr``) must clear to count as above its baseline."""


def majority_rate(labels) -> float:
    """Accuracy of always answering the most frequent class.

    Args:
        labels: (N,) integer class indices, or (N, C) multi-hot (a multi-label clip counts as a
            hit for each of its classes, as ``acc`` does).

    Returns:
        The largest class frequency; NaN for no items.
    """
    y = np.asarray(labels)
    if y.shape[0] == 0:
        return math.nan
    if y.ndim == 1:
        return float(np.bincount(y.astype(np.int64)).max() / y.shape[0])
    if y.ndim != 2:
        raise ValueError(f"labels must be (N,) or (N, C), got shape {y.shape}")
    return float((y > 0).mean(0).max())


def random_ranking_ap(num_positive, num_items: int) -> np.ndarray:
    """Expected average precision of a uniformly random ranking.

    With ``R`` positives among ``N`` items, ``E[AP] = H_N / N + (R - 1) (N - H_N) / (N (N - 1))``
    (``H_N`` the N-th harmonic number): the positive itself contributes ``E[1 / rank] = H_N / N``,
    each other positive ranked above it ``(N - H_N) / (N (N - 1))``.

    Args:
        num_positive: (C,) positives per class (``0 <= R <= N``).
        num_items: ``N``.

    Returns:
        float64 (C,); NaN where ``R == 0``.
    """
    r = np.asarray(num_positive, dtype=np.float64)
    n = int(num_items)
    if n < 1:
        raise ValueError(f"num_items must be >= 1, got {num_items}")
    if (r < 0).any() or (r > n).any():
        raise ValueError(f"positive counts must be in [0, {n}]")
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    other = (r - 1) * (n - h) / (n * (n - 1)) if n > 1 else np.zeros_like(r)
    return np.where(r > 0, h / n + other, np.nan)


def chance_map(targets) -> float:
    """Expected mAP of a random ranking: the mean of :func:`random_ranking_ap` over the classes with positives.

    Args:
        targets: (N, C) multi-hot.
    """
    y = np.asarray(targets) > 0
    if y.ndim != 2:
        raise ValueError(f"targets must be (N, C) multi-hot, got shape {y.shape}")
    if y.shape[0] == 0 or not y.any():
        return math.nan
    return float(np.nanmean(random_ranking_ap(y.sum(0), y.shape[0])))


def binomial_margin(baseline: float, count: int, z: float = Z) -> float:
    """``z`` binomial standard errors of a proportion near ``baseline`` over ``count`` items (module docstring)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    p = (min(max(baseline, 0.0), 1.0) * count + 1.0) / (count + 2.0)
    return z * math.sqrt(p * (1.0 - p) / count)


@dataclass(frozen=True)
class ChanceTest:
    """A score against the baseline that needs no learning.

    Attributes:
        metric: the metric's name (e.g. ``avc_acc``).
        value: the model's score.
        baseline: the baseline's score.
        margin: how far above ``baseline`` a score must be to count as above it.
        count: evaluated items (None for the dB rule).
        baseline_name: ``"chance"``, ``"the centre prior"``, ``"the mixture itself"`` ...
        count_unit: what ``count`` counts (``"pairs"``, ``"clips"`` ...).
        unit: ``"dB"`` or ``""``.
    """

    metric: str
    value: float
    baseline: float
    margin: float
    count: int | None = None
    baseline_name: str = "chance"
    count_unit: str = "items"
    unit: str = ""

    @property
    def at_chance(self) -> bool:
        """True unless the score is significantly above the baseline (``value > baseline + margin``)."""
        return not self.value > self.baseline + self.margin

    @property
    def below(self) -> bool:
        """The score is significantly BELOW the baseline."""
        return self.value < self.baseline - self.margin

    def describe(self, split: str = "val") -> str:
        """One plain sentence, e.g. ``val avc_acc 0.503 is at chance (0.500 +- 0.056 for 320 pairs)``."""
        chance = self.baseline_name == "chance"
        if self.unit == "dB":
            head = f"{split} {self.metric} {self.value:.2f} dB"
            tail = f"({self.baseline:.2f} dB; above it means more than {self.baseline + self.margin:.2f} dB)"
        else:
            head = f"{split} {self.metric} {self.value:.3f}"
            tail = f"({self.baseline:.3f} +- {self.margin:.3f} for {self.count} {self.count_unit})"
        if self.below:
            verdict = "below chance" if chance else f"worse than {self.baseline_name}"
        elif self.at_chance:
            verdict = "at chance" if chance else f"no better than {self.baseline_name}"
        else:
            verdict = "above chance" if chance else f"above {self.baseline_name}"
        return f"{head} is {verdict} {tail}"


def proportion_test(metric: str, value: float, baseline: float, count: int, *, baseline_name: str = "chance",
                    count_unit: str = "items", z: float = Z) -> ChanceTest:
    """A proportion-like score against its baseline with the binomial margin (module docstring).

    Args:
        metric: name of the metric.
        value: the model's score in [0, 1].
        baseline: the baseline's score in [0, 1].
        count: evaluated items (>= 1).
        baseline_name: how a sentence names the baseline.
        count_unit: what ``count`` counts.
        z: standard errors to clear.
    """
    return ChanceTest(metric, float(value), float(baseline), binomial_margin(baseline, int(count), z), int(count),
                      baseline_name, count_unit)


def db_test(metric: str, value: float, baseline: float = 0.0, *, margin: float = DB_MARGIN,
            baseline_name: str = "the mixture itself") -> ChanceTest:
    """A dB score (``nsdr``) against its baseline: above it only by more than ``margin`` dB."""
    return ChanceTest(metric, float(value), float(baseline), float(margin), None, baseline_name, unit="dB")
