"""One synthetic clip in memory: the classes, the clip ids, the scene (objects, frames, visible mask),
the sound, :func:`render_clip` (no ffmpeg, nothing written) and :func:`plan_clip` (the scene alone:
the clip's class, silent objects and box, without drawing a frame).

Used through :mod:`avcorr.data.synthetic`, which re-exports every public name here and writes
datasets of these clips; its module docstring describes the dataset.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from avcorr.data._synthetic_audio import _SOUNDS
from avcorr.data._synthetic_video import _SHAPES, _background, _shape_extent

__all__ = ["CLASSES", "SPLITS", "SyntheticClass", "SyntheticClip", "SyntheticPlan", "clip_id", "plan_clip",
           "render_clip", "visible_names"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SyntheticClass:
    """One class: a visual object paired with a sound.

    Args:
        display_name: readable class name (the label written in ``vid2genre.json``).
        mid: AudioSet-style id, ``/syn/<name>`` (never a real AudioSet mid).
        shape: the object's shape (``disc``, ``square``, ...).
        colour: the object's flat RGB colour, 0-255.
        sound: a short description of the sound.
    """

    display_name: str
    mid: str
    shape: str
    colour: tuple[int, int, int]
    sound: str


CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass("Violin", "/syn/violin", "disc", (220, 30, 30), "sawtooth with vibrato"),
    SyntheticClass("Flute", "/syn/flute", "square", (40, 80, 235), "pure sine"),
    SyntheticClass("Drum", "/syn/drum", "triangle", (30, 170, 60), "noise-burst drum pattern"),
    SyntheticClass("Bell", "/syn/bell", "star", (245, 220, 30), "re-struck decaying inharmonic bell"),
    SyntheticClass("Bass", "/syn/bass", "ring", (225, 40, 225), "low square-wave bass line"),
    SyntheticClass("Siren", "/syn/siren", "cross", (30, 220, 230), "up-and-down frequency sweeps"),
    SyntheticClass("Engine", "/syn/engine", "diamond", (250, 140, 20), "amplitude-modulated rumble"),
    SyntheticClass("Bird", "/syn/bird", "hexagon", (250, 250, 250), "short high chirps"),
    SyntheticClass("Rain", "/syn/rain", "heart", (10, 10, 10), "high crackle of random clicks"),
    SyntheticClass("Organ", "/syn/organ", "dome", (130, 40, 200), "steady harmonic major chord"),
)
"""Every available class; a dataset with ``num_classes=k`` uses the first ``k``."""

_SPLIT_CODES = {name: i for i, name in enumerate(SPLITS)}
# Object bounding square, as a fraction of the frame side, and how far (frame sides) an object's
# centre stays from the frame's centre at the clip's middle time (when boxes.json holds its box).
# Large, like the sounding objects of the localization benchmarks (Flickr-SoundNet, VGG-SS): the
# LVS / EZ-VSL protocol switches on half of the pixels, which caps cIoU at min(2A, 0.5 / A) for a
# box of area A, so boxes of a quarter of the frame or more are needed for cIoU >= 0.5 to be
# reachable (v2's 15-35 % gave cIoU <= 0.24 for every clip). Off-centre, so that a centre prior
# does not localise them for free (v3, 60-85 % anywhere: the centre prior scored ciou@0.5 0.88).
_SIZE_RANGE = (0.55, 0.7)
_MIN_CENTRE_OFFSET = 0.2
_SPEED_RANGE = (0.02, 0.07)  # drift speed, frame sides per second
_MAX_FRONT_OVERLAP = 0.5  # a distractor in front covers at most this much of the sounding box
_FRONT_TRIES = 100  # placements tried for a front distractor before it goes behind
_SUPERSAMPLE = 3  # anti-aliasing: samples per pixel side


# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------


def clip_id(seed: int, split: str, index: int) -> str:
    """The YouTube-like id of a clip, derived from ``(seed, split, index)``.

    Ids are 11 characters of ``[A-Za-z0-9_-]``; one clip in eight gets a leading ``-`` (as some
    real YouTube ids have) so every tool is exercised with such ids.

    Args:
        seed: dataset seed.
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: the clip's index inside its split.

    Returns:
        The 11-character id.
    """
    _check_split(split)
    digest = hashlib.blake2b(f"avcorr-synthetic:{seed}:{split}:{index}".encode(), digest_size=9).digest()
    vid = base64.urlsafe_b64encode(digest).decode("ascii")[:11]
    if index % 8 == 5:
        vid = "-" + vid[1:]
    return vid


def _check_split(split: str) -> None:
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


# --------------------------------------------------------------------------------------------
# Frames (the shapes and the background are drawn by _synthetic_video)
# --------------------------------------------------------------------------------------------


@dataclass
class _Object:
    class_index: int
    radius: float  # half of the bounding square's side, pixels
    start: np.ndarray  # centre at t = 0, (x, y) pixels
    end: np.ndarray  # centre at t = duration

    def centre(self, frac: float) -> np.ndarray:
        return self.start + (self.end - self.start) * frac

    def box(self, frac: float) -> np.ndarray:
        """Bounding box ``[x1, y1, x2, y2]`` in pixels at time ``frac * duration``."""
        umin, vmin, umax, vmax = _shape_extent(CLASSES[self.class_index].shape)
        cx, cy = self.centre(frac)
        r = self.radius
        return np.array([cx + umin * r, cy + vmin * r, cx + umax * r, cy + vmax * r])


def _place_object(rng: np.random.Generator, class_index: int, size: int, duration: float) -> _Object:
    radius = rng.uniform(*_SIZE_RANGE) * size / 2
    umin, vmin, umax, vmax = _shape_extent(CLASSES[class_index].shape)
    lo = np.array([-umin * radius, -vmin * radius])
    hi = np.array([size - umax * radius, size - vmax * radius])
    middle = np.full(2, size / 2)
    for _ in range(100):  # rejection: the centre at the middle time stays off the frame's centre
        start = rng.uniform(lo, hi)
        angle = rng.uniform(0, 2 * np.pi)
        step = rng.uniform(*_SPEED_RANGE) * size * duration
        end = np.clip(start + step * np.array([np.cos(angle), np.sin(angle)]), lo, hi)
        if np.hypot(*((start + end) / 2 - middle)) >= _MIN_CENTRE_OFFSET * size:
            break
    return _Object(class_index, float(radius), start, end)


def _overlap_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Area of box ``b`` inside box ``a`` over the area of ``a``."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)


def _layout(
    rng: np.random.Generator, class_index: int, num_classes: int, size: int, duration: float, max_distractors: int,
    distractor_prob: float = 0.5,
) -> list[_Object]:
    """The objects of a clip, back to front; ``class_index``'s object is the sounding one."""
    sounding = _place_object(rng, class_index, size, duration)
    others = [c for c in range(num_classes) if c != class_index]
    count = 0
    if max_distractors > 0 and others and rng.random() < distractor_prob:
        count = int(rng.integers(1, max_distractors + 1))
    count = min(count, len(others))
    behind: list[_Object] = []
    front: list[_Object] = []
    fracs = np.linspace(0.0, 1.0, 5)
    for distractor_class in rng.choice(others, size=count, replace=False) if count else []:
        wants_front = rng.random() < 0.5
        obj = _place_object(rng, int(distractor_class), size, duration)
        if wants_front:
            for _ in range(_FRONT_TRIES):  # all front distractors together cover at most _MAX_FRONT_OVERLAP
                if all(_overlap_fraction(sounding.box(f), obj.box(f))
                       + sum(_overlap_fraction(sounding.box(f), o.box(f)) for o in front) <= _MAX_FRONT_OVERLAP
                       for f in fracs):
                    break
                obj = _place_object(rng, int(distractor_class), size, duration)
            else:
                wants_front = False  # cannot keep the sounding object visible: draw it behind
        (front if wants_front else behind).append(obj)
    return behind + [sounding] + front


