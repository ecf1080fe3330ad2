"""One clip of a benchmark family in memory: the families' parameters and classes, clip ids, the scene
(sounding object, silent distractors, occlusion), its frames and its sound. Nothing is written here.

The families are a second synthetic generator, independent of the embedded dataset of
:mod:`avcorr.data.synthetic` (other shapes, textures, backgrounds, motion and sound banks), so that a
recipe tuned on one can be checked on the others. :mod:`data_tools.make_synthetic_family` writes
them to disk.

Example:
    >>> spec = family_spec("clutter", scale="tiny")
    >>> clip = render_clip(spec, "train", 3, seed=0)
    >>> clip.frames.shape, clip.audio.shape, clip.label
    ((30, 160, 160, 3), (44100,), 'Vowel Ee')
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from data_tools._family_sounds import SOUNDS, activity_gate, pan_gains, pink_noise
from data_tools._family_visual import (
    BACKGROUNDS,
    PATTERNS,
    SHAPES,
    SceneObject,
    Visibility,
    jitter_colours,
    render_frames,
    rotated_extent,
    visible_mask,
)

__all__ = ["FAMILIES", "SCALES", "SPLITS", "FamilyClass", "FamilyClip", "FamilyPlan", "FamilySpec", "clip_id",
           "family_spec", "plan_clip", "render_clip"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
SCALES: tuple[str, ...] = ("full", "tiny")
_SPLIT_CODES = {name: i for i, name in enumerate(SPLITS)}


@dataclass(frozen=True)
class FamilyClass:
    """One class of a family: how its object looks and how it sounds.

    Args:
        display_name: the label written in ``vid2genre.json``.
        mid: ``/<family>/<sound>``, never a real AudioSet mid.
        shape: one of :data:`data_tools._family_visual.SHAPES`.
        pattern: one of :data:`data_tools._family_visual.PATTERNS` (a two-colour texture).
        colours: the texture's two RGB colours, 0-255.
        sound: one of :data:`data_tools._family_sounds.SOUNDS`.
    """

    display_name: str
    mid: str
    shape: str
    pattern: str
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    sound: str


def _table(family: str, rows: Sequence[tuple[str, str, str, str, tuple, tuple]]) -> tuple[FamilyClass, ...]:
    return tuple(FamilyClass(name, f"/{family}/{sound}", shape, pattern, (a, b), sound)
                 for name, sound, shape, pattern, a, b in rows)


CLASS_TABLES: dict[str, tuple[FamilyClass, ...]] = {
    "clutter": _table("clutter", [
        ("FM Bell", "fm_bell", "disc", "rings", (235, 200, 40), (120, 40, 20)),
        ("FM Brass", "fm_brass", "square", "checks", (230, 120, 30), (40, 40, 40)),
        ("Vowel Ah", "vowel_ah", "triangle", "hstripes", (220, 40, 50), (250, 240, 230)),
        ("Vowel Ee", "vowel_ee", "hexagon", "dots", (40, 90, 220), (240, 240, 120)),
        ("Vowel Oo", "vowel_oo", "pill", "vstripes", (40, 170, 80), (20, 40, 30)),
        ("Rumble", "rumble_pulses", "arch", "grid", (130, 80, 40), (230, 210, 170)),
        ("Hiss", "hiss_flutter", "star", "spokes", (240, 240, 240), (90, 30, 150)),
        ("Rising Chirps", "rising_chirps", "diamond", "zigzag", (250, 120, 180), (30, 30, 120)),
        ("Falling Chirps", "falling_chirps", "crescent", "waves", (60, 220, 220), (200, 20, 120)),
        ("Pluck", "pluck", "ring", "diagonal", (180, 240, 60), (50, 20, 90)),
        ("Clicks", "clicks", "cross", "halves", (20, 20, 20), (250, 160, 20)),
        ("Trill", "trill", "pentagon", "plaid", (150, 60, 230), (250, 220, 240)),
    ]),  # fmt: skip
    "wide": _table("wide", [
        ("Whistle", "whistle", "ellipse", "diagonal", (240, 200, 30), (30, 60, 160)),
        ("Hum", "beating_hum", "bar", "vstripes", (200, 40, 40), (240, 230, 210)),
        ("Ring Mod", "ring_mod", "ring", "spokes", (40, 200, 120), (20, 30, 30)),
        ("Glissando", "glissando", "arrow", "hstripes", (240, 130, 30), (110, 20, 90)),
        ("Supersaw", "supersaw", "square", "dots", (60, 110, 240), (250, 250, 250)),
        ("Granular", "granular", "star", "checks", (230, 90, 200), (30, 30, 30)),
    ]),  # fmt: skip
}
"""The classes of each family, in index order."""


@dataclass(frozen=True)
class FamilySpec:
    """Every parameter of a family; ``meta.json`` holds them all (with ``seed`` and ``scale``).

    Sizes are fractions of the frame AREA (the sounding object's box); speeds are in
    ``sqrt(width * height)`` per second.

    Args:
        name: the family's name (it enters the clip ids and seeds).
        classes: key of :data:`CLASS_TABLES`.
        num_classes: the first ``num_classes`` classes of the table are used; clip ``i`` has class
            ``i % num_classes``.
        clips_per_class: (train, val, test).
        width, height: frame size, pixels (even).
        fps: frame rate.
        duration: clip length, seconds.
        sample_rate: Hz.
        channels: 1 (mono) or 2 (stereo: the source panned after the sounding object's x position).
        area_range: box area of every object, fraction of the frame area.
        distractor_prob: probability that a clip has silent distractors at all.
        distractors: (min, max) silent distractors when it has them; they look like other classes.
        front_prob: probability that a distractor is drawn over the sounding object's layer.
        aim_prob: probability that a front distractor is placed next to the sounding object (it then
            partly covers it).
        min_visible: the sounding object keeps at least this fraction of its pixels visible in every
            frame (a front distractor that would hide more is drawn behind instead).
        speed_range: object speed, frame sides per second; objects bounce off the frame's edges.
        max_rotation: objects are turned by up to this many degrees (fixed per clip).
        hue_jitter: per-object hue rotation, up to this many degrees.
        brightness_jitter: per-object brightness factor in ``1 +- brightness_jitter``.
        background: key of :data:`data_tools._family_visual.BACKGROUNDS`.
        camera_noise: (low, high) per-frame pixel noise standard deviation, 0-255 units (per clip).
        flicker: per-frame brightness flicker amplitude (fraction).
        active_range: (low, high) fraction of the clip the source sounds, or None for a continuous one.
        snr_db: (low, high) source-to-background-noise ratio, dB (source measured where it sounds).
        level_db: (low, high) source RMS where it sounds, dBFS.
        pitch_semitones: per-clip pitch shift up to this many semitones either way.
        tempo_range: per-clip factor on every rate of the sound.
        pan_width: stereo only: how far left/right the source goes at the frame's edges (1 = hard).
    """

    name: str
    classes: str
    num_classes: int
    clips_per_class: tuple[int, int, int]
    width: int
    height: int
    fps: int
    duration: float
    sample_rate: int
    channels: int
    area_range: tuple[float, float]
    distractor_prob: float
    distractors: tuple[int, int]
    front_prob: float
    aim_prob: float
    min_visible: float
    speed_range: tuple[float, float]
    max_rotation: float
    hue_jitter: float
    brightness_jitter: float
    background: str
    camera_noise: tuple[float, float]
    flicker: float
    active_range: tuple[float, float] | None
    snr_db: tuple[float, float]
    level_db: tuple[float, float]
    pitch_semitones: float
    tempo_range: tuple[float, float]
    pan_width: float

    @property
    def class_list(self) -> tuple[FamilyClass, ...]:
        """The classes in use, in index order."""
        return CLASS_TABLES[self.classes][: self.num_classes]

    def params(self) -> dict[str, Any]:
        """Every field as JSON-ready values (tuples as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}


FAMILIES: dict[str, FamilySpec] = {
    "clutter": FamilySpec(
        name="clutter", classes="clutter", num_classes=12, clips_per_class=(36, 8, 8), width=160, height=160,
        fps=15, duration=4.0, sample_rate=22050, channels=1, area_range=(0.05, 0.15), distractor_prob=1.0,
        distractors=(2, 4), front_prob=0.5, aim_prob=0.3, min_visible=0.6, speed_range=(0.04, 0.15),
        max_rotation=25.0, hue_jitter=8.0, brightness_jitter=0.12, background="clutter", camera_noise=(0.0, 0.0),
        flicker=0.0, active_range=(0.5, 0.8), snr_db=(25.0, 30.0), level_db=(-22.0, -16.0), pitch_semitones=2.0,
        tempo_range=(0.87, 1.15), pan_width=0.0,
    ),
    "wide": FamilySpec(
        name="wide", classes="wide", num_classes=6, clips_per_class=(40, 10, 10), width=176, height=144,
        fps=8, duration=2.0, sample_rate=44100, channels=2, area_range=(0.10, 0.30), distractor_prob=0.5,
        distractors=(1, 1), front_prob=0.5, aim_prob=0.6, min_visible=0.6, speed_range=(0.3, 0.7),
        max_rotation=15.0, hue_jitter=8.0, brightness_jitter=0.12, background="room", camera_noise=(3.0, 7.0),
        flicker=0.05, active_range=None, snr_db=(35.0, 40.0), level_db=(-22.0, -16.0), pitch_semitones=2.0,
        tempo_range=(0.87, 1.15), pan_width=0.8,
    ),
}  # fmt: skip
"""The full-scale families by name."""

_TINY: dict[str, dict[str, Any]] = {
    "clutter": {"clips_per_class": (2, 1, 1), "duration": 2.0},
    "wide": {"clips_per_class": (2, 1, 1), "duration": 1.0},
}


def family_spec(name: str, scale: str = "full", **overrides: Any) -> FamilySpec:
    """The parameters of family ``name`` at ``scale``, with ``overrides`` applied and checked.

    Args:
        name: a key of :data:`FAMILIES`.
        scale: ``"full"`` (the benchmark) or ``"tiny"`` (the same family with a few short clips per
            class, for tests).
        **overrides: :class:`FamilySpec` fields to change (not ``name``).

    Returns:
        The checked spec.

    Raises:
        ValueError: unknown family, scale or field, or a value out of range.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; expected one of {sorted(FAMILIES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    fields = {f.name for f in dataclasses.fields(FamilySpec)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for family {name!r}; expected some of {sorted(fields)}")
    changes = dict(_TINY[name]) if scale == "tiny" else {}
    changes.update(overrides)
    for key, value in changes.items():
        if isinstance(value, list):
            changes[key] = tuple(value)
    spec = dataclasses.replace(FAMILIES[name], **changes)
    _check(spec)
    return spec


def _check(spec: FamilySpec) -> None:
    """Raise ValueError naming the first parameter of ``spec`` out of range."""
    def fail(key: str, why: str) -> None:
        raise ValueError(f"family {spec.name!r}: {key}={getattr(spec, key)!r} {why}")

    def pair(key: str, lo: float, hi: float) -> None:
        value = getattr(spec, key)
        if len(value) != 2 or not lo <= value[0] <= value[1] <= hi:
            fail(key, f"must be (low, high) with {lo} <= low <= high <= {hi}")

    if spec.classes not in CLASS_TABLES:
        fail("classes", f"must be one of {sorted(CLASS_TABLES)}")
    if not 2 <= spec.num_classes <= len(CLASS_TABLES[spec.classes]):
        fail("num_classes", f"must be in [2, {len(CLASS_TABLES[spec.classes])}]")
    if len(spec.clips_per_class) != 3 or min(spec.clips_per_class) < 0 or any(
            int(c) != c for c in spec.clips_per_class):
        fail("clips_per_class", "must be 3 integers >= 0 (train, val, test)")
    for key in ("width", "height"):
        if int(getattr(spec, key)) != getattr(spec, key) or getattr(spec, key) < 32 or getattr(spec, key) % 2:
            fail(key, "must be an even integer >= 32 (H.264 yuv420p)")
    if int(spec.fps) != spec.fps or not 1 <= spec.fps <= 60:
        fail("fps", "must be an integer in [1, 60]")
    if not 0.5 <= spec.duration <= 30:
        fail("duration", "must be in [0.5, 30] seconds")
    if int(spec.sample_rate) != spec.sample_rate or not 8000 <= spec.sample_rate <= 96000:
        fail("sample_rate", "must be an integer in [8000, 96000]")
    if spec.channels not in (1, 2):
        fail("channels", "must be 1 or 2")
    pair("area_range", 0.001, 0.5)
    pair("distractors", 0, len(CLASS_TABLES[spec.classes]))
    pair("speed_range", 0.0, 5.0)
    pair("camera_noise", 0.0, 50.0)
    pair("snr_db", 0.0, 120.0)
    pair("level_db", -60.0, -3.0)
    pair("tempo_range", 0.25, 4.0)
    if spec.active_range is not None:
        pair("active_range", 0.05, 1.0)
    for key in ("distractor_prob", "front_prob", "aim_prob", "min_visible", "flicker", "pan_width",
                "brightness_jitter"):
        if not 0.0 <= getattr(spec, key) <= 1.0:
            fail(key, "must be in [0, 1]")
    if spec.background not in BACKGROUNDS:
        fail("background", f"must be one of {sorted(BACKGROUNDS)}")
    for cls in CLASS_TABLES[spec.classes]:
        assert cls.shape in SHAPES and cls.pattern in PATTERNS and cls.sound in SOUNDS, cls


# --------------------------------------------------------------------------------------------
# Ids and seeds
# --------------------------------------------------------------------------------------------


def _family_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4, person=b"avcorr-fam").digest(), "little")


def clip_id(family: str, seed: int, split: str, index: int) -> str:
    """The YouTube-like id of clip ``index`` of ``split`` in a family dataset.

    11 characters of ``[A-Za-z0-9_-]`` from a hash of ``(family, seed, split, index)``; about one
    clip in seven (chosen by index, so every split of a few dozen clips has some) starts with ``-``.

    Args:
        family: the family's name.
        seed: dataset seed.
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: the clip's index in its split.

    Returns:
        The id.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    digest = hashlib.sha256(f"avcorr family clip|{family}|{seed}|{split}|{index}".encode()).digest()
    vid = base64.urlsafe_b64encode(digest[:9]).decode("ascii")[:11]
    if (index + _family_key(family)) % 7 == 0:
        vid = "-" + vid[1:]
    return vid


def _generators(spec: FamilySpec, seed: int, split: str, index: int) -> list[np.random.Generator]:
    """Independent streams (layout, looks, per-frame effects, sound) of one clip."""
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if int(index) != index or index < 0 or int(seed) != seed or seed < 0:
        raise ValueError(f"index and seed must be integers >= 0, got index={index!r}, seed={seed!r}")
    sequence = np.random.SeedSequence([_family_key(spec.name), int(seed), _SPLIT_CODES[split], int(index)])
    return [np.random.default_rng(child) for child in sequence.spawn(4)]


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------


def _new_object(rng: np.random.Generator, spec: FamilySpec, class_index: int,
                near: SceneObject | None = None) -> SceneObject:
    """An object of ``class_index`` with random size, turn, look and motion (next to ``near`` if given)."""
    cls = spec.class_list[class_index]
    width, height, mid_time = spec.width, spec.height, spec.duration / 2
    angle = np.deg2rad(rng.uniform(-spec.max_rotation, spec.max_rotation))
    extent = rotated_extent(cls.shape, angle)
    area = rng.uniform(*spec.area_range) * width * height
    scale = float(np.sqrt(area / ((extent[2] - extent[0]) * (extent[3] - extent[1]))))
    lo = -extent[:2] * scale
    hi = np.array([width, height]) - extent[2:] * scale
    if np.any(hi < lo):
        raise ValueError(f"family {spec.name!r}: an object of area {area / (width * height):.2f} of the frame does "
                         f"not fit in {width}x{height}; lower area_range")
    side = np.sqrt(width * height)
    heading = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(*spec.speed_range) * side * np.array([np.cos(heading), np.sin(heading)])
    if near is None:
        mid = rng.uniform(lo, hi)
    else:  # next to `near`, moving with it
        reach = 0.5 * (np.sqrt(area) + np.sqrt(near.scale**2 * np.prod(near.extent[2:] - near.extent[:2])))
        turn = rng.uniform(0, 2 * np.pi)
        mid = np.clip(near.mid + rng.uniform(0.55, 1.1) * reach * np.array([np.cos(turn), np.sin(turn)]), lo, hi)
        velocity = near.velocity + 0.15 * velocity
    colours = jitter_colours(np.array(cls.colours), rng.uniform(-spec.hue_jitter, spec.hue_jitter),
                             1.0 + rng.uniform(-spec.brightness_jitter, spec.brightness_jitter))
    light_angle = rng.uniform(0, 2 * np.pi)
    return SceneObject(
        class_index=class_index, shape=cls.shape, pattern=cls.pattern, colours=colours, angle=float(angle),
        scale=scale, extent=extent, mid=mid, velocity=velocity, mid_time=mid_time, lo=lo, hi=hi,
        offset=rng.uniform(-1.0, 1.0, size=2), light=0.12 * np.array([np.cos(light_angle), np.sin(light_angle)]),
    )


def _layout(rng: np.random.Generator, spec: FamilySpec, class_index: int,
            times: np.ndarray) -> tuple[list[SceneObject], int, float]:
    """The clip's objects back to front, the index of the sounding one, and its smallest visible fraction.

    A front distractor is kept only if the sounding object stays at least ``min_visible`` visible at
    every time in ``times``; otherwise (after a few tries) it goes behind.
    """
    sounding = _new_object(rng, spec, class_index)
    visibility = Visibility(sounding, times, spec.width, spec.height)
    others = [c for c in range(spec.num_classes) if c != class_index]
    count = 0
    if rng.random() < spec.distractor_prob:
        count = min(int(rng.integers(spec.distractors[0], spec.distractors[1] + 1)), len(others))
    behind: list[SceneObject] = []
    front: list[SceneObject] = []
    for distractor in rng.permutation(others)[:count]:
        wants_front = rng.random() < spec.front_prob
        near = sounding if wants_front and rng.random() < spec.aim_prob else None
        obj = _new_object(rng, spec, int(distractor), near)
        for _ in range(30 if wants_front else 0):
            if visibility.cover(obj, spec.min_visible):
                front.append(obj)
                break
            obj = _new_object(rng, spec, int(distractor), near)
        else:
            behind.append(obj)
    return behind + [sounding] + front, len(behind), visibility.fraction()


# --------------------------------------------------------------------------------------------
# The sound
# --------------------------------------------------------------------------------------------


def _render_audio(rng: np.random.Generator, spec: FamilySpec, class_index: int,
                  sounding: SceneObject) -> tuple[np.ndarray, float]:
    """The clip's audio, float32 (N,) or (N, 2), and the fraction of it where the source sounds."""
    n, sr = max(1, round(spec.duration * spec.sample_rate)), spec.sample_rate
    pitch = 2 ** (rng.uniform(-spec.pitch_semitones, spec.pitch_semitones) / 12)
    tempo = rng.uniform(*spec.tempo_range)
    source = SOUNDS[spec.class_list[class_index].sound](rng, n, sr, pitch, tempo)
    source = source - source.mean()
    if spec.active_range is None:
        gate = np.ones(n)
    else:
        gate = activity_gate(rng, n, sr, spec.active_range)
    fade = np.minimum(1.0, np.minimum(np.arange(n) + 1, np.arange(n)[::-1] + 1) / max(1, int(0.005 * sr)))
    source = source * gate * fade
    on = gate > 0.5
    level = 10 ** (rng.uniform(*spec.level_db) / 20)
    source *= level / (np.sqrt(np.mean(source[on] ** 2)) + 1e-12)
    noise_level = level * 10 ** (-rng.uniform(*spec.snr_db) / 20)
    if spec.channels == 1:
        audio = source + noise_level * pink_noise(rng, n, sr)
    else:
        x = sounding.centres(np.arange(n) / sr)[:, 0]
        position = 2 * x / spec.width - 1
        audio = source[:, None] * pan_gains(position, spec.pan_width) * np.sqrt(2)
        audio += noise_level * np.stack([pink_noise(rng, n, sr) for _ in range(2)], axis=1)
    peak = float(np.max(np.abs(audio)))
    if peak > 0.9:
        audio *= 0.9 / peak
    return audio.astype(np.float32), float(on.mean())


# --------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------


@dataclass
class FamilyClip:
    """One rendered clip, in memory.

    Attributes:
        vid: the clip's id.
        split, index: where it belongs.
        class_index: the sounding object's class (index into ``spec.class_list``).
        label: the class display name.
        frames: uint8 (T, H, W, 3), frame ``i`` at ``i / fps``; T = round(duration * fps). Empty
            (0, H, W, 3) when rendered with ``video=False``.
        audio: float32 (N,) mono or (N, 2) stereo in [-1, 1]; N = round(duration * sample_rate).
        box: float32 (4,) ``[x1, y1, x2, y2]`` of the sounding object at ``duration / 2``, normalised
            by the frame width and height.
        mask: bool (H, W), the sounding object's visible pixels at ``duration / 2``.
        distractors: classes of the silent objects.
        front: how many of them are drawn over the sounding object's layer.
        min_visible: the smallest visible fraction of the sounding object over the frames.
        active_fraction: fraction of the clip where the source sounds (1.0 when continuous).
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
    front: int
    min_visible: float
    active_fraction: float
    mid_frame: int


def render_clip(spec: FamilySpec, split: str, index: int, seed: int = 0, *, video: bool = True,
                without_sounding: bool = False) -> FamilyClip:
    """Render clip ``index`` of ``split`` (frames, audio, box) in memory.

    The clip depends only on ``(spec, seed, split, index)``: the same arrays whatever the order or
    process it is rendered in.

    Args:
        spec: the family (see :func:`family_spec`).
        split: ``"train"``, ``"val"`` or ``"test"``.
        index: the clip's index in its split (>= 0); its class is ``index % spec.num_classes``.
        seed: dataset seed (>= 0).
        video: render the frames (False: only the audio, box and mask, much faster).
        without_sounding: draw the frames without the sounding object (everything else, noise
            included, identical): the difference to the full frames is the sounding object.

    Returns:
        The clip; see :class:`FamilyClip` for the shapes.
    """
    layout_rng, look_rng, effects_rng, sound_rng = _generators(spec, seed, split, index)
    plan, objects, sounding, min_visible = _scene(layout_rng, spec, split, index, seed)
    class_index = plan.class_index
    num_frames = max(1, round(spec.duration * spec.fps))
    times = np.arange(num_frames) / spec.fps
    mid_time = spec.duration / 2
    target = objects[sounding]
    width, height = spec.width, spec.height
    frames = np.empty((0, height, width, 3), dtype=np.uint8)
    if video:
        background = BACKGROUNDS[spec.background](look_rng, width, height)
        gains = 1.0 + spec.flicker * (0.6 * np.sin(2 * np.pi * effects_rng.uniform(0.5, 2.0) * times
                                                   + effects_rng.uniform(0, 2 * np.pi))
                                      + 0.4 * effects_rng.uniform(-1, 1, size=num_frames))
        sigma = effects_rng.uniform(*spec.camera_noise)
        noise_seeds = effects_rng.integers(0, 2**63, size=num_frames)

        def noise(i: int) -> np.ndarray:
            return np.random.default_rng(noise_seeds[i]).normal(0.0, sigma, (height, width, 3)).astype(np.float32)

        drawn = [obj for k, obj in enumerate(objects) if not (without_sounding and k == sounding)]
        frames = render_frames(drawn, background, times, gains if spec.flicker > 0 else None,
                               noise if sigma > 0 else None)
    audio, active = _render_audio(sound_rng, spec, class_index, target)
    return FamilyClip(
        vid=plan.vid,
        split=split,
        index=int(index),
        class_index=class_index,
        label=plan.label,
        frames=frames,
        audio=audio,
        box=plan.box,
        mask=visible_mask(objects, sounding, mid_time, width, height),
        distractors=plan.distractors,
        front=len(objects) - 1 - sounding,
        min_visible=min_visible,
        active_fraction=active,
        mid_frame=min(num_frames - 1, int(round(mid_time * spec.fps))),
    )


@dataclass(frozen=True)
class FamilyPlan:
    """One clip's scene without its frames or sound (:func:`plan_clip`); fields as in :class:`FamilyClip`.

    Attributes:
        vid: the clip's id.
        class_index: the sounding object's class (index into ``spec.class_list``).
        label: its display name.
        box: float32 (4,) the sounding object's box at ``duration / 2``, normalised.
        distractors: classes of the silent objects, back to front.
    """

    vid: str
    class_index: int
    label: str
    box: np.ndarray
    distractors: tuple[int, ...]


def plan_clip(spec: FamilySpec, split: str, index: int, seed: int = 0) -> FamilyPlan:
    """The scene of the clip :func:`render_clip` renders with the same arguments, without drawing it.

    The objects are placed from the clip's own layout stream, apart from its looks, effects and
    sound, so the plan is exact (about 20 ms a clip: the sounding object's visibility under front
    distractors is measured at every frame time, as when rendering).

    Args:
        spec, split, index, seed: as for :func:`render_clip`.

    Returns:
        The clip's id, class, box and silent objects.
    """
    return _scene(_generators(spec, seed, split, index)[0], spec, split, index, seed)[0]


def _scene(layout_rng: np.random.Generator, spec: FamilySpec, split: str, index: int, seed: int
           ) -> tuple[FamilyPlan, list[SceneObject], int, float]:
    """Place clip ``index``'s objects from its layout stream: its plan, the objects back to front, the
    sounding one's position among them and its smallest visible fraction."""
    class_index = index % spec.num_classes
    times = np.arange(max(1, round(spec.duration * spec.fps))) / spec.fps
    mid_time = spec.duration / 2
    objects, sounding, min_visible = _layout(layout_rng, spec, class_index, np.append(times, mid_time))
    box = objects[sounding].box(mid_time) / np.array([spec.width, spec.height, spec.width, spec.height])
    plan = FamilyPlan(vid=clip_id(spec.name, int(seed), split, int(index)), class_index=class_index,
                      label=spec.class_list[class_index].display_name, box=np.clip(box, 0.0, 1.0).astype(np.float32),
                      distractors=tuple(obj.class_index for k, obj in enumerate(objects) if k != sounding))
    return plan, objects, sounding, min_visible
