"""The per-class AP bar chart of a tagging evaluation (class counts as bars, AP as stems).

The chart follows the one in the AudioSet tagging write-ups the project started from: classes
sorted by their number of clips, the clip counts as bars on a log axis, each class's average
precision as a stem on a second axis. matplotlib is imported here only, and drawn through the
Agg canvas directly (no pyplot, no global backend change).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path

__all__ = ["plot_ap_per_class"]


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the per-class AP chart needs matplotlib: pip install matplotlib") from exc
    return Figure, FigureCanvasAgg


def plot_ap_per_class(ap: Sequence[float] | np.ndarray, counts: Sequence[int] | np.ndarray,
                      class_names: Sequence[str], path: str | Path, *, title: str = "",
                      max_label_classes: int = 80) -> Path:
    """Write a bar chart of clips per class (bars) and average precision per class (stems).

    Args:
        ap: (C,) average precision per class; NaN for a class without positives (drawn as none).
        counts: (C,) number of clips (positives) per class.
        class_names: C names, in the same order.
        path: the PNG to write (written to a temporary file, then renamed).
        title: figure title; the mAP over the classes with an AP is appended.
        max_label_classes: with more classes than this, class names are not written on the axis.

    Returns:
        ``path`` as a Path.
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    ap = np.asarray(ap, dtype=np.float64).reshape(-1)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    names = list(class_names)
    if not (len(ap) == len(counts) == len(names)):
        raise ValueError(f"ap ({len(ap)}), counts ({len(counts)}) and class_names ({len(names)}) differ in length")
    order = np.argsort(-counts, kind="stable")
    c = len(order)
    x = np.arange(c)
    width = min(24.0, max(6.0, 0.25 * c + 2))
    fig = Figure(figsize=(width, 4.8 if c <= max_label_classes else 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x, np.maximum(counts[order], 0), color="tab:blue", alpha=0.6, width=0.8, label="clips per class")
    if counts.max(initial=0) > 0 and counts.max() / max(1, counts[counts > 0].min(initial=1)) > 50:
        ax.set_yscale("log")
    ax.set_ylabel("clips per class", color="tab:blue")
    ax.set_xlim(-0.6, c - 0.4)
    ax2 = ax.twinx()
    ap_sorted = ap[order]
    valid = ~np.isnan(ap_sorted)
    if valid.any():
        ax2.vlines(x[valid], 0, ap_sorted[valid], color="tab:red", linewidth=1.2)
        ax2.plot(x[valid], ap_sorted[valid], "o", color="tab:red", markersize=3 if c > 100 else 5, label="AP")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("average precision", color="tab:red")
    if c <= max_label_classes:
        ax.set_xticks(x)
        ax.set_xticklabels([names[i] for i in order], rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xlabel(f"{c} classes, sorted by number of clips")
        ax.set_xticks([])
    m = float(np.mean(ap[~np.isnan(ap)])) if (~np.isnan(ap)).any() else math.nan
    ax.set_title(f"{title}{' - ' if title else ''}mAP {m:.3f} over {int((~np.isnan(ap)).sum())} classes")
    # fixed margins (tight_layout costs a second full draw): room below for the rotated names
    longest = max((len(n) for n in names), default=1) if c <= max_label_classes else 0
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.8 / width, top=0.9,
                        bottom=min(0.5, 0.08 + 0.0085 * longest) if longest else 0.1)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