def _coverage(obj: _Object, frac: float, size: int) -> tuple[slice, slice, np.ndarray]:
    """Anti-aliased coverage of ``obj`` at ``frac`` over its pixel patch: (rows, cols, alpha (h, w))."""
    x1, y1, x2, y2 = obj.box(frac)
    c0, c1 = max(int(np.floor(x1)) - 1, 0), min(int(np.ceil(x2)) + 1, size)
    r0, r1 = max(int(np.floor(y1)) - 1, 0), min(int(np.ceil(y2)) + 1, size)
    s = _SUPERSAMPLE
    xs = c0 + (np.arange((c1 - c0) * s) + 0.5) / s
    ys = r0 + (np.arange((r1 - r0) * s) + 0.5) / s
    cx, cy = obj.centre(frac)
    u = ((xs - cx) / obj.radius)[None, :]
    v = ((ys - cy) / obj.radius)[:, None]
    inside = _SHAPES[CLASSES[obj.class_index].shape](u, v).astype(np.float32)
    alpha = inside.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
    return slice(r0, r1), slice(c0, c1), alpha


def _render_frames(
    objects: Sequence[_Object], background: np.ndarray, num_frames: int, fps: float, duration: float
) -> np.ndarray:
    size = background.shape[0]
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        frac = min((i / fps) / duration, 1.0)
        image = background.copy()
        for obj in objects:
            rows, cols, alpha = _coverage(obj, frac, size)
            colour = np.asarray(CLASSES[obj.class_index].colour, dtype=np.float32)
            patch = image[rows, cols]
            image[rows, cols] = patch + (colour - patch) * alpha[..., None]
        frames[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames


def _visible_mask(objects: Sequence[_Object], sounding: int, frac: float, size: int) -> np.ndarray:
    """Pixels where the sounding object is seen (coverage >= 0.5 after occlusion), bool (size, size)."""
    visible = np.zeros((size, size), dtype=np.float32)
    for k, obj in enumerate(objects):
        rows, cols, alpha = _coverage(obj, frac, size)
        if k == sounding:
            visible[rows, cols] = alpha
        elif k > sounding:
            visible[rows, cols] *= 1.0 - alpha
    return visible >= 0.5


# --------------------------------------------------------------------------------------------
# Sounds (the per-class generators are in _synthetic_audio)
# --------------------------------------------------------------------------------------------


def _render_audio(rng: np.random.Generator, class_index: int, n: int, sr: int) -> np.ndarray:
    """One clip's sound: class timbre with pitch / rhythm / loudness jitter and a little noise."""
    pitch = 2 ** (rng.uniform(-1.5, 1.5) / 12)
    x = _SOUNDS[CLASSES[class_index].display_name](rng, n, sr, pitch)
    x = x - x.mean()
    fade = min(int(0.005 * sr), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[n - fade :] *= ramp[::-1]
    x *= 10 ** (rng.uniform(-24, -14) / 20) / (np.sqrt(np.mean(x**2)) + 1e-12)
    x += 10 ** (rng.uniform(-62, -52) / 20) * rng.standard_normal(n)
    peak = np.max(np.abs(x))
    if peak > 0.9:
        x *= 0.9 / peak
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# One clip in memory
# --------------------------------------------------------------------------------------------


@dataclass
class SyntheticClip:
    """One rendered clip, in memory.

    Attributes:
        vid: the clip's id.
        split: its split.
        index: its index inside the split.
        class_index: index of the sounding object's class in :data:`CLASSES`.
        label: the class display name.
        frames: uint8 (T, H, W, 3) RGB frames, frame ``i`` at time ``i / fps``;
            ``T = round(duration * fps)``, ``H = W = size``.
        audio: float32 (N,) mono waveform in [-1, 1], ``N = round(duration * sample_rate)``.
        box: float32 (4,) ``[x1, y1, x2, y2]`` of the sounding object at ``duration / 2``,
            normalised to [0, 1] (pixel ``j`` spans ``[j / size, (j + 1) / size]``).
        mask: bool (H, W), the sounding object's visible pixels at ``duration / 2``.
        distractors: class indices of the silent objects.
        mid_frame: index of the frame nearest ``duration / 2``.
    """

    vid: str
    split: str
    index: int
    class_index: int
    label: str
    frames: np.ndarray
    audio: np.ndarray
    box: np.ndarray
    mask: np.ndarray
    distractors: tuple[int, ...]
    mid_frame: int


def render_clip(
    seed: int = 0,
    split: str = "train",
    index: int = 0,
    *,
    num_classes: int = 8,
    class_index: int | None = None,
    duration: float = 3.0,
    fps: float = 10,
    size: int = 128,
    sample_rate: int = 48000,
    max_distractors: int = 2,
    distractor_prob: float = 0.5,
) -> SyntheticClip:
    """Render one clip's frames, audio and box in memory (no ffmpeg, nothing written).

    With the same arguments this gives exactly the arrays :func:`make_synthetic` writes for clip
    ``index`` of ``split`` (the wav holds ``audio`` as 16-bit PCM; the mp4 holds ``frames`` after
    H.264 compression). The sounding object's placement (hence ``box``) does not depend on
    ``max_distractors``.

    Args:
        seed: dataset seed (>= 0).
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: clip index inside the split (>= 0).
        num_classes: number of classes in the dataset (1 to ``len(CLASSES)``).
        class_index: the sounding class; ``None`` = ``index % num_classes`` as in the dataset.
        duration: clip length, seconds.
        fps: frame rate.
        size: frame side, pixels (even).
        sample_rate: audio sample rate, Hz.
        max_distractors: most silent objects in a clip.
        distractor_prob: probability that a clip has silent objects at all.

    Returns:
        The clip; see :class:`SyntheticClip` for the array shapes.
    """
    params = _validate(seed, num_classes, (1, 1, 1), duration, fps, size, sample_rate, max_distractors,
                       distractor_prob)
    rng, plan, objects, sounding = _scene(params, split, index, class_index)
    num_frames = max(1, round(duration * fps))
    frames = _render_frames(objects, _background(rng, size), num_frames, fps, duration)
    audio = _render_audio(rng, plan.class_index, max(1, round(duration * sample_rate)), sample_rate)
    return SyntheticClip(
        vid=plan.vid,
        split=split,
        index=index,
        class_index=plan.class_index,
        label=plan.label,
        frames=frames,
        audio=audio,
        box=plan.box,
        mask=_visible_mask(objects, sounding, 0.5, size),
        distractors=plan.distractors,
        mid_frame=min(num_frames - 1, int(round(duration * fps / 2))),
    )


@dataclass(frozen=True)
class SyntheticPlan:
    """One clip's scene without its frames or sound: what :func:`plan_clip` replays.

    Attributes:
        vid: the clip's id.
        class_index: index of the sounding object's class in :data:`CLASSES`.
        label: the class display name.
        box: float32 (4,) the sounding object's box at ``duration / 2``, as :attr:`SyntheticClip.box`.
        distractors: class indices of the silent objects, back to front, as :attr:`SyntheticClip.distractors`.
    """

    vid: str
    class_index: int
    label: str
    box: np.ndarray
    distractors: tuple[int, ...]

    def visible(self) -> list[str]:
        """The classes drawn in the clip (a ``visible.json`` entry): see :func:`visible_names`."""
        return visible_names(self.class_index, self.distractors)


def plan_clip(params: dict[str, Any], split: str, index: int, *, class_index: int | None = None) -> SyntheticPlan:
    """The scene of clip ``index`` of ``split`` in a dataset of ``params``, without drawing it.

    The objects are placed from the start of the clip's random stream, before the background,
    frames and sound draw from it, so the plan is exactly the scene :func:`render_clip` renders with
    the same parameters (about a millisecond a clip).

    Args:
        params: the dataset's parameters as ``make_synthetic`` takes them and ``meta.json`` records them
            (``seed``, ``num_classes``, ``clips_per_class``, ``duration``, ``fps``, ``size``,
            ``sample_rate``, ``max_distractors``, ``distractor_prob``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: clip index inside the split (>= 0).
        class_index: the sounding class; ``None`` = ``index % num_classes`` as in the dataset.

    Returns:
        The clip's id, class, box and silent objects.

    Raises:
        ValueError: a parameter out of range, an unknown split, a negative index.
        TypeError: a parameter missing or unknown.
    """
    return _scene(_validate(**params), split, index, class_index)[1]


def visible_names(class_index: int, distractors: Sequence[int]) -> list[str]:
    """The display names of the classes drawn in a clip: the sounding one, then each silent object's once.

    Args:
        class_index: the sounding class (index into :data:`CLASSES`).
        distractors: the silent objects' classes.

    Returns:
        The names, each once, in that order (a ``visible.json`` entry).
    """
    return list(dict.fromkeys(CLASSES[c].display_name for c in (class_index, *distractors)))


def _scene(params: dict[str, Any], split: str, index: int, class_index: int | None
           ) -> tuple[np.random.Generator, SyntheticPlan, list[_Object], int]:
    """Place clip ``index``'s objects; return its random stream (next: the background), its plan, the
    objects back to front and the sounding one's position among them."""
    _check_split(split)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    num_classes, size = params["num_classes"], params["size"]
    if class_index is None:
        class_index = index % num_classes
    if not 0 <= class_index < num_classes:
        raise ValueError(f"class_index must be in [0, {num_classes}), got {class_index}")
    rng = np.random.default_rng(np.random.SeedSequence([params["seed"], _SPLIT_CODES[split], index]))
    objects = _layout(rng, class_index, num_classes, size, params["duration"], params["max_distractors"],
                      params["distractor_prob"])
    sounding = next(k for k, obj in enumerate(objects) if obj.class_index == class_index)
    plan = SyntheticPlan(
        vid=clip_id(params["seed"], split, index),
        class_index=class_index,
        label=CLASSES[class_index].display_name,
        box=np.clip(objects[sounding].box(0.5) / size, 0.0, 1.0).astype(np.float32),
        distractors=tuple(obj.class_index for k, obj in enumerate(objects) if k != sounding),
    )
    return rng, plan, objects, sounding


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _validate(
    seed: int,
    num_classes: int,
    clips_per_class: Sequence[int],
    duration: float,
    fps: float,
    size: int,
    sample_rate: int,
    max_distractors: int,
    distractor_prob: float = 0.5,
) -> dict[str, Any]:
    """Check the generation parameters and return them as a JSON-ready dict."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not 1 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in [1, {len(CLASSES)}], got {num_classes}")
    clips = tuple(int(c) for c in clips_per_class)
    if len(clips) != len(SPLITS) or min(clips) < 0:
        raise ValueError(
            f"clips_per_class must be {len(SPLITS)} integers >= 0 (train, val, test), got {clips_per_class!r}"
        )
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    if not fps > 0 or round(duration * fps) < 1:
        raise ValueError(f"fps must be > 0 and give at least one frame, got fps={fps}, duration={duration}")
    if int(size) != size or size < 16 or size % 2:
        raise ValueError(f"size must be an even integer >= 16 (H.264 yuv420p), got {size}")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample_rate must be an integer in [8000, 192000], got {sample_rate}")
    if int(max_distractors) != max_distractors or max_distractors < 0:
        raise ValueError(f"max_distractors must be an integer >= 0, got {max_distractors}")
    if not 0.0 <= distractor_prob <= 1.0:
        raise ValueError(f"distractor_prob must be in [0, 1], got {distractor_prob}")
    return {
        "seed": int(seed),
        "num_classes": int(num_classes),
        "clips_per_class": list(clips),
        "duration": float(duration),
        "fps": fps if isinstance(fps, int) else float(fps),
        "size": int(size),
        "sample_rate": int(sample_rate),
        "max_distractors": int(max_distractors),
        "distractor_prob": float(distractor_prob),
    }
