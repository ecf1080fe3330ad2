"""Per-worker media access shared by the clip datasets: an LRU of open video readers and probed facts,
and the "draw a clip; on failure record it as bad and try another" loop of their ``__getitem__``."""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from . import decode
from .errors import BadClipError
from .layout import Clip

logger = logging.getLogger(__name__)


class ClipFailed(Exception):
    """A clip could not be used; the dataset skips it and records ``vid`` and ``reason``."""

    def __init__(self, vid: str, reason: str):
        super().__init__(f"{vid}: {reason}")
        self.vid, self.reason = vid, reason


def draw_with_retries(make: Callable[[int], dict[str, Any]], vid_of: Callable[[int], str], n: int, first: int,
                      next_index: Callable[[int], int], bad: dict[str, str], *, max_bad_retries: int, name: str,
                      min_usable: int = 1, failure: str = "failed to decode",
                      wanted: str = "no usable clip") -> dict[str, Any]:
    """``make(ci)`` for the first usable clip index, starting at ``first``; bad clips are skipped and recorded.

    Up to ``max_bad_retries + 1`` indices are tried: ``first``, then ``next_index(previous)``. An index
    whose clip is already in ``bad`` is not tried again (but listed in the item's ``skipped`` again); a
    :class:`ClipFailed` raised by ``make`` adds its clip to ``bad`` (``vid -> reason``, shared by the
    dataset's calls in this process) and to the item's ``skipped`` list. The search stops early when
    fewer than ``min_usable`` clips are left unfailed.

    Args:
        make: builds the item of one clip index; raises :class:`ClipFailed` for a clip it cannot use.
        vid_of: the clip id of an index.
        n: the number of clips.
        first: the index tried first.
        next_index: the index tried after a given one (called after each failure).
        bad: the dataset's record of failed clips, updated in place.
        max_bad_retries: failures tolerated before giving up.
        name: the dataset, for the error message.
        min_usable: clips one item needs (e.g. the sources of a mixture).
        failure, wanted: wording of the error message (``"... clips {failure} and {wanted} was found"``).

    Returns:
        the item, with ``item["skipped"]``: ``(vid, reason)`` of the clips that failed while drawing it.

    Raises:
        RuntimeError: every try failed (or too few clips are left); names the first problems.
    """
    skipped: list[tuple[str, str]] = []
    ci = first
    for _ in range(max_bad_retries + 1):
        vid = vid_of(ci)
        if vid in bad:  # reported again: the batch that reported it first may never reach the loop
            skipped.append((vid, bad[vid]))
        else:
            try:
                item = make(ci)
                item["skipped"] = skipped
                return item
            except ClipFailed as e:
                bad[e.vid] = e.reason
                skipped.append((e.vid, e.reason))
        if n - len(bad) < min_usable:
            break
        ci = next_index(ci)
    reasons = "; ".join(f"{v}: {r}" for v, r in list(bad.items())[:5])
    raise RuntimeError(f"{name}: {len(bad)} of {n} clips {failure} and {wanted} was found in "
                       f"{max_bad_retries + 1} tries; first problems: {reasons}")


def window_frames(fps: float, num_frames: int, audio_duration: float, seconds: float) -> tuple[int, int]:
    """First and last frame (inclusive) of the decodable video whose centred audio window fits in the audio.

    The rule every command that pairs frames with audio follows. Frame ``k`` (at :func:`decode.frame_centre`)
    qualifies when ``[t_k - seconds / 2, t_k + seconds / 2]`` lies inside ``[0, audio_duration]``; the
    frame range is always ``[0, num_frames - 1]`` of the video itself, so an audio track that runs
    past the last frame (normal: an encoder's tail of a few tens of ms, or a longer recording) never
    asks for a frame that does not exist. When no frame qualifies (audio or video shorter than one
    window), every frame whose centre is inside the audio does (its window is zero-padded by the
    reader), and frame 0 when the audio ends before the first frame's centre.

    Args:
        fps: the video's frame rate (``num_frames / duration`` of the decodable video).
        num_frames: frames in the video (>= 1).
        audio_duration: seconds of audio.
        seconds: audio window length.

    Returns:
        ``(lo, hi)`` with ``0 <= lo <= hi <= num_frames - 1``.
    """
    half = seconds / 2
    last = max(0, num_frames - 1)
    lo = max(0, math.ceil(half * fps - 0.5))
    hi = min(last, math.floor((audio_duration - half) * fps - 0.5))
    if hi < lo:
        lo, hi = 0, max(0, min(last, math.floor(audio_duration * fps - 0.5)))
    return lo, hi


