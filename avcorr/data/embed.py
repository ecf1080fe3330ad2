"""Per-clip inputs for embedding whole clips: several frames and the audio windows centred on them.

A clip is embedded from ``frames`` frame times spread evenly over the part of the clip where a
``seconds``-long audio window centred on the frame fits in the audio (the same rule as the AVC
pairs, :mod:`avcorr.data.avc`); the model's per-frame / per-window embeddings are pooled per clip
by the caller (:func:`avcorr.retrieval.encode_clips`).

Batch dict produced by :func:`collate_clips` (B clips, F = ``frames``, S = image size,
T = ``seconds * sample_rate``)::

    frames   float32 (B, F, 3, S, S)  ImageNet-normalised frames
    audio    float32 (B, F, T)        mono windows centred on the frame times
    times    float32 (B, F)           frame times (s)
    vid      list[str]
    labels   list[tuple[str, ...]]
    video    list[str]                video file of each clip
    audio_path list[str]              file the audio was read from (the wav, else the video)
    skipped  list[(vid, reason)]      clips of this batch that could not be decoded (not in the tensors)

Example:
    >>> ds = ClipEmbedDataset(load_split(root, "test"), frames=3, sample_rate=48000, seconds=1.0, image_size=224)
    >>> batch = collate_clips([ds[0], ds[1]])
    >>> batch["frames"].shape, batch["audio"].shape
    (torch.Size([2, 3, 3, 224, 224]), torch.Size([2, 3, 48000]))
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from . import decode
from ._clip_media import window_frames
from .errors import BadClipError, DecodeError
from .layout import SplitIndex
from .transforms import frame_transform

logger = logging.getLogger(__name__)

__all__ = ["ClipEmbedDataset", "audio_windows", "clip_inputs", "collate_clips", "frame_times", "read_image"]


def frame_times(fps: float, num_frames: int, audio_duration: float, seconds: float, count: int) -> list[float]:
    """``count`` frame times (display-interval centres) spread evenly over the usable part of a clip.

    A frame ``k`` (time ``(k + 0.5) / fps``) is usable when the ``seconds`` window centred on it lies
    inside the audio; when the audio is shorter than one window every frame inside the audio is
    usable (its window is zero-padded by the reader).

    Args:
        fps: frame rate.
        num_frames: frames in the video.
        audio_duration: seconds of audio.
        seconds: audio window length.
        count: how many times (>= 1); times repeat when the clip has fewer usable frames.

    Returns:
        ``count`` increasing times in seconds.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    lo, hi = window_frames(fps, num_frames, audio_duration, seconds)
    ks = np.round(np.linspace(lo, hi, count)) if count > 1 else np.array([round((lo + hi) / 2)])
    return [decode.frame_centre(int(k), fps) for k in ks]


def audio_windows(path: str | Path, count: int, seconds: float, sample_rate: int) -> torch.Tensor:
    """``count`` windows of ``seconds`` spread evenly over an audio file (or a video's audio track).

    Windows are centred at ``linspace(half, duration - half, count)`` (the middle of the file
    when it is shorter than one window, zero-padded).

    Returns:
        float32 (count, round(seconds * sample_rate)).

    Raises:
        DecodeError: naming the file, when it cannot be read.
    """
    info = decode.probe_audio(path)
    half = seconds / 2
    if info.duration <= seconds:
        centres = [info.duration / 2] * count
    else:
        centres = np.linspace(half, info.duration - half, count).tolist() if count > 1 else [info.duration / 2]
    return torch.stack([decode.read_audio(path, c - half, seconds, sample_rate) for c in centres])


