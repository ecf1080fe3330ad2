"""Pictures of the digits family: real handwritten digit scans on paper-like backgrounds.

The scans are scikit-learn's bundled copy of the UCI Optical Recognition of Handwritten Digits test
set (:func:`sklearn.datasets.load_digits`: 1,797 scans of 8x8 pixels with 17 grey levels, CC BY 4.0).
They are split once, per class and independently of any seed, 60/20/20 into train/val/test, so a
picture seen in training never appears in test.

A frame is a light paper background (tint, smooth texture, grain, sometimes ruled lines or a smudge)
with dark ink scans upscaled smoothly (cubic) to ``scan_size`` pixels, each drifting slowly with a
small wobble; positions are whole pixels.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from data_tools._paper_layout import Placed, ink_colour, render_layout, trajectory, upscale

__all__ = [
    "SCAN_FRACTIONS",
    "SCANS_SOURCE",
    "Placed",
    "load_scans",
    "partition_scans",
    "render_frames",
]

SCAN_FRACTIONS = (0.6, 0.2, 0.2)
"""Shares of each class's scans in train, val and test."""

_PARTITION_SEED = 20240613  # fixed: the scan split never depends on a dataset seed

SCANS_SOURCE: dict[str, Any] = {
    "name": "UCI Optical Recognition of Handwritten Digits (test part), as scikit-learn's load_digits()",
    "url": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
    "licence": "CC BY 4.0",
    "split": f"per class {SCAN_FRACTIONS[0]:.0%}/{SCAN_FRACTIONS[1]:.0%}/{SCAN_FRACTIONS[2]:.0%} train/val/test, "
             f"fixed (seed {_PARTITION_SEED})",
}

_SPLITS = ("train", "val", "test")


def load_scans() -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digit scans of scikit-learn (bundled in its wheel, nothing downloaded).

    Returns:
        ``(images, labels)``: float32 (N, 8, 8) ink in [0, 1] (1 = darkest), int64 (N,) digits.

    Raises:
        ImportError: scikit-learn is not installed (the message names the package).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError("the digits family needs scikit-learn for its handwritten digit scans: "
                          "pip install scikit-learn (or avcorr[test])") from err
    digits = load_digits()
    return (np.asarray(digits.images, dtype=np.float32) / 16.0).clip(0, 1), np.asarray(digits.target, dtype=np.int64)


def partition_scans(labels: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
    """Split scan indices per class into train/val/test (:data:`SCAN_FRACTIONS`, fixed seed).

    Args:
        labels: (N,) digit of each scan.

    Returns:
        ``{split: {digit: sorted scan indices}}``; the three splits are disjoint and cover every scan.
    """
    rng = np.random.default_rng(_PARTITION_SEED)
    out: dict[str, dict[int, np.ndarray]] = {s: {} for s in _SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_train = int(round(SCAN_FRACTIONS[0] * len(idx)))
        n_val = int(round(SCAN_FRACTIONS[1] * len(idx)))
        parts = (idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:])
        for split, part in zip(_SPLITS, parts):
            out[split][digit] = np.sort(part)
    return out


def _place(rng: np.random.Generator, scan: np.ndarray, scan_size: Sequence[int], size: int, times: np.ndarray,
           mid_time: float) -> Placed:
    side = int(rng.integers(scan_size[0], scan_size[1] + 1))
    xy, mid = trajectory(rng, (side, side), size, times, mid_time)
    alpha = np.clip(upscale(scan, side, side) * rng.uniform(0.85, 1.15), 0, 1) ** rng.uniform(0.8, 1.25)
    return Placed(xy, mid, alpha.astype(np.float32), ink_colour(rng))


def render_frames(seed_key: Sequence[int], scans: np.ndarray, *, size: int, fps: float, duration: float,
                  scan_size: Sequence[int], max_overlap: float, draw: Sequence[bool] | None = None,
                  tries: int = 60) -> tuple[np.ndarray, list[Placed | None]]:
    """Render a clip's frames: scan 0 is the sounding one, the others silent distractors.

    Each distractor is placed so that it overlaps every scan placed before it by at most
    ``max_overlap`` of the smaller one's area at every frame; one that finds no such place in
    ``tries`` draws is left out (None). The random draws depend only on ``seed_key``, so
    ``draw`` can hide a scan without moving the others.

    Args:
        seed_key: the clip's random key (e.g. ``(seed, split code, index)``).
        scans: (K, 8, 8) ink in [0, 1]; row 0 sounds.
        size: frame side, pixels.
        fps: frame rate; frames are at ``k / fps``, ``k < round(duration * fps)``.
        duration: seconds.
        scan_size: (min, max) side of a scan in pixels.
        max_overlap: see above.
        draw: per scan, whether to paint it (default all).
        tries: placement attempts per distractor.

    Returns:
        ``(frames, placed)``: uint8 (T, size, size, 3) RGB, and per scan its :class:`Placed` or None.
    """
    return render_layout(seed_key, lambda rng, k, times, mid: _place(rng, scans[k], scan_size, size, times, mid),
                         len(scans), size=size, fps=fps, duration=duration, max_overlap=max_overlap, draw=draw,
                         tries=tries)
