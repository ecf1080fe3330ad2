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

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

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


def _cubic_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) matrix resampling a signal with the cubic convolution kernel (a = -0.5), edges clamped."""
    a = -0.5
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    base = np.floor(centres).astype(int)
    out = np.zeros((n_out, n_in))
    for k in range(-1, 3):
        j = base + k
        d = np.abs(centres - j)
        w = np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                     np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))
        np.add.at(out, (np.arange(n_out), np.clip(j, 0, n_in - 1)), w)
    return out


def _upscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Smooth cubic resize of a (h, w) image to (height, width)."""
    return _cubic_matrix(height, image.shape[0]) @ image @ _cubic_matrix(width, image.shape[1]).T


def _paper(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light paper-like background, float32 (size, size, 3) in [0, 255]."""
    lum = rng.uniform(212, 246)
    tint = rng.uniform(-1, 1)
    base = np.array([lum + 6 * tint, lum + 2 * tint, lum - 6 * tint])
    texture = _upscale(rng.standard_normal((5, 5)), size, size) * rng.uniform(3, 9)
    grain = rng.standard_normal((size, size)) * rng.uniform(1.5, 4)
    img = base[None, None, :] + (texture + grain)[:, :, None] + rng.standard_normal((size, size, 3)) * 0.8
    if rng.random() < 0.35:  # ruled notebook lines, sometimes with a margin line
        spacing = max(4, int(round(rng.uniform(10, 18) * size / 128)))
        alpha = rng.uniform(0.12, 0.3)
        rows = np.arange(int(rng.integers(0, spacing)), size, spacing)
        img[rows] = img[rows] * (1 - alpha) + np.array([120, 150, 210]) * alpha
        if rng.random() < 0.5:
            col = int(rng.integers(size // 10, size // 4))
            img[:, col] = img[:, col] * (1 - alpha) + np.array([210, 90, 90]) * alpha
    if rng.random() < 0.3:  # a faint smudge
        yy, xx = np.mgrid[0:size, 0:size]
        cy, cx = rng.uniform(0, size, 2)
        radius = rng.uniform(0.08, 0.25) * size
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        img *= (1 - rng.uniform(0.04, 0.1) * blob)[:, :, None]
    return img.clip(0, 255).astype(np.float32)


@dataclass
class Placed:
    """One scan in a clip.

    Args:
        side: its side in pixels.
        xy: (T, 2) int top-left corner (x, y) at each frame.
        mid: (2,) int top-left corner at the clip's middle time.
        alpha: (side, side) ink coverage in [0, 1].
        ink: (3,) RGB ink colour.
    """

    side: int
    xy: np.ndarray
    mid: np.ndarray
    alpha: np.ndarray
    ink: np.ndarray

    def box(self, size: int) -> list[float]:
        """Normalised ``[x1, y1, x2, y2]`` at the middle time, for a frame of ``size`` pixels."""
        x, y = (int(v) for v in self.mid)
        return [x / size, y / size, (x + self.side) / size, (y + self.side) / size]


def _trajectory(rng: np.random.Generator, side: int, size: int, times: np.ndarray,
                mid_time: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (T, 2) at ``times`` and (2,) at ``mid_time``: a slow drift plus a small wobble."""
    speed = rng.uniform(0, 0.06 * size)  # pixels per second
    angle = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(angle), math.sin(angle)])
    amp = rng.uniform(0.3, 1.2, 2)
    freq = rng.uniform(0.3, 1.0, 2)
    phase = rng.uniform(0, 2 * math.pi, 2)
    half = float(np.max(np.abs(times - mid_time), initial=0.0))
    reach = np.abs(velocity) * half + amp + 1
    lo, hi = reach, np.maximum(size - side - reach, reach)
    centre = rng.uniform(lo, hi)

    def at(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(t)[:, None]
        p = centre + velocity * (t - mid_time) + amp * np.sin(2 * math.pi * freq * t + phase)
        return np.clip(np.rint(p), 0, size - side).astype(int)

    return at(times), at(np.array([mid_time]))[0]


def _overlap_ok(a: Placed, b: Placed, max_overlap: float) -> bool:
    """Whether the two squares overlap by at most ``max_overlap`` of the smaller one, at every frame."""
    lo = np.maximum(a.xy, b.xy)
    hi = np.minimum(a.xy + a.side, b.xy + b.side)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return bool(np.all(inter <= max_overlap * min(a.side, b.side) ** 2))


def _place(rng: np.random.Generator, scan: np.ndarray, scan_size: Sequence[int], size: int, times: np.ndarray,
           mid_time: float) -> Placed:
    side = int(rng.integers(scan_size[0], scan_size[1] + 1))
    xy, mid = _trajectory(rng, side, size, times, mid_time)
    alpha = np.clip(_upscale(scan, side, side) * rng.uniform(0.85, 1.15), 0, 1) ** rng.uniform(0.8, 1.25)
    shade = rng.uniform(15, 70)
    ink = {0: np.array([shade, shade, shade]), 1: np.array([shade * 0.6, shade * 0.7, shade + 60]),
           2: np.array([shade + 30, shade + 25, shade + 20])}[int(rng.integers(3))]
    return Placed(side, xy, mid, alpha.astype(np.float32), ink.astype(np.float32))


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
    rng = np.random.default_rng([*seed_key, 1])
    n_frames = max(1, int(round(duration * fps)))
    times = np.arange(n_frames) / fps
    background = _paper(rng, size)
    placed: list[Placed | None] = [_place(rng, scans[0], scan_size, size, times, duration / 2)]
    for scan in scans[1:]:
        found = None
        for _ in range(tries):
            cand = _place(rng, scan, scan_size, size, times, duration / 2)
            if all(p is None or _overlap_ok(cand, p, max_overlap) for p in placed):
                found = cand
                break
        placed.append(found)
    order = rng.permutation(len(placed))  # the sounding scan is not always on top
    frames = np.repeat(background[None], n_frames, axis=0)
    for k in order:
        p = placed[k]
        if p is None or (draw is not None and not draw[k]):
            continue
        a = p.alpha[:, :, None]
        for t, (x, y) in enumerate(p.xy):
            region = frames[t, y:y + p.side, x:x + p.side]
            region[...] = region * (1 - a) + p.ink * a
    return np.rint(frames).clip(0, 255).astype(np.uint8), placed
