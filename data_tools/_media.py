"""ffmpeg helpers shared by the data tools: running ffmpeg/ffprobe, atomic outputs, WAV slicing.

Every command is a list of arguments (never a shell string) and every path handed to ffmpeg is
absolute, so an id or a file name starting with ``-`` is never read as an option. Outputs are
written through :func:`avcorr._atomic.atomic_path` (a hidden temporary name in the destination
folder, renamed when complete): a run killed midway leaves only temporary files, which
:func:`remove_stale_temps` deletes at the start of the next run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

from avcorr._atomic import atomic_path, stale_temporaries
from avcorr._ffmpeg import find_tool

logger = logging.getLogger(__name__)

LEGACY_TEMP_TAG = ".avtmp-"
"""Marker of the temporaries that data_tools wrote before it used :mod:`avcorr._atomic`
(``.<final name>.avtmp-<pid>-<random><suffix>``); an output folder of such a run still has them removed."""

_LEGACY_TEMP_NAME = re.compile(r"^\..+" + re.escape(LEGACY_TEMP_TAG) + r"[0-9]+-[0-9a-z]+(\.[A-Za-z0-9]+)?$")

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3


class FFmpegError(RuntimeError):
    """ffmpeg or ffprobe failed.

    Args:
        reason: a one-line summary of why (the useful end of its stderr).
        path: the input file concerned, or None.
    """

    def __init__(self, reason: str, path: str | Path | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{path}: {reason}" if path is not None else reason)


def _executable(name: str) -> str:
    return find_tool(name, needed_for="by the data tools")


def ffmpeg_exe() -> str:
    """The path of the ``ffmpeg`` binary; FileNotFoundError naming the package when missing."""
    return _executable("ffmpeg")


def ffprobe_exe() -> str:
    """The path of the ``ffprobe`` binary; FileNotFoundError naming the package when missing."""
    return _executable("ffprobe")


def summarize_stderr(text: str, limit: int = 300) -> str:
    """The informative part of ffmpeg's stderr, on one line.

    Args:
        text: ffmpeg's stderr.
        limit: most characters kept.

    Returns:
        a short reason: known messages are named plainly ("no audio stream" ...), otherwise the last
        non-empty lines of ``text``.
    """
    lowered = text.lower()
    if "matches no streams" in lowered and ":a" in lowered:
        return "no audio stream"
    if "matches no streams" in lowered and ":v" in lowered:
        return "no video stream"
    if "invalid data found when processing input" in lowered:
        return "not a media file, or corrupt (Invalid data found when processing input)"
    if "no such file or directory" in lowered:
        return "file not found"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    summary = " | ".join(lines[-2:]) if lines else "failed without a message"
    return summary if len(summary) <= limit else "..." + summary[-limit:]


def _run_tool(name: str, cmd: list[str], path: str | Path | None, timeout: float | None) -> bytes:
    """Run ffmpeg or ffprobe (``name``, for messages) as ``cmd`` (a list: no shell); return its stdout.

    Raises:
        FFmpegError: it exited with an error (its stderr summarized) or ran past ``timeout`` seconds.
    """
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"{name} ran longer than {timeout:g} s and was stopped", path) from None
    if proc.returncode != 0:
        raise FFmpegError(summarize_stderr(proc.stderr.decode("utf-8", "replace")), path)
    return proc.stdout


def run_ffmpeg(args: Sequence[str], *, path: str | Path | None = None, timeout: float | None = None) -> None:
    """Run ffmpeg quietly (``-nostdin -hide_banner -loglevel error -y``).

    Args:
        args: the arguments after the global options (inputs, filters, outputs).
        path: the input file, named in the error.
        timeout: seconds before ffmpeg is killed.

    Raises:
        FFmpegError: ffmpeg exited with an error or ran past ``timeout``.
        FileNotFoundError: no ffmpeg binary.
    """
    _run_tool("ffmpeg", [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
              path, timeout)


def probe(path: str | Path, *, timeout: float | None = 60) -> dict[str, Any]:
    """ffprobe's view of a media file.

    Args:
        path: the file.
        timeout: seconds before ffprobe is killed.

    Returns:
        ``{"format": {...}, "streams": [{...}, ...]}`` as ffprobe's JSON writer prints it.

    Raises:
        FFmpegError: the file cannot be read as media.
    """
    out = _run_tool("ffprobe", [ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_format",
                                "-show_streams", os.path.abspath(path)], path, timeout)
    try:
        return json.loads(out)
    except json.JSONDecodeError as err:
        raise FFmpegError(f"unreadable ffprobe output ({err})", path) from None


@dataclass(frozen=True)
class MediaInfo:
    """The facts the data tools check about a media file (from :func:`probe`).

    Args:
        duration: container duration in seconds (0.0 when unknown).
        video_codec: codec of the first video stream, None without one.
        frame_rate: its average frame rate, None when unknown.
        audio_codec: codec of the first audio stream, None without one.
        audio_sample_rate: its sample rate in Hz, None without one.
        audio_channels: its channel count, None without one.
        format_name: ffprobe's container name list (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``).
    """

    duration: float
    video_codec: str | None
    frame_rate: Fraction | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    format_name: str


def _fraction(text: Any) -> Fraction | None:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def media_info(path: str | Path) -> MediaInfo:
    """Probe ``path`` and keep the facts in :class:`MediaInfo`.

    Raises:
        FFmpegError: the file cannot be read as media.
    """
    data = probe(path)
    streams = data.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    try:
        duration = float((data.get("format") or {}).get("duration") or 0.0)
    except ValueError:
        duration = 0.0
    return MediaInfo(
        duration=duration,
        video_codec=None if video is None else video.get("codec_name"),
        frame_rate=None if video is None else (_fraction(video.get("avg_frame_rate"))
                                               or _fraction(video.get("r_frame_rate"))),
        audio_codec=None if audio is None else audio.get("codec_name"),
        audio_sample_rate=None if audio is None else int(audio.get("sample_rate") or 0) or None,
        audio_channels=None if audio is None else int(audio.get("channels") or 0) or None,
        format_name=str((data.get("format") or {}).get("format_name") or ""),
    )


def wav_output_args(sample_rate: int, channels: int = 1, input_index: int = 0) -> list[str]:
    """ffmpeg output arguments: the first audio stream of an input as 16-bit PCM WAV, ``channels`` channels.

    Args:
        sample_rate: output rate in Hz.
        channels: output channels (1 = mono downmix).
        input_index: which ``-i`` input of the command (several inputs can share one ffmpeg process).
    """
    return ["-map", f"{input_index}:a:0", "-ac", str(channels), "-ar", str(sample_rate),
            "-c:a", "pcm_s16le", "-map_metadata", "-1", "-f", "wav"]


def to_wav(src: str | Path, dst: str | Path, sample_rate: int, *, channels: int = 1,
           timeout: float | None = None) -> Path:
    """Decode the first audio stream of ``src`` (audio or video) into a PCM WAV, atomically.

    Args:
        src: any file ffmpeg reads.
        dst: the output ``.wav``; written to a temporary name beside it, then renamed.
        sample_rate: output rate in Hz.
        channels: output channels (1 = mono).
        timeout: seconds before ffmpeg is killed.

    Returns:
        ``dst`` as a Path.

    Raises:
        FFmpegError: ffmpeg failed (``reason`` "no audio stream", "not a media file ..." ...).
    """
    dst = Path(dst)
    with atomic_path(dst, mkdir=False) as tmp:
        run_ffmpeg(["-i", os.path.abspath(src), *wav_output_args(sample_rate, channels), os.path.abspath(tmp)],
                   path=src, timeout=timeout)
    return dst


def to_wav_many(pairs: Sequence[tuple[str | Path, str | Path]], sample_rate: int, *, channels: int = 1,
                timeout: float | None = None) -> None:
    """Like :func:`to_wav` for several files in ONE ffmpeg process (one input and one output each).

    Starting ffmpeg costs more than decoding a short clip, so batching saves most of the time on
    folders of 10-second clips. All outputs are renamed into place only when ffmpeg succeeds; on
    failure none is written and the caller can retry the files one by one to learn which is bad.

    Args:
        pairs: ``(src, dst)`` pairs; every ``dst`` folder must exist.
        sample_rate: output rate in Hz.
        channels: output channels.
        timeout: seconds before ffmpeg is killed.

    Raises:
        FFmpegError: ffmpeg failed on one of the files (the reason does not say which).
    """
    with contextlib.ExitStack() as outputs:  # on leaving: all renamed, or (an error) all removed
        temps = [outputs.enter_context(atomic_path(dst, mkdir=False)) for _, dst in pairs]
        args: list[str] = []
        for src, _ in pairs:
            args += ["-i", os.path.abspath(src)]
        for i, tmp in enumerate(temps):
            args += [*wav_output_args(sample_rate, channels, input_index=i), os.path.abspath(tmp)]
        run_ffmpeg(args, timeout=timeout)


# ----------------------------------------------------------------------------------------------
# Temporaries left by killed runs


def stale_temps(folder: str | Path, name: str | None = None) -> list[Path]:
    """The temporary outputs a killed run left in ``folder``.

    These are the temporaries of :func:`avcorr._atomic.atomic_path` whose process is gone, and every
    temporary with the older :data:`LEGACY_TEMP_TAG` name.

    Args:
        folder: the folder (missing is fine).
        name: only the temporaries of this output (a file or folder name in ``folder``).

    Returns:
        their paths (files or folders), sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = set(stale_temporaries(folder))
    found.update(p for p in folder.iterdir() if _LEGACY_TEMP_NAME.match(p.name))
    if name is not None:
        mine = re.compile(rf"\.{re.escape(name)}(\.tmp[0-9]+|{re.escape(LEGACY_TEMP_TAG)}.*)")
        found = {p for p in found if mine.fullmatch(p.name)}
    return sorted(found)


