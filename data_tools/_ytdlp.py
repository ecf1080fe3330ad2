"""The yt-dlp side of :mod:`data_tools.download_audioset`: pacing requests, yt-dlp's options for one
section, the fetch itself, and turning yt-dlp's errors into ``failed.csv`` reasons.

Used through :mod:`data_tools.download_audioset` (which re-exports :class:`RateLimiter` and
:func:`classify_error`); its module docstring describes how a section is cut and the reasons.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: download_audioset imports this module
    from data_tools.download_audioset import DownloadOptions

logger = logging.getLogger(__name__)

__all__ = ["FetchError", "RateLimiter", "ToolError", "classify_error", "fetch_section", "ffmpeg_location",
           "tool_stderr", "ytdlp_options"]


# ----------------------------------------------------------------------------------------------
# Rate limiting


class RateLimiter:
    """At least ``min_interval`` seconds between the starts of two requests, across threads.

    :meth:`hold_off` pushes the next allowed start further (after an HTTP 429 every worker waits).

    Args:
        min_interval: seconds between two starts (0 = no limit).
        stop: when set, :meth:`wait` returns at once with False.
    """

    def __init__(self, min_interval: float, stop: threading.Event | None = None):
        self.min_interval = max(float(min_interval), 0.0)
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> bool:
        """Block until this caller may start a request; False when stopped meanwhile."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.min_interval
        delay = start - time.monotonic()
        if delay > 0 and self.stop.wait(delay):
            return False
        return not self.stop.is_set()

    def hold_off(self, seconds: float) -> None:
        """No request starts during the next ``seconds`` seconds."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


# ----------------------------------------------------------------------------------------------
# Error classification


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it wraps (yt-dlp's ``exc_info`` and ``cause``, ``__cause__``, ``__context__``)."""
    chain: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is seen for seen in chain):
            continue
        chain.append(item)
        exc_info = getattr(item, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) >= 2:
            todo.append(exc_info[1])
        todo += [getattr(item, "cause", None), item.__cause__, item.__context__]
    return chain


