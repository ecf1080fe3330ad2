"""What the shard streams of the tasks share: examples drawn from a split's clips as the shards pass by.

:class:`ClipShardStream` reads a split's shards (:class:`~avcorr.data.shards.ShardDataset`: split across
DDP ranks and DataLoader workers, shuffled through a buffer) and keeps the last ``buffer`` clips of
each worker's stream, so that a task draws an example from a clip and other clips around it (the AVC
task's negatives, Sound of Pixels' partners); half of the buffer is read ahead, so the first clips have
partners too. A subclass says which frames to decode, which clips it cannot use, how it draws a clip's
``per_clip`` examples (as "specs": plain tuples, cheap to buffer) and how it builds an item from a
spec; the base class does the rest, the same way for every task:

* training: each rank yields ``clips x per_clip // world_size`` items per pass, rounded down to whole
  batches of ``batch_size`` shared out among its workers, so every rank takes the same number of
  steps (DDP needs it) and ``len()`` is exact; a worker that runs out of clips before its share reads
  its shards again, one that has its share stops. The clips' shuffle buffer holds them as read
  (bytes, decoded as they leave it: :class:`~avcorr.data.shards.ShardDataset`); the drawn specs pass
  through a second shuffle buffer of ``shuffle x per_clip`` specs, so a batch mixes many clips. Every
  random draw of a worker's pass comes from ``(seed, epoch, rank, worker)``: a pass can be replayed
  exactly.
* evaluation: no shuffling; a clip's draws come from ``(seed, clip id, k)``; every clip yields its
  ``per_clip`` items once. The split's shards form fixed blocks (:func:`evaluation_blocks`: each shard
  on its own, one with fewer than ``min_clips`` clips joined to its neighbour), the clips around a
  clip are those of its block only, and the blocks are dealt out to ranks and workers whole: the
  items are the same whatever the number of ranks (:meth:`ClipShardStream.split_across_ranks`) and
  workers, only who reads them changes.
* a corrupt member or the unreadable rest of a shard is skipped, logged and reported in the next
  item's ``skipped`` list (``(vid or shard name, reason)``); the last item of a pass is held back so
  that skips met at the end still reach a batch.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections import Counter, deque
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .shards import BadSample, ShardDataset, ShardError, _buffer_shuffle, read_manifest

logger = logging.getLogger(__name__)

__all__ = ["ClipShardStream", "audio_window", "evaluation_blocks", "nearest_frames", "torch_seed", "vid_key"]


@contextlib.contextmanager
def torch_seed(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for one item (the frame transforms draw from it); the main process keeps
    its own state (a DataLoader worker's matters to nobody)."""
    if get_worker_info() is not None:
        torch.default_generator.manual_seed(seed)
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def vid_key(vid: str) -> int:
    """A stable integer of a clip id (seeds the evaluation draws of that clip)."""
    return zlib.crc32(vid.encode())


def audio_window(sample: dict[str, Any], centre: float, seconds: float) -> np.ndarray:
    """The ``seconds`` of a shard sample's audio centred on ``centre`` (s in the clip), zero-padded outside it.

    Args:
        sample: a decoded shard sample (``audio`` float32 (L,), ``sample_rate``, ``audio_start``).
        centre: the window's centre in seconds of the clip.
        seconds: the window length.

    Returns:
        float32 (T,), ``T = round(seconds * sample_rate)``.
    """
    sr, audio = int(sample["sample_rate"]), sample["audio"]
    want = round(seconds * sr)
    s0 = round((centre - seconds / 2 - float(sample.get("audio_start", 0.0))) * sr)
    out = np.zeros(want, dtype=np.float32)
    a, b = max(s0, 0), min(s0 + want, audio.shape[0])
    if b > a:
        out[a - s0:b - s0] = audio[a:b]
    return out


def nearest_frames(stored_times: Sequence[float], wanted: Sequence[float]) -> list[int]:
    """Positions of the stored frames nearest to each wanted time (the earlier one on a tie).

    Args:
        stored_times: times (s) of a sample's stored frames, ascending.
        wanted: times (s) wanted.

    Returns:
        one position in ``stored_times`` per wanted time.
    """
    times = np.asarray(stored_times, dtype=np.float64)
    return [int(np.argmin(np.abs(times - t))) for t in wanted]