def read_image(path: str | Path, transform: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Read a picture file (jpg, png, ...) as RGB and apply ``transform``.

    Returns:
        float32 (3, S, S) for :func:`~avcorr.data.transforms.frame_transform`.

    Raises:
        DecodeError: missing, empty or unreadable file.
    """
    # Pillow, not torchvision.io / OpenCV: their PNG decoders fail in a process that has imported
    # decord, whose bundled zlib 1.2.3 shadows theirs ("libpng error: bad parameters to zlib").
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise DecodeError(p, "no such file")
    if p.stat().st_size == 0:
        raise DecodeError(p, "empty file (0 bytes)")
    try:
        with Image.open(p) as im:
            array = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DecodeError(p, f"not a readable image ({str(e).splitlines()[0][:200]})") from None
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
    return transform(image)


def clip_inputs(video: str | Path, audio_source: str | Path, *, frames: int, seconds: float, sample_rate: int,
                transform: Callable[[torch.Tensor], torch.Tensor], video_backend: str | None = None
                ) -> dict[str, torch.Tensor]:
    """Frames and centred audio windows of one clip.

    Args:
        video: the video file.
        audio_source: the audio file (or the video itself, for its audio track).
        frames: frames per clip (F).
        seconds: audio window length.
        sample_rate: audio rate.
        transform: frame transform (uint8 (3, H, W) -> float (3, S, S)).
        video_backend: decoder backend (None = default).

    Returns:
        ``frames`` float (F, 3, S, S), ``audio`` float (F, T), ``times`` float (F,).

    Raises:
        BadClipError: naming the file, when the clip cannot be decoded.
    """
    v = decode.probe_video(video, backend=video_backend)
    a = decode.probe_audio(audio_source)
    if v.num_frames <= 0 or v.fps <= 0:
        raise DecodeError(video, "no video frames")
    times = frame_times(v.fps, v.num_frames, a.duration, seconds, frames)
    with decode.VideoReader(video, video_backend) as reader:
        pix = reader.get_frames(times)
    imgs = torch.stack([transform(f) for f in pix])
    waves = torch.stack([decode.read_audio(audio_source, t - seconds / 2, seconds, sample_rate) for t in times])
    return {"frames": imgs, "audio": waves, "times": torch.tensor(times, dtype=torch.float32)}


class ClipEmbedDataset(Dataset):
    """Every usable clip of a split once, as F frames and F audio windows.

    Clips without a video file are skipped at construction (listed in ``init_skipped``); a clip
    that fails to decode yields an item with its ``(vid, reason)`` in ``skipped`` and no tensors,
    which :func:`collate_clips` leaves out of the batch - it is never replaced by zeros.

    Args:
        index: the split.
        frames: frames (and audio windows) per clip.
        sample_rate: audio rate the model expects.
        seconds: audio window length the model expects.
        image_size: frame side the model expects.
        video_backend: decoder backend (None = default).
    """

    def __init__(self, index: SplitIndex, *, frames: int = 3, sample_rate: int = 48000, seconds: float = 1.0,
                 image_size: int = 224, video_backend: str | None = None):
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.split = f"{index.root}/{index.split}"
        self.frames, self.sample_rate, self.seconds = frames, sample_rate, seconds
        self.video_backend = video_backend or None
        self.transform = frame_transform(image_size, train=False)
        self.init_skipped: list[tuple[str, str]] = []
        self.clips = []
        for clip in index.clips:
            if clip.video is None:
                self.init_skipped.append((clip.vid, "no video file"))
            else:
                self.clips.append(clip)
        for vid, reason in self.init_skipped:
            logger.warning("%s: skipped clip %s: %s", self.split, vid, reason)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip = self.clips[i]
        audio_source = clip.audio if clip.audio is not None else clip.video
        item: dict[str, Any] = {"vid": clip.vid, "labels": tuple(clip.labels), "video": str(clip.video),
                                "audio_path": str(audio_source)}
        try:
            item.update(clip_inputs(clip.video, audio_source, frames=self.frames, seconds=self.seconds,
                                    sample_rate=self.sample_rate, transform=self.transform,
                                    video_backend=self.video_backend))
        except BadClipError as e:
            item["skipped"] = [(clip.vid, str(e))]
            return item
        item["skipped"] = []
        return item


def collate_clips(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the decodable items of a batch (see the module docstring); failed ones go to ``skipped``."""
    good = [b for b in batch if "frames" in b]
    out: dict[str, Any] = {"skipped": [s for b in batch for s in b["skipped"]]}
    if good:
        out["frames"] = torch.stack([b["frames"] for b in good])
        out["audio"] = torch.stack([b["audio"] for b in good])
        out["times"] = torch.stack([b["times"] for b in good])
    for key in ("vid", "labels", "video", "audio_path"):
        out[key] = [b[key] for b in good]
    return out
