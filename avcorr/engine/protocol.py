"""The contract between the engine and a task: what the trainer and the evaluation pass call.

A task is anything that subclasses :class:`Task` and implements its four abstract methods; the engine
knows nothing else about it (avcorr's own families share more code in :mod:`avcorr.tasks.base`).
What flows between them:

* **a batch** (:data:`Batch`): whatever the task's ``collate_fn`` makes of its dataset's items. The
  engine moves its tensors (:meth:`Task.to_device`), lets the task finish it there
  (:meth:`Task.device_transform`: batched work on the device, e.g. frame normalisation) and reads one
  key itself: ``skipped``, the ``(id, reason)`` pairs of the items the collate function dropped
  (optional; counted and logged).
* **a module's output** (:data:`ModuleOutput`): ``task.wrap(model)`` is an ``nn.Module`` whose
  ``forward(batch)`` returns a dict with ``"loss"``, a scalar tensor (with its graph in training mode:
  the trainer calls ``backward`` on it). Every other entry is the task's own (logits, maps, masks ...):
  the engine hands the dict to :meth:`Task.train_metrics` and :meth:`Evaluator.update` and reads
  nothing else in it.
* **metrics**: ``{name: number}``. Training metrics (:meth:`Task.train_metrics`) are summed over an
  epoch and reported as ``sum / count`` beside the trainer's own ``loss``, ``samples_per_s`` and
  ``skipped_clips``; validation metrics are :meth:`Evaluator.compute`'s, one of them the
  ``main_metric`` that selects ``best.pt``.
* **pictures**: an evaluation may draw pictures from :meth:`Evaluator.pictures`; the engine asks the
  task to write them (:meth:`Task.write_pictures`) after each validation, into the run folder,
  named after the split it passes in. Computing metrics never writes a file.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from ..metrics.chance import ChanceTest

__all__ = ["LOSS", "SKIPPED", "Batch", "Evaluator", "ModuleOutput", "Task"]

Batch = dict[str, Any]
"""A collated batch: the task's tensors and lists, optionally ``skipped`` (see the module docstring)."""

ModuleOutput = dict[str, torch.Tensor]
"""What ``task.wrap(model)(batch)`` returns: ``{"loss": scalar tensor, **the task's own entries}``."""

LOSS = "loss"  # the one entry of a module's output the engine reads
SKIPPED = "skipped"  # the one entry of a batch the engine reads: (id, reason) pairs of dropped items