def remove_path(path: Path) -> None:
    """Delete a file, a link (not what it points to) or a folder with everything in it; one already gone is fine.

    Raises:
        OSError: a file or link that cannot be deleted (a folder's tree is removed as far as it can be).
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temps(folder: str | Path, *, recursive: bool = False, name: str | None = None) -> int:
    """Delete the temporary outputs a killed run left in ``folder`` (:func:`stale_temps`).

    Args:
        folder: the output folder (missing folders are fine).
        recursive: also look in subfolders.
        name: only the temporaries of this output (as in :func:`stale_temps`).

    Returns:
        the number of files (or temporary folders) deleted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    folders = [Path(dirpath) for dirpath, _, _ in os.walk(folder)] if recursive else [folder]
    removed = 0
    for where in folders:
        for path in stale_temps(where, name):
            remove_path(path)
            removed += 1
    if removed:
        logger.info("%s: removed %d temporary file(s) left by an interrupted run", folder, removed)
    return removed


@contextlib.contextmanager
def folder_lock(folder: str | Path, name: str = ".avcorr.lock") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (a lock file inside it) for the block.

    The lock is released by the kernel when the process dies, so a killed run never leaves the
    folder locked. On systems without ``fcntl`` the block runs unlocked.

    Args:
        folder: an existing folder.
        name: the lock file's name.

    Raises:
        RuntimeError: another process holds the lock.
    """
    path = Path(folder) / name
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield path
        return
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"{folder}: another run is writing this folder (lock {path} is held); "
                               "wait for it to finish") from None
        try:
            yield path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------
# WAV slicing without decoding


@dataclass(frozen=True)
class WavPcm:
    """Where the samples of a PCM/float WAV file are and how they are stored.

    Args:
        sample_rate: frames per second.
        channels: interleaved channels.
        bits: bits per sample.
        fmt: 1 (integer PCM) or 3 (IEEE float).
        data_offset: byte offset of the first frame.
        num_frames: whole frames present.
    """

    sample_rate: int
    channels: int
    bits: int
    fmt: int
    data_offset: int
    num_frames: int

    @property
    def block_align(self) -> int:
        """Bytes per frame."""
        return self.channels * self.bits // 8


def read_wav_layout(path: str | Path) -> WavPcm | None:
    """Parse a WAV header with the project's RIFF parser (the one :mod:`avcorr.data.decode` uses).

    Args:
        path: the file.

    Returns:
        the layout, or None when ``path`` is not a PCM/float WAV this module slices (compressed
        WAV, RF64, another container ...): the caller then decodes it with ffmpeg.

    Raises:
        ValueError: a WAV whose header is broken or whose data is shorter than its header says.
    """
    # The parser module itself, not avcorr.data.decode: that one imports torch (seconds at start-up).
    from avcorr.data.errors import DecodeError
    from avcorr.data.wav import parse_wav

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        try:
            layout = parse_wav(f, str(path), size)
        except DecodeError as err:
            raise ValueError(str(err)) from None
    if layout is None:
        return None
    if layout.available_frames < layout.num_frames:
        raise ValueError(f"{path}: truncated WAV: the header declares {layout.num_frames} frames but the file "
                         f"holds only {layout.available_frames}")
    return WavPcm(layout.sample_rate, layout.num_channels, layout.bits, layout.fmt, layout.data_offset,
                  layout.num_frames)


def wav_header(layout: WavPcm, num_frames: int) -> bytes:
    """A 44-byte RIFF/WAVE header for ``num_frames`` frames stored as in ``layout``."""
    data_bytes = num_frames * layout.block_align
    fmt = struct.pack("<HHIIHH", layout.fmt, layout.channels, layout.sample_rate,
                      layout.sample_rate * layout.block_align, layout.block_align, layout.bits)
    riff_size = 4 + (8 + len(fmt)) + (8 + data_bytes + (data_bytes & 1))
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", data_bytes))


def copy_wav_frames(src: BinaryIO, layout: WavPcm, start: int, stop: int, dst: str | Path) -> None:
    """Write frames ``[start, stop)`` of an open WAV file as a new WAV file (same sample format).

    Args:
        src: the source, opened in binary mode.
        layout: its :class:`WavPcm`.
        start: first frame.
        stop: one past the last frame (clipped to the file).
        dst: the output path (written directly: write to the temporary of :func:`avcorr._atomic.atomic_path`).
    """
    stop = min(stop, layout.num_frames)
    n = max(stop - start, 0)
    src.seek(layout.data_offset + start * layout.block_align)
    payload = src.read(n * layout.block_align)
    with open(dst, "wb") as out:
        out.write(wav_header(layout, n))
        out.write(payload)
        if len(payload) & 1:
            out.write(b"\0")
