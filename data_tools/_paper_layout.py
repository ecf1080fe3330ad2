"""Ink on paper for the families of real recordings: a paper-like background, pictures that drift
slowly inside the frame without covering each other much, and the frames they make.

Shared by the digits family (handwritten scans, :mod:`data_tools._digits_render`) and the words
family (words drawn as text, :mod:`data_tools._words_render`). A picture is an ink-coverage mask
(``alpha``, any width and height) and an ink colour; a family supplies a ``place`` function that
draws one picture's mask, colour and path with :func:`trajectory`, and :func:`render_layout` does
the rest. Nothing here draws random numbers except from the generator it is given, so a clip is
reproducible from its key. Positions are whole pixels; ``(x, y)`` is the top-left corner, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Placed", "ink_colour", "paper", "render_layout", "trajectory", "upscale"]


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


def upscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Smooth cubic resize of a (h, w) image to (height, width)."""
    return _cubic_matrix(height, image.shape[0]) @ image @ _cubic_matrix(width, image.shape[1]).T


def paper(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light paper-like background: tint, smooth texture, grain, sometimes ruled lines or a smudge.

    Args:
        rng: the clip's generator.
        size: frame side, pixels.

    Returns:
        float32 (size, size, 3) in [0, 255].
    """
    lum = rng.uniform(212, 246)
    tint = rng.uniform(-1, 1)
    base = np.array([lum + 6 * tint, lum + 2 * tint, lum - 6 * tint])
    texture = upscale(rng.standard_normal((5, 5)), size, size) * rng.uniform(3, 9)
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


def ink_colour(rng: np.random.Generator) -> np.ndarray:
    """A dark ink: grey-black, blue or brown, of a random shade; float32 (3,) RGB."""
    shade = rng.uniform(15, 70)
    ink = {0: np.array([shade, shade, shade]), 1: np.array([shade * 0.6, shade * 0.7, shade + 60]),
           2: np.array([shade + 30, shade + 25, shade + 20])}[int(rng.integers(3))]
    return ink.astype(np.float32)


@dataclass
class Placed:
    """One picture in a clip.

    Args:
        xy: (T, 2) int top-left corner (x, y) at each frame.
        mid: (2,) int top-left corner at the clip's middle time.
        alpha: (height, width) ink coverage in [0, 1].
        ink: (3,) RGB ink colour.
    """

    xy: np.ndarray
    mid: np.ndarray
    alpha: np.ndarray
    ink: np.ndarray

    @property
    def wh(self) -> np.ndarray:
        """(2,) int: width and height in pixels."""
        return np.array([self.alpha.shape[1], self.alpha.shape[0]])

    @property
    def area(self) -> int:
        """Width times height, pixels."""
        return int(self.alpha.shape[0] * self.alpha.shape[1])

    def box(self, size: int) -> list[float]:
        """Normalised ``[x1, y1, x2, y2]`` at the middle time, for a frame of ``size`` pixels."""
        x, y = (int(v) for v in self.mid)
        w, h = (int(v) for v in self.wh)
        return [x / size, y / size, (x + w) / size, (y + h) / size]


def trajectory(rng: np.random.Generator, wh: Sequence[int], size: int, times: np.ndarray,
               mid_time: float, drift: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """A slow drift plus a small wobble that keeps a ``wh`` rectangle inside the frame.

    Args:
        rng: the clip's generator.
        wh: (width, height) of the picture, pixels (at most ``size``).
        size: frame side, pixels.
        times: (T,) frame times, seconds.
        mid_time: the time of the boxes.
        drift: the fastest drift, frame sides per second (the speed is uniform in [0, drift]).

    Returns:
        ``(xy, mid)``: int (T, 2) top-left corners at ``times`` and (2,) at ``mid_time``.
    """
    extent = np.asarray(wh)
    speed = rng.uniform(0, drift * size)  # pixels per second
    angle = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(angle), math.sin(angle)])
    amp = rng.uniform(0.3, 1.2, 2)
    freq = rng.uniform(0.3, 1.0, 2)
    phase = rng.uniform(0, 2 * math.pi, 2)
    half = float(np.max(np.abs(times - mid_time), initial=0.0))
    reach = np.abs(velocity) * half + amp + 1
    lo, hi = reach, np.maximum(size - extent - reach, reach)
    centre = rng.uniform(lo, hi)

    def at(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(t)[:, None]
        p = centre + velocity * (t - mid_time) + amp * np.sin(2 * math.pi * freq * t + phase)
        return np.clip(np.rint(p), 0, size - extent).astype(int)

    return at(times), at(np.array([mid_time]))[0]


def _overlap_ok(a: Placed, b: Placed, max_overlap: float, gap: int = 0) -> bool:
    """Whether rectangle ``a`` grown by ``gap`` pixels on every side overlaps ``b`` by at most
    ``max_overlap`` of the smaller one, at every frame."""
    lo = np.maximum(a.xy - gap, b.xy)
    hi = np.minimum(a.xy + a.wh + gap, b.xy + b.wh)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return bool(np.all(inter <= max_overlap * min(a.area, b.area)))


PlaceFn = Callable[[np.random.Generator, int, np.ndarray, float], Placed]
"""``place(rng, k, times, mid_time)``: draw picture ``k`` (0 sounds) and its path."""


def render_layout(seed_key: Sequence[int], place: PlaceFn, count: int, *, size: int, fps: float, duration: float,
                  max_overlap: float, gap: int = 0, draw: Sequence[bool] | None = None,
                  tries: int = 60) -> tuple[np.ndarray, list[Placed | None]]:
    """Render a clip's frames: picture 0 is the sounding one, the others silent distractors.

    Each distractor is placed so that, grown by ``gap`` pixels, it overlaps every picture placed
    before it by at most ``max_overlap`` of the smaller one's rectangle at every frame; one that finds no such place in
    ``tries`` draws is left out (None). The random draws depend only on ``seed_key``, so ``draw`` can
    hide a picture without moving the others. The pictures are painted in a random order, so the
    sounding one is not always on top.

    Args:
        seed_key: the clip's random key (e.g. ``(seed, split code, index)``).
        place: draws one picture (see :data:`PlaceFn`).
        count: pictures in the clip, the sounding one included.
        size: frame side, pixels.
        fps: frame rate; frames are at ``k / fps``, ``k < round(duration * fps)``.
        duration: seconds.
        max_overlap: see above.
        gap: see above.
        draw: per picture, whether to paint it (default all).
        tries: placement attempts per distractor.

    Returns:
        ``(frames, placed)``: uint8 (T, size, size, 3) RGB, and per picture its :class:`Placed` or None.
    """
    rng = np.random.default_rng([*seed_key, 1])
    n_frames = max(1, int(round(duration * fps)))
    times = np.arange(n_frames) / fps
    background = paper(rng, size)
    placed: list[Placed | None] = [place(rng, 0, times, duration / 2)]
    for k in range(1, count):
        found = None
        for _ in range(tries):
            cand = place(rng, k, times, duration / 2)
            if all(p is None or _overlap_ok(cand, p, max_overlap, gap) for p in placed):
                found = cand
                break
        placed.append(found)
    order = rng.permutation(len(placed))
    frames = np.repeat(background[None], n_frames, axis=0)
    for k in order:
        p = placed[k]
        if p is None or (draw is not None and not draw[k]):
            continue
        a = p.alpha[:, :, None]
        h, w = p.alpha.shape
        for t, (x, y) in enumerate(p.xy):
            region = frames[t, y:y + h, x:x + w]
            region[...] = region * (1 - a) + p.ink * a
    return np.rint(frames).clip(0, 255).astype(np.uint8), placed
