"""Per-worker media access shared by the clip datasets: an LRU of open video readers and probed facts."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from . import decode
from .errors import BadClipError
from .layout import Clip


class ClipFailed(Exception):
    """A clip could not be used; the dataset skips it and records ``vid`` and ``reason``."""

    def __init__(self, vid: str, reason: str):
        super().__init__(f"{vid}: {reason}")
        self.vid, self.reason = vid, reason


def audio_source(clip: Clip) -> Path:
    """The clip's audio file, or its video (for the audio track) when there is no wav."""
    return clip.audio if clip.audio is not None else clip.video


class ClipMedia:
    """Open readers and ``(fps, num_frames, audio duration)`` facts of clips, per worker process.

    Reopening a file costs more than decoding one frame (see experiments/RESULTS.md), so up to
    ``open_readers`` video readers stay open (least recently used closed first); a forked DataLoader
    worker starts with an empty cache instead of sharing its parent's open files.

    Args:
        video_backend: decoder name (``None`` = default).
        open_readers: readers kept open; 0 = reopen every time.
    """

    def __init__(self, video_backend: str | None = None, open_readers: int = 64):
        self.video_backend = video_backend or None
        self.open_readers = open_readers
        self._readers: OrderedDict[str, decode.VideoReader] = OrderedDict()
        self._pid = os.getpid()
        self._info: dict[str, tuple[float, int, float]] = {}

    def reader(self, clip: Clip) -> decode.VideoReader:
        """An open reader for the clip's video, from this process's LRU cache."""
        if self._pid != os.getpid():
            self._readers, self._pid = OrderedDict(), os.getpid()
        reader = self._readers.get(clip.vid)
        if reader is None:
            reader = decode.VideoReader(clip.video, self.video_backend)
            if self.open_readers > 0:
                self._readers[clip.vid] = reader
                while len(self._readers) > self.open_readers:
                    self._readers.popitem(last=False)[1].close()
        else:
            self._readers.move_to_end(clip.vid)
        return reader

    def drop(self, vid: str) -> None:
        """Forget the reader of a clip that failed (it is reopened if the clip is tried again)."""
        self._readers.pop(vid, None)

    def frames(self, clip: Clip, times: list[float]):
        """uint8 (N, 3, H, W) frames at ``times`` (s); :class:`ClipFailed` when they cannot be decoded."""
        try:
            return self.reader(clip).get_frames(times)
        except BadClipError as e:
            self.drop(clip.vid)
            raise ClipFailed(clip.vid, str(e)) from e

    def info(self, clip: Clip) -> tuple[float, int, float]:
        """(fps, num_frames, audio duration in s) of a clip, probed once per process (headers only).

        Raises:
            ClipFailed: unreadable headers, no frames or zero-length audio.
        """
        info = self._info.get(clip.vid)
        if info is None:
            source = audio_source(clip)
            try:
                v = decode.probe_video(clip.video, backend=self.video_backend)
                a = decode.probe_audio(source)
            except BadClipError as e:
                raise ClipFailed(clip.vid, str(e)) from e
            if v.num_frames <= 0 or v.fps <= 0:
                raise ClipFailed(clip.vid, f"{clip.video}: no video frames")
            if a.duration <= 0:
                raise ClipFailed(clip.vid, f"{source}: zero-length audio")
            info = (float(v.fps), int(v.num_frames), float(a.duration))
            self._info[clip.vid] = info
        return info
