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
  shares no label with the frame's. ``shares_label`` marks a negative whose audio clip has a label of an
  object drawn in the frame: the json's ``visible`` labels (shards of a split with a ``visible.json``),
  else its ``labels``.

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
(The epochs, buffers, skips and replay are :class:`~avcorr.data._shard_stream.ClipShardStream`'s, shared
with the localization and separation streams.)

Evaluation: no shuffling; clip ``c``'s pair ``k`` is a positive for even ``k``, its frame drawn from
``(seed, clip id)``; a negative's clip is drawn from the clips around it in its evaluation block (its shard,
see :func:`~avcorr.data._shard_stream.evaluation_blocks`), from ``(seed, clip id, k)``: the same run evaluates
the same pairs every time, whatever the number of ranks and workers that share the blocks.

A sample that cannot be decoded (a corrupt member) or the unreadable rest of a shard is skipped, logged
and reported in the next item's ``skipped`` list (as ``(vid or shard name, reason)``); it never stops
the run.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from typing import Any, Iterator

import numpy as np
import torch

from ._shard_stream import ClipShardStream, audio_window, torch_seed, vid_key
from .transforms import frame_transform, to_pcm16

logger = logging.getLogger(__name__)

__all__ = ["AVCShardStream", "audio_window"]


class AVCShardStream(ClipShardStream):
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
        shuffle: training shuffle buffers: of clips as read (before pairing; decoded as they leave it), and of
            ``shuffle x pairs_per_clip`` drawn pairs (after; each holds its frame and its cut audio window);
            evaluation never shuffles.
        pair_buffer: clips a worker keeps to draw negatives from.
        batch_size: training: each rank's pairs per epoch are a whole number of these batches.
        device_transforms: leave the colour jitter, the flip and the normalisation of the frames to the
            device (uint8 ``image`` and ``image_jitter`` items, as :class:`~avcorr.data.avc.AVCPairDataset`'s);
            with shards of int16 audio (their manifest's ``audio_dtype``, the default), the audio travels as
            int16 too (``audio`` int16 (T,), exactly the stored samples, and ``audio_gain`` float32 (), the gain
            jitter), turned into float32 on the device by :func:`~avcorr.data.transforms.device_audio`.
        rank, world_size: this process's DDP rank and the number of ranks; None = from ``torch.distributed``
            (evaluation reads every shard unless given a rank, or split with ``split_across_ranks``).

    Attributes:
        pcm16: whether the audio travels as int16 (``device_transforms`` and int16 shards); set it to False
            before iterating to hand over float32 audio instead.

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
        super().__init__(folder, sample_rate=sample_rate, image_size=image_size, window=float(seconds), train=train,
                         per_clip=pairs_per_clip, seed=seed, shuffle=shuffle, buffer=max(2, int(pair_buffer)),
                         batch_size=batch_size, rank=rank, world_size=world_size, min_clips=2)
        self.seconds, self.negatives, self.positive_fraction = float(seconds), negatives, float(positive_fraction)
        self.pairs_per_clip, self.gain_jitter = self.per_clip, float(gain_jitter)
        self.transform = frame_transform(image_size, train=train, augment=augment, on_device=device_transforms)
        self.pcm16 = self.audio_as_pcm16(device_transforms)

    # -- pairing ----------------------------------------------------------------------------------
    def _frames_of(self, rng: np.random.Generator):
        """``pairs_per_clip`` stored frames per clip (training: random; evaluation: from ``(seed, clip id)``)."""
        def pick(meta: dict[str, Any]) -> list[int]:
            count = int(meta.get("frames", {}).get("count") or 0)
            if count < 1:
                return []
            r = rng if self.train else np.random.default_rng([self.seed, vid_key(str(meta.get("vid", "")))])
            return [int(i) for i in r.integers(0, count, size=self.pairs_per_clip)]
        return pick

    def _unusable(self, sample: dict[str, Any]) -> str | None:
        if self.negatives == "class" and not sample.get("labels"):
            return "no label (negatives='class' needs labels)"
        return super()._unusable(sample)

    def _report(self, worker: int, notes: Counter) -> None:
        logger.warning("%s: rank %d worker %d found no clip %s among the last %d clips for %d negative(s): they "
                       "became positives (use more clips per shard or a larger pair buffer)", self.folder,
                       self.rank, worker, "of another class" if self.negatives == "class" else "other than the "
                       "frame's", self.buffer, notes["unpaired"])

    def _draw(self, sample: dict[str, Any], window: deque, rng: np.random.Generator,
              notes: Counter) -> Iterator[tuple]:
        """Draw the ``pairs_per_clip`` pairs of one clip (negatives from ``window``) as specs
        ``(frame, frame time, clip id, positive, audio window, audio centre, audio clip id, shares_label, gain,
        transform seed)``: the frame (uint8 (S, S, 3)) and the cut window (float32 (T,)), not the clips, so a
        spec in the shuffle buffer holds no clip's whole audio. Counts in ``notes["unpaired"]`` the negatives
        that found no other clip."""
        labels = set(sample.get("labels", ()))
        # every object drawn in the frame (make_shards stores "visible" when the split has a visible.json)
        visible = set(sample.get("visible", sample.get("labels", ())))
        for k in range(self.pairs_per_clip):
            r = self.clip_rng(rng, sample["vid"], k)
            positive = bool(r.random() < self.positive_fraction) if self.train else k % 2 == 0
            source, at = sample, float(sample["frame_times"][k])
            if not positive:
                others = [c for c in window if c["vid"] != sample["vid"]
                          and not (self.negatives == "class" and labels & set(c.get("labels", ())))]
                if not others:
                    notes["unpaired"] += 1
                    positive = True
                else:
                    source = others[int(r.integers(len(others)))]
                    at = float(source["frame_times"][int(r.integers(len(source["frame_times"])))])
            gain = float(r.uniform(1 - self.gain_jitter, 1 + self.gain_jitter)) if self.train and self.gain_jitter > 0 \
                else 1.0
            shares = not positive and bool(visible & set(source.get("labels", ())))
            yield (sample["frames"][k], float(sample["frame_times"][k]), sample["vid"], positive,
                   audio_window(source, at, self.seconds), at, source["vid"], shares, gain, int(r.integers(2**62)))

    def _build(self, spec: tuple) -> dict[str, Any]:
        """The item of a spec of :meth:`_draw` (without ``skipped``)."""
        frame, time, vid, positive, wave, at, audio_vid, shares, gain, seed = spec
        if self.pcm16:  # the stored samples, exactly; the gain is applied on the device
            audio = {"audio": torch.from_numpy(to_pcm16(wave)), "audio_gain": torch.tensor(gain, dtype=torch.float32)}
        else:
            if gain != 1.0:
                wave = wave * np.float32(gain)
            audio = {"audio": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))}
        with torch_seed(seed):
            image = self.transform.fields(frame)
        return {
            **image,
            **audio,
            "label": torch.tensor(int(positive)),
            "shares_label": torch.tensor(shares),
            "time": torch.tensor(time, dtype=torch.float32),
            "audio_time": torch.tensor(at, dtype=torch.float32),
            "vid": vid,
            "audio_vid": audio_vid,
        }
