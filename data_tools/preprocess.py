"""Audio preprocessing over folders: convert to wav, cut into N-second pieces, extract audio from video.

Usage (the three preparation steps of the AST fine-tuning recipe)::

    python -m data_tools.preprocess to-wav IN OUT --sr 16000           # any audio/video file -> mono wav
    python -m data_tools.preprocess split IN OUT --seconds 5 [--drop-last]   # <stem>_<k>.wav pieces
    python -m data_tools.preprocess extract-audio VIDEOS OUT --sr 16000      # the sound of every video

``IN`` is a file or a folder; folders are walked recursively and their tree is kept under ``OUT``
(``IN/violin/a.mp3`` -> ``OUT/violin/a.wav``), so a folder per class stays a folder per class.
Hidden files, temporary files and anything under ``OUT`` (when ``OUT`` is inside ``IN``) are ignored.

- ``to-wav``: the first audio stream of every audio or video file, downmixed to ``--channels``
  (default 1) and resampled to ``--sr`` by ffmpeg, as 16-bit PCM. A wav already in that format is
  copied as is.
- ``split``: pieces of exactly ``round(seconds * rate)`` frames, ``<stem>_0.wav``, ``<stem>_1.wav`` ...; the
  last, shorter piece is kept unless ``--drop-last``. PCM/float wav files are cut by copying bytes
  (sample format, rate and channels kept); other files are decoded by ffmpeg to 16-bit PCM first
  (again on a re-run, which then writes only the missing pieces).
- ``extract-audio``: like ``to-wav`` over the video files only (.mp4 .mkv .webm .avi .mov ...).

Files are processed by ``--workers`` threads, each waiting on its own ffmpeg process or file copy,
with a progress bar. ``to-wav`` and ``extract-audio`` hand ``--batch`` files (default 8) to one ffmpeg
process (one input and one output each): starting ffmpeg costs more than converting a 10-second
clip. A batch that fails is redone one file per process, so a bad file fails alone with its reason.
Every output is written to a temporary name and renamed, so a killed run never leaves a partial file
under its final name; running the same command again skips the outputs that exist and deletes the
temporary files left behind. A file that cannot be read is skipped with its reason logged, counted in
the summary and listed in ``OUT/skipped.csv`` (id, path, reason); it never stops the run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from avcorr._atomic import atomic_path, temp_path
from avcorr.data.skipped import SKIPPED_FILE, write_skipped_csv
from data_tools import _media

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Summary",
    "extract_audio",
    "find_inputs",
    "main",
    "split_audio",
    "to_wav",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff",
                    ".amr", ".ac3")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".wmv",
                    ".ts")
_MAX_LOGGED = 20


@dataclass
class Summary:
    """What a preprocessing run did.

    Args:
        written: inputs whose outputs were written now.
        existing: inputs whose outputs were all there already (skipped).
        short: ``split`` inputs shorter than one piece with ``--drop-last`` (nothing to write).
        failed: ``(input, reason)`` of every input that could not be processed.
        pieces: output files written now.
    """

    written: int = 0
    existing: int = 0
    short: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    pieces: int = 0

    @property
    def total(self) -> int:
        return self.written + self.existing + self.short + len(self.failed)

    def line(self, what: str) -> str:
        return (f"{what}: {self.total} input files: {self.written} processed ({self.pieces} files written), "
                f"{self.existing} already done, {self.short} too short, {len(self.failed)} failed")


@dataclass(frozen=True)
class _Job:
    src: Path
    dst: Path  # the output file (to-wav, extract-audio) or the output folder (split)


def find_inputs(src: str | Path, extensions: Sequence[str],
                exclude: str | Path | None = None) -> list[tuple[Path, Path]]:
    """The media files under ``src`` with their path relative to it.

    Args:
        src: a file or a folder (walked recursively, in sorted order).
        extensions: accepted suffixes (lower case, with the dot).
        exclude: a folder not to enter (the output folder when it lies inside ``src``).

    Returns:
        ``(file, relative path)`` pairs; for a single file the relative path is its name.

    Raises:
        FileNotFoundError: ``src`` does not exist.
    """
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_file():
        return [(src, Path(src.name))]
    skip = os.path.realpath(exclude) if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and os.path.realpath(os.path.join(dirpath, d)) != skip)
        for name in sorted(filenames):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                continue
            path = Path(dirpath) / name
            found.append((path, path.relative_to(src)))
    return found


def _plan(src: Path, out: Path, extensions: Sequence[str], make_dst: Callable[[Path, Path], Path],
          summary: Summary) -> list[_Job]:
    """Jobs for every input; inputs whose output name is taken by an earlier input fail as a clash."""
    inside = out.resolve().is_relative_to(src.resolve()) if src.is_dir() else False
    jobs: list[_Job] = []
    owner: dict[Path, Path] = {}
    for path, rel in find_inputs(src, extensions, exclude=out if inside else None):
        dst = make_dst(out, rel)
        if dst in owner:
            summary.failed.append((path, f"output name {dst} is already used by {owner[dst]}"))
            continue
        owner[dst] = path
        jobs.append(_Job(path, dst))
    return jobs


def _batches(jobs: list[_Job], size: int) -> list[list[_Job]]:
    size = max(1, size)
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


_Result = tuple[str, int, str]  # (status, files written, failure reason)


def _guard(work: Callable[[_Job], tuple[str, int]], job: _Job) -> _Result:
    try:
        status, n = work(job)
        return status, n, ""
    except _media.FFmpegError as err:
        return "failed", 0, err.reason
    except (OSError, ValueError) as err:
        return "failed", 0, str(err)


def _run(batches: list[list[_Job]], work: Callable[[list[_Job]], list[_Result]], summary: Summary, *,
         workers: int, progress: bool, desc: str) -> Summary:
    """Run ``work`` on every batch of jobs in a thread pool; fill ``summary``."""
    from tqdm.auto import tqdm

    total = sum(len(b) for b in batches)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=total, unit="file", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        futures = {pool.submit(work, batch): batch for batch in batches}
        try:
            for future in as_completed(futures):
                for job, (status, n, reason) in zip(futures[future], future.result()):
                    if status == "failed":
                        summary.failed.append((job.src, reason))
                        if len(summary.failed) <= _MAX_LOGGED:
                            logger.warning("skipped %s: %s", job.src, reason)
                    elif status == "existing":
                        summary.existing += 1
                    elif status == "short":
                        summary.short += 1
                    else:
                        summary.written += 1
                        summary.pieces += n
                    bar.update(1)
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            raise
    if len(summary.failed) > _MAX_LOGGED:
        logger.warning("%d files failed in all", len(summary.failed))
    return summary


def _list_failed(summary: Summary, out: Path) -> Summary:
    """Write ``out/skipped.csv`` (id, path, reason) of the inputs that failed in this run (a header only when none)."""
    rows = [{"id": Path(src).stem, "path": str(src), "reason": reason} for src, reason in summary.failed]
    write_skipped_csv(Path(out) / SKIPPED_FILE, rows)
    return summary


def _prepare(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _media.remove_stale_temps(out, recursive=True)


def _done(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return path.stat().st_size > 0
    return False


def _copy_if_ready(job: _Job, sample_rate: int, channels: int) -> bool:
    """Copy a wav that is already 16-bit PCM at the target rate and channels; False when it is not."""
    if job.src.suffix.lower() != ".wav":
        return False
    try:
        layout = _media.read_wav_layout(job.src)
    except (OSError, ValueError):
        return False  # ffmpeg will say what is wrong
    if layout is None or layout.num_frames == 0 or \
            (layout.fmt, layout.bits, layout.channels, layout.sample_rate) != (1, 16, channels, sample_rate):
        return False
    with atomic_path(job.dst, mkdir=False) as tmp, open(job.src, "rb") as f:
        _media.copy_wav_frames(f, layout, 0, layout.num_frames, tmp)
    return True


def _wav_batch(sample_rate: int, channels: int) -> Callable[[list[_Job]], list[_Result]]:
    """Convert a batch: finished outputs skipped, ready wavs copied, the rest in one ffmpeg process."""

    def one(job: _Job) -> tuple[str, int]:
        _media.to_wav(job.src, job.dst, sample_rate, channels=channels)
        return "written", 1

    def work(batch: list[_Job]) -> list[_Result]:
        results: dict[_Job, _Result] = {}
        todo: list[_Job] = []
        for job in batch:
            if _done(job.dst):
                results[job] = ("existing", 0, "")
                continue
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                copied = _copy_if_ready(job, sample_rate, channels)
            except OSError as err:
                results[job] = ("failed", 0, str(err))
                continue
            if copied:
                results[job] = ("written", 1, "")
            else:
                todo.append(job)
        if len(todo) > 1:
            try:
                _media.to_wav_many([(j.src, j.dst) for j in todo], sample_rate, channels=channels)
                results.update({j: ("written", 1, "") for j in todo})
                todo = []
            except (_media.FFmpegError, OSError) as err:  # one bad file: find it file by file
                logger.debug("batch of %d failed (%s); converting one by one", len(todo), err)
        for job in todo:
            results[job] = _guard(one, job)
        return [results[job] for job in batch]

    return work


def _convert(src: Path, out: Path, extensions: Sequence[str], sample_rate: int, channels: int, workers: int,
             batch: int, progress: bool, desc: str) -> Summary:
    if sample_rate <= 0 or channels <= 0:
        raise ValueError(f"sample rate and channels must be positive, got {sample_rate} and {channels}")
    src, out = Path(src), Path(out)
    summary = Summary()
    jobs = _plan(src, out, extensions, lambda o, rel: o / rel.with_suffix(".wav"), summary)
    _prepare(out)
    _run(_batches(jobs, batch), _wav_batch(sample_rate, channels), summary, workers=workers, progress=progress,
         desc=desc)
    return _list_failed(summary, out)


def to_wav(src: str | Path, out: str | Path, sample_rate: int = 16000, *, channels: int = 1, workers: int = 2,
           batch: int = 8, progress: bool = False) -> Summary:
    """Convert every audio or video file under ``src`` to a ``channels``-channel 16-bit wav at ``sample_rate``.

    Args:
        src: a file or a folder (its tree is kept under ``out``).
        out: the output folder; ``a/b.mp3`` becomes ``out/a/b.wav``.
        sample_rate: output rate in Hz.
        channels: output channels (1 = mono downmix).
        workers: parallel ffmpeg processes.
        batch: files per ffmpeg process (starting ffmpeg costs more than converting a 10 s clip); a
            batch that fails is redone one file per process, so a bad file fails alone.
        progress: show a progress bar.

    Returns:
        the run's :class:`Summary`.
    """
    return _convert(Path(src), Path(out), AUDIO_EXTENSIONS + VIDEO_EXTENSIONS, sample_rate, channels, workers,
                    batch, progress, "to-wav")


def extract_audio(src: str | Path, out: str | Path, sample_rate: int = 16000, *, channels: int = 1,
                  workers: int = 2, batch: int = 8, progress: bool = False) -> Summary:
    """Extract the audio of every video file under ``src`` as wav (arguments as in :func:`to_wav`).

    A video without an audio stream fails with the reason "no audio stream".
    """
    return _convert(Path(src), Path(out), VIDEO_EXTENSIONS, sample_rate, channels, workers, batch, progress,
                    "extract-audio")


def _split_job(seconds: float, drop_last: bool) -> Callable[[_Job], tuple[str, int]]:
    def work(job: _Job) -> tuple[str, int]:
        layout = _media.read_wav_layout(job.src) if job.src.suffix.lower() == ".wav" else None
        if layout is not None:
            return _cut(job.src, layout, job, seconds, drop_last)
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        decoded = temp_path(job.dst.parent / f"{job.dst.name}.wav")  # a dead run's is a stale temporary
        try:  # decode to 16-bit PCM at the file's own rate and channels, then cut
            _media.run_ffmpeg(["-i", os.path.abspath(job.src), "-map", "0:a:0", "-vn", "-c:a", "pcm_s16le",
                               "-f", "wav", os.path.abspath(decoded)], path=job.src)
            layout = _media.read_wav_layout(decoded)
            if layout is None:
                raise ValueError(f"{job.src}: ffmpeg did not write a PCM wav")
            return _cut(decoded, layout, job, seconds, drop_last)
        finally:
            with contextlib.suppress(OSError):
                decoded.unlink()

    return work


def _cut(path: Path, layout: _media.WavPcm, job: _Job, seconds: float, drop_last: bool) -> tuple[str, int]:
    piece = max(1, round(seconds * layout.sample_rate))
    if layout.num_frames == 0:
        raise ValueError(f"{job.src}: no audio samples")
    count = layout.num_frames // piece + (0 if drop_last or layout.num_frames % piece == 0 else 1)
    if count == 0:
        return "short", 0
    names = [job.dst.parent / f"{job.dst.name}_{k}.wav" for k in range(count)]
    todo = [(k, name) for k, name in enumerate(names) if not _done(name)]
    if not todo:
        return "existing", 0
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as f:
        for k, name in todo:
            with atomic_path(name, mkdir=False) as tmp:
                _media.copy_wav_frames(f, layout, k * piece, (k + 1) * piece, tmp)
    return "written", len(todo)


def split_audio(src: str | Path, out: str | Path, seconds: float = 5.0, *, drop_last: bool = False,
                workers: int = 2, progress: bool = False) -> Summary:
    """Cut every audio file under ``src`` into ``seconds``-long wav pieces ``<stem>_<k>.wav``.

    Args:
        src: a file or a folder (its tree is kept under ``out``).
        out: the output folder; ``a/b.wav`` becomes ``out/a/b_0.wav``, ``out/a/b_1.wav`` ...
        seconds: piece length; each piece has ``round(seconds * rate)`` frames.
        drop_last: drop the last piece when it is shorter.
        workers: parallel files.
        progress: show a progress bar.

    Returns:
        the run's :class:`Summary` (``pieces`` counts the files written).
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    src, out = Path(src), Path(out)
    summary = Summary()
    jobs = _plan(src, out, AUDIO_EXTENSIONS, lambda o, rel: o / rel.parent / rel.stem, summary)
    _prepare(out)
    work = _split_job(seconds, drop_last)
    _run(_batches(jobs, 1), lambda batch: [_guard(work, job) for job in batch], summary, workers=workers,
         progress=progress, desc="split")
    return _list_failed(summary, out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_tools.preprocess",
                                description="Audio preprocessing over folders (a folder per class is kept).")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="parallel files (default: the number of CPU cores)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_argument("--quiet", action="store_true", help="warnings only")
    for name, what in (("to-wav", "audio or video files"), ("extract-audio", "video files")):
        q = sub.add_parser(name, parents=[common], help=f"{what} -> wav",
                           description=f"Convert {what} to 16-bit PCM wav (first audio stream).")
        q.add_argument("input", type=Path, help="a file or a folder")
        q.add_argument("output", type=Path, help="the output folder")
        q.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (default 16000)")
        q.add_argument("--channels", type=int, default=1, help="output channels (default 1: mono)")
        q.add_argument("--batch", type=int, default=8,
                       help="files per ffmpeg process (default 8; a failing batch is redone file by file)")
    q = sub.add_parser("split", parents=[common], help="cut audio into N-second wav pieces",
                       description="Cut audio files into <stem>_<k>.wav pieces of --seconds seconds.")
    q.add_argument("input", type=Path, help="a file or a folder")
    q.add_argument("output", type=Path, help="the output folder")
    q.add_argument("--seconds", type=float, default=5.0, help="piece length in seconds (default 5)")
    q.add_argument("--drop-last", action="store_true", help="drop the last piece when it is shorter")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one preprocessing command.

    Args:
        argv: arguments without the program name; None = ``sys.argv[1:]``.

    Returns:
        0 when the run went through (bad files are skipped and counted), 1 when the input is missing or
        every input failed.
    """
    args = _parser().parse_args(argv)
    from avcorr._cli import setup_logging

    setup_logging(quiet=args.quiet)
    kwargs = {"workers": args.workers, "progress": not args.no_progress}
    try:
        if args.command == "split":
            summary = split_audio(args.input, args.output, args.seconds, drop_last=args.drop_last, **kwargs)
        else:
            convert = to_wav if args.command == "to-wav" else extract_audio
            summary = convert(args.input, args.output, args.sr, channels=args.channels, batch=args.batch, **kwargs)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.line(args.command))
    if summary.failed:
        print(f"the {len(summary.failed)} failed file(s) are listed in {Path(args.output) / SKIPPED_FILE}")
    return 1 if summary.failed and not (summary.written or summary.existing or summary.short) else 0


if __name__ == "__main__":
    sys.exit(main())
