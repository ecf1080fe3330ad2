"""Mix-and-separate examples for Sound of Pixels (Zhao et al., ECCV 2018).

An example draws N clips of a split - of pairwise different classes when the labels allow it - and,
for each, an audio window of ``num_samples`` samples at ``sample_rate`` (paper: 65535 at 11025 Hz,
~5.9 s) and ``frames_per_clip`` frames around the window's centre (paper: 3 frames, 3 s apart).
Each source is scaled by ``1 / N``; the mixture is their sum (made by the task, on the device, with
the spectrograms). Training draws fresh random clips, windows and gains every epoch; evaluation draws
from a generator seeded with ``(seed, index)``, so every evaluation sees the same mixtures.

Short clips: a clip shorter than the window is read from its start and ZERO-PADDED at the tail
(never looped, which would invent a repetition the clip does not have); ``lengths`` tells how many
samples are real, and the task masks the loss on the spectrogram frames where every source is padding
and scores separation on the real part only. For data whose clips are all shorter than the paper's
window, pick a shorter window (``data.audio.seconds``) rather than train on padding.

Frames: the centre is the middle of the real audio in the window; frame ``k`` is taken at
``centre + (k - frames_per_clip // 2) * frame_stride`` seconds, clamped to the clip's first/last frame.
The same random crop/flip is applied to all frames of a clip (``avcorr.data.transforms``).

Batch dict produced by :func:`collate_mixtures` (B = batch size, N = sources, L = ``num_samples``,
Tf = ``frames_per_clip``, S = image size)::

    audios   float32 (B, N, L)           each source as mixed (gain and 1/N applied); mixture = audios.sum(1);
             int16 (B, N, L)             from a shard stream of int16 shards with ``device_transforms``: each
                                         window's stored samples (x 32768), and
    audio_gain float32 (B, N)            the scale of each (gain x 1/N), applied on the device by the task's
                                         ``device_transform`` (:func:`~avcorr.data.transforms.device_audio`)
    lengths  int64   (B, N)              real (not padded) samples of each source's window
    frames   float32 (B, N, 3, Tf, S, S) ImageNet-normalised frames of each source; with ``device_transforms``
             uint8 (B, N, 3, Tf, S, S)   the cropped frames, and
    frames_jitter float32 (B, N, 3)      each source's colour jitter and flip (one for its Tf frames), which
                                         the separation task's ``device_transform`` applies on the device
                                         with the normalisation (:func:`~avcorr.data.transforms.device_frames`)
    label    int64   (B, N)              class index of each source (first label; -1 without labels)
    start    float32 (B, N)              window start in its clip (s)
    vid      list[list[str]]             clip ids, B lists of N
    skipped  list[(vid, reason)]         clips skipped while drawing this batch
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from . import decode
from ._clip_media import ClipFailed, ClipMedia, audio_source, draw_with_retries
from .errors import BadClipError
from .layout import Clip, SplitIndex
from .transforms import FrameTransform, frame_transform

logger = logging.getLogger(__name__)

__all__ = ["SeparationDataset", "collate_mixtures", "frame_times", "mixture_item", "source_frames"]


def frame_times(fps: float, num_frames: int, centre: float, frames_per_clip: int, stride: float) -> list[float]:
    """Times of the frames shown around ``centre``: frame ``k`` is the one displayed at
    ``centre + (k - frames_per_clip // 2) * stride``, clamped to the video's first / last frame.

    Args:
        fps: the video's frame rate.
        num_frames: its frame count.
        centre: seconds.
        frames_per_clip: how many frames.
        stride: seconds between them.

    Returns:
        ``frames_per_clip`` times (s), each the middle of its frame's display interval.
    """
    times = []
    for k in range(frames_per_clip):
        t = centre + (k - frames_per_clip // 2) * stride
        idx = min(max(int(math.floor(t * fps)), 0), num_frames - 1)
        times.append((idx + 0.5) / fps)
    return times


def source_frames(transform: FrameTransform, frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """The frame entries of one source: its frames through ``transform``, one random draw for all of them.

    Args:
        transform: the dataset's frame transform.
        frames: uint8 (Tf, 3, H, W).

    Returns:
        ``{"frames": float32 (3, Tf, S, S)}``, or with an ``on_device`` transform ``{"frames": uint8
        (3, Tf, S, S), "frames_jitter": float32 (3,)}`` (see :meth:`FrameTransform.fields`).
    """
    fields = transform.fields(frames)
    out = {"frames": fields["image"].transpose(0, 1).contiguous()}
    if "image_jitter" in fields:
        out["frames_jitter"] = fields["image_jitter"]
    return out


def mixture_item(sources: list[dict[str, Any]]) -> dict[str, Any]:
    """A mixture's item (without ``skipped``) from its N sources' entries, in order.

    Args:
        sources: per source ``audio`` (L,), ``length``, the entries of :func:`source_frames`, ``label``,
            ``start``, ``vid`` and, when its audio is int16, ``audio_gain`` (a float32 scalar tensor).

    Returns:
        ``audios`` (N, L), ``lengths`` int64 (N,), ``frames`` (N, 3, Tf, S, S), ``label`` int64 (N,),
        ``start`` float32 (N,), ``vid`` (N ids), and ``frames_jitter`` (N, 3) / ``audio_gain`` (N,) when the
        sources have them.
    """
    item = {
        "audios": torch.stack([s["audio"] for s in sources]),
        "lengths": torch.tensor([s["length"] for s in sources], dtype=torch.int64),
        "frames": torch.stack([s["frames"] for s in sources]),
        "label": torch.tensor([s["label"] for s in sources], dtype=torch.int64),
        "start": torch.tensor([s["start"] for s in sources], dtype=torch.float32),
        "vid": [s["vid"] for s in sources],
    }
    for key in ("frames_jitter", "audio_gain"):
        if key in sources[0]:
            item[key] = torch.stack([s[key] for s in sources])
    return item


class SeparationDataset(Dataset):
    """Mixtures of N single-source clips with their frames.

    Args:
        index: the split, from :func:`avcorr.data.layout.load_split`.
        num_mix: N, sources per mixture (>= 1; at least N usable clips needed).
        sample_rate: audio is resampled to this rate (paper: 11025).
        num_samples: window length in samples (paper: 65535).
        frames_per_clip: frames per source (paper: 3).
        frame_stride: seconds between those frames (paper: 3.0, i.e. 24 frames at 8 fps).
        image_size: frame side after the transform.
        train: random (training) or deterministic (evaluation) mixtures, windows and transforms.
        augment: training frame augmentations on/off.
        mixes_per_clip: examples per clip per pass (each clip is the first source that many times).
        gain_jitter: training only: each source's gain is drawn from ``[1 - g, 1 + g]`` (paper: 0.5).
        seed: seed of the evaluation mixtures.
        video_backend: decoder (``None`` = default).
        max_bad_retries: bad clips tolerated while drawing one example before giving up.
        open_readers: most video files kept open per worker (LRU); ``None`` = as many as a
            1 GiB estimate per process allows (see ``ClipMedia``); 0 = reopen every time.
        device_transforms: leave the colour jitter, the flip and the normalisation of the frames to the
            device (uint8 ``frames`` and ``frames_jitter``; see the module docstring).
    """

    def __init__(self, index: SplitIndex, *, num_mix: int = 2, sample_rate: int = 11025, num_samples: int = 65535,
                 frames_per_clip: int = 3, frame_stride: float = 3.0, image_size: int = 224, train: bool = True,
                 augment: bool = True, mixes_per_clip: int = 1, gain_jitter: float = 0.0, seed: int = 0,
                 video_backend: str | None = None, max_bad_retries: int = 20, open_readers: int | None = None,
                 device_transforms: bool = False):
        if num_mix < 1:
            raise ValueError(f"num_mix must be >= 1, got {num_mix}")
        if num_samples < 1 or sample_rate < 1 or frames_per_clip < 1:
            raise ValueError(f"num_samples, sample_rate and frames_per_clip must be positive, got "
                             f"{num_samples}, {sample_rate}, {frames_per_clip}")
        self.split = f"{index.root}/{index.split}"
        self.num_mix, self.sample_rate, self.num_samples = num_mix, sample_rate, num_samples
        self.seconds = num_samples / sample_rate
        self.frames_per_clip, self.frame_stride = frames_per_clip, frame_stride
        self.train, self.mixes_per_clip = train, max(1, mixes_per_clip)
        self.gain_jitter, self.seed = gain_jitter, seed
        self.video_backend = video_backend or None
        self.max_bad_retries = max_bad_retries
        self.transform = frame_transform(image_size, train=train, augment=augment, on_device=device_transforms)
        self.classes = list(index.classes)
        class_index = {c: i for i, c in enumerate(self.classes)}
        self.init_skipped: list[tuple[str, str]] = []
        self.clips: list[Clip] = []
        for clip in index.clips:
            if clip.video is None:
                self.init_skipped.append((clip.vid, "no video file (frames are needed)"))
            else:
                self.clips.append(clip)
        for vid, reason in self.init_skipped:
            logger.warning("%s: skipped clip %s: %s", self.split, vid, reason)
        if len(self.clips) < num_mix:
            raise BadClipError(self.split, f"needs at least {num_mix} usable clips with video to mix {num_mix} "
                                           f"sources, found {len(self.clips)} ({len(self.init_skipped)} skipped)")
        self.labels = [class_index.get(c.labels[0], -1) if c.labels else -1 for c in self.clips]
        self._media = ClipMedia(self.video_backend, open_readers)
        self._bad: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.clips) * self.mixes_per_clip

    # -- drawing -----------------------------------------------------------------------------
    def _partners(self, first: int, rng: np.random.Generator) -> list[int]:
        """N - 1 other usable clips, of classes not yet in the mixture when the labels allow it."""
        chosen = [first]
        n = len(self.clips)
        for _ in range(self.num_mix - 1):
            taken_vids = {self.clips[j].vid for j in chosen}
            taken_labels = {lab for j in chosen for lab in self.clips[j].labels}
            pick = None
            for attempt in range(200):
                j = int(rng.integers(0, n))
                clip = self.clips[j]
                if clip.vid in taken_vids or clip.vid in self._bad:
                    continue
                if attempt < 100 and taken_labels & set(clip.labels):
                    continue  # prefer another class; after 100 draws any other clip will do
                pick = j
                break
            if pick is None:
                free = [j for j in range(n) if self.clips[j].vid not in taken_vids and self.clips[j].vid not in self._bad]
                if not free:
                    raise RuntimeError(f"{self.split}: not enough usable clips to mix {self.num_mix} sources "
                                       f"({len(self._bad)} of {n} clips failed to decode)")
                pick = free[int(rng.integers(0, len(free)))]
            chosen.append(pick)
        return chosen

    def _source(self, ci: int, rng: np.random.Generator) -> dict[str, Any]:
        clip = self.clips[ci]
        fps, n_frames, a_dur = self._media.info(clip)
        spare = a_dur - self.seconds
        if spare > 0:
            start = float(rng.uniform(0.0, spare)) if self.train else spare / 2
        else:
            start = 0.0  # shorter than the window: read from the start, zero-pad the tail
        real = min(self.seconds, a_dur - start)
        length = min(self.num_samples, max(1, int(round(real * self.sample_rate))))
        try:
            wave = decode.read_audio(audio_source(clip), start, self.seconds, self.sample_rate)
        except BadClipError as e:  # includes NaN/Inf samples (checked by read_audio)
            raise ClipFailed(clip.vid, str(e)) from e
        if wave.numel() != self.num_samples:  # read_audio pads to round(seconds * rate)
            wave = torch.nn.functional.pad(wave[: self.num_samples], (0, max(0, self.num_samples - wave.numel())))
        # frame indices are clamped to the video, which may be shorter than its audio
        frames = self._media.frames(
            clip, frame_times(fps, n_frames, start + real / 2, self.frames_per_clip, self.frame_stride))
        if self.train and self.gain_jitter > 0:
            wave = wave * float(rng.uniform(1 - self.gain_jitter, 1 + self.gain_jitter))
        return {
            "audio": wave / self.num_mix,
            "length": length,
            **source_frames(self.transform, frames),  # (3, Tf, S, S)
            "label": self.labels[ci],
            "start": start,
            "vid": clip.vid,
        }

    def _mixture(self, ci: int, rng: np.random.Generator) -> dict[str, Any]:
        """The item whose first source is clip ``ci`` (without ``skipped``); :class:`ClipFailed` on a bad clip."""
        return mixture_item([self._source(j, rng) for j in self._partners(ci, rng)])

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self.clips)
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            ci = i % n
        else:
            rng = np.random.default_rng([self.seed, i])
            ci = i // self.mixes_per_clip
        return draw_with_retries(
            lambda j: self._mixture(j, rng), lambda j: self.clips[j].vid, n, ci,
            (lambda j: int(rng.integers(0, n))) if self.train else (lambda j: (j + 1) % n),
            self._bad, max_bad_retries=self.max_bad_retries, name=self.split, min_usable=self.num_mix,
            wanted=f"no mixture of {self.num_mix} usable clips")


def collate_mixtures(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate :class:`SeparationDataset` items (see the module docstring for the batch layout)."""
    out = default_collate([{k: v for k, v in b.items() if k not in ("vid", "skipped")} for b in batch])
    out["vid"] = [b["vid"] for b in batch]
    out["skipped"] = [s for b in batch for s in b["skipped"]]
    return out