class Evaluator(abc.ABC):
    """Accumulates a module's outputs over an evaluation pass; returns the metrics, and writes nothing."""

    @abc.abstractmethod
    def update(self, batch: Batch, out: ModuleOutput) -> None:
        """Add one batch and the module's output on it (in eval mode, under ``torch.no_grad``)."""

    @abc.abstractmethod
    def compute(self) -> dict[str, Any]:
        """The metrics of everything added: ``{name: number}`` (``math.nan`` for an undefined one)."""

    def merge(self, other: "Evaluator") -> None:
        """Add what ``other`` accumulated: an evaluator of the same task filled with other items (another DDP
        rank's share of a split the ranks evaluate together). After merging every share in turn, :meth:`compute`
        gives the metrics of all the items, as one evaluator that saw them all would (up to the order of float
        sums). Evaluators that cannot merge leave this out: their splits are evaluated in one process.

        Raises:
            NotImplementedError: this evaluator cannot merge (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot merge another evaluator's items")

    def pictures(self) -> dict[str, Any]:
        """What the task's pictures of this evaluation show (arrays, counts ...), after :meth:`compute`.

        Returns:
            Data for :meth:`Task.write_pictures`; empty (the default) when the evaluation draws none.
        """
        return {}


class Task(abc.ABC):
    """What the trainer needs from a task: data, a model, its loss module, an evaluator, and metrics.

    Attributes:
        main_metric: the validation metric that selects ``best.pt`` (a key of :meth:`Evaluator.compute`).
        higher_is_better: direction of ``main_metric``.
        collate_fn: how the loaders collate the dataset's items (None: PyTorch's default).
    """

    main_metric: str = "loss"
    higher_is_better: bool = False
    collate_fn: Callable[[list], Batch] | None = None

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The model to train (its parameters are the optimiser's; ``checkpoint['model']`` is its state)."""

    @abc.abstractmethod
    def wrap(self, model: nn.Module) -> nn.Module:
        """A module whose ``forward(batch)`` returns a :data:`ModuleOutput` (``{"loss": scalar, ...}``)."""

    @abc.abstractmethod
    def build_dataset(self, split: str, train: bool) -> Dataset:
        """The dataset of ``split`` (training items when ``train``, evaluation items otherwise)."""

    @abc.abstractmethod
    def new_evaluator(self) -> Evaluator:
        """A fresh evaluator for one evaluation pass."""

    @property
    def resolved(self) -> dict[str, Any]:
        """What the task resolved from the data and the run needs again (JSON-able; default none).

        E.g. a tagging run's classes. The trainer stores it beside the config (``checkpoint["resolved"]``)
        and the task is rebuilt with it (``build_task(cfg, resolved)``); the config itself is never
        changed by a task.
        """
        return {}

    def build_sampler(self, dataset: Dataset, *, train: bool, seed: int, distributed: bool) -> Sampler | None:
        """A task-specific sampler (e.g. class-balanced), or ``None`` for the trainer's default.

        The default is a seeded :class:`RandomSampler` for training (a :class:`DistributedSampler`
        under DDP) and sequential order for evaluation. A returned sampler with a ``set_epoch(epoch)``
        method is called at the start of every epoch; under DDP it must shard by rank itself.
        """
        return None

    def batch_size(self, batch: Batch) -> int:
        """How many examples ``batch`` holds: its weight in the epoch's mean loss and in ``samples_per_s``.

        The default counts each batch as one.
        """
        return 1

    def train_metrics(self, batch: Batch, out: ModuleOutput) -> dict[str, tuple[float, float]]:
        """Training metrics of one step, as ``{name: (sum, count)}``; the epoch reports ``sum / count``.

        Args:
            batch: the batch on the device.
            out: the training module's output on it (``out["loss"]`` still has its graph).

        Returns:
            E.g. ``{"top1": (correct, judged)}``; the default reports none. Names other than the trainer's
            own (``loss``, ``samples_per_s``, ``skipped_clips``), which win a clash.
        """
        return {}

    def chance_test(self, metrics: dict[str, Any]) -> ChanceTest | None:
        """``main_metric`` of an evaluation against its baseline; None (the default) when it has none."""
        return None

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """Task-specific signs of a failed run in an evaluation's metrics, as sentences (default: none)."""
        return []

    def tensorboard_media(self, pictures: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """What TensorBoard shows of one validation besides the curves and the PNGs :meth:`write_pictures`
        wrote (the trainer shows those itself), from :meth:`Evaluator.pictures`.

        Returns:
            ``(kind, tag, value)`` items: ``("picture", tag, uint8 (H, W, 3) RGB array)`` or
            ``("sound", tag, (float (L,) waveform in [-1, 1], sample_rate))``. None by default.
        """
        return []

    def write_pictures(self, pictures: dict[str, Any], out_dir: Path, split: str) -> list[Path]:
        """Write the pictures of one evaluation of ``split`` into ``out_dir``.

        Called by the trainer after each validation (``out_dir`` the run folder) and by
        :func:`avcorr.inference.evaluation.evaluate_checkpoint`. A picture that cannot be drawn is
        logged, never raised: it does not stop a run.

        Args:
            pictures: :meth:`Evaluator.pictures` of that evaluation.
            out_dir: the folder (created when missing).
            split: the split evaluated, as the caller named it; file names are made from it.

        Returns:
            The files written (none by default).
        """
        return []

    def device_transform(self, batch: Batch) -> Batch:
        """Finish a batch on the device: called by the engine on every batch (training and evaluation) right
        after :meth:`to_device`, before the module and outside autocast.

        For the work that is cheaper batched on an accelerator than per item in the loader workers
        (normalisation, augmentation of uint8 frames ...). The default returns ``batch`` unchanged.

        Args:
            batch: the batch, its tensors on the device.

        Returns:
            The batch the module gets (a new dict, or ``batch`` itself).
        """
        return batch

    @staticmethod
    def to_device(batch: Batch, device: torch.device, channels_last: bool = False) -> Batch:
        """Move the batch's tensors to ``device`` (4-d tensors in channels-last when asked)."""
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=True)
                if channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out
