"""One clip as a shard sample: its frames and audio decoded once, by the readers the datasets use.

``python -m data_tools.make_shards`` runs :func:`clip_members` for every clip (in worker processes)
and :func:`add_sample` to append the result to a tar shard; :mod:`avcorr.data.shards` describes
the format and reads it back.

What a sample holds (see :class:`ShardOptions`):
    * ``frames_per_clip`` frames at evenly spaced frame centres of the usable frame range: the frames
      whose centred ``window``-second audio window lies inside the audio (the rule of
      :class:`~avcorr.data.avc.AVCPairDataset`, which copes with audio longer or shorter than the
      video), read with :class:`~avcorr.data.decode.VideoReader`; then resized so the short side is
      ``size`` and centre-cropped to ``size x size`` (:func:`~avcorr.data.transforms.resize_centre_crop`,
      the evaluation transform's geometry); stored as JPEG or as raw uint8.
    * the audio of the whole clip, or of ``seconds`` seconds around the middle of the usable frames,
      mono at ``sample_rate`` (:func:`~avcorr.data.decode.read_audio`), stored as int16, float16 or
      float32.
    * the clip's labels and boxes (as in ``vid2genre.json`` / ``boxes.json``), the labels of every object
      drawn in its frames when the split has a ``visible.json`` (``visible``), and every time needed to
      cut an audio window around a frame.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import decode
from ._clip_media import ClipFailed, ClipMedia, audio_source, window_frames
from .errors import BadClipError
from .layout import Clip
from .transforms import centre_crop_geometry, resize_centre_crop

__all__ = ["AUDIO_DTYPES", "FRAME_FORMATS", "ShardOptions", "add_sample", "clip_members", "shard_frame_indices"]

FRAME_FORMATS = ("jpeg", "raw")
AUDIO_DTYPES = ("int16", "float16", "float32")


@dataclass(frozen=True)
class ShardOptions:
    """What :func:`clip_members` stores of a clip.

    Args:
        frames_per_clip: frames per clip (N).
        size: side of the stored square frames, in pixels.
        sample_rate: audio rate in Hz (the training rate).
        seconds: audio seconds kept per clip; None = the whole audio.
        window: the audio window (s) a frame is paired with in training: frames are taken where such a
            window centred on them fits in the audio (and in the kept ``seconds``).
        format: ``"jpeg"`` (one ``.jpg`` per frame) or ``"raw"`` (one uint8 ``.npy``, bit-exact).
        quality: JPEG quality (1-100).
        audio_dtype: ``"int16"`` (exact when the source is 16-bit mono PCM at ``sample_rate``; clipped to
            [-1, 1)), ``"float16"`` or ``"float32"`` (exact).
    """

    frames_per_clip: int = 10
    size: int = 224
    sample_rate: int = 48000
    seconds: float | None = None
    window: float = 1.0
    format: str = "jpeg"
    quality: int = 90
    audio_dtype: str = "int16"

    def __post_init__(self) -> None:
        if self.frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be >= 1, got {self.frames_per_clip}")
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if self.sample_rate < 1:
            raise ValueError(f"sample_rate must be >= 1, got {self.sample_rate}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"seconds must be a positive number, got {self.seconds}")
        if not (math.isfinite(self.window) and self.window >= 0):
            raise ValueError(f"window must be >= 0 seconds, got {self.window}")
        if self.format not in FRAME_FORMATS:
            raise ValueError(f"format must be one of {FRAME_FORMATS}, got {self.format!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")
        if self.audio_dtype not in AUDIO_DTYPES:
            raise ValueError(f"audio_dtype must be one of {AUDIO_DTYPES}, got {self.audio_dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (for the manifest)."""
        return asdict(self)


