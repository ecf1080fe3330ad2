"""Pictures of the benchmark families: shapes as signed distances, two-colour textures, moving objects
that bounce inside the frame, cluttered or room-like backgrounds, and the frames they make.

Used by :mod:`data_tools._family_synth`; nothing here draws random numbers except from the
``numpy.random.Generator`` it is given, so a clip is reproducible from its seed.

Coordinates: pixel ``(x, y)`` has x to the right and y DOWN, pixel ``j`` spans ``[j, j + 1)``, so its
centre is ``j + 0.5``. An object's own (unit) coordinates ``(u, v)`` put the shape inside about
``[-1, 1] x [-1, 1]``; pixels map to them by ``(u, v) = R(-angle) (p - centre) / scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

Field = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A function of object coordinates ``(u, v)`` (broadcastable arrays) giving an array of their shape."""


# --------------------------------------------------------------------------------------------
# Shapes: signed distance in object units, negative inside
# --------------------------------------------------------------------------------------------


def _polygon(vertices: Sequence[tuple[float, float]]) -> Field:
    """Signed distance to a simple polygon, given its vertices in order.

    Exact for a non-convex polygon; for a convex one, the largest distance to its edges' lines
    (exact inside and along the edges, a little short only beyond the corners) is faster.
    """
    start = np.asarray(vertices, dtype=np.float64)
    edge = np.roll(start, -1, axis=0) - start
    turns = edge[:, 0] * np.roll(edge[:, 1], -1) - edge[:, 1] * np.roll(edge[:, 0], -1)
    if np.all(turns > 0) or np.all(turns < 0):
        outward = np.stack([edge[:, 1], -edge[:, 0]], axis=1) * np.sign(turns[0])
        outward /= np.linalg.norm(outward, axis=1, keepdims=True)
        offsets = np.sum(outward * start, axis=1)

        def convex_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
            return np.max(np.asarray(u)[..., None] * outward[:, 0] + np.asarray(v)[..., None] * outward[:, 1]
                          - offsets, axis=-1)

        return convex_sdf
    length2 = np.sum(edge**2, axis=1)
    safe_ev = np.where(edge[:, 1] == 0, 1.0, edge[:, 1])

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
        wu = u[..., None] - start[:, 0]  # (..., E): from each edge's start to the point
        wv = v[..., None] - start[:, 1]
        h = np.clip((wu * edge[:, 0] + wv * edge[:, 1]) / length2, 0.0, 1.0)
        dist = np.sqrt(np.min((wu - h * edge[:, 0]) ** 2 + (wv - h * edge[:, 1]) ** 2, axis=-1))
        crosses = (start[:, 1] > v[..., None]) != (start[:, 1] + edge[:, 1] > v[..., None])  # even-odd rule
        inside = np.sum(crosses & (wu < wv * edge[:, 0] / safe_ev), axis=-1) % 2 == 1
        return np.where(inside, -dist, dist)

    return sdf


def _regular(sides: int, radius: float = 1.0, start: float = -np.pi / 2, dv: float = 0.0) -> list[tuple[float, float]]:
    angles = start + 2 * np.pi * np.arange(sides) / sides
    return [(radius * np.cos(a), radius * np.sin(a) + dv) for a in angles]


def _star(points: int, inner: float) -> list[tuple[float, float]]:
    angles = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return list(zip(radii * np.cos(angles), radii * np.sin(angles)))


def _box(half_u: float, half_v: float, rounding: float = 0.0) -> Field:
    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        qu = np.abs(u) - (half_u - rounding)
        qv = np.abs(v) - (half_v - rounding)
        outside = np.hypot(np.maximum(qu, 0.0), np.maximum(qv, 0.0))
        return outside + np.minimum(np.maximum(qu, qv), 0.0) - rounding

    return sdf


def _disc(cu: float = 0.0, cv: float = 0.0, radius: float = 1.0) -> Field:
    return lambda u, v: np.hypot(u - cu, v - cv) - radius