def evaluation_blocks(clip_counts: Sequence[int], min_clips: int = 1) -> list[list[int]]:
    """The evaluation blocks of a split: runs of consecutive shards, each holding at least ``min_clips`` clips.

    Each shard is a block of its own unless it holds fewer than ``min_clips`` clips: then it joins the
    shards after it (the last ones join the block before them). A block is the unit that evaluation deals
    out to ranks and workers, and the clips a clip is drawn with (negatives, partners) come from its block.

    Args:
        clip_counts: clips per shard, in manifest order.
        min_clips: clips a block needs at least (a task's partners: 2 for AVC pairs, N for N-source mixtures).

    Returns:
        the blocks, each a list of shard positions, in order; together every shard once.
    """
    blocks: list[list[int]] = []
    current: list[int] = []
    count = 0
    for i, n in enumerate(clip_counts):
        current.append(i)
        count += int(n)
        if count >= min_clips:
            blocks.append(current)
            current, count = [], 0
    if current:
        if blocks:
            blocks[-1].extend(current)
        else:
            blocks.append(current)
    return blocks


class ClipShardStream(IterableDataset):
    """Items drawn from the clips of a split's shards (see the module docstring); subclassed per task.

    Subclasses implement :meth:`_draw` (a clip's specs) and :meth:`_build` (an item from a spec, without
    ``skipped``), and may override :meth:`_frames_of`, :meth:`_unusable` and :meth:`_report`.

    Args:
        folder: a split's shard folder (``OUT/<split>`` of make_shards, holding ``manifest.json``), local or a URL.
        sample_rate: the model's rate; the shards must hold audio at this rate.
        image_size: frame side after the transform (a warning when the stored frames are smaller).
        window: seconds of audio the task centres on a stored frame (a warning when the shards' frames were
            chosen for a shorter window); None = no such window.
        train: training (random, shuffled, whole batches per rank) or evaluation (fixed) items.
        per_clip: items drawn per clip per pass.
        seed: seed of the shard order, the buffers and the draws.
        shuffle: training shuffle buffers: of clips, and of ``shuffle x per_clip`` drawn specs; evaluation never
            shuffles.
        buffer: clips a worker keeps to draw partners from (half of them read ahead).
        batch_size: training: each rank's items per epoch are a whole number of these batches.
        rank, world_size: this process's DDP rank and the number of ranks; None = from ``torch.distributed``.
            Evaluation deals out whole blocks of shards (see :meth:`split_across_ranks`).
        min_clips: clips the split needs at least (and an evaluation block, see :func:`evaluation_blocks`).

    Raises:
        ShardError: no readable manifest, fewer than ``min_clips`` clips, or audio stored at another rate.
    """

    def __init__(self, folder: str, *, sample_rate: int, image_size: int, window: float | None, train: bool,
                 per_clip: int, seed: int, shuffle: int, buffer: int, batch_size: int, rank: int | None,
                 world_size: int | None, min_clips: int = 1):
        super().__init__()
        self.folder = str(folder).rstrip("/")
        manifest = read_manifest(self.folder)
        where = f"{self.folder}/manifest.json"
        self.settings = manifest.get("settings", {})
        if self.settings.get("sample_rate") != sample_rate:
            raise ShardError(where, f"the shards hold audio at {self.settings.get('sample_rate')} Hz, the model takes "
                                    f"{sample_rate} Hz: make the shards with --sample-rate {sample_rate}")
        if int(self.settings.get("size", image_size)) < image_size:
            logger.warning("%s: stored frames are %s px, smaller than data.image_size=%d: they are enlarged",
                           where, self.settings.get("size"), image_size)
        if window is not None and float(self.settings.get("window", window)) < window:
            logger.warning("%s: the frames were chosen for a %s s window, the model takes %s s: windows that leave "
                           "the stored audio are zero-padded (make the shards with --window %s)",
                           where, self.settings.get("window"), window, window)
        self.num_clips = sum(len(e.get("clips", ())) for e in manifest["shards"])
        if self.num_clips < min_clips:
            raise ShardError(where, f"needs at least {min_clips} clips, the manifest lists {self.num_clips}")
        self.init_skipped = [tuple(s) for e in manifest["shards"] for s in e.get("skipped", ())
                             if isinstance(s, (list, tuple)) and len(s) == 2]
        self.sample_rate, self.train, self.seed = int(sample_rate), bool(train), int(seed)
        self.per_clip, self.buffer = max(1, int(per_clip)), max(1, int(buffer))
        self.batch_size = max(1, int(batch_size)) if train else 1
        self.spec_shuffle = max(0, int(shuffle)) * self.per_clip if train else 0
        self.shards = ShardDataset.from_manifest(self.folder, shuffle=shuffle if train else 0, seed=seed, rank=rank,
                                                 world_size=world_size, skip_errors=True)
        self.rank, self.world_size = self.shards.rank, self.shards.world_size
        counts = [len(e.get("clips", ())) for e in manifest["shards"]]
        self.blocks = [] if train else [(list(b), sum(counts[i] for i in b))
                                        for b in evaluation_blocks(counts, min_clips)]
        self._epoch, self._passes = 0, 0

    def __len__(self) -> int:
        """Items this rank yields per pass (training: whole batches of ``batch_size``; evaluation: the
        manifest's clips of its blocks, before any is skipped)."""
        if not self.train:
            return sum(n for _, n in self.blocks[self.rank::self.world_size]) * self.per_clip
        return self.num_clips * self.per_clip // self.world_size // self.batch_size * self.batch_size

    def split_across_ranks(self, rank: int, world_size: int) -> None:
        """Evaluation: read only rank ``rank``'s share of the split (of ``world_size`` ranks): its whole blocks of
        shards (:func:`evaluation_blocks`, dealt out in turn). The items are those of a single process, split:
        the ranks' shares are disjoint and cover the split once; a rank with no block yields nothing.

        Raises:
            ValueError: a training stream (split across ranks when it is made), or a rank outside the world.
        """
        if self.train:
            raise ValueError(f"{self.folder}: a training stream is split across ranks when it is made")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.rank, self.world_size = int(rank), int(world_size)

    def blocks_for(self, worker: int = 0, num_workers: int = 1) -> list[list[str]]:
        """Evaluation: the blocks (each a list of shard URLs) worker ``worker`` of ``num_workers`` of this rank reads."""
        mine = self.blocks[self.rank::self.world_size][worker::num_workers]
        return [[self.shards.urls[i] for i in block] for block, _ in mine]

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next pass (shard order, buffers and draws); later passes count on from it."""
        self._epoch, self._passes = int(epoch), 0

    def worker_quota(self, worker: int, num_workers: int) -> int | None:
        """Training: the items worker ``worker`` of ``num_workers`` yields per pass (whole batches); None in evaluation."""
        if not self.train:
            return None
        batches = len(self) // self.batch_size
        return (batches // num_workers + (1 if worker < batches % num_workers else 0)) * self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self._epoch + self._passes if self.train else 0
        self._passes += 1
        quota = self.worker_quota(worker, num_workers)
        if quota == 0:
            return
        if not self.train and not self.blocks_for(worker, num_workers):
            logger.debug("%s: rank %d worker %d has no evaluation block to read", self.folder, self.rank, worker)
            return
        if self.train and not self.shards.shards_for(epoch, worker, num_workers):
            raise ShardError(self.folder, f"rank {self.rank} worker {worker} has no shard to read "
                                          f"({len(self.shards.urls)} shards for {self.world_size} rank(s) x "
                                          f"{num_workers} worker(s)): make more, smaller shards (--clips-per-shard) "
                                          f"or lower data.num_workers")
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker])
        held: dict[str, Any] | None = None  # one item held back, so skips met at the end still reach a batch
        skipped: list[tuple[str, str]] = []
        done = 0
        while True:
            produced = 0
            for item in self._items(epoch, worker, num_workers, rng, skipped):
                produced += 1
                if held is not None:
                    yield held
                    done += 1
                    if quota is not None and done >= quota:
                        return
                held = item
            if held is not None and (quota is None or done + 1 >= quota):
                held["skipped"] = held["skipped"] + skipped
                yield held
                return
            if produced == 0:
                reasons = "; ".join(f"{v}: {r}" for v, r in skipped[:5]) or "no samples"
                if not self.train:  # a share of an evaluation may be all bad: the others' items still count
                    logger.warning("%s: rank %d worker %d read no usable clip from its evaluation blocks (%s)",
                                   self.folder, self.rank, worker, reasons)
                    return
                raise RuntimeError(f"{self.folder}: rank {self.rank} worker {worker} read no usable clip from its "
                                   f"shards ({reasons})")
            logger.debug("%s: worker %d reads its shards again to fill its share of the epoch", self.folder, worker)

    def audio_as_pcm16(self, device_transforms: bool) -> bool:
        """Whether this stream's audio travels to the device as int16 (``data.device_transforms``): only from
        shards of int16 audio (their manifest's ``audio_dtype``, make_shards' default), whose windows are
        exactly the stored samples (:func:`~avcorr.data.transforms.to_pcm16`); half the bytes of float32.

        Args:
            device_transforms: whether the run finishes its batches on the device.
        """
        pcm16 = bool(device_transforms) and self.settings.get("audio_dtype") == "int16"
        if device_transforms and not pcm16:
            logger.info("%s: the shards store %s audio: it travels to the device as float32 (int16 only for int16 "
                        "shards)", self.folder, self.settings.get("audio_dtype"))
        return pcm16

    # -- drawing ----------------------------------------------------------------------------------
    def clip_rng(self, rng: np.random.Generator, vid: str, k: int = 0) -> np.random.Generator:
        """The generator of a clip's draw ``k``: the pass's in training, one of ``(seed, clip id, k)`` in evaluation."""
        return rng if self.train else np.random.default_rng([self.seed, vid_key(vid), k])

    def _items(self, epoch: int, worker: int, num_workers: int, rng: np.random.Generator,
               skipped: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """One pass over this worker's shards: the items, each with the skips met since the last one
        (``skipped`` filled while reading, emptied into the items)."""
        specs = self._specs(epoch, worker, num_workers, rng, skipped)
        if self.spec_shuffle > 1:
            specs = _buffer_shuffle(specs, self.spec_shuffle, rng)
        for spec in specs:
            item = self._build(spec)
            item["skipped"] = list(skipped)
            skipped.clear()
            yield item

    def _specs(self, epoch: int, worker: int, num_workers: int, rng: np.random.Generator,
               skipped: list[tuple[str, str]]) -> Iterator[Any]:
        """The specs of one pass, clip after clip, each clip drawn with the ``buffer`` clips around it (in
        evaluation, of its block only)."""
        notes: Counter[str] = Counter()
        frames = self._frames_of(rng)
        if self.train:
            runs = [self.shards.samples(epoch, worker, num_workers, frames=frames)]
        else:
            runs = (self.shards.read(block, frames=frames) for block in self.blocks_for(worker, num_workers))
        lookahead = self.buffer // 2
        for samples in runs:
            window: deque[dict[str, Any]] = deque(maxlen=self.buffer)
            pending: deque[dict[str, Any]] = deque()
            for sample in samples:
                if isinstance(sample, BadSample):
                    skipped.append((sample.vid, sample.reason))
                    continue
                reason = self._unusable(sample)
                if reason:
                    skipped.append((sample["vid"], reason))
                    continue
                window.append(sample)
                pending.append(sample)
                if len(pending) > lookahead:
                    yield from self._draw(pending.popleft(), window, rng, notes)
            while pending:
                yield from self._draw(pending.popleft(), window, rng, notes)
        if notes:
            self._report(worker, notes)

    # -- the task's part --------------------------------------------------------------------------
    def _frames_of(self, rng: np.random.Generator) -> Callable[[dict[str, Any]], Sequence[int]] | None:
        """Picks the stored frames to decode from a sample's json (see :func:`~avcorr.data.shards.decode_sample`);
        None = all of them."""
        return None

    def _unusable(self, sample: dict[str, Any]) -> str | None:
        """Why a decoded sample cannot be used (it is skipped with this reason), or None."""
        if len(sample["frames"]) == 0:
            return f"{self.folder}: {sample['vid']}: no stored frame"
        return None

    def _draw(self, sample: dict[str, Any], window: deque, rng: np.random.Generator,
              notes: Counter) -> Iterator[Any]:
        """The ``per_clip`` specs of one clip (``window``: the clips around it, itself included); ``notes``
        counts what :meth:`_report` tells at the end of the pass."""
        raise NotImplementedError

    def _build(self, spec: Any) -> dict[str, Any]:
        """The item of one spec (``skipped`` is added by the caller)."""
        raise NotImplementedError

    def _report(self, worker: int, notes: Counter) -> None:
        """Log what ``notes`` counted during a pass of ``worker``."""
        logger.info("%s: rank %d worker %d: %s", self.folder, self.rank, worker, dict(notes))
