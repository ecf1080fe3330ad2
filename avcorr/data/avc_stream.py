"""Audio-visual correspondence pairs drawn inside a stream of shards (``data.storage="shards"``).

The streaming counterpart of :class:`~avcorr.data.avc.AVCPairDataset`: clips come from the tar shards
of ``python -m data_tools.make_shards`` (:class:`~avcorr.data.shards.ShardDataset`: split across DDP
ranks and DataLoader workers, shuffled through a buffer, local or any fsspec / http(s) URL), and each
worker pairs them as they pass:

* a positive is one of the clip's stored frames with the ``seconds`` of the clip's own audio centred on
  that frame's time;
* a negative is the same frame with audio of ANOTHER clip among the last ``pair_buffer`` clips of the
  worker's stream (half of them not yet paired themselves, so the first clips have candidates too),
  centred on one of that clip's stored frame times (every window, positive or negative, is centred on
  a frame time of its own clip, as in the per-sample path); with ``negatives="class"`` the other clip
  shares no label with the frame's.

In training the drawn pairs then pass through a second shuffle buffer (``shuffle x pairs_per_clip``
pairs), so that a batch mixes many clips instead of holding a few clips' ``pairs_per_clip`` pairs each
(which in-batch contrastive losses would also take as each other's negatives).

Frames are the stored ones (``--frames-per-clip`` per clip, already resized and centre-cropped to
``--size``); only the frames a pair uses are decoded. The frame transform (crop, flip, jitter,
normalisation) and the audio gain jitter are those of the per-sample path, and the audio front-end is
the model's, so the model and the loss see batches of the same keys, shapes and dtypes
(:func:`~avcorr.data.avc.collate_pairs`, documented in :mod:`avcorr.data.avc`).

Training: each rank yields ``clips x pairs_per_clip // world_size`` pairs per epoch, rounded down to
whole batches of ``batch_size`` shared out among its workers, so every rank takes the same number of
steps (DDP needs it) and ``len()`` is exact. A worker that runs out of clips before its share reads its
shards again; one that has its share stops. With as many clips in every worker's shards, every clip is
used ``pairs_per_clip`` times per epoch by exactly one rank and worker. Every random draw of a worker's
pass comes from ``(seed, epoch, rank, worker)``, so a pass can be replayed exactly (a resumed epoch).

Evaluation: no shuffling; clip ``c``'s pair ``k`` is a positive for even ``k``, its frame drawn from
``(seed, clip id)``; a negative's clip is drawn from the stream's buffer, which depends on the shards and the
worker count only: the same run evaluates the same pairs every time.

A sample that cannot be decoded (a corrupt member) or the unreadable rest of a shard is skipped, logged
and reported in the next item's ``skipped`` list (as ``(vid or shard name, reason)``); it never stops
the run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import zlib
from collections import deque
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .shards import BadSample, ShardDataset, ShardError, _buffer_shuffle, read_manifest
from .transforms import frame_transform

logger = logging.getLogger(__name__)

__all__ = ["AVCShardStream"]


@contextlib.contextmanager
def _torch_seed(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for one item (the frame transform draws from it); the main process keeps
    its own state (a DataLoader worker's matters to nobody)."""
    if get_worker_info() is not None:
        torch.default_generator.manual_seed(seed)
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def _vid_key(vid: str) -> int:
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


