"""One evaluation pass of a task's module over a loader: the evaluator it fills, or its metrics; and an
evaluation shared by the DDP ranks (each rank its share of the split, the evaluators merged)."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import IterableDataset, Subset

from .._amp import autocast as _autocast
from .._progress import progress as progress_bar
from ..data.errors import SkipLog
from . import distributed as dist_utils
from .protocol import SKIPPED, Evaluator, Task

__all__ = ["RankShare", "evaluate_loader", "evaluation_pass", "evaluator_merges", "gather_evaluator",
           "share_evaluation"]


def evaluator_merges(task: Task) -> bool:
    """Whether ``task``'s evaluator can join other ranks' (it overrides
    :meth:`~avcorr.engine.protocol.Evaluator.merge`): only then can the ranks share an evaluation."""
    return type(task.new_evaluator()).merge is not Evaluator.merge


class RankShare(Subset):
    """Rank ``rank``'s share of a map-style evaluation dataset: items ``rank, rank + world_size, ...``, so
    that the ranks' shares are disjoint and cover it once (no padding, unlike ``DistributedSampler``).
    An evaluation item depends on its index alone (its pair, mixture or frame is drawn from the split's
    seed and the index), so the shares hold the very items one process would see. Other attributes
    (``init_skipped``...) are the dataset's."""

    def __init__(self, dataset: Any, rank: int, world_size: int):
        super().__init__(dataset, range(rank, len(dataset), world_size))

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def share_evaluation(dataset: Any, task: Task, rank: int, world_size: int) -> tuple[Any, bool]:
    """Let the ranks share an evaluation when the task's evaluator can merge (:func:`evaluator_merges`): a
    shard stream keeps only rank ``rank``'s share of its blocks (``split_across_ranks(rank, world_size)``);
    a map-style dataset (the files path) becomes its :class:`RankShare`. Every rank then evaluates its
    share and :func:`gather_evaluator` joins them.

    Args:
        dataset: the split's evaluation dataset, built on every rank.
        task: gives the evaluator.
        rank, world_size: this process's DDP rank and the number of ranks.

    Returns:
        ``(dataset to evaluate on this rank, whether it is a share)``; ``(dataset, False)`` with one rank
        or an evaluator that cannot merge (every item stays: the main process evaluates alone).
    """
    if world_size <= 1 or not evaluator_merges(task):
        return dataset, False
    split = getattr(dataset, "split_across_ranks", None)
    if split is not None:
        split(rank, world_size)
        return dataset, True
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        return dataset, False
    return RankShare(dataset, rank, world_size), True


def gather_evaluator(evaluator: Evaluator) -> Evaluator:
    """Every rank's evaluator merged, in rank order (every rank calls it and gets the merged one); the
    evaluator itself when not distributed. Its ``compute()`` gives the metrics of every rank's items."""
    parts = dist_utils.all_gather_objects(evaluator)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


def evaluate_loader(module: nn.Module, loader: Iterable, task: Task, device: torch.device, **kwargs: Any
                    ) -> dict[str, float]:
    """The task's metrics of ``module`` over ``loader``: :func:`evaluation_pass`'s ``compute()``."""
    return evaluation_pass(module, loader, task, device, **kwargs).compute()


@torch.no_grad()
def evaluation_pass(module: nn.Module, loader: Iterable, task: Task, device: torch.device, *, amp: bool = False,
                    channels_last: bool = False, skips: SkipLog | None = None,
                    progress: bool = False, desc: str = "eval", shared: bool = False) -> Evaluator:
    """Run ``module`` over ``loader`` in eval mode and return the task's evaluator, filled.

    Its ``compute()`` gives the metrics, then its ``pictures()`` what
    :meth:`~avcorr.engine.protocol.Task.write_pictures` draws; nothing is written here.

    Args:
        module: a task module (``batch -> {'loss', ...}``), not DDP-wrapped.
        loader: yields collated batches.
        task: gives the evaluator.
        device: where to compute.
        amp: autocast on CUDA.
        channels_last: move 4-d inputs to channels-last.
        skips: collects the clips skipped while loading.
        progress: show a tqdm bar.
        desc: the bar's label.
        shared: the DDP ranks share this evaluation (``loader`` is this rank's share, see
            :func:`share_evaluation`; every rank calls this): rank 0's buffers (BatchNorm statistics, which
            DDP leaves as each rank's own after its last training step) are copied into every rank's module
            first, so that all evaluate rank 0's model, the one checkpoints save; the evaluators of every rank
            are merged at the end (:func:`gather_evaluator`).
    """
    was_training = module.training
    module.eval()
    if shared:
        dist_utils.broadcast_buffers(module)
    evaluator = task.new_evaluator()
    try:
        for batch in progress_bar(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
            if skips is not None:
                skips.add(batch.get(SKIPPED, ()))
            batch = task.device_transform(task.to_device(batch, device, channels_last))
            with _autocast(device, amp):
                out = module(batch)
            evaluator.update(batch, out)
    finally:
        module.train(was_training)
    return gather_evaluator(evaluator) if shared else evaluator
