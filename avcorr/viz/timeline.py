"""Tagging timelines: per-second class probabilities under the sound's waveform, on one time axis.

:func:`plot_timeline` draws the ``top`` classes as a heat map whose cells below the decision
threshold are grey (the colour bar greys the same range and marks the threshold), a waveform strip
(min / max envelope) above it, and gives the last, partial second its real width. Arrays in, a PNG
out; matplotlib through :class:`matplotlib.figure.Figure` (no pyplot state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path

__all__ = ["envelope", "plot_timeline", "second_edges", "threshold_colormap"]


def second_edges(n_seconds: int, duration: float) -> np.ndarray:
    """Time edges (n_seconds + 1,) of the per-second cells: 0, 1, ..., with the last one at the end of the
    audio when the last second is partial (never before its start + 1 ms)."""
    edges = np.arange(n_seconds + 1, dtype=np.float64)
    if n_seconds:
        edges[-1] = max(min(float(n_seconds), duration), n_seconds - 1 + 0.001)
    return edges


def envelope(wave: np.ndarray, sample_rate: int, per_second: int = 20) -> np.ndarray:
    """Min / max of a waveform over blocks of ``1 / per_second`` s (a last partial block included).

    Args:
        wave: float (L,) samples.
        sample_rate: Hz.
        per_second: blocks per second.

    Returns:
        float32 (ceil(L / block), 2): the minimum and maximum of each block.
    """
    x = np.asarray(wave, dtype=np.float32).ravel()
    block = max(1, sample_rate // per_second)
    if not x.size:
        return np.zeros((0, 2), np.float32)
    starts = np.arange(0, x.size, block)
    return np.stack([np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)], axis=1)


def threshold_colormap(threshold: float, n: int = 256):
    """magma above ``threshold``, grey levels below it (probabilities 0..1), for heat maps and their colour bar."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    v = (np.arange(n) + 0.5) / n
    rgba = colormaps["magma"](v)
    below = v < threshold
    grey = 0.25 + 0.5 * v[below]
    rgba[below, :3] = grey[:, None]
    return ListedColormap(rgba, name=f"magma_above_{threshold:g}")


def plot_timeline(path: str | os.PathLike, probs: np.ndarray, classes: Sequence[str], duration: float, *,
                  threshold: float | None = None, wave_envelope: np.ndarray | None = None,
                  envelope_rate: int = 20, top: int = 10, hidden: np.ndarray | None = None, title: str = "",
                  dpi: int = 100) -> Path:
    """PNG: the ``top`` classes over time, a waveform strip above, the threshold marked.

    Args:
        path: output PNG (written atomically).
        probs: float (S, C) probability of each class in each second.
        classes: C class names.
        duration: seconds of audio (the last cell ends here when the last second is partial).
        threshold: the decision threshold: cells below are grey, the colour bar marks it; None: none.
        wave_envelope: float (B, 2) min / max per ``1 / envelope_rate`` s (:func:`envelope`), or None
            (no strip).
        envelope_rate: blocks per second of ``wave_envelope``.
        top: classes shown (highest peak probability first).
        hidden: bool (C,) classes left out, or None.
        title: the figure's title.
        dpi: resolution.

    Returns:
        ``path``.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the timeline picture needs matplotlib: pip install matplotlib") from e
    probs = np.asarray(probs, dtype=np.float32)
    s = probs.shape[0]
    keep = np.flatnonzero(~np.asarray(hidden, bool)) if hidden is not None else np.arange(probs.shape[1])
    strip = wave_envelope is not None and len(wave_envelope) > 0
    if not (s and keep.size):
        fig = Figure(figsize=(10.0, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no audio to tag (0 s)" if not s else "every class is hidden", ha="center", va="center")
        ax.set_title(title, fontsize=10)
    else:
        cols = keep[np.argsort(-probs[:, keep].max(0), kind="stable")[:top]]
        heights = [1.0, 0.35 * len(cols) + 0.4] if strip else [0.35 * len(cols) + 0.4]
        fig = Figure(figsize=(10.0, 1.2 + sum(heights)), layout="constrained")
        axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
        ax = axes[-1]
        edges = second_edges(s, duration)
        cmap = threshold_colormap(threshold) if threshold is not None else "magma"
        mesh = ax.pcolormesh(edges, np.arange(len(cols) + 1) - 0.5, probs[:, cols].T, cmap=cmap, vmin=0.0,
                             vmax=1.0, shading="flat")
        ax.set_ylim(len(cols) - 0.5, -0.5)
        ax.set_yticks(range(len(cols)), [classes[c] for c in cols], fontsize=8)
        ax.set_xlim(0.0, edges[-1])
        minutes = edges[-1] > 600
        ax.set_xlabel("time (min)" if minutes else "time (s)")
        if minutes:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 60:.0f}"))
        cbar = fig.colorbar(mesh, ax=list(axes), fraction=0.03, pad=0.01)
        if threshold is not None:
            cbar.ax.axhline(threshold, color="cyan", linewidth=1.5)
            cbar.set_label(f"probability (threshold {threshold:g}: grey below)")
        else:
            cbar.set_label("probability")
        if strip:
            env = np.asarray(wave_envelope, dtype=np.float32)
            t = (np.arange(len(env)) + 0.5) / envelope_rate
            axes[0].fill_between(t, env[:, 0], env[:, 1], color="0.25", linewidth=0, step="mid")
            peak = float(np.abs(env).max()) or 1.0
            axes[0].set_ylim(-peak * 1.05, peak * 1.05)
            axes[0].set_yticks([])
            axes[0].set_ylabel("waveform", fontsize=8)
        axes[0].set_title(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