def _http_status(chain: list[BaseException]) -> int | None:
    for item in chain:
        for attr in ("status", "code"):
            value = getattr(item, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
    return None


_UNAVAILABLE = ("video unavailable", "this video is unavailable", "is not available", "has been removed",
                "no longer available", "account associated with this video has been terminated",
                "not made this video available in your country", "copyright", "unavailable video",
                "this live event", "premieres in", "does not exist")


def classify_error(exc: BaseException | str) -> str:
    """The ``failed.csv`` reason for a download error.

    Args:
        exc: the exception yt-dlp (or ffmpeg) raised, or its message.

    Returns:
        ``rate_limited`` (HTTP 429 / "Too Many Requests"), ``private``, ``age_restricted``,
        ``bot_check``, ``unavailable``, ``http_404`` / ``http_<code>``, ``ffmpeg_error`` or
        ``download_error``.
    """
    chain = [] if isinstance(exc, str) else _exception_chain(exc)
    message = " ".join(str(e) for e in chain) if chain else str(exc)
    text = message.lower().replace("\u2019", "'")
    status = _http_status(chain)
    if status == 429 or "too many requests" in text or "http error 429" in text:
        return "rate_limited"
    if "private video" in text or "video is private" in text:
        return "private"
    if "confirm your age" in text or "age-restricted" in text or "age restricted" in text:
        return "age_restricted"
    if "not a bot" in text:
        return "bot_check"
    if any(pattern in text for pattern in _UNAVAILABLE):
        return "unavailable"
    match = re.search(r"http error (\d{3})", text)
    if status is None and match:
        status = int(match.group(1))
    if status is not None and status >= 400:
        return f"http_{status}"
    if "ffmpeg" in text or "ffprobe" in text:
        return "ffmpeg_error"
    return "download_error"


# ----------------------------------------------------------------------------------------------
# Keeping ffmpeg's own words: yt-dlp runs ffmpeg quietly with its stderr on ours, and on a failure
# says only "ffmpeg exited with code 1". yt-dlp is pointed at a folder whose ``ffmpeg`` is a small
# Python program: for a quiet run it turns the log level to "error", sends ffmpeg's stderr to
# ``<output>.stderr`` and execs the real ffmpeg (same process: yt-dlp's stdin "q" and kill still
# reach it); anything else (version checks) execs ffmpeg unchanged.

_FFMPEG_WRAPPER = """#!{python}
# written by data_tools/_ytdlp.py: ffmpeg as yt-dlp runs it, its error messages kept beside the output
import os
import sys

REAL = {real!r}
args = sys.argv[1:]
quiet = [i for i in range(len(args) - 1) if args[i] in ("-loglevel", "-v") and args[i + 1] == "quiet"]
if quiet and args:
    for i in quiet:
        args[i + 1] = "error"
    out = args[-1][len("file:"):] if args[-1].startswith("file:") else args[-1]
    try:
        fd = os.open(out + ".stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass
os.execv(REAL, [REAL, *args])
"""
_wrapper_lock = threading.Lock()
_wrapper_dir: Path | None = None


def ffmpeg_location() -> Path:
    """A folder with the ``ffmpeg`` wrapper (see above) and ``ffprobe``, for yt-dlp's ``ffmpeg_location``.

    Made once per process in the temporary folder (removed when the process exits), so that nothing
    is added to the download folder.
    """
    global _wrapper_dir
    from data_tools import _media

    with _wrapper_lock:
        if _wrapper_dir is None or not (_wrapper_dir / "ffmpeg").is_file():
            import atexit
            import shutil
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="avcorr-ffmpeg-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            wrapper = folder / "ffmpeg"
            wrapper.write_text(_FFMPEG_WRAPPER.format(python=sys.executable, real=_media.ffmpeg_exe()))
            wrapper.chmod(0o755)
            (folder / "ffprobe").symlink_to(_media.ffprobe_exe())
            _wrapper_dir = folder
        return _wrapper_dir


def tool_stderr(stem: Path) -> str:
    """What ffmpeg said when it failed on an output of ``stem`` (one line), or "" when nothing was kept."""
    from data_tools import _media

    texts = []
    for path in sorted(stem.parent.glob(f"{stem.name}*.stderr")):
        try:
            texts.append(path.read_text(errors="replace"))
        except OSError:
            continue
    text = "\n".join(t for t in texts if t.strip())
    return _media.summarize_stderr(text) if text.strip() else ""


class ToolError(RuntimeError):
    """yt-dlp's error with the reason its ffmpeg gave (the original error is the ``__cause__``)."""


# ----------------------------------------------------------------------------------------------
# yt-dlp options and the fetch


class _YtdlpLogger:
    """Sends yt-dlp's messages to our log at debug level (failures are reported by the caller)."""

    def debug(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        logger.debug("yt-dlp: %s", msg)


class FetchError(Exception):
    """A clip failed with a known reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def ytdlp_options(opts: DownloadOptions, stem: Path, start: float, end: float) -> dict[str, Any]:
    """``YoutubeDL`` options that fetch ``[start, end]`` s, re-encoded by ffmpeg with ``opts.encode_args()``,
    to ``<stem>.<ext>``, with no retries of yt-dlp's own (HTTP 429 is retried by the caller)."""
    from yt_dlp.utils import download_range_func

    template = str(stem).replace("%", "%%") + ".%(ext)s"
    options: dict[str, Any] = {
        "format": opts.format,
        "merge_output_format": "mp4",
        "outtmpl": {"default": template},
        "download_ranges": download_range_func(None, [(start, end)]),
        "force_keyframes_at_cuts": True,
        "external_downloader_args": {
            "ffmpeg_i": ["-rw_timeout", str(int(opts.socket_timeout * 1e6))],
            "ffmpeg_o": opts.encode_args(),
        },
        "logger": _YtdlpLogger(),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "file_access_retries": 0,
        "socket_timeout": opts.socket_timeout,
        "cachedir": False,
        "fixup": "never",
        "overwrites": True,
        "updatetime": False,
    }
    if os.name == "posix":  # the wrapper is a script with a #! line
        options["ffmpeg_location"] = str(ffmpeg_location())
    if opts.cookies is not None:
        options["cookiefile"] = str(opts.cookies)
    if opts.js_runtime:
        name, _, exe = opts.js_runtime.partition(":")
        options["js_runtimes"] = {name.strip().lower(): {"path": exe} if exe else {}}
    return options


def fetch_section(opts: DownloadOptions, url: str, stem: Path, start: float, end: float) -> Path:
    """Download ``[start, end]`` of ``url`` to ``<stem>.<ext>`` with yt-dlp; return the file."""
    try:
        import yt_dlp
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the AudioSet downloader needs yt-dlp: pip install yt-dlp") from err
    with yt_dlp.YoutubeDL(ytdlp_options(opts, stem, start, end)) as ydl:
        try:
            info = ydl.extract_info(url, download=True)
        except Exception as err:
            said = tool_stderr(stem)
            if not said:
                raise
            message = " ".join(str(err).replace("ERROR:", "").split())
            raise ToolError(f"{said} ({message})") from err
    files = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads") or [] if d.get("filepath")]
    files = [f for f in files if f.is_file()]
    if not files:
        files = [p for p in stem.parent.glob(f"{stem.name}.*") if p.suffix not in (".part", ".ytdl")]
    if len(files) != 1:
        raise FetchError("download_error", f"yt-dlp reported success but wrote {len(files)} file(s)")
    return files[0]