def _capsule(half_length: float, radius: float) -> Field:
    return lambda u, v: np.hypot(u - np.clip(u, -half_length, half_length), v) - radius


_CROSS_BARS = (_box(1.0, 0.32), _box(0.32, 1.0))
_CRESCENT = (_disc(), _disc(0.5, -0.15, 0.78))
_ARCH = _disc(0.0, 0.35)
_SHAPES_BY_NAME: dict[str, Field] = {
    "disc": _disc(),
    "square": _box(0.85, 0.85),
    "bar": _box(1.0, 0.5, rounding=0.15),
    "triangle": _polygon(_regular(3, 1.0, dv=0.25)),
    "pentagon": _polygon(_regular(5)),
    "hexagon": _polygon(_regular(6, start=0.0)),
    "diamond": _polygon([(0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0)]),
    "star": _polygon(_star(5, 0.45)),
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.74) - 0.26,
    "cross": lambda u, v: np.minimum(_CROSS_BARS[0](u, v), _CROSS_BARS[1](u, v)),
    "crescent": lambda u, v: np.maximum(_CRESCENT[0](u, v), -_CRESCENT[1](u, v)),
    "pill": _capsule(0.55, 0.45),
    "arch": lambda u, v: np.maximum(_ARCH(u, v), v - 0.35),
    "ellipse": lambda u, v: (np.hypot(u, v / 0.6) - 1.0) * 0.6,
    "arrow": _polygon([(-1.0, -0.3), (0.1, -0.3), (0.1, -0.75), (1.0, 0.0), (0.1, 0.75), (0.1, 0.3), (-1.0, 0.3)]),
}
SHAPES: tuple[str, ...] = tuple(_SHAPES_BY_NAME)
"""The shape names a class may use."""


def shape_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to ``shape`` (negative inside), in object units.

    Args:
        shape: one of :data:`SHAPES`.
        u, v: object coordinates, broadcastable arrays.

    Returns:
        float64 array of the broadcast shape.
    """
    return _SHAPES_BY_NAME[shape](u, v)


_RIM_STEP = 0.004


@lru_cache(maxsize=None)
def _rim(shape: str) -> np.ndarray:
    """Grid points just inside the edge of ``shape``: float64 (K, 2) ``(u, v)``, object units."""
    grid = np.arange(-1.2, 1.2 + _RIM_STEP / 2, _RIM_STEP)
    u, v = np.meshgrid(grid, grid)
    dist = shape_sdf(shape, u, v)
    keep = (dist <= 0) & (dist > -2 * _RIM_STEP)
    return np.stack([u[keep], v[keep]], axis=1)


def rotated_extent(shape: str, angle: float) -> np.ndarray:
    """Bounding box of ``shape`` turned by ``angle`` radians, in object units around its centre.

    Measured on the points of a fine grid along the shape's edge (cached per shape), widened by one
    grid step so that the true edge lies inside.

    Args:
        shape: one of :data:`SHAPES`.
        angle: rotation, radians (positive turns x towards y, i.e. clockwise on screen).

    Returns:
        float64 (4,) ``[xmin, ymin, xmax, ymax]`` of the turned shape.
    """
    rim = _rim(shape)
    c, s = np.cos(angle), np.sin(angle)
    x = c * rim[:, 0] - s * rim[:, 1]
    y = s * rim[:, 0] + c * rim[:, 1]
    return np.array([x.min() - _RIM_STEP, y.min() - _RIM_STEP, x.max() + _RIM_STEP, y.max() + _RIM_STEP])


def prepare_shapes(shapes: Sequence[str]) -> None:
    """Measure the edges of ``shapes`` now (once per process; forked workers inherit the cache)."""
    for shape in shapes:
        _rim(shape)


# --------------------------------------------------------------------------------------------
# Two-colour textures: a field in [-1, 1] per pattern, in object units (0 = the edge between colours)
# --------------------------------------------------------------------------------------------


def _tri(x: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 in [-1, 1]."""
    return 4.0 * np.abs(x - np.floor(x + 0.5)) - 1.0


