"""Thorough decoding checks of one media file, for ``validate(decode=True)``.

Reading a header says little: a file cut in the middle of its data or with bytes overwritten keeps a
good header, and its damage shows only when the frames or samples behind it are decoded. These checks
decode what the datasets and commands will read, and more:

* a video: the frames at the start, the middle and the end, read the way the datasets read them
  (:class:`~avcorr.data.decode.VideoReader`); then every frame once, in order (a pass costs about as
  much as three seeks, ~0.1 s for 10 s of 426x240 H.264), counted against the frame count its header
  declares;
* an audio file or a video's audio track: every sample, in windows of :data:`AUDIO_CHUNK_S`, with
  NaN/Inf checks, counted against the length its header declares.

Each check raises :class:`~avcorr.data.errors.DecodeError` naming the file and the first failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import decode
from ._decode_video import import_torchcodec, library_reason
from .errors import DecodeError

__all__ = ["AUDIO_CHUNK_S", "VideoCheck", "check_audio", "check_video"]

AUDIO_CHUNK_S = 60.0
"""Seconds of audio decoded per read while checking (bounds the memory a long file needs)."""

_SHORT_AUDIO_S = 0.1  # decoded audio may fall short of its header by this much (codec padding)


@dataclass(frozen=True)
class VideoCheck:
    """What a checked video holds.

    Args:
        duration: seconds of decodable video.
        num_frames: frames decoded.
        has_audio: whether the container has an audio track.
    """

    duration: float
    num_frames: int
    has_audio: bool


def check_video(path: str | Path) -> VideoCheck:
    """Decode a video's frames: at its start, middle and end by seeking, then every one in order.

    Args:
        path: the video file.

    Returns:
        the :class:`VideoCheck`.

    Raises:
        DecodeError: the file cannot be opened, a frame cannot be decoded, or fewer frames decode
            than the header declares (a truncated file).
    """
    header = decode.probe_video(path)
    p = str(path)
    with decode.VideoReader(p) as reader:
        n = reader.num_frames
        reader.get_frames([decode.frame_centre(k, reader.fps) for k in sorted({0, n // 2, n - 1})])
        duration = reader.duration
    count = _decode_every_frame(p)
    if count < header.num_frames:
        raise DecodeError(p, f"only {count} of the {header.num_frames} frames its header declares can be decoded; "
                             "the file may be truncated")
    return VideoCheck(duration=duration, num_frames=count, has_audio=header.has_audio)


def _decode_every_frame(path: str) -> int:
    """Decode every frame of the video stream in order; the number decoded."""
    decoders = import_torchcodec()
    try:
        dec = decoders.VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1)
    except (RuntimeError, ValueError) as exc:
        raise DecodeError(path, f"cannot open the video for a full pass ({library_reason(exc)})") from exc
    total = int(dec.metadata.num_frames or 0)
    for k in range(total):  # one frame at a time: in order, ~15x faster than get_frames_in_range
        try:
            dec.get_frame_at(k)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise DecodeError(path, f"frame {k} of {total} cannot be decoded ({library_reason(exc)}); "
                                    "the file is corrupt or truncated") from exc
    return total


def check_audio(path: str | Path) -> float:
    """Decode every sample of an audio file, or of a video's audio track.

    Args:
        path: the audio file (or video file).

    Returns:
        the decoded duration in seconds.

    Raises:
        DecodeError: no audio, a window that cannot be decoded, NaN/Inf samples, or audio that ends
            well before the length its header declares (a truncated file).
    """
    p = str(path)
    info = decode.probe_audio(p)
    decoded = 0
    start = 0.0
    while start < info.duration:
        try:
            wave = decode.read_audio(p, start, AUDIO_CHUNK_S, pad=False)
        except DecodeError as exc:
            if start == 0:
                raise
            where = f"the window from {start:.0f} s" if "window" in exc.reason else f"{start:.0f} s in"
            raise DecodeError(p, f"{exc.reason} ({where})") from exc
        decoded += wave.numel()
        if wave.numel() < round(AUDIO_CHUNK_S * info.sample_rate) - 1:
            break
        start += AUDIO_CHUNK_S
    seconds = decoded / info.sample_rate
    if seconds < info.duration - _SHORT_AUDIO_S:
        raise DecodeError(p, f"the audio ends at {seconds:.3f} s although its header says {info.duration:.3f} s; "
                             "the file may be truncated")
    return seconds
