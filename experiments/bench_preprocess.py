"""Benchmark of data_tools.preprocess: files/s of to-wav, split and extract-audio vs plain ffmpeg.

Run from the repository root (it makes its own media with ffmpeg; nothing is downloaded)::

    python -m experiments.bench_preprocess            # 200 files per case, 3 rounds
    python -m experiments.bench_preprocess --quick    # 60 files per case, 2 rounds

Each case runs, on the same input files, in interleaved rounds (median kept):

- ``plain ffmpeg, 1 process per file`` (the baseline): a loop calling one ``ffmpeg`` subprocess per
  file, one at a time, as a shell script would (to-wav: ``-ac 1 -ar 16000``; split: the ``segment``
  muxer with ``-segment_time 5 -c copy``; extract-audio: ``-vn -ac 1 -ar 16000``);
- ``plain ffmpeg, N in parallel``: the same commands over N threads (what parallelism alone gives);
- ``preprocess --workers 1`` and ``preprocess --workers N``: the tool's Python API (the CLI minus
  argument parsing), including its tree walk, skip checks and temporary-file renames.

The "vs" column is the speed relative to the baseline of the case. Inputs are a few distinct
generated files copied into class folders (content does not change the timing per file).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

try:
    from data_tools import preprocess
    from tests.media import make_audio, make_video, make_wav
except ImportError as exc:  # pragma: no cover - depends on how it is launched
    raise SystemExit(f"{exc}: run this from the repository root as `python -m experiments.bench_preprocess`") from exc

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def _spread(sources: list[Path], root: Path, n: int, classes: int = 4) -> list[Path]:
    """Copy the sources round-robin into ``root/class_k/file_i.ext``, n files in all."""
    files = []
    for i in range(n):
        src = sources[i % len(sources)]
        dst = root / f"class_{i % classes}" / f"file_{i:04d}{src.suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        files.append(dst)
    return files


def _plain(cmd_for: Callable[[Path, Path], list[str]], files: list[Path], src_root: Path, out: Path,
           workers: int) -> None:
    def one(path: Path) -> None:
        dst = out / path.relative_to(src_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(cmd_for(path, dst), check=True, capture_output=True)

    if workers == 1:
        for path in files:
            one(path)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, files))


def _time_case(methods: dict[str, Callable[[Path], None]], n: int, rounds: int, scratch: Path) -> dict[str, float]:
    """files/s per method: median over rounds; the methods take turns within each round."""
    rates: dict[str, list[float]] = {m: [] for m in methods}
    names = list(methods)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for m in order:
            out = scratch / f"out_{r}_{names.index(m)}"
            t0 = time.perf_counter()
            methods[m](out)
            rates[m].append(n / (time.perf_counter() - t0))
            shutil.rmtree(out, ignore_errors=True)
    return {m: statistics.median(v) for m, v in rates.items()}


def _report(title: str, rates: dict[str, float], lines: list[str]) -> None:
    base = next(iter(rates.values()))
    block = [f"\n{title}", f"  {'method':<40} {'files/s':>8} {'ms/file':>8} {'vs':>6}"]
    for m, rate in rates.items():
        block.append(f"  {m:<40} {rate:>8.1f} {1000 / rate:>8.1f} {rate / base:>5.2f}x")
    lines += block
    print("\n".join(block), flush=True)


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 files per case, 2 rounds")
    ap.add_argument("--files", type=int, default=None, help="files per case (default 200, quick 60)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 2)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="parallel workers (default: cores)")
    args = ap.parse_args(argv)
    n = args.files or (60 if args.quick else 200)
    rounds = args.rounds or (2 if args.quick else 3)
    w = max(1, args.workers)
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    load0 = os.getloadavg()[0]
    lines = [f"machine: {os.cpu_count()} CPU cores ({platform.machine()}), Python {platform.python_version()}, "
             f"{' '.join(ff.split()[:3])}", f"{n} files per case, {rounds} rounds (median), N = {w} workers"]
    print("\n".join(lines), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        gen = tmp / "gen"
        gen.mkdir()
        # to-wav inputs: 10 s clips, stereo 44.1 kHz, as wav, flac, mp3, m4a
        wav = make_wav(gen / "s.wav", 440.0, 44100, channels=2, duration=10.0)
        audio_sources = [wav] + [make_audio(gen / f"s{ext}", 330.0, 44100, channels=2, duration=10.0)
                                 for ext in (".flac", ".mp3", ".m4a")]
        to_wav_in = tmp / "to_wav_in"
        to_wav_files = _spread(audio_sources, to_wav_in, n)
        # split inputs: 12 s mono 16 kHz wav (3 pieces of 5 s each, the last one 2 s)
        split_src = make_wav(gen / "m.wav", 220.0, 16000, duration=12.0)
        split_in = tmp / "split_in"
        split_files = _spread([split_src], split_in, n)
        # extract-audio inputs: 10 s 25 fps 320x240 H.264 + AAC 44.1 kHz stereo
        videos = [make_video(gen / f"v{i}.mp4", duration=10.0, fps=25, size=(320, 240), audio_sr=44100,
                             audio_channels=2, pattern="texture", gop=50, crf=23) for i in range(2)]
        video_in = tmp / "video_in"
        video_files = _spread(videos, video_in, n)
        print(f"media generated in {time.perf_counter() - t0:.1f} s", flush=True)

        def to_wav_cmd(src: Path, dst: Path) -> list[str]:
            return [*FFMPEG, "-i", str(src), "-ac", "1", "-ar", "16000", str(dst.with_suffix(".wav"))]

        def split_cmd(src: Path, dst: Path) -> list[str]:
            pattern = str(dst.with_name(f"{dst.stem}_%d.wav"))
            return [*FFMPEG, "-i", str(src), "-f", "segment", "-segment_time", "5", "-c", "copy", pattern]

        def extract_cmd(src: Path, dst: Path) -> list[str]:
            return [*FFMPEG, "-i", str(src), "-vn", "-ac", "1", "-ar", "16000", str(dst.with_suffix(".wav"))]

        cases = [
            ("to-wav: 10 s stereo 44.1 kHz wav/flac/mp3/m4a -> mono 16 kHz wav", to_wav_cmd, to_wav_files, to_wav_in,
             lambda out, k: preprocess.to_wav(to_wav_in, out, 16000, workers=k)),
            ("split: 12 s mono 16 kHz wav -> 5 s pieces (3 per file)", split_cmd, split_files, split_in,
             lambda out, k: preprocess.split_audio(split_in, out, 5.0, workers=k)),
            ("extract-audio: 10 s 320x240 H.264 + AAC mp4 -> mono 16 kHz wav", extract_cmd, video_files, video_in,
             lambda out, k: preprocess.extract_audio(video_in, out, 16000, workers=k)),
        ]
        for title, cmd, files, root, tool in cases:
            methods: dict[str, Callable[[Path], None]] = {
                "plain ffmpeg, 1 process per file (base)":
                    lambda out, cmd=cmd, files=files, root=root: _plain(cmd, files, root, out, 1),
                f"plain ffmpeg, {w} in parallel":
                    lambda out, cmd=cmd, files=files, root=root: _plain(cmd, files, root, out, w),
                "preprocess --workers 1": lambda out, tool=tool: _check(tool(out, 1), n),
                f"preprocess --workers {w}": lambda out, tool=tool: _check(tool(out, w), n),
            }
            _report(title, _time_case(methods, n, rounds, tmp), lines)
    lines.append(f"\nload average (1 min) at start {load0:.2f}, at end {os.getloadavg()[0]:.2f} "
                 "(other processes on the machine slow every method alike)")
    print(lines[-1], flush=True)
    return lines


def _check(summary: preprocess.Summary, n: int) -> None:
    if summary.written != n or summary.failed:
        raise RuntimeError(f"the tool processed {summary.written} of {n} files; failures: {summary.failed[:3]}")


if __name__ == "__main__":
    main(sys.argv[1:])
