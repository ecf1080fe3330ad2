"""Audio-visual correspondence (AVC) pairs, as in "Objects that Sound" (Arandjelović & Zisserman 2018).

A positive is a video frame and the ``seconds`` of audio centred on it, from the same clip; a
negative is the same frame with audio of a DIFFERENT clip (no class labels are used; the
``negatives="class"`` option draws the negative from a clip with no shared label, which uses the
labels and is kept only as an explicitly named option). Following the paper's note on shortcuts,
every audio window - positive or negative - is centred on a frame time of the clip it comes from,
so alignment with frame boundaries tells nothing about the label.

Batch dict produced by :func:`collate_pairs` (B = batch size, S = image size, T = seconds * rate)::

    image      float32 (B, 3, S, S)  ImageNet-normalised frame; with ``device_transforms``
               uint8 (B, 3, S, S)    the cropped frame, and
    image_jitter float32 (B, 3)      its colour jitter and flip, which
                                     :func:`~avcorr.data.transforms.device_frames` applies on the
                                     device with the normalisation (the AVC task's ``device_transform``)
    audio      float32 (B, T)        mono waveform at ``sample_rate``; from a stream of int16 shards
               int16 (B, T)          with ``device_transforms``: the stored samples (x 32768), and
    audio_gain float32 (B,)          their gain jitter, which :func:`~avcorr.data.transforms.device_audio`
                                     applies on the device (the AVC task's ``device_transform``)
    label      int64   (B,)          1 = the audio belongs to the frame's clip, 0 = it does not
    shares_label bool  (B,)          a negative whose audio clip has a label of an object drawn in the
                                     frame's clip: its own labels, and with the split's visible.json its
                                     silent objects' too (what a model that knows only classes cannot reject)
    time       float32 (B,)          the frame's time in its clip (s)
    audio_time float32 (B,)          the centre of the audio window in its clip (s)
    vid        list[str]             clip of the frame
    audio_vid  list[str]             clip of the audio
    skipped    list[(vid, reason)]   clips skipped while drawing this batch (see SkipLog)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from . import decode
from ._clip_media import ClipFailed, ClipMedia, audio_source, draw_with_retries, window_frames
from .errors import BadClipError
from .layout import Clip, SplitIndex
from .transforms import frame_transform

logger = logging.getLogger(__name__)

__all__ = ["AVCPairDataset", "collate_pairs"]


class AVCPairDataset(Dataset):
    """Positive / negative audio-frame pairs drawn from a split.

    Training draws fresh random pairs every epoch (``pairs_per_clip`` per clip); evaluation draws a
    fixed, seeded set (half positives) so that every evaluation sees the same pairs.

    Args:
        index: the split, from :func:`avcorr.data.layout.load_split`.
        sample_rate: audio is resampled to this rate.
        seconds: audio window length.
        image_size: frame side after the transform.
        train: random (training) or deterministic (evaluation) pairs and transforms.
        augment: training augmentations on/off.
        negatives: ``"clip"`` (any other clip, label-free) or ``"class"`` (a clip sharing no label).
        positive_fraction: probability of a positive in training (evaluation alternates).
        pairs_per_clip: examples per clip per pass.
        gain_jitter: training only, random audio gain in ``[1 - g, 1 + g]``.
        seed: seed of the evaluation pairs.
        video_backend: decoder (``None`` = default).
        max_bad_retries: consecutive bad clips tolerated while drawing one example before giving up.
        device_transforms: leave the colour jitter, the flip and the normalisation of the frames to the
            device (uint8 ``image`` and ``image_jitter`` items; see the module docstring).
        open_readers: most video files kept open per worker process (an LRU cache; reopening a file
            costs more than decoding one frame, see experiments/RESULTS.md); ``None`` (default) = as
            many as a 1 GiB memory estimate per process allows (see ``ClipMedia``: every clip of a
            small dataset stays open, which makes later epochs 2-3x faster); 0 = reopen every time.
    """

    def __init__(self, index: SplitIndex, *, sample_rate: int = 48000, seconds: float = 1.0, image_size: int = 224,
                 train: bool = True, augment: bool = True, negatives: str = "clip", positive_fraction: float = 0.5,
                 pairs_per_clip: int = 1, gain_jitter: float = 0.0, seed: int = 0, video_backend: str | None = None,
                 max_bad_retries: int = 20, open_readers: int | None = None, device_transforms: bool = False):
        if negatives not in ("clip", "class"):
            raise ValueError(f"negatives must be 'clip' or 'class', got {negatives!r}")
        self.split = f"{index.root}/{index.split}"
        self.sample_rate, self.seconds, self.train = sample_rate, seconds, train
        self.negatives, self.positive_fraction = negatives, positive_fraction
        self.pairs_per_clip, self.gain_jitter, self.seed = max(1, pairs_per_clip), gain_jitter, seed
        self.video_backend = video_backend or None
        self.max_bad_retries = max_bad_retries
        self.transform = frame_transform(image_size, train=train, augment=augment, on_device=device_transforms)
        self.init_skipped: list[tuple[str, str]] = []
        self.clips: list[Clip] = []
        for clip in index.clips:
            if clip.video is None:
                self.init_skipped.append((clip.vid, "no video file"))
            elif negatives == "class" and not clip.labels:
                self.init_skipped.append((clip.vid, "no label (negatives='class' needs labels)"))
            else:
                self.clips.append(clip)
        for vid, reason in self.init_skipped:
            logger.warning("%s: skipped clip %s: %s", self.split, vid, reason)
        if len(self.clips) < 2:
            raise BadClipError(self.split, f"needs at least 2 usable clips with video, found {len(self.clips)} "
                                           f"({len(self.init_skipped)} skipped)")
        self._visible = index.visible or {}  # id -> labels of every object drawn (visible.json), else own labels
        self._media = ClipMedia(self.video_backend, open_readers)
        self._bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.clips) * self.pairs_per_clip

    def _sample_time(self, clip: Clip, rng: np.random.Generator) -> float:
        """A frame time (its display-interval centre) whose audio window fits in the clip's audio."""
        fps, n_frames, a_dur = self._media.info(clip)
        lo, hi = window_frames(fps, n_frames, a_dur, self.seconds)
        return decode.frame_centre(int(rng.integers(lo, hi + 1)), fps)

    def _pick_negative(self, ci: int, rng: np.random.Generator) -> int:
        n = len(self.clips)
        labels = set(self.clips[ci].labels)
        for _ in range(100):
            j = int(rng.integers(0, n - 1))
            j = j + 1 if j >= ci else j
            if self.clips[j].vid in self._bad:
                continue
            if self.negatives == "class" and labels & set(self.clips[j].labels):
                continue
            return j
        raise RuntimeError(f"{self.split}: could not find a negative clip for {self.clips[ci].vid} "
                           f"(negatives={self.negatives!r}: too few clips of other classes or too many bad clips)")

    def _read_audio(self, clip: Clip, t: float) -> torch.Tensor:
        try:
            wave = decode.read_audio(audio_source(clip), t - self.seconds / 2, self.seconds, self.sample_rate)
        except BadClipError as e:  # includes NaN/Inf samples in the window (checked by read_audio)
            raise ClipFailed(clip.vid, str(e)) from e
        return wave

    def _make(self, ci: int, positive: bool, rng: np.random.Generator) -> dict[str, Any]:
        clip = self.clips[ci]
        t = self._sample_time(clip, rng)
        frame = self._media.frames(clip, [t])[0]
        if positive:
            audio_clip, at = clip, t
        else:
            audio_clip = self.clips[self._pick_negative(ci, rng)]
            at = self._sample_time(audio_clip, rng)
        wave = self._read_audio(audio_clip, at)
        if self.train and self.gain_jitter > 0:
            wave = wave * float(rng.uniform(1 - self.gain_jitter, 1 + self.gain_jitter))
        return {
            **self.transform.fields(frame),
            "audio": wave,
            "label": torch.tensor(int(positive)),
            "shares_label": torch.tensor(not positive and bool(set(self._visible.get(clip.vid, clip.labels))
                                                                & set(audio_clip.labels))),
            "time": torch.tensor(t, dtype=torch.float32),
            "audio_time": torch.tensor(at, dtype=torch.float32),
            "vid": clip.vid,
            "audio_vid": audio_clip.vid,
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self.clips)
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            ci = i % n
            positive = bool(rng.random() < self.positive_fraction)
        else:
            rng = np.random.default_rng([self.seed, i])
            ci = i // self.pairs_per_clip
            positive = (i % self.pairs_per_clip) % 2 == 0
        return draw_with_retries(
            lambda j: self._make(j, positive, rng), lambda j: self.clips[j].vid, n, ci,
            (lambda j: int(rng.integers(0, n))) if self.train else (lambda j: (j + 1) % n),
            self._bad, max_bad_retries=self.max_bad_retries, name=self.split)


def collate_pairs(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate :class:`AVCPairDataset` items (see the module docstring for the batch layout)."""
    out = default_collate([{k: v for k, v in b.items() if k not in ("vid", "audio_vid", "skipped")} for b in batch])
    out["vid"] = [b["vid"] for b in batch]
    out["audio_vid"] = [b["audio_vid"] for b in batch]
    out["skipped"] = [s for b in batch for s in b["skipped"]]
    return out
