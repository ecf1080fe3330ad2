"""Shape predicates and the background texture that the synthetic dataset's frames are drawn from."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np


# Each shape is a predicate over unit coordinates (u right, v DOWN), inside [-1, 1] x [-1, 1].


def _polygon(vertices: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Inside-test for a convex polygon (vertices in order, either direction) in (u, v)."""
    edges = np.roll(vertices, -1, axis=0) - vertices
    if np.sum(vertices[:, 0] * edges[:, 1] - vertices[:, 1] * edges[:, 0]) < 0:
        return _polygon(vertices[::-1])

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        result = np.ones(np.broadcast(u, v).shape, dtype=bool)
        for (x0, y0), (dx, dy) in zip(vertices, edges):
            result &= dx * (v - y0) - dy * (u - x0) >= 0
        return result

    return inside


def _regular(n: int, start_angle: float, radius: float = 1.0) -> np.ndarray:
    angles = start_angle + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


_TRIANGLE = _polygon(np.array([[0.0, -0.95], [1.0, 0.8], [-1.0, 0.8]]))
_HEXAGON = _polygon(_regular(6, 0.0))
_PENTAGON_INNER = _polygon(_regular(5, -np.pi / 2, 0.42))


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Five-pointed star, one point up: inner pentagon plus five point triangles."""
    outer = _regular(5, -np.pi / 2)
    inner = _regular(5, -np.pi / 2 + np.pi / 5, 0.42)
    result = _PENTAGON_INNER(u, v)
    for k in range(5):
        result |= _polygon(np.array([outer[k], inner[(k - 1) % 5], inner[k]]))(u, v)
    return result


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x = 1.14 * u
    y = -1.14 * v + 0.118
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disc": lambda u, v: u**2 + v**2 <= 1.0,
    "square": lambda u, v: (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85),
    "triangle": _TRIANGLE,
    "star": _star,
    "ring": lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.55**2),
    "cross": lambda u, v: ((np.abs(u) <= 1) & (np.abs(v) <= 0.3)) | ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1.0,
    "hexagon": _HEXAGON,
    "heart": _heart,
    "dome": lambda u, v: (u**2 + (v - 0.5) ** 2 <= 1.0) & (v <= 0.5),
}


@lru_cache(maxsize=None)
def _shape_extent(shape: str) -> tuple[float, float, float, float]:
    """``(umin, vmin, umax, vmax)`` of a shape in unit coordinates (measured on a fine grid)."""
    grid = np.linspace(-1.1, 1.1, 801)
    step = float(grid[1] - grid[0])  # widen by one grid step: the true edge lies within it
    u, v = np.meshgrid(grid, grid)
    inside = _SHAPES[shape](u, v)
    us, vs = u[inside], v[inside]
    return float(us.min()) - step, float(vs.min()) - step, float(us.max()) + step, float(vs.max()) + step


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted smooth colour gradient with low-amplitude texture, float32 (size, size, 3)."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    grey = rng.uniform(75, 165, size=(2, 1))
    colours = grey + rng.uniform(-20, 20, size=(2, 3))
    theta = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(theta) + yy * np.sin(theta)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    image = colours[0] + (colours[1] - colours[0]) * ramp[..., None]
    texture = np.zeros((size, size), dtype=np.float32)
    for _ in range(3):
        freq = rng.uniform(1.5, 6.0)
        phi = rng.uniform(0, 2 * np.pi)
        texture += rng.uniform(1.5, 4.0) * np.sin(
            2 * np.pi * freq * (xx * np.cos(phi) + yy * np.sin(phi)) + rng.uniform(0, 2 * np.pi)
        )
    texture += rng.normal(0.0, 1.5, size=(size, size)).astype(np.float32)
    return (image + texture[..., None]).astype(np.float32)
