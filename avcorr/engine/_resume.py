"""What makes a resumed run equal to the uninterrupted one, and what stops a run at a clean point.

* Random draws of training items depend on their place in the run, not on process history: the
  training sampler (:class:`ResumableSampler`) pairs every index with a seed made from
  ``(train.seed, epoch, rank, position in the epoch)`` and :class:`SeededItems` draws the item with
  torch, numpy and ``random`` seeded from it. Items are the same whatever the loader's worker count,
  whichever worker builds them and whether the run was resumed; a resumed epoch starts at the
  position where the interrupted one stopped without building (decoding) the items before it.
* The main process's own random states (dropout, SpecAugment masks, mixup) are saved and restored
  with :func:`rng_state` / :func:`set_rng_state`.
* :class:`StopSignals` turns SIGINT and SIGTERM into a request the loop honours at the next step
  boundary, so a checkpoint never holds half an optimiser step; a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ random states


def rng_state() -> dict[str, Any]:
    """This process's random states (torch CPU and CUDA, numpy's global, python's ``random``).

    Returns:
        Tensors, ints and lists only, so that a ``weights_only`` checkpoint can hold it.
    """
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def item_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """A 63-bit seed for the training item at ``position`` of ``epoch`` on ``rank``."""
    words = np.random.SeedSequence([seed % 2**32, seed // 2**32, epoch, rank, position]).generate_state(2)
    return (int(words[0]) << 31) ^ int(words[1])


@contextlib.contextmanager
def seeded(seed: int, *, restore: bool = True) -> Iterator[None]:
    """Seed torch (CPU), numpy's global and python's ``random`` for a block.

    Args:
        seed: a non-negative int (numpy gets it modulo 2**32).
        restore: put the previous states back after the block (a DataLoader worker, whose own
            states matter to nobody, skips it: it costs more than the seeding).
    """
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate()) if restore else None
    torch.default_generator.manual_seed(seed)  # the CPU generator only: torch.manual_seed also seeds CUDA (slow)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        if saved is not None:
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])


# ------------------------------------------------------------------------------- sampler and items


class ResumableSampler(Sampler):
    """Yields ``(index, seed)`` of a wrapped sampler, optionally starting part-way into the epoch.

    Args:
        sampler: the training order (a seeded :class:`~torch.utils.data.RandomSampler`, a
            :class:`~torch.utils.data.DistributedSampler` or a task's sampler).
        seed: ``train.seed``; item seeds are ``item_seed(seed, epoch, rank, position)``.
        rank: this process's DDP rank.
    """

    def __init__(self, sampler: Sampler, seed: int, rank: int = 0):
        self.sampler, self.seed, self.rank = sampler, int(seed), int(rank)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed the order and the items for ``epoch`` (the wrapped sampler's ``set_epoch``, or its generator)."""
        self.epoch = int(epoch)
        inner = self.sampler
        if hasattr(inner, "set_epoch"):
            inner.set_epoch(self.epoch)
        elif getattr(inner, "generator", None) is not None:
            inner.generator.manual_seed(self.seed + self.epoch)

    def skip(self, positions: int) -> None:
        """Leave out the first ``positions`` indices of the next pass only (a resumed epoch)."""
        self.start = int(positions)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self.start = self.start, 0
        for pos, index in enumerate(self.sampler):
            if pos >= start:
                yield int(index), item_seed(self.seed, self.epoch, self.rank, pos)

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]


class SeededItems(Dataset):
    """``dataset[index]`` drawn under the seed that :class:`ResumableSampler` paired with it.

    Args:
        dataset: a map-style dataset whose ``__getitem__`` draws from torch / numpy / ``random``.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded(seed, restore=get_worker_info() is None):  # the main process keeps its own states
            return self.dataset[index]


# ------------------------------------------------------------------------------------------ signals


class StopSignals:
    """SIGINT / SIGTERM as a stop request while the block runs (main thread only; else a no-op).

    The first signal sets :attr:`name` (``"SIGINT"`` or ``"SIGTERM"``); the loop checks it at step
    boundaries and stops there. A second signal raises :class:`KeyboardInterrupt` at once, except
    inside :meth:`critical` (an optimiser step and its bookkeeping, a checkpoint write), which it
    lets finish first. The previous handlers are restored on exit.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.name: str | None = None
        self._previous: dict[int, Any] = {}
        self._depth = 0
        self._forced: str | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.name is None:
            self.name = name
            logger.warning("%s received: stopping after the current step (send it again to stop at once)", name)
        elif self._depth:
            self._forced = name
        else:
            raise KeyboardInterrupt(f"second {name}: stopping now")

    @contextlib.contextmanager
    def critical(self, *, raise_forced: bool = True) -> Iterator[None]:
        """A block that a forced stop does not cut in two.

        Args:
            raise_forced: raise the forced stop that arrived during the block when it ends (else
                drop it: the caller is stopping anyway).
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._forced is not None:
            name, self._forced = self._forced, None
            if raise_forced:
                raise KeyboardInterrupt(f"second {name}: stopping now")

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                num = getattr(signal, name)
                self._previous[num] = signal.signal(num, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for num, handler in self._previous.items():
            signal.signal(num, handler)
        self._previous.clear()


def ignore_sigint() -> None:
    """Make this process (a DataLoader worker) ignore Ctrl-C, which the terminal sends to every process:
    the main process decides when to stop, and a worker that died on it would fail the next batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
