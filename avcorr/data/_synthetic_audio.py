"""The per-class sound generators of the synthetic dataset (see :mod:`avcorr.data.synthetic`)."""

from __future__ import annotations

from typing import Callable

import numpy as np


# Each takes (rng, n samples, sample rate, pitch factor) and returns float64 (n,), any scale.


def _band_limit(sr: int, cap: float = 8000.0) -> float:
    return min(0.45 * sr, cap)


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Zero-phase FFT band-pass with soft (raised-cosine, one-third octave) edges."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    gain = np.ones_like(freqs)
    if lo > 0:
        ramp = np.clip((np.log2(np.maximum(freqs, 1e-3)) - np.log2(lo / 1.26)) / np.log2(1.26), 0, 1)
        gain *= 0.5 - 0.5 * np.cos(np.pi * ramp)
    ramp = np.clip((np.log2(hi * 1.26) - np.log2(np.maximum(freqs, 1e-3))) / np.log2(1.26), 0, 1)
    gain *= 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.fft.irfft(spec * gain, n=len(x))


def _phase(freq: np.ndarray | float, n: int, sr: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(np.broadcast_to(freq, (n,))) / sr


def _onsets(rng: np.random.Generator, n: int, sr: int, period: float, jitter: float) -> np.ndarray:
    """Event times (samples) roughly every ``period`` s with +-``jitter`` of it, from near 0."""
    duration = n / sr
    count = int(np.ceil(duration / period)) + 1
    times = rng.uniform(0, 0.3 * period) + period * np.arange(count)
    times += rng.uniform(-jitter, jitter, size=count) * period
    times = np.clip(times, 0, None)
    return np.round(times[times < duration] * sr).astype(np.int64)


def _add_events(out: np.ndarray, onsets: np.ndarray, make: Callable[[int], np.ndarray]) -> None:
    for k, start in enumerate(onsets):
        event = make(k)
        stop = min(len(out), start + len(event))
        out[start:stop] += event[: stop - start]


def _violin(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = 440.0 * pitch
    freq = f0 * (1 + 0.015 * np.sin(2 * np.pi * rng.uniform(5.0, 6.5) * t + rng.uniform(0, 2 * np.pi)))
    phase = _phase(freq, n, sr)
    out = np.zeros(n)
    for k in range(1, max(1, int(_band_limit(sr) / (f0 * 1.02))) + 1):
        out += np.sin(k * phase) / k
    return out * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.7, 1.5) * t))


def _flute(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / sr
    return np.sin(_phase(660.0 * pitch, n, sr) + rng.uniform(0, 2 * np.pi)) * (
        1 + 0.1 * np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t)
    )


def _drum(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    out = np.zeros(n)
    length = int(0.2 * sr)
    t = np.arange(length) / sr
    noise = _bandpass(rng.standard_normal(n + length), sr, 300.0, min(5000.0, 0.4 * sr))
    noise /= np.std(noise) + 1e-12
    decay = rng.uniform(0.03, 0.05)
    thump = np.sin(_phase(75.0 * pitch * (1 + 1.5 * np.exp(-t / 0.02)), length, sr))

    def hit(k: int) -> np.ndarray:
        accent = 1.0 if k % 2 == 0 else 0.6
        start = int(rng.integers(0, n))
        return accent * np.exp(-t / decay) * (noise[start : start + length] + 0.7 * thump)

    _add_events(out, _onsets(rng, n, sr, rng.uniform(0.18, 0.26), 0.08), hit)
    return out


def _bell(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    out = np.zeros(n)
    length = min(n, int(1.5 * sr))
    t = np.arange(length) / sr
    f0 = 523.0 * pitch
    partials = [(1.0, 1.0, 0.9), (2.76, 0.6, 0.5), (5.40, 0.4, 0.3), (8.93, 0.25, 0.2)]
    strike = np.zeros(length)
    for ratio, amp, tau in partials:
        if ratio * f0 < 0.45 * sr:
            strike += amp * np.exp(-t / tau) * np.sin(2 * np.pi * ratio * f0 * t)
    _add_events(out, _onsets(rng, n, sr, rng.uniform(0.45, 0.6), 0.08), lambda k: strike)
    return out


def _bass(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    f0 = 82.0 * pitch
    steps = np.array([1.0, 1.498, 1.335, 1.122])
    onsets = _onsets(rng, n, sr, rng.uniform(0.25, 0.4), 0.1)
    freq = np.full(n, f0)
    for k, start in enumerate(onsets):
        freq[start:] = f0 * steps[int(rng.integers(0, len(steps)))] if k else f0
    phase = _phase(freq, n, sr)
    out = np.zeros(n)
    for k in range(1, max(1, int(_band_limit(sr, 3000.0) / (f0 * 1.5))) + 1, 2):
        out += np.sin(k * phase) / k
    return out


def _siren(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / sr
    freq = 900.0 * pitch * 2 ** (0.6 * np.sin(2 * np.pi * t / rng.uniform(0.7, 1.1) + rng.uniform(0, 2 * np.pi)))
    phase = _phase(freq, n, sr)
    return np.sin(phase) + 0.3 * np.sin(2 * phase)


def _engine(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    t = np.arange(n) / sr
    rumble = _bandpass(rng.standard_normal(n), sr, 30.0, 300.0)
    rumble /= np.std(rumble) + 1e-12
    phase = _phase(45.0 * pitch, n, sr)
    tone = sum(np.sin(k * phase) / k for k in range(1, 7))
    am = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(8.0, 13.0) * t + rng.uniform(0, 2 * np.pi))
    return am * (rumble + 0.7 * tone)


def _bird(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    out = np.zeros(n)
    fmax = 0.42 * sr
    f_lo, f_hi = min(2800.0 * pitch, 0.6 * fmax), min(4800.0 * pitch, fmax)

    def chirp(k: int) -> np.ndarray:
        length = int(rng.uniform(0.04, 0.07) * sr)
        return np.hanning(length) * np.sin(_phase(np.linspace(f_lo, f_hi, length), length, sr))

    _add_events(out, _onsets(rng, n, sr, rng.uniform(0.09, 0.15), 0.15), chirp)
    return out


def _rain(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    clicks = np.zeros(n)
    count = rng.poisson(400 * n / sr)
    clicks[rng.integers(0, n, size=count)] = rng.exponential(1.0, size=count) * rng.choice([-1.0, 1.0], size=count)
    clicks += 0.05 * rng.standard_normal(n)
    return _bandpass(clicks, sr, min(2000.0 * pitch, 0.25 * sr), _band_limit(sr))


def _organ(rng: np.random.Generator, n: int, sr: int, pitch: float) -> np.ndarray:
    out = np.zeros(n)
    root = 220.0 * pitch
    for ratio in (1.0, 1.26, 1.498):
        phase = _phase(root * ratio, n, sr) + rng.uniform(0, 2 * np.pi)
        for k, amp in enumerate((1.0, 0.5, 0.33, 0.25), start=1):
            if k * root * ratio < 0.45 * sr:
                out += amp * np.sin(k * phase)
    return out


_SOUNDS: dict[str, Callable[[np.random.Generator, int, int, float], np.ndarray]] = {
    "Violin": _violin,
    "Flute": _flute,
    "Drum": _drum,
    "Bell": _bell,
    "Bass": _bass,
    "Siren": _siren,
    "Engine": _engine,
    "Bird": _bird,
    "Rain": _rain,
    "Organ": _organ,
}
