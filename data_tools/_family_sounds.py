"""Sounds of the benchmark families: two banks of class sounds (FM, formant-filtered pulses, noise bands,
chirps, plucked strings, click trains, ...), the on/off activity of intermittent sources, background
noise, and stereo panning that follows the sounding object.

Used by :mod:`data_tools._family_synth`. Every generator has the signature
``(rng, n, sr, pitch, tempo) -> float64 (n,)`` (any scale: the caller normalises the level), where
``pitch`` multiplies every frequency and ``tempo`` every rate of the class.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal

Sound = Callable[[np.random.Generator, int, int, float, float], np.ndarray]


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _times(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _integrate(freq: np.ndarray | float, n: int, sr: int) -> np.ndarray:
    """Phase in radians of an oscillator of (possibly time-varying) frequency ``freq`` Hz."""
    return np.cumsum(np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))) * (2 * np.pi / sr)


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass (``lo`` <= 0: low-pass), edges kept below Nyquist."""
    nyquist = 0.5 * sr
    hi = min(hi, 0.95 * nyquist)
    if lo <= 0:
        sos = signal.butter(order, hi, btype="lowpass", fs=sr, output="sos")
    else:
        sos = signal.butter(order, [min(lo, 0.9 * hi), hi], btype="bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def _resonator(x: np.ndarray, sr: int, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonance at ``freq`` Hz with ``bandwidth`` Hz, unit gain at the peak (about)."""
    r = np.exp(-np.pi * bandwidth / sr)
    a = [1.0, -2.0 * r * np.cos(2 * np.pi * min(freq, 0.45 * sr) / sr), r * r]
    return signal.lfilter([1.0 - r], a, x)


def _event_starts(rng: np.random.Generator, n: int, sr: int, period: float, jitter: float) -> np.ndarray:
    """Start samples of events about every ``period`` s (+-``jitter`` of it); the first may start before 0."""
    count = int(np.ceil(n / sr / period)) + 2
    gaps = period * (1.0 + rng.uniform(-jitter, jitter, size=count))
    starts = np.cumsum(gaps) - rng.uniform(0.5, 1.5) * period
    return np.round(starts[starts < n / sr] * sr).astype(np.int64)


def _place(out: np.ndarray, starts: np.ndarray, make: Callable[[int], np.ndarray]) -> np.ndarray:
    """Add ``make(k)`` at each start (clipped to ``out``); returns ``out``."""
    for k, start in enumerate(starts):
        event = make(k)
        a, b = max(start, 0), min(len(out), start + len(event))
        if b > a:
            out[a:b] += event[a - start : b - start]
    return out


def _fades(length: int, sr: int, fade: float = 0.01) -> np.ndarray:
    """An envelope of ``length`` samples with raised-cosine fades of ``fade`` s at both ends."""
    env = np.ones(length)
    k = min(int(fade * sr), length // 2)
    if k:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        env[:k] = ramp
        env[length - k :] = ramp[::-1]
    return env


def _slow_wander(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """A smooth random curve in about [-1, 1], changing ``rate`` times per second; (n,)."""
    knots = rng.uniform(-1.0, 1.0, size=int(np.ceil(n / sr * rate)) + 2)
    return np.interp(np.arange(n) / sr * rate, np.arange(len(knots)), knots)


def _square_lfo(n: int, sr: int, rate: float, phase: float, sharpness: float = 4.0) -> np.ndarray:
    """A rounded square wave in [0, 1] at ``rate`` Hz."""
    return 0.5 + 0.5 * np.tanh(sharpness * np.sin(2 * np.pi * rate * _times(n, sr) + phase))


# --------------------------------------------------------------------------------------------
# The `clutter` bank: twelve sounds
# --------------------------------------------------------------------------------------------


def _fm_bell(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    carrier = 880.0 * pitch
    t = _times(int(0.7 * sr), sr)
    strike = np.exp(-t / 0.3) * np.sin(2 * np.pi * carrier * t + 3.5 * np.exp(-t / 0.12)
                                       * np.sin(2 * np.pi * 1.41 * carrier * t))
    return _place(np.zeros(n), _event_starts(rng, n, sr, 0.3 / tempo, 0.1), lambda k: strike)


def _fm_brass(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    t = _times(n, sr)
    freq = 311.0 * pitch * (1 + 0.008 * np.sin(2 * np.pi * 5.5 * t))
    index = 2.5 + 1.5 * np.sin(2 * np.pi * 0.8 * tempo * t + rng.uniform(0, 2 * np.pi))
    phase = _integrate(freq, n, sr)
    return np.sin(phase + index * np.sin(phase))


_VOWELS = {  # formant (Hz, bandwidth Hz, gain) triples and a base pitch
    "ah": (130.0, ((730, 90, 1.0), (1090, 110, 0.6), (2440, 160, 0.25))),
    "ee": (220.0, ((270, 60, 1.0), (2290, 150, 0.45), (3010, 200, 0.3))),
    "oo": (165.0, ((300, 70, 1.0), (870, 90, 0.5), (2240, 170, 0.12))),
}


def _vowel(name: str) -> Sound:
    base, formants = _VOWELS[name]

    def sound(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
        t = _times(n, sr)
        f0 = base * pitch * (1 + 0.015 * np.sin(2 * np.pi * 5.0 * tempo * t + rng.uniform(0, 2 * np.pi)))
        cycles = np.floor(np.cumsum(f0) / sr)
        pulses = np.zeros(n)
        pulses[1:][np.diff(cycles) > 0] = 1.0
        source = signal.lfilter([0.1], [1.0, -0.9], pulses)  # a glottal-like spectral tilt
        shift = rng.uniform(0.95, 1.05)
        return sum(gain * _resonator(source, sr, f * shift, bw) for f, bw, gain in formants)

    return sound


def _rumble_pulses(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    noise = _bandpass(rng.standard_normal(n), sr, 150.0 * pitch, 500.0 * pitch)
    return noise * (0.2 + 0.8 * _square_lfo(n, sr, 3.5 * tempo, rng.uniform(0, 2 * np.pi)))


def _hiss_flutter(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    noise = _bandpass(rng.standard_normal(n), sr, 4000.0 * pitch, 7000.0 * pitch)
    return noise * (0.25 + 0.75 * _square_lfo(n, sr, 9.0 * tempo, rng.uniform(0, 2 * np.pi), 2.0))


def _chirps(start: float, stop: float, length: float, gap: float, second: float) -> Sound:
    def sound(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
        m = int(length / tempo * sr)
        freq = start * pitch * (stop / start) ** np.linspace(0.0, 1.0, m)  # exponential sweep
        phase = _integrate(freq, m, sr)
        chirp = _fades(m, sr, 0.015) * (np.sin(phase) + second * np.sin(2 * phase))
        return _place(np.zeros(n), _event_starts(rng, n, sr, (length + gap) / tempo, 0.05), lambda k: chirp)

    return sound


def _pluck(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    """Karplus-Strong plucked string: a noise burst circulating in a damped delay line."""
    notes = 196.0 * pitch * np.array([1.0, 9 / 8, 5 / 4, 3 / 2, 5 / 3])
    length = int(0.6 * sr)

    def note(k: int) -> np.ndarray:
        delay = max(2, int(round(sr / notes[int(rng.integers(len(notes)))])))
        excitation = np.zeros(length)
        excitation[:delay] = rng.uniform(-1.0, 1.0, size=delay)
        feedback = np.zeros(delay + 2)
        feedback[0], feedback[delay], feedback[delay + 1] = 1.0, -0.498, -0.498
        return signal.lfilter([1.0], feedback, excitation) * _fades(length, sr, 0.005)

    return _place(np.zeros(n), _event_starts(rng, n, sr, 0.22 / tempo, 0.1), note)


def _clicks(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    pulses = np.zeros(n)
    starts = _event_starts(rng, n, sr, 1.0 / (45.0 * tempo), 0.15)
    pulses[starts[starts >= 0]] = rng.choice([-1.0, 1.0]) * rng.uniform(0.7, 1.0, size=int(np.sum(starts >= 0)))
    return _resonator(pulses, sr, 2600.0 * pitch, 400.0)


def _trill(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    low, high = 1050.0 * pitch, 1250.0 * pitch
    freq = low + (high - low) * _square_lfo(n, sr, 11.0 * tempo, rng.uniform(0, 2 * np.pi), 5.0)
    phase = _integrate(freq, n, sr)
    return np.sin(phase) + 0.25 * np.sin(3 * phase)


# --------------------------------------------------------------------------------------------
# The `wide` bank: six continuous sounds
# --------------------------------------------------------------------------------------------


def _whistle(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    centre = 1700.0 * pitch
    freq = centre * 2 ** (0.8 * _slow_wander(rng, n, sr, 2.0 * tempo) / 12)
    breath = _bandpass(rng.standard_normal(n), sr, 0.8 * centre, 1.25 * centre, order=2)
    return np.sin(_integrate(freq, n, sr)) + 0.4 * breath / (np.std(breath) + 1e-12)


def _beating_hum(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    f0 = 140.0 * pitch
    beat = rng.uniform(2.0, 4.0) * tempo
    out = np.zeros(n)
    for freq in (f0, f0 + beat):
        phase = _integrate(freq, n, sr) + rng.uniform(0, 2 * np.pi)
        out += sum(np.sin(k * phase) / k for k in range(1, 5))
    return out


def _ring_mod(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    t = _times(n, sr)
    carrier = np.sin(2 * np.pi * 620.0 * pitch * t + rng.uniform(0, 2 * np.pi))
    return carrier * (0.3 + np.sin(2 * np.pi * 97.0 * pitch * t))


def _glissando(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    """Octave-spaced partials gliding up forever under a fixed bell-shaped spectral envelope."""
    t = _times(n, sr)
    centre = np.log2(600.0 * pitch)
    out = np.zeros(n)
    for k in range(-3, 4):
        octave = centre + k + np.mod(0.6 * tempo * t + rng.uniform(0, 1), 1.0) - 0.5
        out += np.exp(-0.5 * (octave - centre) ** 2) * np.sin(_integrate(2.0**octave, n, sr))
    return out


def _supersaw(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    out = np.zeros(n)
    for root in (110.0 * pitch, 165.0 * pitch):
        for detune in (-0.012, -0.006, 0.0, 0.006, 0.012):
            cycles = np.cumsum(np.full(n, root * (1 + detune) / sr)) + rng.uniform(0, 1)
            out += 2.0 * (cycles - np.floor(cycles)) - 1.0
    return _bandpass(out, sr, 0.0, 2000.0)


def _granular(rng: np.random.Generator, n: int, sr: int, pitch: float, tempo: float) -> np.ndarray:
    grain = int(0.03 * sr)
    window = np.hanning(grain)
    t = _times(grain, sr)
    count = rng.poisson(150.0 * tempo * n / sr)
    starts = np.sort(rng.integers(-grain, n, size=count))
    freqs = rng.uniform(3000.0, 5000.0, size=count) * pitch
    return _place(np.zeros(n), starts, lambda k: window * np.sin(2 * np.pi * freqs[k] * t))


SOUNDS: dict[str, Sound] = {
    "fm_bell": _fm_bell,
    "fm_brass": _fm_brass,
    "vowel_ah": _vowel("ah"),
    "vowel_ee": _vowel("ee"),
    "vowel_oo": _vowel("oo"),
    "rumble_pulses": _rumble_pulses,
    "hiss_flutter": _hiss_flutter,
    "rising_chirps": _chirps(450.0, 1500.0, 0.17, 0.01, 0.0),
    "falling_chirps": _chirps(2300.0, 800.0, 0.13, 0.01, 0.35),
    "pluck": _pluck,
    "clicks": _clicks,
    "trill": _trill,
    "whistle": _whistle,
    "beating_hum": _beating_hum,
    "ring_mod": _ring_mod,
    "glissando": _glissando,
    "supersaw": _supersaw,
    "granular": _granular,
}
"""Every class sound by name."""


# --------------------------------------------------------------------------------------------
# Activity, noise, level and panning
# --------------------------------------------------------------------------------------------


def activity_gate(rng: np.random.Generator, n: int, sr: int, active: tuple[float, float],
                  on: tuple[float, float] = (0.3, 1.0), off: tuple[float, float] = (0.15, 0.45),
                  ramp: float = 0.01) -> np.ndarray:
    """On/off envelope of an intermittent source: sounding stretches separated by silences.

    The stretches last ``on`` s and the silences ``off`` s (uniform); the fraction of time on is
    drawn again until it lies in ``active``. Edges are raised-cosine ramps of ``ramp`` s.

    Args:
        rng: the clip's generator.
        n: samples.
        sr: sample rate, Hz.
        active: (low, high) fraction of the clip the source is on.
        on, off: (low, high) seconds of each sounding stretch and each silence.
        ramp: seconds of each fade.

    Returns:
        float64 (n,) in [0, 1].
    """
    duration = n / sr
    best: tuple[float, np.ndarray] | None = None
    for _ in range(200):
        state = bool(rng.random() < 0.6)
        t = -rng.uniform(0, (on if state else off)[1])
        mask = np.zeros(n, dtype=bool)
        while t < duration:
            length = rng.uniform(*(on if state else off))
            if state:
                mask[max(int(t * sr), 0) : max(int((t + length) * sr), 0)] = True
            t += length
            state = not state
        fraction = float(mask.mean())
        miss = max(active[0] - fraction, fraction - active[1], 0.0)
        if best is None or miss < best[0]:
            best = (miss, mask)
        if miss == 0.0:
            break
    assert best is not None
    k = max(1, int(ramp * sr))
    kernel = np.hanning(k + 2)[1:-1]
    return np.convolve(best[1].astype(np.float64), kernel / kernel.sum(), mode="same")


def pink_noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Noise with a 1/f power spectrum above 50 Hz, unit RMS; float64 (n,)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs, 50.0)), n=n)
    return noise / (np.std(noise) + 1e-12)


def pan_gains(position: np.ndarray, width: float) -> np.ndarray:
    """Constant-power stereo gains for a source at ``position`` in [-1, 1] (left to right).

    Args:
        position: (n,) pan positions.
        width: how far the extremes go (1 = hard left/right).

    Returns:
        float64 (n, 2) left and right gains, ``L**2 + R**2 = 1``.
    """
    angle = (np.clip(position * width, -1.0, 1.0) + 1.0) * np.pi / 4
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)
