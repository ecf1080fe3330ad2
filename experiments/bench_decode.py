"""Benchmark of avcorr.data.decode: random single-frame reads and 1 s audio reads per second.

Run from the repository root (it makes its own clips with ``tests/media.py``; nothing is
downloaded)::

    python -m experiments.bench_decode            # full run, a few minutes on 2 CPU cores
    python -m experiments.bench_decode --quick    # ~1 minute

Every read is what a DataLoader worker does for one training example: open the file, decode one
frame at a random time (or one second of audio at a random start), close it. Methods are timed in
interleaved rounds over the same random (clip, time) draws, one torch thread, and the median round
is reported, so background load hits every method alike. The "vs" column is the speed relative to
the first (baseline) row of each case.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

try:
    from avcorr.data import decode
    from tests.media import make_video, make_wav
except ImportError as exc:  # pragma: no cover - depends on how it is launched
    raise SystemExit(
        f"{exc}: run this from the repository root as `python -m experiments.bench_decode`") from exc


Method = Callable[[str, float], object]


@dataclass
class VideoSet:
    name: str
    paths: list[str]
    duration: float


def _make_videos(root: Path, tag: str, n: int, duration: float, fps: int, size: tuple[int, int]) -> VideoSet:
    paths = []
    for i in range(n):
        p = root / f"{tag}_{i:02d}.mp4"
        # A key frame every 2 s (like most web video), camera-like texture, AAC audio track.
        make_video(p, duration=duration, fps=fps, size=size, audio_sr=48000, pattern="texture",
                   gop=2 * fps, crf=20)
        paths.append(str(p))
    return VideoSet(f"{n} clips {duration:g} s {fps} fps {size[0]}x{size[1]}", paths, duration)


def _draws(paths: list[str], duration: float, window: float, count: int, seed: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(rng.choice(paths), rng.uniform(0, duration - window)) for _ in range(count)]


def _time_methods(
    methods: dict[str, Method],
    make_draws: Callable[[int], list[tuple[str, float]]],
    rounds: int,
) -> dict[str, list[float]]:
    """reads/s per round for each method; rounds interleave the methods on the same draws."""
    rates: dict[str, list[float]] = {m: [] for m in methods}
    names = list(methods)
    for r in range(rounds + 1):  # round 0 warms caches and is not kept
        draws = make_draws(r)
        order = names[r % len(names):] + names[:r % len(names)]
        for m in order:
            fn = methods[m]
            t0 = time.perf_counter()
            for path, t in draws:
                fn(path, t)
            if r:
                rates[m].append(len(draws) / (time.perf_counter() - t0))
    return rates


def _report(title: str, rates: dict[str, list[float]], lines: list[str]) -> None:
    base = statistics.median(next(iter(rates.values())))
    lines.append(f"\n{title}")
    lines.append(f"  {'method':<44} {'calls/s':>9} {'ms/call':>8} {'vs':>6}")
    for m, rs in rates.items():
        med = statistics.median(rs)
        lines.append(f"  {m:<44} {med:>9.1f} {1000 / med:>8.2f} {med / base:>5.2f}x")
    print("\n".join(lines[-len(rates) - 2:]), flush=True)


def _versions() -> str:
    mods = {}
    for name in ("torch", "torchcodec", "decord", "torchaudio", "numpy"):
        try:
            mods[name] = __import__(name).__version__
        except ImportError:
            mods[name] = "missing"
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    ff = ff.stdout.split("\n")[0]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), {gpu}, "
            f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in mods.items())
            + f", {' '.join(ff.split()[:3])}; torch threads 1")


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips and reads (about a minute)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per method")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the generated media here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # as in a DataLoader worker
    load0 = os.getloadavg()[0]
    quick = args.quick
    rounds = args.rounds or (3 if quick else 7)
    lines = [f"machine: {_versions()}", f"mode: {'quick' if quick else 'full'}, {rounds} rounds, median"]
    print("\n".join(lines), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sets = [
            (_make_videos(root, "short", 6 if quick else 20, 3.0, 10, (128, 128)), 15),
            (_make_videos(root, "long", 2 if quick else 4, 10.0, 30, (320, 240)), 8),
        ]
        wavs = [str(make_wav(root / f"a{i:02d}.wav", 440.0 + 10 * i, 44100, channels=2, duration=10.0))
                for i in range(4 if quick else 20)]
        print(f"media generated in {time.perf_counter() - t0:.1f} s", flush=True)

        has_decord = importlib.util.find_spec("decord") is not None
        n_reads = 1 if quick else 4  # scale of the reads per round

        def case(title: str, methods: dict[str, Method], paths: list[str], duration: float,
                 window: float, count: int) -> None:
            rates = _time_methods(
                methods, lambda r: _draws(paths, duration, window, count * n_reads, args.seed + r), rounds)
            _report(title, rates, lines)

        readers: dict[str, decode.VideoReader] = {}

        def held_open(path: str, t: float) -> None:
            if path not in readers:
                readers[path] = decode.VideoReader(path, "torchcodec")
            readers[path].get_frames([t])

        video: dict[str, Method] = {}
        if has_decord:
            video["decord (baseline)"] = lambda p, t: decode.read_frames(p, [t], "decord")
        video["torchcodec approximate (default)"] = lambda p, t: decode.read_frames(p, [t], "torchcodec")
        video["torchcodec exact"] = lambda p, t: decode.read_frames(p, [t], "torchcodec", seek_mode="exact")
        video["torchcodec approximate, reader kept open"] = held_open
        for vs, count in sets:
            case(f"single random frame per call: {vs.name}", video, vs.paths, vs.duration, 0.0, count)

        from torchcodec.decoders import WavDecoder

        audio: dict[str, Method] = {
            # the generic path of read_audio, forced onto the wav files
            "torchcodec AudioDecoder (baseline)":
                lambda p, t: decode._read_audio_torchcodec(p, t, 1.0, None, True),
            "wav fast path (read_audio)": lambda p, t: decode.read_audio(p, t, 1.0),
            "torchcodec WavDecoder (reference, no mixdown)":
                lambda p, t: WavDecoder(p).get_samples_played_in_range(t, t + 1.0),
            "wav fast path + resample 44.1k -> 48k": lambda p, t: decode.read_audio(p, t, 1.0, 48000),
        }
        case(f"1 s mono audio per call: {len(wavs)} wav files 10 s 44.1 kHz stereo 16-bit", audio, wavs,
             10.0, 1.0, 50)
        long_set = sets[1][0]
        case(f"1 s mono audio per call from the mp4 track (AAC 48 kHz): {long_set.name}",
             {"read_audio(mp4)": lambda p, t: decode.read_audio(p, t, 1.0)}, long_set.paths, 10.0, 1.0, 15)

        probes: dict[str, Method] = {"probe_video torchcodec (header)": lambda p, t: decode.probe_video(p)}
        if has_decord:
            probes["probe_video decord (index + first frame)"] = lambda p, t: decode.probe_video(p, "decord")
        probes["probe_audio of the mp4 track"] = lambda p, t: decode.probe_audio(p)
        clips = sets[0][0].paths + long_set.paths
        case(f"probe one file per call: the {len(clips)} clips above", probes, clips, 1.0, 0.0, 25)
        case("probe one wav per call", {"probe_audio (wav header)": lambda p, t: decode.probe_audio(p)},
             wavs, 1.0, 0.0, 100)
    lines.append(f"\nload average (1 min) at start {load0:.2f}, at end {os.getloadavg()[0]:.2f} "
                 f"(other processes on the machine slow every method alike)")
    print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main(sys.argv[1:])