def audio_source(clip: Clip) -> Path:
    """The clip's audio file, or its video (for the audio track) when there is no wav."""
    return clip.audio if clip.audio is not None else clip.video


class ClipMedia:
    """Open readers and ``(fps, num_frames, audio duration)`` facts of clips, per worker process.

    Reopening a file costs more than decoding one frame (see experiments/RESULTS.md), so readers
    stay open, least recently used closed first, within ``reader_budget_mb`` of estimated memory
    (1 GiB by default: about 400 readers of 128 px clips)
    (a reader holds about 2 MB plus ~24 decoded frames: 2.4 MB each at 128 x 128 measured, ~77 MB at
    1080p), and at most ``open_readers`` of them when given. A forked DataLoader worker starts with an
    empty cache instead of sharing its parent's open files.

    Args:
        video_backend: decoder name (``None`` = default).
        open_readers: most readers kept open; ``None`` = as many as the budget allows; 0 = reopen every time.
        reader_budget_mb: estimated memory the open readers may hold, per process.
    """

    def __init__(self, video_backend: str | None = None, open_readers: int | None = None,
                 reader_budget_mb: float = 1024.0):
        self.video_backend = video_backend or None
        self.open_readers = open_readers
        self.budget = reader_budget_mb * 2**20
        self._readers: OrderedDict[str, tuple[decode.VideoReader, float]] = OrderedDict()
        self._held = 0.0
        self._pid = os.getpid()
        self._info: dict[str, tuple[float, int, float]] = {}
        self._pixels: dict[str, int] = {}

    @staticmethod
    def _estimate(pixels: int) -> float:
        return 2 * 2**20 + 24 * 1.5 * pixels  # codec state + ~24 yuv420 frames

    def reader(self, clip: Clip) -> decode.VideoReader:
        """An open reader for the clip's video, from this process's LRU cache."""
        if self._pid != os.getpid():
            self._readers, self._held, self._pid = OrderedDict(), 0.0, os.getpid()
        entry = self._readers.get(clip.vid)
        if entry is not None:
            self._readers.move_to_end(clip.vid)
            return entry[0]
        reader = decode.VideoReader(clip.video, self.video_backend)
        if self.open_readers != 0:
            pixels = self._pixels.get(clip.vid)
            if pixels is None:
                info = reader.info
                pixels = info.width * info.height
            cost = self._estimate(pixels)
            self._readers[clip.vid] = (reader, cost)
            self._held += cost
            limit = self.open_readers if self.open_readers is not None else float("inf")
            while len(self._readers) > 1 and (len(self._readers) > limit or self._held > self.budget):
                old, old_cost = self._readers.popitem(last=False)[1]
                old.close()
                self._held -= old_cost
        return reader

    def drop(self, vid: str) -> None:
        """Forget the reader of a clip that failed (it is reopened if the clip is tried again)."""
        entry = self._readers.pop(vid, None)
        if entry is not None:
            self._held -= entry[1]

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
            video_seconds = v.num_frames / v.fps
            if v.num_frames < 2 or video_seconds < 0.5 * a.duration:
                logger.warning("clip %s: the video has %d frame(s) (%.2f s) for %.2f s of audio: every pair of "
                               "this clip uses %s (%s)", clip.vid, v.num_frames, video_seconds, a.duration,
                               "that one frame" if v.num_frames < 2 else "the frames of its first seconds",
                               clip.video)
            self._info[clip.vid] = info
            self._pixels[clip.vid] = int(v.width) * int(v.height)
        return info