class AVCShardStream(IterableDataset):
    """Positive / negative audio-frame pairs of a split's shards, drawn inside the stream (see the module docstring).

    Items are those of :class:`~avcorr.data.avc.AVCPairDataset` (collate them with
    :func:`~avcorr.data.avc.collate_pairs`): ``image`` float32 (3, S, S), ``audio`` float32 (T,),
    ``label`` int64 (), ``shares_label`` bool (), ``time`` and ``audio_time`` float32 (), ``vid``,
    ``audio_vid`` and ``skipped``.

    Args:
        folder: a split's shard folder (``OUT/<split>`` of make_shards, holding ``manifest.json``), local or a URL.
        sample_rate: the model's rate; the shards must hold audio at this rate.
        seconds: audio window length.
        image_size: frame side after the transform.
        train: random (training) or fixed (evaluation) pairs and transforms.
        augment: training augmentations on/off.
        negatives: ``"clip"`` (any other clip) or ``"class"`` (a clip sharing no label).
        positive_fraction: probability of a positive in training (evaluation alternates).
        pairs_per_clip: examples per clip per pass.
        gain_jitter: training only, random audio gain in ``[1 - g, 1 + g]``.
        seed: seed of the shard order, the buffers and the pairs.
        shuffle: training shuffle buffers: of clips (before pairing), and of ``shuffle x pairs_per_clip`` drawn
            pairs (after; the clips they use stay in memory); evaluation never shuffles.
        pair_buffer: clips a worker keeps to draw negatives from.
        batch_size: training: each rank's pairs per epoch are a whole number of these batches.
        device_transforms: leave the colour jitter, the flip and the normalisation of the frames to the
            device (uint8 ``image`` and ``image_jitter`` items, as :class:`~avcorr.data.avc.AVCPairDataset`'s).
        rank, world_size: this process's DDP rank and the number of ranks; None = from ``torch.distributed``
            (evaluation, which runs in one process, passes 0 and 1).

    Raises:
        ShardError: no readable manifest, fewer than 2 clips, or audio stored at another rate.
    """

    def __init__(self, folder: str, *, sample_rate: int, seconds: float = 1.0, image_size: int = 224, train: bool = True,
                 augment: bool = True, negatives: str = "clip", positive_fraction: float = 0.5, pairs_per_clip: int = 1,
                 gain_jitter: float = 0.0, seed: int = 0, shuffle: int = 256, pair_buffer: int = 16,
                 batch_size: int = 1, rank: int | None = None, world_size: int | None = None,
                 device_transforms: bool = False):
        if negatives not in ("clip", "class"):
            raise ValueError(f"negatives must be 'clip' or 'class', got {negatives!r}")
        self.folder = str(folder).rstrip("/")
        manifest = read_manifest(self.folder)
        where = f"{self.folder}/manifest.json"
        settings = manifest.get("settings", {})
        if settings.get("sample_rate") != sample_rate:
            raise ShardError(where, f"the shards hold audio at {settings.get('sample_rate')} Hz, the model takes "
                                    f"{sample_rate} Hz: make the shards with --sample-rate {sample_rate}")
        if int(settings.get("size", image_size)) < image_size:
            logger.warning("%s: stored frames are %s px, smaller than data.image_size=%d: they are enlarged",
                           where, settings.get("size"), image_size)
        if float(settings.get("window", seconds)) < seconds:
            logger.warning("%s: the frames were chosen for a %s s window, the model takes %s s: windows that leave "
                           "the stored audio are zero-padded (make the shards with --window %s)",
                           where, settings.get("window"), seconds, seconds)
        self.num_clips = sum(len(e.get("clips", ())) for e in manifest["shards"])
        if self.num_clips < 2:
            raise ShardError(where, f"needs at least 2 clips, the manifest lists {self.num_clips}")
        self.init_skipped = [tuple(s) for e in manifest["shards"] for s in e.get("skipped", ())
                             if isinstance(s, (list, tuple)) and len(s) == 2]
        self.sample_rate, self.seconds, self.train = sample_rate, float(seconds), train
        self.negatives, self.positive_fraction = negatives, float(positive_fraction)
        self.pairs_per_clip, self.gain_jitter, self.seed = max(1, int(pairs_per_clip)), float(gain_jitter), int(seed)
        self.pair_buffer, self.batch_size = max(2, int(pair_buffer)), max(1, int(batch_size)) if train else 1
        self.pair_shuffle = max(0, int(shuffle)) * self.pairs_per_clip  # training: drawn pairs shuffled (0: none)
        self.transform = frame_transform(image_size, train=train, augment=augment, on_device=device_transforms)
        self.shards = ShardDataset.from_manifest(self.folder, shuffle=shuffle if train else 0, seed=seed, rank=rank,
                                                 world_size=world_size, skip_errors=True)
        self.rank, self.world_size = self.shards.rank, self.shards.world_size
        self._epoch, self._passes = 0, 0

    def __len__(self) -> int:
        """Pairs this rank yields per pass (training: whole batches of ``batch_size``)."""
        total = self.num_clips * self.pairs_per_clip
        if not self.train:
            return total
        return total // self.world_size // self.batch_size * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next pass (shard order, buffers and pairs); later passes count on from it."""
        self._epoch, self._passes = int(epoch), 0

    def worker_quota(self, worker: int, num_workers: int) -> int | None:
        """Training: the pairs worker ``worker`` of ``num_workers`` yields per pass (whole batches); None in evaluation."""
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
        if not self.shards.shards_for(epoch, worker, num_workers):
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
            for item in self._pairs(epoch, worker, num_workers, rng, skipped):
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
                raise RuntimeError(f"{self.folder}: rank {self.rank} worker {worker} read no usable clip from its "
                                   f"shards ({reasons})")
            logger.debug("%s: worker %d reads its shards again to fill its share of the epoch", self.folder, worker)

    # -- pairing ----------------------------------------------------------------------------------
    def _frames_of(self, rng: np.random.Generator):
        """The frame picker of :meth:`ShardDataset.samples`: ``pairs_per_clip`` stored frames per clip."""
        def pick(meta: dict[str, Any]) -> list[int]:
            count = int(meta.get("frames", {}).get("count") or 0)
            if count < 1:
                return []
            r = rng if self.train else np.random.default_rng([self.seed, _vid_key(str(meta.get("vid", "")))])
            return [int(i) for i in r.integers(0, count, size=self.pairs_per_clip)]
        return pick

    def _pairs(self, epoch: int, worker: int, num_workers: int, rng: np.random.Generator,
               skipped: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """One pass over this worker's shards: the items (``skipped`` filled in place, emptied into the items).

        Training shuffles the drawn pairs through a buffer of ``pair_shuffle`` pairs before building them,
        so that a batch holds pairs of many clips rather than the ``pairs_per_clip`` pairs of a few (which
        would also be each other's in-batch negatives).
        """
        specs = self._specs(epoch, worker, num_workers, rng, skipped)
        if self.train and self.pair_shuffle > 1:
            specs = _buffer_shuffle(specs, self.pair_shuffle, rng)
        for spec in specs:
            yield self._make(spec, skipped)

    def _specs(self, epoch: int, worker: int, num_workers: int, rng: np.random.Generator,
               skipped: list[tuple[str, str]]) -> Iterator[tuple]:
        """The drawn pairs of one pass, clip after clip, as :meth:`_clip_pairs` specs."""
        window: deque[dict[str, Any]] = deque(maxlen=self.pair_buffer)
        pending: deque[dict[str, Any]] = deque()
        unpaired = [0]
        lookahead = self.pair_buffer // 2
        for sample in self.shards.samples(epoch, worker, num_workers, frames=self._frames_of(rng)):
            if isinstance(sample, BadSample):
                skipped.append((sample.vid, sample.reason))
                continue
            if len(sample["frames"]) == 0:
                skipped.append((sample["vid"], f"{self.folder}: {sample['vid']}: no stored frame"))
                continue
            if self.negatives == "class" and not sample.get("labels"):
                skipped.append((sample["vid"], "no label (negatives='class' needs labels)"))
                continue
            window.append(sample)
            pending.append(sample)
            if len(pending) > lookahead:
                yield from self._clip_pairs(pending.popleft(), window, rng, unpaired)
        while pending:
            yield from self._clip_pairs(pending.popleft(), window, rng, unpaired)
        if unpaired[0]:
            logger.warning("%s: rank %d worker %d found no clip %s among the last %d clips for %d negative(s): they "
                           "became positives (use more clips per shard or a larger pair buffer)", self.folder,
                           self.rank, worker, "of another class" if self.negatives == "class" else "other than the "
                           "frame's", self.pair_buffer, unpaired[0])

    def _clip_pairs(self, sample: dict[str, Any], window: deque, rng: np.random.Generator,
                    unpaired: list[int]) -> Iterator[tuple]:
        """Draw the ``pairs_per_clip`` pairs of one clip (negatives from ``window``) as specs
        ``(sample, k, positive, audio source, audio centre, gain, transform seed)``; counts in ``unpaired[0]``
        the negatives that found no other clip."""
        labels = set(sample.get("labels", ()))
        for k in range(self.pairs_per_clip):
            r = rng if self.train else np.random.default_rng([self.seed, _vid_key(sample["vid"]), k])
            positive = bool(r.random() < self.positive_fraction) if self.train else k % 2 == 0
            source, at = sample, float(sample["frame_times"][k])
            if not positive:
                others = [c for c in window if c["vid"] != sample["vid"]
                          and not (self.negatives == "class" and labels & set(c.get("labels", ())))]
                if not others:
                    unpaired[0] += 1
                    positive = True
                else:
                    source = others[int(r.integers(len(others)))]
                    at = float(source["frame_times"][int(r.integers(len(source["frame_times"])))])
            gain = float(r.uniform(1 - self.gain_jitter, 1 + self.gain_jitter)) if self.train and self.gain_jitter > 0 \
                else 1.0
            yield sample, k, positive, source, at, gain, int(r.integers(2**62))

    def _make(self, spec: tuple, skipped: list[tuple[str, str]]) -> dict[str, Any]:
        """The item of a spec of :meth:`_clip_pairs`, with the skips met since the last item (``skipped`` emptied)."""
        sample, k, positive, source, at, gain, seed = spec
        wave = audio_window(source, at, self.seconds)
        if gain != 1.0:
            wave = wave * np.float32(gain)
        with _torch_seed(seed):
            image = self.transform.fields(sample["frames"][k])
        item = {
            **image,
            "audio": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
            "label": torch.tensor(int(positive)),
            "shares_label": torch.tensor(not positive and bool(set(sample.get("labels", ()))
                                                               & set(source.get("labels", ())))),
            "time": torch.tensor(float(sample["frame_times"][k]), dtype=torch.float32),
            "audio_time": torch.tensor(at, dtype=torch.float32),
            "vid": sample["vid"],
            "audio_vid": source["vid"],
            "skipped": list(skipped),
        }
        skipped.clear()
        return item
