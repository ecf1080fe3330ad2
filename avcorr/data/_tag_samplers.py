"""Samplers of tagging clips: PANNs' balanced class sampling and AST's weighted clip sampling.

Used through :mod:`avcorr.data.tagging`, which re-exports every public name here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from .errors import LayoutError

__all__ = ["BalancedClassSampler", "WeightedClipSampler", "label_rarity_weights", "read_weight_file"]


def _dist_info(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def group_by_class(clips: np.ndarray, classes: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """Per-class clip lists from (clip, class) label pairs.

    Args:
        clips: int (L,) clip index of each label, ascending.
        classes: int (L,) class of each label.
        num_classes: C.

    Returns:
        C int64 arrays: the clips of each class, ascending (empty for a class without clips).
    """
    classes = np.asarray(classes, dtype=np.int64)
    order = np.argsort(classes, kind="stable")
    bounds = np.cumsum(np.bincount(classes, minlength=num_classes))[:-1]
    return np.split(np.asarray(clips, dtype=np.int64)[order], bounds)


class BalancedClassSampler(Sampler[int]):
    """PANNs' balanced sampling: classes taken in turn, each yielding its next clip.

    The classes are visited in a random order that is reshuffled after every full round; each
    class walks through a shuffled list of its clips, reshuffled when used up. A multi-label clip
    is in the list of each of its classes. Classes without clips are left out. Each epoch's order
    depends only on ``(seed, epoch)``; under DDP every rank draws the same global order and keeps
    every ``world_size``-th index, so ranks see different clips.

    Args:
        targets: bool (N, C) labels of the dataset's clips.
        num_samples: indices per epoch over all ranks (default N).
        seed: base seed.
        rank, world_size: DDP position (default: from ``torch.distributed``, else 0 and 1).
    """

    def __init__(self, targets: np.ndarray, num_samples: int | None = None, *, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        targets = np.asarray(targets, dtype=bool)
        rows, cols = np.nonzero(targets)  # one pass over the matrix, rows ascending
        self._setup(group_by_class(rows, cols, targets.shape[1]), targets.shape[0], num_samples, seed, rank, world_size)

    @classmethod
    def from_class_lists(cls, per_class: Sequence[np.ndarray], num_clips: int, num_samples: int | None = None, *,
                         seed: int = 0, rank: int | None = None, world_size: int | None = None) -> "BalancedClassSampler":
        """The sampler from each class's clip indices, without a dense (N, C) matrix (AudioSet's
        2M x 527 labels would take 1 GB).

        Args:
            per_class: C int arrays, the clips of each class in ascending order.
            num_clips: N, the dataset's length.
        """
        self = cls.__new__(cls)
        self._setup([np.asarray(i, dtype=np.int64) for i in per_class], num_clips, num_samples, seed, rank, world_size)
        return self

    def _setup(self, per_class: list[np.ndarray], num_clips: int, num_samples: int | None, seed: int,
               rank: int | None, world_size: int | None) -> None:
        self.per_class = per_class
        self.active = [c for c, idx in enumerate(self.per_class) if len(idx)]
        if not self.active:
            raise ValueError("balanced sampling needs at least one labelled clip")
        self.rank, self.world_size = _dist_info(rank, world_size)
        n = int(num_samples or num_clips)
        self.total = int(math.ceil(n / self.world_size)) * self.world_size
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed for ``epoch`` (called by the trainer before each epoch)."""
        self.epoch = int(epoch)

    def global_order(self) -> np.ndarray:
        """int64 (total,): this epoch's indices for all ranks together."""
        rng = np.random.default_rng([self.seed, self.epoch])
        out = np.empty(self.total, dtype=np.int64)
        queues = {c: rng.permutation(self.per_class[c]) for c in self.active}
        pos = dict.fromkeys(self.active, 0)
        classes: np.ndarray = np.empty(0, dtype=np.int64)
        k = 0
        for i in range(self.total):
            if k == len(classes):
                classes, k = rng.permutation(self.active), 0
            c = int(classes[k])
            k += 1
            if pos[c] == len(queues[c]):
                queues[c], pos[c] = rng.permutation(self.per_class[c]), 0
            out[i] = queues[c][pos[c]]
            pos[c] += 1
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.total // self.world_size


def label_rarity_weights(targets: np.ndarray) -> np.ndarray:
    """AST's sampling weights: ``1000 / (count + 0.01)`` per label, summed over a clip's labels.

    Args:
        targets: bool (N, C) labels.

    Returns:
        float64 (N,) clip weights (0 for a clip without labels).
    """
    targets = np.asarray(targets, dtype=bool)
    label_weight = 1000.0 / (targets.sum(0).astype(np.float64) + 0.01)
    return targets.astype(np.float64) @ label_weight


def read_weight_file(path: str | Path, expected: int | None = None) -> np.ndarray:
    """An AST weight file: one float per line, in datafile order.

    Raises:
        LayoutError: unreadable, a non-number, a negative weight, or not ``expected`` lines.
    """
    path = Path(path).expanduser()
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as err:
        raise LayoutError(f"{path}: cannot read weight file ({err.strerror or err})") from None
    try:
        w = np.array([float(x) for x in lines], dtype=np.float64)
    except ValueError as err:
        raise LayoutError(f"{path}: not one number per line ({err})") from None
    if expected is not None and len(w) != expected:
        raise LayoutError(f"{path}: {len(w)} weights for {expected} training clips (one per datafile entry)")
    if (w < 0).any() or not np.isfinite(w).all():
        raise LayoutError(f"{path}: weights must be finite and >= 0")
    return w


class WeightedClipSampler(Sampler[int]):
    """Clips drawn with replacement, with probability proportional to their weight (AST's ``--bal``).

    Args:
        weights: (N,) non-negative clip weights.
        num_samples: draws per epoch over all ranks (default N).
        seed: base seed; epoch ``e`` draws from ``(seed, e)``.
        rank, world_size: DDP position (default: from ``torch.distributed``).
    """

    def __init__(self, weights: Sequence[float] | np.ndarray, num_samples: int | None = None, *, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if self.weights.dim() != 1 or not bool((self.weights >= 0).all()) or float(self.weights.sum()) <= 0:
            raise ValueError("weights must be a 1-d sequence of non-negative numbers with a positive sum")
        self.rank, self.world_size = _dist_info(rank, world_size)
        n = int(num_samples or len(self.weights))
        self.total = int(math.ceil(n / self.world_size)) * self.world_size
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed for ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.multinomial(self.weights, self.total, replacement=True, generator=g)
        return iter(order[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.total // self.world_size
