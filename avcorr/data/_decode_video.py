"""Video backends behind :class:`avcorr.data.decode.VideoReader`: torchcodec and decord.

Each backend opens one file and answers "which frames are displayed at these times" with the
same convention: times are seconds from the start of the video stream (its first frame is shown
at 0), and the frame displayed at ``t`` is the one whose ``[start, start + duration)`` holds ``t``.
"""

from __future__ import annotations

import logging
import re
from typing import Sequence

import numpy as np
import torch

from .errors import DecodeError

logger = logging.getLogger(__name__)

# Added to requested times so a time exactly on a frame boundary picks the frame starting there
# despite float rounding (e.g. 0.007 + 0.1 vs a pts of 0.107).
_EPS = 1e-6

_CPP_PREFIX = re.compile(r"^.*?\.(?:cpp|cc|h):\d+:?,?\s*")


def library_reason(exc: BaseException) -> str:
    """A one-line reason from a decoding library's exception, without C++ source locations."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _CPP_PREFIX.sub("", text)
    return text[:300]


def import_torchcodec():
    """Import ``torchcodec.decoders`` or raise an ImportError naming the package."""
    try:
        from torchcodec import decoders
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "avcorr needs the `torchcodec` package to decode this media: pip install torchcodec"
        ) from exc
    return decoders


def import_decord():
    """Import ``decord`` or raise an ImportError naming the package."""
    try:
        import decord
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the 'decord' video backend needs the `decord` package: pip install decord "
            "(or use backend='torchcodec')"
        ) from exc
    return decord


def container_header(path: str):
    """torchcodec's header-only description of a container; DecodeError when it cannot be read."""
    decoders = import_torchcodec()
    try:
        return decoders.get_container_metadata(path)
    except (RuntimeError, ValueError) as exc:
        raise DecodeError(path, f"not a readable media file ({library_reason(exc)})") from exc


class TorchcodecVideo:
    """One video file opened with torchcodec's ``VideoDecoder``.

    Opens in ``seek_mode="approximate"`` (header only, no scan of the file) unless told otherwise
    or unless the header does not record the video stream's own duration and frame count
    (Matroska, WebM: then the file is scanned once, so that ``duration`` is the video's and not
    the container's, which a longer audio track extends), checks that every returned frame covers
    its requested time, and reopens the file in ``"exact"`` mode (one scan of the packets) when it
    does not, e.g. for variable-frame-rate files.

    Args:
        path: the video file.
        seek_mode: "approximate" or "exact".
        num_threads: ffmpeg decoding threads (1 is fastest for single frames).
    """

    def __init__(self, path: str, seek_mode: str = "approximate", num_threads: int = 1):
        if seek_mode not in ("approximate", "exact"):
            raise ValueError(f"seek_mode must be 'approximate' or 'exact', got {seek_mode!r}")
        self.path = path
        self.num_threads = num_threads
        self._open(seek_mode)

    def _open(self, seek_mode: str) -> None:
        decoders = import_torchcodec()
        try:
            self._dec = decoders.VideoDecoder(
                self.path, seek_mode=seek_mode, num_ffmpeg_threads=self.num_threads)
        except ValueError as exc:
            if "video stream" in str(exc).lower():
                raise DecodeError(self.path, "no video stream") from exc
            raise DecodeError(self.path, f"cannot open video ({library_reason(exc)})") from exc
        except RuntimeError as exc:
            raise DecodeError(self.path, f"not a readable video file ({library_reason(exc)})") from exc
        m = self._dec.metadata
        if seek_mode == "approximate" and (m.duration_seconds_from_header is None or not m.num_frames_from_header):
            # Matroska/WebM record no per-stream duration or frame count: the numbers torchcodec
            # gives then are the container's, which include an audio track that outlasts the video
            # (tens of ms of Opus/AAC tail are normal). Scan the packets once (a few ms for a
            # 10 s clip) so that ``duration`` is the decodable video's.
            self._open("exact")
            return
        self.seek_mode = seek_mode
        self.begin = float(m.begin_stream_seconds or 0.0)
        end = m.end_stream_seconds
        self.num_frames = int(m.num_frames or 0)
        if end is None or self.num_frames <= 0 or end <= self.begin:
            raise DecodeError(self.path, "video stream has no frames (zero length)")
        self.duration = round(float(end) - self.begin, 9)  # drop float noise (1.007 - 0.007)
        self.fps = self.num_frames / self.duration
        self.height, self.width = int(m.height), int(m.width)

    def get_frames(self, times: Sequence[float]) -> torch.Tensor:
        """Frames displayed at ``times`` (seconds from the stream start, already validated).

        Returns:
            uint8 tensor of shape (N, 3, H, W).
        """
        if self.seek_mode == "approximate":
            wanted = self._pts(times)
            try:
                batch = self._dec.get_frames_played_at(wanted)
            except (IndexError, RuntimeError) as exc:
                # The header-based index can point past the real frames (truncated file, a
                # container duration longer than the video); the exact index knows better.
                logger.debug("%s: approximate seek failed (%s); rescanning", self.path, exc)
                batch = None
            if batch is not None and _covers(batch, wanted):
                return batch.data
            logger.debug("%s: approximate seek missed; reopening in exact mode", self.path)
            header_duration = self.duration
            self._open("exact")
            late = [t for t in times if t >= self.duration]
            if late:
                raise DecodeError(
                    self.path, f"no frame at {late[0]:.4f} s: the decodable video ends at "
                               f"{self.duration:.4f} s although the header says "
                               f"{header_duration:.4f} s; the file may be truncated")
        wanted = self._pts(times)
        try:
            return self._dec.get_frames_played_at(wanted).data
        except (IndexError, RuntimeError, ValueError) as exc:
            raise DecodeError(
                self.path, f"cannot decode the frames at {_fmt_times(times)} s "
                           f"({library_reason(exc)}); the file may be truncated or corrupt") from exc

    def _pts(self, times: Sequence[float]) -> list[float]:
        """Stream times for ``times`` in [0, duration), nudged forward by < _EPS, never past the end."""
        return [self.begin + t + min(_EPS, (self.duration - t) / 2) for t in times]