def _dots(u: np.ndarray, v: np.ndarray, period: float, radius: float) -> np.ndarray:
    du = u - period * np.round(u / period)
    dv = v - period * np.round(v / period)
    return np.clip((radius - np.hypot(du, dv)) / 0.06, -1.0, 1.0)


_TAU = 2 * np.pi
_PATTERNS_BY_NAME: dict[str, Field] = {
    "hstripes": lambda u, v: np.sin(_TAU * v / 0.55),
    "vstripes": lambda u, v: np.sin(_TAU * u / 0.55),
    "diagonal": lambda u, v: np.sin(_TAU * (u + v) / 0.75),
    "checks": lambda u, v: 2.5 * np.sin(_TAU * u / 0.8) * np.sin(_TAU * v / 0.8),
    "dots": lambda u, v: _dots(u, v, 0.5, 0.15),
    "rings": lambda u, v: np.sin(_TAU * np.hypot(u, v) / 0.5),
    "spokes": lambda u, v: np.sin(6 * np.arctan2(v, u)),
    "grid": lambda u, v: 3.0 * (np.maximum(np.cos(_TAU * u / 0.5), np.cos(_TAU * v / 0.5)) - 0.65),
    "waves": lambda u, v: np.sin(_TAU * (v + 0.18 * np.sin(_TAU * u / 0.8)) / 0.5),
    "zigzag": lambda u, v: np.sin(_TAU * (v + 0.25 * _tri(u / 0.6)) / 0.5),
    "halves": lambda u, v: np.clip(u / 0.05, -1.0, 1.0),
    "plaid": lambda u, v: np.sin(_TAU * u / 0.9) + np.sin(_TAU * v / 0.45 + 1.0),
}
PATTERNS: tuple[str, ...] = tuple(_PATTERNS_BY_NAME)
"""The texture names a class may use."""


