"""The per-class AP chart of a tagging evaluation.

Classes sorted by average precision (best first; classes without positives, whose AP is undefined,
last), AP as bars with each class's chance level (its positive rate: the AP of a random ranking) as
a black tick, and below, in a second panel on the same classes, the number of clips per class. No
twin axes. matplotlib is imported here only, and drawn through the Agg canvas directly (no pyplot,
no global backend change).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path

__all__ = ["ap_order", "plot_ap_per_class"]


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the per-class AP chart needs matplotlib: pip install matplotlib") from exc
    return Figure, FigureCanvasAgg


def ap_order(ap: Sequence[float] | np.ndarray) -> np.ndarray:
    """Class indices by decreasing AP (ties keep the class order), classes with a NaN AP last.

    Args:
        ap: (C,) average precision per class.

    Returns:
        int (C,) permutation.
    """
    a = np.asarray(ap, dtype=np.float64).reshape(-1)
    key = np.where(np.isnan(a), np.inf, -a)
    return np.argsort(key, kind="stable")


def plot_ap_per_class(ap: Sequence[float] | np.ndarray, counts: Sequence[int] | np.ndarray,
                      class_names: Sequence[str], path: str | Path, *, title: str = "",
                      max_label_classes: int = 80, n_clips: int | None = None) -> Path:
    """Write the chart: AP per class (bars, sorted by AP) with chance ticks, clips per class below.

    Args:
        ap: (C,) average precision per class; NaN for a class without positives (drawn as none).
        counts: (C,) number of clips (positives) per class.
        class_names: C names, in the same order.
        path: the PNG to write (written to a temporary file, then renamed).
        title: figure title; the mAP over the classes with an AP is appended.
        max_label_classes: with more classes than this, class names are not written on the axis.
        n_clips: clips evaluated; with it each class's chance AP, ``counts / n_clips``, is drawn.

    Returns:
        ``path`` as a Path.
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    ap = np.asarray(ap, dtype=np.float64).reshape(-1)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    names = list(class_names)
    if not (len(ap) == len(counts) == len(names)):
        raise ValueError(f"ap ({len(ap)}), counts ({len(counts)}) and class_names ({len(names)}) differ in length")
    if n_clips is not None and n_clips <= 0:
        raise ValueError(f"n_clips must be positive, got {n_clips}")
    order = ap_order(ap)
    c = len(order)
    x = np.arange(c)
    width = min(24.0, max(6.0, 0.25 * c + 2))
    fig = Figure(figsize=(width, 6.0 if c <= max_label_classes else 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax, axc = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ap_sorted = ap[order]
    valid = ~np.isnan(ap_sorted)
    ax.bar(x[valid], ap_sorted[valid], color="tab:blue", width=0.8, label="AP")
    if n_clips is not None:
        chance = counts[order] / float(n_clips)
        ax.hlines(chance, x - 0.4, x + 0.4, color="black", linewidth=1.5, label="chance (positive rate)")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("average precision")
    ax.set_xlim(-0.6, c - 0.4)
    ax.legend(loc="upper right", fontsize=8)
    axc.bar(x, np.maximum(counts[order], 0), color="0.55", width=0.8)
    if counts.max(initial=0) > 0 and counts.max() / max(1, counts[counts > 0].min(initial=1)) > 50:
        axc.set_yscale("log")
    axc.set_ylabel("clips", fontsize=9)
    if c <= max_label_classes:
        axc.set_xticks(x)
        axc.set_xticklabels([names[i] for i in order], rotation=60, ha="right", fontsize=8)
    else:
        axc.set_xlabel(f"{c} classes, sorted by AP")
        axc.set_xticks([])
    m = float(np.mean(ap[~np.isnan(ap)])) if (~np.isnan(ap)).any() else math.nan
    ax.set_title(f"{title}{' - ' if title else ''}mAP {m:.3f} over {int((~np.isnan(ap)).sum())} classes, "
                 f"sorted by AP")
    # fixed margins (tight_layout costs a second full draw): room below for the rotated names
    longest = max((len(n) for n in names), default=1) if c <= max_label_classes else 0
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.3 / width, top=0.93, hspace=0.08,
                        bottom=min(0.45, 0.07 + 0.007 * longest) if longest else 0.08)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
