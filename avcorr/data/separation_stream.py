"""Sound-of-Pixels mixtures drawn inside a stream of shards (``data.storage="shards"``).

The streaming counterpart of :class:`~avcorr.data.separation.SeparationDataset`, with the same items
(collate them with :func:`~avcorr.data.separation.collate_mixtures`). Each clip of a worker's stream is
the first source of ``mixes_per_clip`` mixtures; its N - 1 partners are other clips among the last
``mix_buffer`` clips of the stream (half of them read ahead), of classes not yet in the mixture when
the buffer holds such clips (else any other clip; counted and logged), as the per-sample path's
rule. For each source:

* the window of ``num_samples`` samples lies inside the stored audio (the whole clip unless the shards
  were made with ``--seconds``): training draws its start, evaluation centres it; audio shorter than the
  window is read from its start and zero-padded at the tail, and ``lengths`` says how much is real;
* its ``frames_per_clip`` frames are the stored frames nearest to the times the per-sample path would
  decode (``frame_stride`` apart around the middle of the real audio in the window): shards hold only
  ``--frames-per-clip`` frames of a clip, so make them with at least as many as the model's frames,
  spread over the clip; the same random crop, flip and jitter go to all frames of a source;
* the gain jitter (training) and the ``1 / N`` scaling are the per-sample path's.

Every stored frame of a clip is decoded (a clip serves as a partner in other mixtures, each with its own
window). Training draws from ``(seed, epoch, rank, worker)``; evaluation draws a clip's mixture ``k``
from ``(seed, clip id, k)`` and partners from the clips around it in its evaluation block (its shard, see
:func:`~avcorr.data._shard_stream.evaluation_blocks`), so the same run evaluates the same mixtures every
time, whatever the number of ranks and workers that share the blocks. Epochs, ranks, workers, shuffling and
skipped members are :class:`~avcorr.data._shard_stream.ClipShardStream`'s.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from typing import Any, Iterator

import numpy as np
import torch

from ._shard_stream import ClipShardStream, nearest_frames, torch_seed
from .separation import frame_times, mixture_item, source_frames
from .transforms import frame_transform, to_pcm16

logger = logging.getLogger(__name__)

__all__ = ["SeparationShardStream"]


class SeparationShardStream(ClipShardStream):
    """Mixtures of N clips of a split's shards, drawn inside the stream (see the module docstring).

    Items are those of :class:`~avcorr.data.separation.SeparationDataset`: ``audios`` float32 (N, L),
    ``lengths`` int64 (N,), ``frames`` float32 (N, 3, Tf, S, S), ``label`` int64 (N,) (each source's first
    class index, -1 without a label), ``start`` float32 (N,) (window start in its clip, s), ``vid`` (N ids)
    and ``skipped``.

    Args:
        folder: a split's shard folder (``OUT/<split>`` of make_shards), local or a URL.
        num_mix: N, sources per mixture.
        sample_rate: the model's rate; the shards must hold audio at this rate.
        num_samples: window length in samples (L).
        frames_per_clip: frames per source (Tf).
        frame_stride: seconds between them.
        image_size: frame side after the transform (S).
        train: random (training) or fixed (evaluation) mixtures, windows and transforms.
        augment: training frame augmentations on/off.
        mixes_per_clip: mixtures per clip per pass (each clip is the first source that many times).
        gain_jitter: training only: each source's gain is drawn from ``[1 - g, 1 + g]``.
        seed: seed of the shard order, the buffers and the mixtures.
        shuffle: training shuffle buffers: of clips, and of ``shuffle x mixes_per_clip`` drawn mixtures.
        mix_buffer: clips a worker keeps to draw partners from (at least ``2 N``).
        batch_size: training: each rank's mixtures per epoch are a whole number of these batches.
        rank, world_size: this process's DDP rank and the number of ranks; None = from ``torch.distributed``.
        device_transforms: leave the colour jitter, the flip and the normalisation of the frames to the device
            (uint8 ``frames`` and ``frames_jitter``, as :class:`~avcorr.data.separation.SeparationDataset`'s); with
            shards of int16 audio, the sources travel as int16 too (``audios`` int16 (N, L), exactly the stored
            samples, and ``audio_gain`` float32 (N,), each one's gain x 1/N), scaled on the device by
            :func:`~avcorr.data.transforms.device_audio` (the mixture the task makes there is then the float path's,
            bit for bit).

    Attributes:
        pcm16: whether the sources travel as int16 (``device_transforms`` and int16 shards).

    Raises:
        ShardError: no readable manifest, fewer than N clips, or audio stored at another rate.
    """

    def __init__(self, folder: str, *, num_mix: int = 2, sample_rate: int = 11025, num_samples: int = 65535,
                 frames_per_clip: int = 3, frame_stride: float = 3.0, image_size: int = 224, train: bool = True,
                 augment: bool = True, mixes_per_clip: int = 1, gain_jitter: float = 0.0, seed: int = 0,
                 shuffle: int = 256, mix_buffer: int = 16, batch_size: int = 1, rank: int | None = None,
                 world_size: int | None = None, device_transforms: bool = False):
        if num_mix < 1:
            raise ValueError(f"num_mix must be >= 1, got {num_mix}")
        if num_samples < 1 or sample_rate < 1 or frames_per_clip < 1:
            raise ValueError(f"num_samples, sample_rate and frames_per_clip must be positive, got "
                             f"{num_samples}, {sample_rate}, {frames_per_clip}")
        super().__init__(folder, sample_rate=sample_rate, image_size=image_size, window=None, train=train,
                         per_clip=mixes_per_clip, seed=seed, shuffle=shuffle, buffer=max(int(mix_buffer), 2 * num_mix),
                         batch_size=batch_size, rank=rank, world_size=world_size, min_clips=num_mix)
        kept = self.settings.get("seconds")
        if kept is not None and float(kept) * sample_rate < num_samples:
            logger.warning("%s/manifest.json: the shards keep %s s of audio per clip, the window is %.3g s: windows "
                           "are zero-padded (make the shards without --seconds, or with --seconds %.3g)", self.folder,
                           kept, num_samples / sample_rate, num_samples / sample_rate)
        self.num_mix, self.num_samples = int(num_mix), int(num_samples)
        self.frames_per_clip, self.frame_stride = int(frames_per_clip), float(frame_stride)
        self.mixes_per_clip, self.gain_jitter = self.per_clip, float(gain_jitter)
        self.transform = frame_transform(image_size, train=train, augment=augment, on_device=device_transforms)
        self.pcm16 = self.audio_as_pcm16(device_transforms)

    # -- drawing ----------------------------------------------------------------------------------
    def _partners(self, sample: dict[str, Any], window: deque, r: np.random.Generator,
                  notes: Counter) -> list[dict[str, Any]]:
        """The mixture's clips: ``sample`` and N - 1 other clips of ``window``, of new classes when there are."""
        chosen = [sample]
        for _ in range(self.num_mix - 1):
            vids = {c["vid"] for c in chosen}
            labels = {lab for c in chosen for lab in c.get("labels", ())}
            others = [c for c in window if c["vid"] not in vids]
            if not others:
                where = "a loader worker holds" if self.train else f"the evaluation block of {sample['vid']} holds"
                raise RuntimeError(f"{self.folder}: rank {self.rank}: {where} fewer than {self.num_mix} usable clips "
                                   f"to mix {self.num_mix} sources: make fewer, larger shards (--clips-per-shard)"
                                   + (" or lower data.num_workers" if self.train else ""))
            fresh = [c for c in others if not labels & set(c.get("labels", ()))]
            if not fresh:
                notes["same_class"] += 1
            pool = fresh or others
            chosen.append(pool[int(r.integers(len(pool)))])
        return chosen

    def _draw(self, sample: dict[str, Any], window: deque, rng: np.random.Generator,
              notes: Counter) -> Iterator[tuple]:
        """The clip's ``mixes_per_clip`` mixtures as specs: ``((source, first sample of its window, gain), ...)``
        and the transform seed."""
        for k in range(self.mixes_per_clip):
            r = self.clip_rng(rng, sample["vid"], k)
            sources = []
            for clip in self._partners(sample, window, r, notes):
                spare = int(clip["audio"].shape[0]) - self.num_samples
                s0 = 0 if spare <= 0 else (int(r.integers(0, spare + 1)) if self.train else spare // 2)
                gain = float(r.uniform(1 - self.gain_jitter, 1 + self.gain_jitter)) \
                    if self.train and self.gain_jitter > 0 else 1.0
                sources.append((clip, s0, gain))
            yield tuple(sources), int(r.integers(2**62))

    def _source(self, clip: dict[str, Any], s0: int, gain: float) -> dict[str, Any]:
        """One source of a mixture: its window from sample ``s0`` of the stored audio and its frames."""
        audio, sr = clip["audio"], int(clip["sample_rate"])
        real = max(0, min(self.num_samples, int(audio.shape[0]) - s0))
        wave = np.zeros(self.num_samples, dtype=np.float32)
        wave[:real] = audio[s0:s0 + real]
        start = float(clip.get("audio_start", 0.0)) + s0 / sr
        fps, count = float(clip.get("fps") or 0), int(clip.get("num_frames") or 0)
        times = frame_times(fps, count, start + real / sr / 2, self.frames_per_clip, self.frame_stride) \
            if fps > 0 and count > 0 else [start + real / sr / 2] * self.frames_per_clip
        picks = nearest_frames(clip["frame_times"], times)
        frames = torch.from_numpy(np.ascontiguousarray(clip["frames"][picks])).permute(0, 3, 1, 2)  # (Tf, 3, S, S)
        scale = np.float32(gain / self.num_mix)
        # int16: the stored samples, exactly; the scale is applied on the device, in the same float32 product
        audio = {"audio": torch.from_numpy(to_pcm16(wave)), "audio_gain": torch.tensor(scale)} if self.pcm16 \
            else {"audio": torch.from_numpy(wave * scale)}
        return {**audio, "length": max(1, real), "frames": frames,
                "label": int((clip.get("label_indices") or [-1])[0]) if clip.get("labels") else -1,
                "start": start, "vid": clip["vid"]}

    def _build(self, spec: tuple) -> dict[str, Any]:
        sources, seed = spec
        parts = [self._source(*s) for s in sources]
        with torch_seed(seed):  # one draw per source, in order: each source's frames share one crop
            for p in parts:
                p.update(source_frames(self.transform, p["frames"]))  # (3, Tf, S, S)
        return mixture_item(parts)

    def _report(self, worker: int, notes: Counter) -> None:
        logger.warning("%s: rank %d worker %d: %d mixture source(s) shared a class with another source (no clip of "
                       "a new class among the last %d clips: use a larger buffer or more clips per shard)",
                       self.folder, self.rank, worker, notes["same_class"], self.buffer)