def _covers(batch, wanted: Sequence[float]) -> bool:
    """Whether each returned frame's [pts, pts + duration) holds its requested time."""
    pts = batch.pts_seconds.tolist()
    dur = batch.duration_seconds.tolist()
    for p, d, w in zip(pts, dur, wanted):
        if p > w + _EPS:
            return False
        if d > 0 and w >= p + d + _EPS:
            return False
    return True


def _fmt_times(times: Sequence[float]) -> str:
    shown = ", ".join(f"{t:.3f}" for t in list(times)[:5])
    return shown + (", ..." if len(times) > 5 else "")


class DecordVideo:
    """One video file opened with decord's ``VideoReader`` (one thread, CPU).

    decord duplicates frames it cannot decode unless told otherwise; ``fault_tol`` is set so that
    any such frame raises instead.

    Args:
        path: the video file.
        num_threads: decoding threads.
    """

    def __init__(self, path: str, num_threads: int = 1):
        decord = import_decord()
        self.path = path
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads, fault_tol=1e-9)
            n = len(self._vr)
            ts = self._vr.get_frame_timestamp(list(range(n)))
        except (decord.DECORDError, RuntimeError, AssertionError, ValueError) as exc:
            reason = library_reason(exc)
            if "video stream" in reason.lower():
                raise DecodeError(path, "no video stream") from exc
            raise DecodeError(path, f"not a readable video file ({reason})") from exc
        if n <= 0:
            raise DecodeError(path, "video stream has no frames (zero length)")
        ts = np.asarray(ts, dtype=np.float64).reshape(n, 2)
        self._starts = ts[:, 0]
        self.begin = 0.0
        self.num_frames = n
        self.duration = float(ts[-1, 1])
        if not self.duration > 0:
            raise DecodeError(path, "video stream has no duration (zero length)")
        self.fps = n / self.duration
        self._size: tuple[int, int] | None = None

    @property
    def height(self) -> int:
        return self._frame_size()[0]

    @property
    def width(self) -> int:
        return self._frame_size()[1]

    def _frame_size(self) -> tuple[int, int]:
        if self._size is None:  # decord has no size query: decode the first frame once
            self._size = tuple(self._batch([0]).shape[2:])
        return self._size

    def _batch(self, indices: list[int]) -> torch.Tensor:
        decord = import_decord()
        try:
            arr = self._vr.get_batch(indices).asnumpy()
        except (decord.DECORDError, RuntimeError) as exc:
            raise DecodeError(
                self.path, f"cannot decode frames {indices[:5]} ({library_reason(exc)}); "
                           "the file may be truncated or corrupt") from exc
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def get_frames(self, times: Sequence[float]) -> torch.Tensor:
        """Frames displayed at ``times`` (seconds from the stream start, already validated).

        Returns:
            uint8 tensor of shape (N, 3, H, W).
        """
        idx = np.searchsorted(self._starts, np.asarray(times, np.float64) + _EPS, side="right") - 1
        idx = np.clip(idx, 0, self.num_frames - 1).tolist()
        frames = self._batch(idx)
        self._size = tuple(frames.shape[2:])
        return frames
