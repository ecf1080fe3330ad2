"""One evaluation pass of a task's module over a loader: the evaluator it fills, or its metrics."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from .._amp import autocast as _autocast
from .._progress import progress as progress_bar
from ..data.errors import SkipLog
from .protocol import SKIPPED, Evaluator, Task

__all__ = ["evaluate_loader", "evaluation_pass"]


def evaluate_loader(module: nn.Module, loader: Iterable, task: Task, device: torch.device, **kwargs: Any
                    ) -> dict[str, float]:
    """The task's metrics of ``module`` over ``loader``: :func:`evaluation_pass`'s ``compute()``."""
    return evaluation_pass(module, loader, task, device, **kwargs).compute()


@torch.no_grad()
def evaluation_pass(module: nn.Module, loader: Iterable, task: Task, device: torch.device, *, amp: bool = False,
                    channels_last: bool = False, skips: SkipLog | None = None,
                    progress: bool = False, desc: str = "eval") -> Evaluator:
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
    """
    was_training = module.training
    module.eval()
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
    return evaluator