def pattern_weight(pattern: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weight of a class's second colour at object coordinates ``(u, v)``, softened at the edges.

    Args:
        pattern: one of :data:`PATTERNS`.
        u, v: object coordinates, broadcastable arrays.

    Returns:
        float64 array in [0, 1] of the broadcast shape.
    """
    return 0.5 + 0.5 * np.tanh(3.0 * _PATTERNS_BY_NAME[pattern](u, v))


def jitter_colours(colours: np.ndarray, hue_degrees: float, brightness: float) -> np.ndarray:
    """Turn RGB colours around the grey axis by ``hue_degrees`` and scale them by ``brightness``.

    Args:
        colours: (K, 3) RGB, 0-255.
        hue_degrees: hue rotation.
        brightness: multiplicative factor.

    Returns:
        float32 (K, 3), clipped to [0, 255].
    """
    theta = np.deg2rad(hue_degrees)
    axis = np.full(3, 1 / np.sqrt(3))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)  # Rodrigues
    out = (np.asarray(colours, dtype=np.float64) @ rotation.T) * brightness
    return np.clip(out, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Objects that move and bounce
# --------------------------------------------------------------------------------------------


def _reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fold positions into ``[lo, hi]`` as a ball bouncing off the walls would be."""
    span = np.maximum(hi - lo, 1e-9)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


@dataclass
class SceneObject:
    """One object of a clip: its class look, size, orientation and bouncing straight-line motion.

    Args:
        class_index: the class it is drawn as.
        shape, pattern: the class's shape and texture names.
        colours: float32 (2, 3) RGB of the texture's two colours (after the clip's jitter).
        angle: rotation, radians.
        scale: pixels per object unit.
        extent: (4,) ``[umin, vmin, umax, vmax]`` of the turned shape, object units.
        mid: (2,) centre ``(x, y)`` in pixels at the middle time ``mid_time``.
        velocity: (2,) pixels per second (before bounces).
        mid_time: seconds.
        lo, hi: (2,) the range of the centre that keeps the object wholly inside the frame.
        offset: (2,) texture phase, object units.
        light: (2,) direction and strength of the shading gradient, object units.
    """

    class_index: int
    shape: str
    pattern: str
    colours: np.ndarray
    angle: float
    scale: float
    extent: np.ndarray
    mid: np.ndarray
    velocity: np.ndarray
    mid_time: float
    lo: np.ndarray
    hi: np.ndarray
    offset: np.ndarray
    light: np.ndarray

    def centres(self, times: np.ndarray) -> np.ndarray:
        """Centres at ``times`` (seconds, (K,)): float64 (K, 2) pixels."""
        times = np.asarray(times, dtype=np.float64)[:, None]
        return _reflect(self.mid + self.velocity * (times - self.mid_time), self.lo, self.hi)

    def box(self, time: float) -> np.ndarray:
        """Bounding box ``[x1, y1, x2, y2]`` in pixels at ``time``, float64 (4,)."""
        cx, cy = self.centres(np.array([time]))[0]
        umin, vmin, umax, vmax = self.extent * self.scale
        return np.array([cx + umin, cy + vmin, cx + umax, cy + vmax])

    def coverage(self, time: float, rows: slice, cols: slice) -> np.ndarray:
        """Anti-aliased coverage of the object over a pixel window, float32 (rows, cols) in [0, 1]."""
        return self._sample(time, rows, cols, texture=False)[0]

    def draw(self, time: float, width: int, height: int) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """The object's pixels at ``time``: (rows, cols, alpha (h, w), rgb (h, w, 3)) or None if off-frame."""
        rows, cols = self.window(time, width, height)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            return None
        alpha, rgb = self._sample(time, rows, cols, texture=True)
        return rows, cols, alpha, rgb

    def window(self, time: float, width: int, height: int) -> tuple[slice, slice]:
        """The pixel window holding the object at ``time``, clipped to the frame."""
        x1, y1, x2, y2 = self.box(time)
        cols = slice(max(int(np.floor(x1)) - 1, 0), min(int(np.ceil(x2)) + 1, width))
        rows = slice(max(int(np.floor(y1)) - 1, 0), min(int(np.ceil(y2)) + 1, height))
        return rows, cols

    def _sample(self, time: float, rows: slice, cols: slice, *, texture: bool) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.centres(np.array([time]))[0]
        dx = (np.arange(cols.start, cols.stop) + 0.5 - cx)[None, :]
        dy = (np.arange(rows.start, rows.stop) + 0.5 - cy)[:, None]
        c, s = np.cos(self.angle), np.sin(self.angle)
        u = (c * dx + s * dy) / self.scale
        v = (-s * dx + c * dy) / self.scale
        alpha = np.clip(0.5 - shape_sdf(self.shape, u, v) * self.scale, 0.0, 1.0).astype(np.float32)
        if not texture:
            return alpha, np.empty(0, dtype=np.float32)
        weight = pattern_weight(self.pattern, u + self.offset[0], v + self.offset[1])[..., None]
        shade = 1.0 + self.light[0] * u + self.light[1] * v
        rgb = (self.colours[0] + (self.colours[1] - self.colours[0]) * weight) * shade[..., None]
        return alpha, rgb.astype(np.float32)


class Visibility:
    """How much of a target object stays visible, at several times, as objects are drawn over it.

    Args:
        target: the object looked at.
        times: (K,) seconds.
        width, height: frame size, pixels.
    """

    def __init__(self, target: SceneObject, times: Sequence[float], width: int, height: int):
        self.times = [float(t) for t in times]
        self.windows = [target.window(t, width, height) for t in self.times]
        self.boxes = [target.box(t) for t in self.times]
        self.seen = [target.coverage(t, rows, cols).astype(np.float64)
                     for t, (rows, cols) in zip(self.times, self.windows)]
        self.totals = [max(float(s.sum()), 1e-9) for s in self.seen]

    def fraction(self) -> float:
        """The smallest visible fraction of the target over the times, in [0, 1]."""
        return min(float(s.sum()) / total for s, total in zip(self.seen, self.totals))

    def cover(self, obj: SceneObject, minimum: float = 0.0) -> bool:
        """Draw ``obj`` over the target if the target then stays at least ``minimum`` visible at every time.

        Args:
            obj: the object drawn over the target.
            minimum: the visible fraction to keep.

        Returns:
            True if ``obj`` was added; False (nothing changed) if it would hide too much.
        """
        seen = list(self.seen)
        for k, (time, (rows, cols), box) in enumerate(zip(self.times, self.windows, self.boxes)):
            x1, y1, x2, y2 = obj.box(time)
            if x2 <= box[0] - 1 or x1 >= box[2] + 1 or y2 <= box[1] - 1 or y1 >= box[3] + 1:
                continue
            seen[k] = seen[k] * (1.0 - obj.coverage(time, rows, cols))
            if float(seen[k].sum()) / self.totals[k] < minimum:
                return False
        self.seen = seen
        return True


# --------------------------------------------------------------------------------------------
# Backgrounds, float32 (H, W, 3) in 0-255 units
# --------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: float, channels: int) -> np.ndarray:
    """Value noise: random values on a coarse grid, smoothly interpolated; float32 (H, W, C) in [-1, 1]."""
    cells_x = max(1, int(round(cells * width / max(width, height))))
    cells_y = max(1, int(round(cells * height / max(width, height))))
    grid = rng.uniform(-1.0, 1.0, size=(cells_y + 2, cells_x + 2, channels))

    def axis(n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        pos = (np.arange(n) + 0.5) / n * count + 0.5
        i = np.floor(pos).astype(np.int64)
        f = pos - i
        return i, f * f * (3 - 2 * f)  # smoothstep

    iy, fy = axis(height, cells_y)
    ix, fx = axis(width, cells_x)
    top = grid[iy][:, ix] * (1 - fx)[None, :, None] + grid[iy][:, ix + 1] * fx[None, :, None]
    bottom = grid[iy + 1][:, ix] * (1 - fx)[None, :, None] + grid[iy + 1][:, ix + 1] * fx[None, :, None]
    return (top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]).astype(np.float32)


def _muted(rng: np.random.Generator, grey: tuple[float, float], tint: float, count: int = 1) -> np.ndarray:
    """Greyish colours: a grey level plus a small tint per channel; (count, 3)."""
    return rng.uniform(*grey, size=(count, 1)) + rng.uniform(-tint, tint, size=(count, 3))


def _grids(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs + 0.5, ys + 0.5


def clutter_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A busy background: colour fields, soft blobs, patches of stripes, faint plain shapes and grain.

    Args:
        rng: the clip's generator.
        width, height: frame size, pixels.

    Returns:
        float32 (H, W, 3), about 0-255.
    """
    xs, ys = _grids(height, width)
    side = float(np.sqrt(width * height))
    image = _muted(rng, (70, 170), 30)[0] + np.zeros((height, width, 3), dtype=np.float32)
    image += 35 * _smooth_noise(rng, height, width, rng.uniform(1.5, 3.0), 3)
    image += 14 * _smooth_noise(rng, height, width, rng.uniform(6, 12), 3)
    for colour in _muted(rng, (40, 210), 55, int(rng.integers(6, 15))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.025, 0.14) * side
        weight = rng.uniform(0.25, 0.6) * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
        image += (colour - image) * weight[..., None]
    for _ in range(int(rng.integers(1, 4))):  # patches of stripes
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(0.04, 0.12) * side
        stripes = np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)
        region = np.clip(1.5 * _smooth_noise(rng, height, width, rng.uniform(2, 4), 1)[..., 0], 0, 1)
        image += (rng.uniform(8, 20) * stripes * region)[..., None]
    for colour in _muted(rng, (50, 200), 45, int(rng.integers(2, 7))):  # plain, untextured shapes
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        radius = rng.uniform(0.05, 0.16) * side
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        softness = rng.uniform(1.5, 4.0)
        dist = shape_sdf(shape, (xs - cx) / radius, (ys - cy) / radius) * radius
        image += (colour - image) * (rng.uniform(0.3, 0.55) * np.clip(0.5 - dist / softness, 0, 1))[..., None]
    image += rng.normal(0.0, rng.uniform(2.0, 5.0), size=(height, width, 1)).astype(np.float32)
    return image.astype(np.float32)


def room_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A room seen from inside: a wall with framed panels above a floor of boards in perspective.

    Args:
        rng: the clip's generator.
        width, height: frame size, pixels.

    Returns:
        float32 (H, W, 3), about 0-255.
    """
    xs, ys = _grids(height, width)
    horizon = rng.uniform(0.45, 0.7) * height
    wall, floor = _muted(rng, (80, 190), 30, 2)
    image = np.where((ys < horizon)[..., None], wall, floor).astype(np.float32)
    image *= (1.0 + 0.18 * (ys / height - 0.5) * rng.choice([-1.0, 1.0]))[..., None]
    vanish_x = rng.uniform(0.2, 0.8) * width
    boards = np.sin(int(rng.integers(8, 20)) * np.arctan2(xs - vanish_x, np.maximum(ys - horizon, 1e-3)))
    image += (rng.uniform(8, 18) * boards * (ys >= horizon))[..., None]
    for colour in _muted(rng, (40, 220), 50, int(rng.integers(1, 4))):  # framed panels on the wall
        w, h = rng.uniform(0.12, 0.35) * width, rng.uniform(0.15, 0.4) * horizon
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0.05 * horizon, max(0.05 * horizon, horizon - h))
        inside = (xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h)
        frame = inside & ~((xs >= x0 + 3) & (xs < x0 + w - 3) & (ys >= y0 + 3) & (ys < y0 + h - 3))
        image = np.where(inside[..., None], colour, image)
        image = np.where(frame[..., None], 0.5 * colour, image)
    image *= (1.0 + 0.15 * _smooth_noise(rng, height, width, 2.0, 1))
    return image.astype(np.float32)


BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "clutter": clutter_background,
    "room": room_background,
}
"""Background styles by name."""


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def render_frames(objects: Sequence[SceneObject], background: np.ndarray, times: np.ndarray,
                  gains: np.ndarray | None = None, noise: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Draw the objects (back to front) over the background at each time.

    Args:
        objects: back to front.
        background: float32 (H, W, 3).
        times: (T,) seconds.
        gains: (T,) brightness factor per frame (flicker), or None.
        noise: ``noise(i)`` gives float32 (H, W, 3) camera noise added to frame ``i``, or None.

    Returns:
        uint8 (T, H, W, 3) RGB.
    """
    height, width = background.shape[:2]
    frames = np.empty((len(times), height, width, 3), dtype=np.uint8)
    for i, time in enumerate(times):
        image = background.copy()
        for obj in objects:
            drawn = obj.draw(float(time), width, height)
            if drawn is None:
                continue
            rows, cols, alpha, rgb = drawn
            patch = image[rows, cols]
            image[rows, cols] = patch + (rgb - patch) * alpha[..., None]
        if gains is not None:
            image *= gains[i]
        if noise is not None:
            image += noise(i)
        frames[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames


def visible_mask(objects: Sequence[SceneObject], target: int, time: float, width: int, height: int) -> np.ndarray:
    """Pixels where ``objects[target]`` is seen (coverage >= 0.5 after the objects over it): bool (H, W)."""
    seen = np.zeros((height, width), dtype=np.float32)
    for k, obj in enumerate(objects[target:]):
        rows, cols = obj.window(time, width, height)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            continue
        alpha = obj.coverage(time, rows, cols)
        if k == 0:
            seen[rows, cols] = alpha
        else:
            seen[rows, cols] *= 1.0 - alpha
    return seen >= 0.5
