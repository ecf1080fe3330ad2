"""The DataLoaders of a run: seeded, resumable training order for map-style datasets; streams (shards) as they are.

:func:`make_loader` builds the loaders the trainer and the evaluation commands use; :func:`stream_epoch`
starts an epoch of a stream (an :class:`~torch.utils.data.IterableDataset`), part-way after a resume;
:func:`loader_steps` is the number of batches of an epoch.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset, RandomSampler

from ..config import ConfigError
from ._resume import ResumableSampler, SeededItems, ignore_sigint
from .protocol import Task

logger = logging.getLogger(__name__)

__all__ = ["loader_steps", "make_loader", "stream_epoch"]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode; the main process owns the cores for compute
    ignore_sigint()


def make_loader(dataset, task: Task, batch_size: int, *, train: bool, num_workers: int, seed: int = 0,
                distributed: bool = False, drop_last: bool | None = None, rank: int = 0) -> DataLoader:
    """A DataLoader for ``dataset`` (shuffled, optionally sharded with DistributedSampler, when training).

    A training loader's sampler is a :class:`~avcorr.engine._resume.ResumableSampler` over
    :class:`~avcorr.engine._resume.SeededItems`: every item is drawn under a seed made from its place
    in the run (``seed``, epoch, ``rank``, position), so items do not depend on the worker count and a
    resumed epoch can start part-way. The loader's own generator draws the workers' base seeds, so
    making an iterator leaves the global random state alone.

    An :class:`~torch.utils.data.IterableDataset` (a stream of shards) gets no sampler: it orders, shards
    by rank and worker, and seeds its items itself (see :func:`stream_epoch`).
    """
    if isinstance(dataset, IterableDataset):
        return DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=task.collate_fn,
            drop_last=train if drop_last is None else drop_last, persistent_workers=num_workers > 0 and train,
            worker_init_fn=_worker_init if num_workers > 0 else None, pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(seed))
    sampler = task.build_sampler(dataset, train=train, seed=seed, distributed=distributed)
    if sampler is None and train:
        if distributed:
            sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)
        else:
            g = torch.Generator()
            g.manual_seed(seed)
            sampler = RandomSampler(dataset, generator=g)
    if train:
        sampler, dataset = ResumableSampler(sampler, seed, rank), SeededItems(dataset)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
        collate_fn=task.collate_fn, drop_last=train if drop_last is None else drop_last,
        persistent_workers=num_workers > 0 and train, worker_init_fn=_worker_init if num_workers > 0 else None,
        pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(seed),
    )


def stream_epoch(loader: DataLoader, epoch: int, done_steps: int) -> Any:
    """The batches of ``epoch`` from a loader over an :class:`~torch.utils.data.IterableDataset`, after the
    first ``done_steps`` (a resumed epoch).

    The dataset's ``set_epoch(epoch)`` is called when it has one. A stream has no random access: the
    batches already trained on are read again and dropped, which gives the batches an uninterrupted run
    would have had when the dataset's draws depend only on its epoch (as the shard streams' do).

    Returns:
        an iterator of batches.
    """
    dataset = loader.dataset
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    elif done_steps:
        raise RuntimeError(f"cannot resume part-way into epoch {epoch + 1}: {type(dataset).__name__} is a stream "
                           "without set_epoch, so its batches cannot be replayed; start the epoch again "
                           "(delete checkpoints/last.pt) or resume from an epoch boundary")
    batches = iter(loader)
    if done_steps:
        logger.info("resuming epoch %d of a stream: reading its first %d batches again (a stream cannot seek)",
                    epoch + 1, done_steps)
        for _ in itertools.islice(batches, done_steps):
            pass
    return batches


def loader_steps(loader: DataLoader) -> int:
    """Batches per epoch of a loader; for a stream, from the dataset's ``len()``.

    Raises:
        ConfigError: a stream without ``__len__`` (the epoch length drives the LR schedule and progress).
    """
    try:
        return len(loader)
    except TypeError:
        raise ConfigError(f"{type(loader.dataset).__name__} has no len(): a streamed training set must say how many "
                          "items an epoch holds (the shard streams read it from their manifest)") from None
