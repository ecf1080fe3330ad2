"""Spectrogram pictures from waveforms (numpy only): thumbnails for audio items and strips for timelines.

:func:`spectrogram_thumbnail` draws a log-magnitude STFT on a mel frequency axis (rows evenly spaced
in mel from 0 Hz to the Nyquist frequency, low frequencies at the bottom), each row the loudest STFT
bin of its mel band (or interpolated where a band holds no bin), each column the loudest frame of its
stretch of time, coloured with a magma-like map over the top ``db_range`` decibels.
:func:`mel_row` says where a frequency lands, :func:`frequency_ticks` where to write Hz labels.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["colorize_db", "frequency_ticks", "hz_to_mel", "mel_row", "mel_to_hz", "spectrogram_thumbnail"]

# anchors of a magma-like map (black -> purple -> red -> orange -> pale yellow), RGB 0..255
_ANCHORS = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                    dtype=np.float64)


def hz_to_mel(hz) -> np.ndarray:
    """Frequency in Hz -> mel (the HTK formula ``2595 * log10(1 + f / 700)``)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel) -> np.ndarray:
    """Mel -> frequency in Hz (inverse of :func:`hz_to_mel`)."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_row(hz, sample_rate: int, height: int) -> np.ndarray:
    """The image row (0 = top) of a frequency in a thumbnail of ``height`` rows.

    Args:
        hz: frequency or frequencies in Hz (0 .. sample_rate / 2).
        sample_rate: the waveform's rate.
        height: the thumbnail's rows.

    Returns:
        float row(s): ``height - 1`` at 0 Hz, 0 at the Nyquist frequency.
    """
    frac = hz_to_mel(hz) / hz_to_mel(sample_rate / 2.0)
    return (height - 1) * (1.0 - frac)


def frequency_ticks(row_hz: Sequence[float], candidates: Sequence[float] = (
        50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)) -> tuple[list[float], list[str]]:
    """Where to write Hz labels on an axis whose rows have the frequencies ``row_hz``.

    Args:
        row_hz: increasing frequency (Hz) of each row position 0, 1, ... (any warp: linear, log, mel).
        candidates: the frequencies worth a label.

    Returns:
        ``(positions, labels)``: fractional row positions (interpolated) of the candidates inside the
        axis' range, and labels such as ``"500"`` or ``"2k"``.
    """
    f = np.asarray(row_hz, dtype=np.float64)
    if f.ndim != 1 or f.size < 2 or np.any(np.diff(f) <= 0):
        raise ValueError("row_hz must hold at least two strictly increasing frequencies")
    pos, labels = [], []
    for c in candidates:
        if f[0] <= c <= f[-1]:
            pos.append(float(np.interp(c, f, np.arange(f.size))))
            labels.append(f"{c / 1000:g}k" if c >= 1000 else f"{c:g}")
    return pos, labels


def colorize_db(values01: np.ndarray) -> np.ndarray:
    """float (...) in [0, 1] -> uint8 (..., 3) RGB on the magma-like map (0 = black, 1 = pale yellow)."""
    v = np.clip(np.nan_to_num(np.asarray(values01, dtype=np.float64), nan=0.0), 0.0, 1.0)
    x = v * (len(_ANCHORS) - 1)
    i = np.minimum(x.astype(np.int64), len(_ANCHORS) - 2)
    t = (x - i)[..., None]
    return np.rint(_ANCHORS[i] * (1 - t) + _ANCHORS[i + 1] * t).astype(np.uint8)


def _stft_db_columns(wave: np.ndarray, n_fft: int, hop: int, width: int, block: int = 2048) -> np.ndarray:
    """(n_fft // 2 + 1, width) magnitude in dB, each column the loudest frame of its stretch of time."""
    pad = np.concatenate([np.zeros(n_fft // 2), wave, np.zeros(n_fft // 2)])
    frames = 1 + max(0, pad.shape[0] - n_fft) // hop
    window = np.hanning(n_fft + 1)[:-1]
    out = np.full((n_fft // 2 + 1, width), -np.inf)
    column = np.minimum((np.arange(frames) * width) // max(frames, 1), width - 1)
    for s in range(0, frames, block):
        idx = np.arange(s, min(frames, s + block))[:, None] * hop + np.arange(n_fft)[None, :]
        mag = np.abs(np.fft.rfft(pad[idx] * window, axis=1))
        db = 20.0 * np.log10(mag + 1e-10).T  # (bins, frames in block)
        cols = column[s:s + db.shape[1]]  # non-decreasing: reduce each run of equal columns
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        out[:, cols[starts]] = np.maximum(out[:, cols[starts]], np.maximum.reduceat(db, starts, axis=1))
    if frames < width:  # fewer frames than columns: each empty column takes its nearest frame's
        filled = np.unique(column)
        nearest = filled[np.clip(np.searchsorted(filled, np.arange(width)), 0, len(filled) - 1)]
        out = out[:, nearest]
    return out


def spectrogram_thumbnail(wave: np.ndarray, sample_rate: int, size: tuple[int, int] = (96, 160), *,
                          db_range: float = 80.0) -> np.ndarray:
    """A small picture of a sound: log-magnitude STFT on a mel frequency axis, low frequencies at the bottom.

    Args:
        wave: float (L,) mono waveform (a (C, L) array is averaged over its channels).
        sample_rate: Hz.
        size: ``(height, width)`` in pixels; rows are evenly spaced in mel from 0 Hz (bottom) to
            ``sample_rate / 2`` (top, see :func:`mel_row`), columns evenly in time.
        db_range: the colour map spans the loudest value down to ``db_range`` dB below it (black).

    Returns:
        uint8 (height, width, 3) RGB. A silent or empty waveform gives an all-black picture.
    """
    h, w = (int(v) for v in size)
    if h < 2 or w < 1:
        raise ValueError(f"size must be at least (2, 1), got {size}")
    if sample_rate <= 0 or db_range <= 0:
        raise ValueError(f"need a positive sample_rate and db_range, got {sample_rate} and {db_range}")
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected a (L,) or (C, L) waveform, got shape {x.shape}")
    x = np.nan_to_num(x)
    if not x.size or not np.any(x):
        return np.zeros((h, w, 3), np.uint8)
    n_fft = 2 ** max(6, round(math.log2(0.032 * sample_rate)))  # about 32 ms
    hop = n_fft // 4 if x.size // (n_fft // 4) <= 32 * w else n_fft // 2  # long sounds: half the frames
    db = _stft_db_columns(x, n_fft, hop, w)
    bin_hz = np.arange(db.shape[0]) * sample_rate / n_fft
    # rows, bottom to top: mel bands of equal width; a band's value is its loudest bin
    mel_edges = np.linspace(0.0, hz_to_mel(sample_rate / 2.0), h + 1)
    centres_hz = mel_to_hz((mel_edges[:-1] + mel_edges[1:]) / 2)
    band = np.clip(np.searchsorted(mel_to_hz(mel_edges), bin_hz, side="right") - 1, 0, h - 1)
    pooled = np.full((h, w), -np.inf)
    starts = np.flatnonzero(np.r_[True, band[1:] != band[:-1]])  # bins are sorted: runs of one band
    pooled[band[starts]] = np.maximum.reduceat(db, starts, axis=0)
    # bands narrower than a bin hold none: interpolate the bins around their centre
    j = np.clip(np.searchsorted(bin_hz, centres_hz), 1, len(bin_hz) - 1)
    t = ((centres_hz - bin_hz[j - 1]) / (bin_hz[j] - bin_hz[j - 1]))[:, None]
    interp = db[j - 1] * (1 - t) + db[j] * t
    rows = np.where(np.isfinite(pooled), pooled, interp)
    top = float(rows.max())
    img = colorize_db((rows - (top - db_range)) / db_range)
    return np.ascontiguousarray(img[::-1])
