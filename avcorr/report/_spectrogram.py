"""A stand-in for ``avcorr.viz.spectrogram.spectrogram_thumbnail`` (being written beside this module, with
the same signature): the report's galleries switch to the shared one when it lands."""

from __future__ import annotations

import numpy as np


def spectrogram_thumbnail(wave: np.ndarray, sample_rate: int, size: tuple[int, int] = (96, 160), *,
                          db_range: float = 80.0) -> np.ndarray:
    """A small picture of a sound's log-power spectrogram (low frequencies at the bottom).

    Args:
        wave: float (T,) mono waveform.
        sample_rate: its rate in Hz (the frame length is ~25 ms, the hop ~10 ms).
        size: (height, width) of the picture in pixels.
        db_range: decibels below the loudest bin drawn as black.

    Returns:
        uint8 (H, W, 3) RGB picture (the magma colour map); an empty or silent sound gives a black one.
    """
    import cv2

    h, w = size
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    n_fft = 1 << max(6, int(np.ceil(np.log2(max(2, sample_rate * 0.025)))))
    hop = max(1, int(sample_rate * 0.010))
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    starts = np.arange(0, x.size - n_fft + 1, hop)
    frames = x[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2  # (F, frames)
    db = 10.0 * np.log10(power + 1e-12)
    top = float(db.max())
    if not np.isfinite(top) or top <= -110.0:  # silence
        return np.zeros((h, w, 3), np.uint8)
    u8 = np.clip((db - (top - db_range)) / db_range * 255.0, 0, 255).astype(np.uint8)[::-1]
    u8 = cv2.resize(np.ascontiguousarray(u8), (w, h), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB)