def shard_frame_indices(fps: float, num_frames: int, audio_duration: float, count: int, window: float,
                        seconds: float | None = None) -> tuple[list[int], float]:
    """The frames a shard sample keeps, and where its audio starts.

    The usable frames are :func:`~avcorr.data._clip_media.window_frames`'s ``[lo, hi]``. With
    ``seconds``, the audio kept is the ``seconds`` around the middle of that range (moved inside the
    audio when it can be) and the range shrinks to the frames whose window fits in it (else the frames
    whose centre is in it, else the middle frame). ``count`` indices are then the centres of ``count``
    equal parts of the range (repeats when the range has fewer frames).

    Args:
        fps: the video's frame rate.
        num_frames: frames in the video.
        audio_duration: seconds of audio.
        count: frames wanted.
        window: the training audio window (s).
        seconds: audio seconds kept; None = all.

    Returns:
        ``(indices, audio_start)``: ``count`` frame indices, ascending, and the start (s) of the kept audio.
    """
    lo, hi = window_frames(fps, num_frames, audio_duration, window)
    start = 0.0
    if seconds is not None:
        mid = (decode.frame_centre(lo, fps) + decode.frame_centre(hi, fps)) / 2
        start = min(max(mid - seconds / 2, 0.0), max(audio_duration - seconds, 0.0))
        end = min(start + seconds, audio_duration)
        a = max(lo, math.ceil((start + window / 2) * fps - 0.5))
        b = min(hi, math.floor((end - window / 2) * fps - 0.5))
        if b < a:
            a = max(lo, math.ceil(start * fps - 0.5))
            b = min(hi, math.floor(end * fps - 0.5))
        if b < a:
            a = b = min(max(round(mid * fps - 0.5), lo), hi)
        lo, hi = a, b
    span = hi - lo + 1
    return [lo + (2 * i + 1) * span // (2 * count) for i in range(count)], start


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _audio_array(wave: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16)
    return wave.astype(dtype)


def _jpeg(frame: np.ndarray, quality: int, vid: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid input
        raise ClipFailed(vid, "JPEG encoding failed")
    return buf.tobytes()


def _relative(path: Path | None, root: Path | None) -> str | None:
    if path is None:
        return None
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def clip_members(clip: Clip, options: ShardOptions, *, root: str | Path | None = None,
                 label_indices: list[int] | None = None,
                 visible: Sequence[str] | None = None) -> list[tuple[str, bytes]]:
    """Decode one clip into the members of its shard sample, ``(name, bytes)`` in writing order.

    Names are ``<vid>.json``, then ``<vid>.frames.npy`` (raw) or ``<vid>.000.jpg`` ... (jpeg),
    then ``<vid>.audio.npy``; see :mod:`avcorr.data.shards`.

    Args:
        clip: a clip with a video file (its audio comes from its wav, else from the video's track).
        options: what to store.
        root: the dataset root; source paths in the json are relative to it.
        label_indices: the clip's class indices in the split's class list (stored beside the labels).
        visible: the labels of every object drawn in the clip's frames
            (:meth:`~avcorr.data.layout.SplitIndex.visible_labels`), stored as ``visible``; None (a split
            without ``visible.json``) stores nothing, so such samples stay as they were.

    Returns:
        the members.

    Raises:
        BadClipError: the clip has no video, or its media cannot be decoded; ``reason`` names the file
            and the problem.
    """
    if clip.video is None:
        raise BadClipError(clip.vid, "no video file")
    try:
        return _members(clip, options, ClipMedia(open_readers=0), root, label_indices, visible)
    except ClipFailed as e:  # the reader's own error when there is one (it names the file)
        if isinstance(e.__cause__, BadClipError):
            raise e.__cause__ from None
        raise BadClipError(clip.video, e.reason.removeprefix(f"{clip.video}: ")) from e


def _members(clip: Clip, options: ShardOptions, media: ClipMedia, root: str | Path | None,
             label_indices: list[int] | None, visible: Sequence[str] | None) -> list[tuple[str, bytes]]:
    fps, num_frames, audio_duration = media.info(clip)
    indices, start = shard_frame_indices(fps, num_frames, audio_duration, options.frames_per_clip, options.window,
                                         options.seconds)
    times = [decode.frame_centre(k, fps) for k in indices]
    frames = media.frames(clip, times)  # uint8 (N, 3, H, W)
    height, width = int(frames.shape[2]), int(frames.shape[3])
    hwc = frames.permute(0, 2, 3, 1).numpy()
    fitted = np.stack([resize_centre_crop(np.ascontiguousarray(f), options.size) for f in hwc])
    source = audio_source(clip)
    wave = decode.read_audio(source, start, options.seconds, options.sample_rate).numpy()  # BadClipError
    nh, nw, top, left = centre_crop_geometry(height, width, options.size)
    meta = {
        "vid": clip.vid,
        "labels": list(clip.labels),
        "label_indices": label_indices,
        "boxes": [list(b) for b in clip.boxes],
        "crop": [left / nw, top / nh, (left + options.size) / nw, (top + options.size) / nh],
        "fps": fps,
        "num_frames": num_frames,
        "video_size": [width, height],
        "frame_indices": indices,
        "frame_times": times,
        "frames": {"count": len(indices), "size": options.size, "format": options.format},
        "audio_duration": audio_duration,
        "audio_start": start,
        "audio_samples": int(wave.shape[0]),
        "sample_rate": options.sample_rate,
        "audio_dtype": options.audio_dtype,
        "source": {"video": _relative(clip.video, Path(root) if root else None),
                   "audio": _relative(source, Path(root) if root else None)},
    }
    if visible is not None:
        meta["visible"] = list(visible)
    members = [(f"{clip.vid}.json", json.dumps(meta, sort_keys=True).encode())]
    if options.format == "raw":
        members.append((f"{clip.vid}.frames.npy", _npy(np.ascontiguousarray(fitted))))
    else:
        members += [(f"{clip.vid}.{i:03d}.jpg", _jpeg(f, options.quality, clip.vid)) for i, f in enumerate(fitted)]
    members.append((f"{clip.vid}.audio.npy", _npy(_audio_array(wave, options.audio_dtype))))
    return members


def add_sample(tar: tarfile.TarFile, members: list[tuple[str, bytes]]) -> int:
    """Append one sample's members to an open tar, with fixed headers (mtime 0, owner 0, mode 0644).

    The same members always give the same bytes, so a shard's checksum depends only on its content.

    Args:
        tar: opened for writing.
        members: from :func:`clip_members`.

    Returns:
        the bytes of payload added.
    """
    total = 0
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))
        total += len(data)
    return total
