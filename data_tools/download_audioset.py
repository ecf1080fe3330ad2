"""Download AudioSet segments with yt-dlp: the ``[start, end]`` section of each YouTube id only.

Usage::

    python -m data_tools.download_audioset --segments balanced_train_segments.csv \\
        --labels class_labels_indices.csv --classes "Guitar,Violin, fiddle" --out RAW --workers 8

For every selected row it writes

- ``RAW/video/<id>.mp4``: the section only, H.264 (yuv420p) + AAC at ``--fps`` frames per second
  (default 25), cut exactly at ``start`` and ``end`` (re-encoded, not cut at the previous key frame);
- ``RAW/audio/<id>.wav``: the section's sound, mono 16-bit PCM at ``--sr`` Hz (default 48000 as
  AVE-Net expects; 16000 for AST, 32000 for PANNs), extracted from that mp4 with ffmpeg;

and at the end ``RAW/vid2genre.json`` (the chosen classes of every finished clip, display names, a
list when a clip has several), ``RAW/class_labels_indices.csv`` (the chosen classes),
``RAW/segments.csv`` (the selected rows) and ``RAW/failed.csv`` (``id,start,end,reason,message`` of
every id it could not get; reasons below). ``python -m data_tools.split RAW --out ROOT`` turns the
folder into the train/val/test layout.

How the section is cut: yt-dlp's Python API with ``download_ranges`` (the section) and
``force_keyframes_at_cuts``: yt-dlp hands the media URL(s) to ffmpeg with ``-ss start -t length``
before ``-i`` and, because of ``force_keyframes_at_cuts``, re-encodes instead of copying, which is
frame-exact (ffmpeg decodes from the key frame before ``start`` and drops frames until ``start``).
ffmpeg seeks with HTTP range requests, so the rest of a long video is mostly not fetched. The output arguments (libx264,
``-r FPS``, AAC) are passed to that same ffmpeg run, so each clip is encoded once; the result is
checked with ffprobe and re-encoded by a plain ffmpeg pass only if it is not H.264 + AAC at
``--fps`` (a yt-dlp version that ignores the arguments). The same path works for a direct media
URL (yt-dlp's generic extractor), which the tests use through ``--url-template``.

Reasons in ``failed.csv``: ``invalid_id`` (not ``[A-Za-z0-9_-]+``; nothing is fetched or written),
``bad_section``, ``unavailable``, ``private``, ``age_restricted``, ``bot_check`` (YouTube asks to sign
in), ``rate_limited`` (HTTP 429 after every retry), ``http_404`` (``http_<code>`` for other HTTP
errors), ``download_error``, ``empty_section`` (nothing at ``[start, end]``), ``no_audio``,
``no_video``, ``ffmpeg_error``. The ``message`` column keeps what the failing tool said (for an
``ffmpeg_error`` during the download, the end of ffmpeg's own stderr, e.g. "Invalid data found when
processing input" when a server answers a web page for the video), not only its exit code.

Being polite and robust: ``--min-interval`` seconds between the starts of two clip downloads (each is
a page request and then the media requests), whatever the number of workers; an HTTP 429 / "Too
Many Requests" is retried up to ``--retries`` times after ``--backoff * 2**attempt`` seconds (capped
by ``--max-backoff``, with jitter), during which no worker starts a request; other errors are not retried. Re-running the same command skips the clips whose
two files exist (each file is written to a temporary name and renamed, so a partial file never
counts), deletes what a killed run left, and does not ask again for ids that failed for a permanent
reason (``invalid_id``, ``bad_section``, ``unavailable``, ``private``, ``age_restricted``,
``http_404``, ``http_410``) unless ``--retry-failed`` is given. Ids are passed to yt-dlp inside the
URL, never as a bare argument, so ids starting with ``-`` work. yt-dlp writes into the hidden
``RAW/.staging/`` folder (same file system); the mp4 is renamed into ``video/`` only after its wav was
renamed into ``audio/``. One run at a time per RAW folder (a lock file enforces it).

YouTube itself: recent yt-dlp versions need a JavaScript runtime to read YouTube pages (deno by
default; ``--js-runtime node`` to use another) and ``--cookies cookies.txt`` helps with age-restricted
videos and bot checks.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import random
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from avcorr._atomic import move_into_place, write_json, write_text
from avcorr.data.errors import LayoutError
from avcorr.data.layout import ClassLabel, check_vid

from data_tools import _media
from data_tools._audioset import (
    Segment,
    SelectedSegment,
    UnknownClassError,
    format_segments_csv,
    parse_class_list,
    read_class_labels_csv,
    read_genre_file,
    read_segments,
    select_segments,
)
from data_tools._ytdlp import FetchError, RateLimiter, classify_error, fetch_section

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FORMAT",
    "PERMANENT_REASONS",
    "YOUTUBE_URL",
    "ClipResult",
    "DownloadOptions",
    "RateLimiter",
    "classify_error",
    "download_clip",
    "is_valid_id",
    "main",
]

YOUTUBE_URL = "https://www.youtube.com/watch?v={id}"
DEFAULT_FORMAT = "bv*[height<=480]+ba/b[height<=480]/bv*+ba/b"
PERMANENT_REASONS = frozenset({"invalid_id", "bad_section", "unavailable", "private", "age_restricted",
                               "http_404", "http_410"})
FAILED_CSV = "failed.csv"
SEGMENTS_CSV = "segments.csv"
VID2GENRE = "vid2genre.json"
CLASS_CSV = "class_labels_indices.csv"
STAGING = ".staging"
LOCK_FILE = ".download.lock"
FAILED_HEADER = ["id", "start", "end", "reason", "message"]

_ID = re.compile(r"[A-Za-z0-9_-]+")
_FAILED_FLUSH_S = 10.0  # failed.csv is rewritten at most this often during a run (and at the end)


def is_valid_id(vid: str) -> bool:
    """True when ``vid`` is YouTube-like (``[A-Za-z0-9_-]+``) and names a file inside its folder.

    Args:
        vid: the id from the segments csv.
    """
    if not isinstance(vid, str) or not _ID.fullmatch(vid):
        return False
    try:
        check_vid(vid, "segments csv")
    except LayoutError:
        return False
    return True


def _short(message: str, limit: int = 240) -> str:
    message = " ".join(message.replace("ERROR:", "").split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# One clip


@dataclass(frozen=True)
class DownloadOptions:
    """How clips are fetched and encoded.

    Args:
        out: the RAW folder.
        sample_rate: wav sample rate in Hz.
        fps: video frame rate of the mp4.
        crf: libx264 constant rate factor (lower = better, bigger).
        preset: libx264 preset.
        audio_bitrate: AAC bit rate of the mp4's audio track.
        format: yt-dlp format selector.
        url_template: the page URL of an id; ``{id}`` is replaced by the id.
        retries: retries after an HTTP 429 (other errors are not retried).
        backoff: first back-off in seconds; doubles at each retry.
        max_backoff: cap on one back-off.
        socket_timeout: network timeout in seconds (yt-dlp and ffmpeg).
        cookies: a cookies.txt file for yt-dlp, or None.
        js_runtime: yt-dlp's JavaScript runtime for YouTube, ``NAME`` or ``NAME:PATH`` (``deno``, ``node``,
            ``bun``, ``quickjs``); None = yt-dlp's default (deno).
        ffmpeg_timeout: seconds before a local ffmpeg run (check, wav extraction) is stopped.
    """

    out: Path
    sample_rate: int = 48000
    fps: float = 25.0
    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    format: str = DEFAULT_FORMAT
    url_template: str = YOUTUBE_URL
    retries: int = 4
    backoff: float = 5.0
    max_backoff: float = 300.0
    socket_timeout: float = 30.0
    cookies: Path | None = None
    js_runtime: str | None = None
    ffmpeg_timeout: float = 600.0

    @property
    def video_dir(self) -> Path:
        return self.out / "video"

    @property
    def audio_dir(self) -> Path:
        return self.out / "audio"

    @property
    def staging_dir(self) -> Path:
        return self.out / STAGING

    def fps_text(self) -> str:
        return f"{self.fps:g}"

    def encode_args(self) -> list[str]:
        """ffmpeg output arguments of the mp4: H.264 yuv420p + AAC at a constant ``fps``."""
        return ["-sn", "-dn", "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
                "-r", self.fps_text(), "-c:a", "aac", "-b:a", self.audio_bitrate,
                "-movflags", "+faststart", "-f", "mp4"]


@dataclass(frozen=True)
class ClipResult:
    """What happened to one clip.

    Args:
        vid: the id.
        status: ``"done"`` (downloaded now), ``"exists"`` (finished by an earlier run) or ``"failed"``.
        reason: the failure reason (see the module docstring), "" otherwise.
        message: details of the failure.
        attempts: requests made for this clip.
    """

    vid: str
    status: str
    reason: str = ""
    message: str = ""
    attempts: int = 0


def final_paths(opts: DownloadOptions, vid: str) -> tuple[Path, Path]:
    """``(RAW/video/<vid>.mp4, RAW/audio/<vid>.wav)`` of a valid id."""
    return opts.video_dir / f"{vid}.mp4", opts.audio_dir / f"{vid}.wav"


def is_done(opts: DownloadOptions, vid: str) -> bool:
    """True when both final files of ``vid`` exist and are not empty."""
    return all(p.is_file() and p.stat().st_size > 0 for p in final_paths(opts, vid))


def _same_rate(a: Fraction | None, fps: float) -> bool:
    return a is not None and abs(float(a) - fps) <= 1e-3 * fps


def _finish(opts: DownloadOptions, seg: Segment, fetched: Path, stem: Path) -> None:
    """Check the downloaded section, re-encode it if needed, extract the wav, rename both into place."""
    video_path, audio_path = final_paths(opts, seg.ytid)
    try:
        info = _media.media_info(fetched)
    except _media.FFmpegError as err:
        raise FetchError("ffmpeg_error", f"the downloaded section cannot be read: {err.reason}") from None
    if info.video_codec is None and info.audio_codec is None:
        raise FetchError("empty_section", f"nothing in [{seg.start:g}, {seg.end:g}] s")
    if info.video_codec is None:
        raise FetchError("no_video", "the section has no video stream")
    if info.audio_codec is None:
        raise FetchError("no_audio", "the section has no audio stream")
    if info.duration < 0.1:
        raise FetchError("empty_section", f"the section lasts {info.duration:.3f} s")
    expected = seg.end - seg.start
    if info.duration < expected - 0.5:
        logger.info("%s: section lasts %.2f s instead of %.2f s (the video ends early)",
                    seg.ytid, info.duration, expected)
    if not (info.video_codec == "h264" and info.audio_codec == "aac" and _same_rate(info.frame_rate, opts.fps)
            and "mp4" in info.format_name):
        logger.debug("%s: downloaded %s/%s at %s fps; re-encoding", seg.ytid, info.video_codec, info.audio_codec,
                     info.frame_rate)
        normalized = stem.with_name(stem.name + ".norm.mp4")
        try:
            _media.run_ffmpeg(["-i", os.path.abspath(fetched), "-map", "0:v:0", "-map", "0:a:0",
                               *opts.encode_args(), os.path.abspath(normalized)],
                              path=fetched, timeout=opts.ffmpeg_timeout)
        except _media.FFmpegError as err:
            raise FetchError("ffmpeg_error", f"re-encoding failed: {err.reason}") from None
        fetched = normalized
    try:
        _media.to_wav(fetched, audio_path, opts.sample_rate, timeout=opts.ffmpeg_timeout)
    except _media.FFmpegError as err:
        reason = "no_audio" if err.reason == "no audio stream" else "ffmpeg_error"
        raise FetchError(reason, f"wav extraction failed: {err.reason}") from None
    # The wav first, then the video: a clip is done only when both final names exist.
    move_into_place(fetched, video_path)


def _remove_staged(stem: Path) -> None:
    for path in stem.parent.glob(f"{stem.name}*"):
        with contextlib.suppress(OSError):
            path.unlink()


def download_clip(
    seg: Segment,
    opts: DownloadOptions,
    limiter: RateLimiter,
    *,
    fetch: Callable[[DownloadOptions, str, Path, float, float], Path] | None = None,
) -> ClipResult:
    """Download one segment into ``RAW/video`` and ``RAW/audio``.

    Args:
        seg: the row.
        opts: the download options.
        limiter: shared between workers; every request waits for it.
        fetch: the section fetcher (tests may replace it); default yt-dlp.

    Returns:
        the outcome; errors are returned, not raised.
    """
    vid = seg.ytid
    if not is_valid_id(vid):
        return ClipResult(vid, "failed", "invalid_id",
                          "id is not YouTube-like ([A-Za-z0-9_-]+); nothing fetched or written")
    if not seg.end > seg.start >= 0:
        return ClipResult(vid, "failed", "bad_section", f"[{seg.start}, {seg.end}]")
    if is_done(opts, vid):
        return ClipResult(vid, "exists")
    fetch = fetch or fetch_section
    url = opts.url_template.replace("{id}", vid)
    stem = opts.staging_dir / f"{vid}.{uuid.uuid4().hex[:10]}"
    attempts = 0
    try:
        for attempt in range(opts.retries + 1):
            if not limiter.wait():
                return ClipResult(vid, "failed", "interrupted", "stopped before the request", attempts)
            attempts += 1
            try:
                fetched = fetch(opts, url, stem, seg.start, seg.end)
                _finish(opts, seg, fetched, stem)
                return ClipResult(vid, "done", attempts=attempts)
            except FetchError as err:
                return ClipResult(vid, "failed", err.reason, _short(str(err)), attempts)
            except Exception as err:  # yt-dlp's DownloadError and anything it wraps
                reason = classify_error(err)
                if reason != "rate_limited" or attempt == opts.retries:
                    return ClipResult(vid, "failed", reason, _short(str(err)), attempts)
                delay = min(opts.max_backoff, opts.backoff * 2 ** attempt) * random.uniform(1.0, 1.25)
                logger.warning("%s: rate limited (HTTP 429); retry %d/%d in %.1f s", vid, attempt + 1,
                               opts.retries, delay)
                limiter.hold_off(delay)
                _remove_staged(stem)
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        _remove_staged(stem)


# ----------------------------------------------------------------------------------------------
# Run files: failed.csv, vid2genre.json, class_labels_indices.csv, segments.csv


def read_failed(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a ``failed.csv`` by id (empty when absent or unreadable)."""
    if not path.is_file():
        return {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return {row["id"]: row for row in csv.DictReader(f) if row.get("id")}
    except (OSError, csv.Error, KeyError) as err:
        logger.warning("%s: unreadable (%s); earlier failures are forgotten", path, err)
        return {}


def _failed_text(rows: dict[str, dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FAILED_HEADER, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows.values():
        writer.writerow(row)
    return buffer.getvalue()


def _failed_row(seg: Segment, result: ClipResult) -> dict[str, str]:
    return {"id": seg.ytid, "start": f"{seg.start:.3f}", "end": f"{seg.end:.3f}", "reason": result.reason,
            "message": result.message}


def _read_json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("%s: unreadable (%s); rebuilt from this run only", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def _write_labels(opts: DownloadOptions, selected: Sequence[SelectedSegment], chosen: Sequence[ClassLabel]) -> int:
    """Write ``vid2genre.json`` and ``class_labels_indices.csv`` for every finished clip; return their number.

    Entries of earlier runs (other classes) are kept while their files exist; this run's labels win.
    """
    vid2genre = {vid: labels for vid, labels in _read_json_object(opts.out / VID2GENRE).items()
                 if is_valid_id(vid) and is_done(opts, vid)}
    for item in selected:
        vid = item.segment.ytid
        if is_valid_id(vid) and is_done(opts, vid):
            vid2genre[vid] = item.labels[0] if len(item.labels) == 1 else list(item.labels)
    classes: list[ClassLabel] = []
    csv_path = opts.out / CLASS_CSV
    if csv_path.is_file():
        try:
            classes = read_class_labels_csv(csv_path)
        except ValueError as err:
            logger.warning("%s", err)
    known = {c.mid for c in classes} | {c.display_name for c in classes}
    for c in chosen:
        if c.mid not in known and c.display_name not in known:
            classes.append(c)
    used = {label for value in vid2genre.values() for label in ([value] if isinstance(value, str) else value)}
    missing = used - {c.display_name for c in classes} - {c.mid for c in classes}
    if missing:
        logger.warning("%s: labels %s of earlier runs are not in the class list", opts.out / VID2GENRE, sorted(missing))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "mid", "display_name"])
    for i, c in enumerate(classes):
        writer.writerow([i, c.mid, c.display_name])
    write_text(csv_path, buffer.getvalue())
    write_json(opts.out / VID2GENRE, dict(sorted(vid2genre.items())), indent=1, ensure_ascii=False)
    return len(vid2genre)


def _write_segments(opts: DownloadOptions, selected: Sequence[SelectedSegment]) -> None:
    """``segments.csv``: rows of earlier runs (other ids) then this run's valid rows."""
    rows: dict[str, Segment] = {}
    path = opts.out / SEGMENTS_CSV
    if path.is_file():
        try:
            rows = {s.ytid: s for s in read_segments(path) if is_valid_id(s.ytid)}
        except ValueError:
            rows = {}
    for item in selected:
        if is_valid_id(item.segment.ytid):
            rows[item.segment.ytid] = item.segment
    write_text(path, format_segments_csv(rows.values()))


# ----------------------------------------------------------------------------------------------
# The run


def _prepare_out(opts: DownloadOptions) -> None:
    for folder in (opts.video_dir, opts.audio_dir, opts.staging_dir):
        folder.mkdir(parents=True, exist_ok=True)
    stale = 0
    for path in opts.staging_dir.iterdir():
        with contextlib.suppress(OSError):
            _media.remove_path(path)
        stale += 1
    if stale:
        logger.info("%s: removed %d file(s) left by an interrupted run", opts.staging_dir, stale)
    _media.remove_stale_temps(opts.video_dir)
    _media.remove_stale_temps(opts.audio_dir)


def run_downloads(
    selected: Sequence[SelectedSegment],
    chosen: Sequence[ClassLabel],
    opts: DownloadOptions,
    *,
    workers: int = 4,
    min_interval: float = 0.5,
    retry_failed: bool = False,
    progress: bool = True,
    fetch: Callable[[DownloadOptions, str, Path, float, float], Path] | None = None,
) -> dict[str, int]:
    """Download every selected segment and write the run files.

    Args:
        selected: rows from :func:`~data_tools._audioset.select_segments`.
        chosen: the chosen classes (written to ``class_labels_indices.csv``).
        opts: the download options.
        workers: parallel downloads (threads).
        min_interval: seconds between two request starts.
        retry_failed: also retry ids that failed for a permanent reason in an earlier run.
        progress: show a tqdm bar.
        fetch: replaces the yt-dlp fetcher (tests).

    Returns:
        counts: ``selected``, ``done`` (downloaded now), ``exists`` (already there), ``skipped_failed``
        (permanent failure of an earlier run), ``failed``, ``labelled`` (entries of vid2genre.json) and
        ``failed_<reason>`` per reason.

    Raises:
        RuntimeError: another run holds the folder's lock.
        KeyboardInterrupt: after the run files were written for what was finished.
    """
    from tqdm.auto import tqdm

    opts.out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {"selected": len(selected), "done": 0, "exists": 0, "skipped_failed": 0, "failed": 0}
    with _media.folder_lock(opts.out, LOCK_FILE):
        _prepare_out(opts)
        _write_segments(opts, selected)
        failed_path = opts.out / FAILED_CSV
        failed = read_failed(failed_path)
        todo: list[Segment] = []
        for item in selected:
            seg = item.segment
            earlier = failed.get(seg.ytid)
            if is_valid_id(seg.ytid) and is_done(opts, seg.ytid):
                counts["exists"] += 1
                failed.pop(seg.ytid, None)
            elif earlier and earlier.get("reason") in PERMANENT_REASONS and not retry_failed:
                counts["skipped_failed"] += 1
            else:
                todo.append(seg)
        if counts["exists"] or counts["skipped_failed"]:
            logger.info("%d clips already downloaded, %d skipped (failed for good earlier; --retry-failed "
                        "to try them again), %d to download", counts["exists"], counts["skipped_failed"], len(todo))
        stop = threading.Event()
        limiter = RateLimiter(min_interval, stop)
        last_flush = time.monotonic()
        bar = tqdm(total=len(todo), unit="clip", desc="downloading", disable=not progress, dynamic_ncols=True)
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="download")
        interrupted = False
        try:
            futures = {pool.submit(download_clip, seg, opts, limiter, fetch=fetch): seg for seg in todo}
            for future in as_completed(futures):
                seg = futures[future]
                result = future.result()
                if result.status == "failed" and result.reason != "interrupted":
                    counts["failed"] += 1
                    counts[f"failed_{result.reason}"] = counts.get(f"failed_{result.reason}", 0) + 1
                    failed[seg.ytid] = _failed_row(seg, result)
                    logger.info("%s: failed (%s) %s", seg.ytid, result.reason, result.message)
                elif result.status in ("done", "exists"):
                    counts[result.status] += 1
                    failed.pop(seg.ytid, None)
                bar.update(1)
                bar.set_postfix(ok=counts["done"] + counts["exists"], failed=counts["failed"], refresh=False)
                if time.monotonic() - last_flush > _FAILED_FLUSH_S:
                    write_text(failed_path, _failed_text(failed))
                    last_flush = time.monotonic()
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            logger.warning("interrupted: finishing the clips in progress, then writing the run files")
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            write_text(failed_path, _failed_text(failed))
            counts["labelled"] = _write_labels(opts, selected, chosen)
            if interrupted:
                logger.warning("run files written; run the same command again to continue")
    return counts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_tools.download_audioset",
        description="Download the [start, end] sections of AudioSet segments with yt-dlp: RAW/video/<id>.mp4 "
                    "(H.264 + AAC, fixed fps, exact cuts) and RAW/audio/<id>.wav (mono), with vid2genre.json, "
                    "segments.csv and failed.csv.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--segments", type=Path, nargs="+", required=True,
                   help="AudioSet segments csv file(s) (YTID, start_seconds, end_seconds, positive_labels)")
    p.add_argument("--labels", type=Path, required=True, help="AudioSet class_labels_indices.csv")
    p.add_argument("--classes", default=None,
                   help='comma-separated display names or mids, e.g. "Guitar,Violin, fiddle" (names with commas '
                        "are matched whole)")
    p.add_argument("--genre-file", type=Path, default=None, help="a text file with one class per line")
    p.add_argument("--all-classes", action="store_true", help="take every class of --labels")
    p.add_argument("--out", type=Path, required=True, help="the RAW output folder")
    p.add_argument("--workers", type=int, default=4, help="parallel downloads")
    p.add_argument("--sr", type=int, default=48000, help="wav sample rate (48000 AVE-Net, 16000 AST, 32000 PANNs)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the mp4 files")
    p.add_argument("--crf", type=int, default=23, help="libx264 quality (lower = better and bigger)")
    p.add_argument("--format", default=DEFAULT_FORMAT, help="yt-dlp format selector")
    p.add_argument("--url-template", default=YOUTUBE_URL, help="page URL of an id ({id} is replaced)")
    p.add_argument("--min-interval", type=float, default=0.5,
                   help="seconds between the starts of two requests, over all workers")
    p.add_argument("--retries", type=int, default=4, help="retries after an HTTP 429 (other errors: none)")
    p.add_argument("--backoff", type=float, default=5.0, help="first back-off after a 429 in seconds (doubles)")
    p.add_argument("--max-backoff", type=float, default=300.0, help="longest single back-off in seconds")
    p.add_argument("--socket-timeout", type=float, default=30.0, help="network timeout in seconds")
    p.add_argument("--cookies", type=Path, default=None, help="cookies.txt for yt-dlp")
    p.add_argument("--js-runtime", default=None,
                   help="JavaScript runtime yt-dlp uses for YouTube: deno (its default), node, bun or quickjs, "
                        "optionally NAME:PATH")
    p.add_argument("--max-per-class", type=int, default=None, help="at most this many rows per class")
    p.add_argument("--limit", type=int, default=None, help="only the first N selected rows")
    p.add_argument("--retry-failed", action="store_true",
                   help="also retry ids that failed for a permanent reason (unavailable, private, 404 ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="warnings only on the console")
    return p


def _choose_classes(args: argparse.Namespace, classes: list[ClassLabel]) -> list[ClassLabel]:
    if args.all_classes:
        return list(classes)
    chosen: list[ClassLabel] = []
    if args.classes:
        chosen += parse_class_list(args.classes, classes)
    if args.genre_file is not None:
        chosen += [c for c in read_genre_file(args.genre_file, classes) if c not in chosen]
    if not chosen:
        raise UnknownClassError("no class chosen: give --classes, --genre-file or --all-classes")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the downloader.

    Args:
        argv: arguments without the program name; None = ``sys.argv[1:]``.

    Returns:
        0 when the run completed (failed ids are listed in failed.csv), 1 on bad input (unknown class,
        unreadable csv, folder in use), 130 when interrupted.
    """
    args = _parser().parse_args(argv)
    from avcorr._cli import setup_logging

    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging(args.out / "download.log", quiet=args.quiet)
    if args.fps <= 0 or args.sr <= 0 or args.workers < 1 or args.retries < 0 or args.min_interval < 0:
        print("error: --fps, --sr and --workers must be positive; --retries and --min-interval >= 0", file=sys.stderr)
        return 1
    if "{id}" not in args.url_template:
        print(f"error: --url-template {args.url_template!r} has no {{id}}", file=sys.stderr)
        return 1
    try:
        _media.ffmpeg_exe(), _media.ffprobe_exe()
        classes = read_class_labels_csv(args.labels)
        chosen = _choose_classes(args, classes)
        segments = [seg for path in args.segments for seg in read_segments(path)]
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    selected = select_segments(segments, chosen, max_per_class=args.max_per_class)
    if args.limit is not None:
        selected = selected[: args.limit]
    logger.info("%d classes chosen (%s); %d of %d rows selected", len(chosen),
                ", ".join(c.display_name for c in chosen[:10]) + (" ..." if len(chosen) > 10 else ""),
                len(selected), len(segments))
    opts = DownloadOptions(
        out=args.out, sample_rate=args.sr, fps=args.fps, crf=args.crf, format=args.format,
        url_template=args.url_template, retries=args.retries, backoff=args.backoff, max_backoff=args.max_backoff,
        socket_timeout=args.socket_timeout, cookies=args.cookies, js_runtime=args.js_runtime,
    )
    try:
        counts = run_downloads(selected, chosen, opts, workers=args.workers, min_interval=args.min_interval,
                               retry_failed=args.retry_failed, progress=not args.no_progress)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    reasons = ", ".join(f"{k[7:]} {v}" for k, v in sorted(counts.items()) if k.startswith("failed_"))
    print(f"{args.out}: {counts['selected']} selected, {counts['done']} downloaded, {counts['exists']} already there, "
          f"{counts['skipped_failed']} skipped (failed earlier), {counts['failed']} failed"
          + (f" ({reasons})" if reasons else "") + f"; {counts['labelled']} clips in {VID2GENRE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
