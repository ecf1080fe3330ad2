"""The embedded synthetic audio-visual dataset: coloured shapes that each make their own sound.

Every clip shows ONE sounding object (its class is the clip's label) drifting slowly over a varied
background, plus (with probability ``distractor_prob``) 1-``max_distractors`` SILENT objects that look like OTHER classes, so telling
which object sounds requires listening. The audio is a single source whose timbre identifies the
class in any 1-second window, so two clips can be mixed for Sound-of-Pixels separation. The
dataset is written in the project layout (see ``DESIGN.md``)::

    ROOT/
      class_labels_indices.csv     index,mid,display_name  (mids like /syn/violin)
      train/ val/ test/
        vid2genre.json             {vid: display_name}
        video/<vid>.mp4            H.264 yuv420p frames + AAC audio (the same sound as the wav)
        audio/<vid>.wav            16-bit PCM mono
        boxes.json                 {vid: [[x1, y1, x2, y2]]} sounding object at duration / 2, in [0, 1]
        visible.json               {vid: [display_name, ...]} the sounding class, then each silent object's
      meta.json                    generator version and every parameter

Generation is deterministic: clip ``index`` of ``split`` is drawn from a numpy Generator seeded with
``(seed, split, index)``, so the same arguments give the same frames, audio, labels and boxes
whatever the number of workers. A dataset is written into a temporary folder beside ``root`` and
renamed when complete, so a run killed midway never leaves a folder that looks finished.

The objects of a clip are placed before anything else is drawn from its random stream, so
:func:`plan_clip` replays a clip's scene (class, silent objects, box) without rendering it, and
:func:`visible_labels` re-derives ``visible.json`` from ``meta.json``: a complete dataset made before
the generator wrote ``visible.json`` gets it when :func:`make_synthetic` or
:func:`ensure_default_dataset` finds it (or with ``python -m data_tools.write_visible ROOT``), with
nothing else touched and no new version.

Example:
    >>> from avcorr.data.synthetic import ensure_default_dataset, render_clip
    >>> root = ensure_default_dataset()          # generated once into the cache (about a minute)
    >>> clip = render_clip(seed=0, split="train", index=3, duration=1.0, size=64, sample_rate=16000)
    >>> clip.frames.shape, clip.audio.shape, clip.label
    ((10, 64, 64, 3), (16000,), 'Bell')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from avcorr._atomic import move_into_place
from avcorr.data._synthetic_render import (  # re-exported: the clip in memory
    CLASSES,
    SPLITS,
    SyntheticClass,
    SyntheticClip,
    SyntheticPlan,
    _validate,
    clip_id,
    plan_clip,
    render_clip,
)
from avcorr.data._synthetic_video import _shape_extent as _shape_extent  # re-exported (tests measure the shapes)
from avcorr.data._synthetic_write import _file_lock, _pool_size, generate_into
from avcorr.data.writer import add_missing_visible, check_replayed_boxes

__all__ = [
    "CLASSES",
    "DEFAULT_PARAMS",
    "SPLITS",
    "SYNTHETIC_VERSION",
    "SyntheticClass",
    "SyntheticClip",
    "SyntheticPlan",
    "clip_id",
    "default_cache_dir",
    "ensure_default_dataset",
    "is_synthetic_dataset",
    "make_synthetic",
    "plan_clip",
    "read_meta",
    "render_clip",
    "visible_labels",
]

logger = logging.getLogger(__name__)

SYNTHETIC_VERSION: int = 4
"""Bumped whenever the generated content changes; the default cache folder carries it."""

DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 0,
    "num_classes": 8,
    "clips_per_class": (40, 10, 10),
    "duration": 3.0,
    "fps": 10,
    "size": 128,
    "sample_rate": 48000,
    "max_distractors": 2,
    "distractor_prob": 0.25,
}
"""The parameters :func:`ensure_default_dataset` generates with (the quickstart's dataset)."""


# --------------------------------------------------------------------------------------------
# A dataset on disk (the files are written by _synthetic_write)
# --------------------------------------------------------------------------------------------


def read_meta(root: Path) -> dict[str, Any] | None:
    """The ``meta.json`` a generator writes last into a dataset folder.

    Args:
        root: the dataset folder.

    Returns:
        Its contents, or None when the file is absent, unreadable or not a JSON object.
    """
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_synthetic_dataset(root: str | os.PathLike[str], **params: Any) -> bool:
    """Whether ``root`` holds a complete synthetic dataset of this generator version.

    ``meta.json`` is written last, inside a temporary folder renamed at the end, so its presence
    means the generation finished.

    Args:
        root: the dataset folder.
        **params: :func:`make_synthetic` parameters (``seed``, ``num_classes``, ...) that must match;
            the ones not given are not checked.

    Returns:
        True if complete, of :data:`SYNTHETIC_VERSION` and with matching parameters.
    """
    meta = read_meta(Path(root))
    if meta is None or meta.get("generator") != __name__ or meta.get("version") != SYNTHETIC_VERSION:
        return False
    stored = meta.get("params", {})
    for key, value in params.items():
        if key == "clips_per_class":
            value = [int(c) for c in value]
        if stored.get(key) != value:
            return False
    return True


def make_synthetic(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    num_classes: int = 8,
    clips_per_class: Sequence[int] = (40, 10, 10),
    duration: float = 3.0,
    fps: float = 10,
    size: int = 128,
    sample_rate: int = 48000,
    max_distractors: int = 2,
    distractor_prob: float = 0.5,
    workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Generate the synthetic audio-visual dataset into ``root`` (see the module docstring).

    The dataset is built in a temporary folder beside ``root`` and renamed to ``root`` when
    complete. If ``root`` already holds a complete dataset with the same parameters it is returned
    untouched (also when another process finished it first), except that one made before
    ``visible.json`` was written gets it (see :func:`visible_labels`).

    Args:
        root: the folder to create; it must not exist, or be empty, or already hold this dataset.
        seed: seed (>= 0); clip ``i`` of a split depends only on ``(seed, split, i)`` and the
            other parameters.
        num_classes: number of classes, 1 to ``len(CLASSES)``; clip ``i`` has class ``i % num_classes``.
        clips_per_class: clips per class in (train, val, test).
        duration: clip length, seconds.
        fps: video frame rate (the H.264 keyframe interval is one second).
        size: frame side, pixels (even).
        sample_rate: audio sample rate, Hz.
        max_distractors: most silent objects per clip.
        distractor_prob: probability that a clip has silent objects at all (1 to ``max_distractors``).
        workers: processes rendering and encoding in parallel; default ``min(2, cpu_count)``.
        progress: show a tqdm progress bar.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: ``root`` exists and is not empty and is not this dataset.
        ValueError: a parameter is out of range.
        RuntimeError: ffmpeg is missing or failed on a clip.
    """
    params = _validate(seed, num_classes, clips_per_class, duration, fps, size, sample_rate, max_distractors,
                       distractor_prob)
    root = Path(root).expanduser().absolute()
    if is_synthetic_dataset(root, **params):
        logger.info("%s already holds the synthetic dataset", root)
        add_missing_visible(root, lambda meta: visible_labels(meta, root))
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root}: exists and is not a complete synthetic dataset with these parameters "
            "(meta.json missing or different); remove it or choose another folder"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        generate_into(tmp, params, _pool_size(workers), progress, generator=__name__, version=SYNTHETIC_VERSION)
        _publish(tmp, root, params)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote the synthetic dataset to %s in %.1f s", root, time.perf_counter() - started)
    return root


def visible_labels(meta: dict[str, Any], root: str | os.PathLike[str] | None = None) -> dict[str, dict[str, list[str]]]:
    """The classes drawn in every clip (``visible.json``) of a dataset this generator made, from its ``meta.json``.

    Each clip's scene is replayed with :func:`plan_clip` from the parameters ``meta.json`` records;
    no frame or sound is made (about 1 ms a clip).

    Args:
        meta: the dataset's ``meta.json`` object.
        root: the dataset's folder; when given, the replayed boxes must be those of its ``boxes.json``
            (a folder made by other generator code is refused rather than given wrong labels).

    Returns:
        ``{split: {vid: [sounding class, the silent objects' classes, each once ...]}}`` in clip order,
        display names as in ``vid2genre.json``.

    Raises:
        ValueError: ``meta.json`` names another generator or version, or parameters out of range; a
            replayed box differs from ``boxes.json``.
        KeyError, TypeError: ``meta.json`` has no or other ``params``.
    """
    if meta.get("generator") != __name__ or meta.get("version") != SYNTHETIC_VERSION:
        raise ValueError(f"made by {meta.get('generator')!r} version {meta.get('version')!r}; only {__name__} "
                         f"version {SYNTHETIC_VERSION} can be replayed here")
    params = _validate(**meta["params"])
    out: dict[str, dict[str, list[str]]] = {}
    for split, per_class in zip(SPLITS, params["clips_per_class"]):
        plans = [plan_clip(params, split, i) for i in range(per_class * params["num_classes"])]
        if root is not None:
            check_replayed_boxes(root, split, {plan.vid: plan.box for plan in plans})
        out[split] = {plan.vid: plan.visible() for plan in plans}
    return out


def _publish(tmp: Path, root: Path, params: dict[str, Any]) -> None:
    """Rename the finished ``tmp`` to ``root``; if another process won the race, keep theirs."""
    with contextlib.suppress(OSError):
        root.rmdir()  # only succeeds on an empty folder
    try:
        move_into_place(tmp, root)
    except OSError:
        if not is_synthetic_dataset(root, **params):
            raise
        logger.info("%s was completed by another process; discarding this copy", root)


# --------------------------------------------------------------------------------------------
# The default cached dataset
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The avcorr cache folder: ``$AVCORR_CACHE`` if set, else ``~/.cache/avcorr``.

    Returns:
        The folder (not created).
    """
    env = os.environ.get("AVCORR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "avcorr"


def ensure_default_dataset(progress: bool = True) -> Path:
    """Return the default synthetic dataset, generating it once into the cache if needed.

    The dataset lives in ``default_cache_dir() / f"synthetic-v{SYNTHETIC_VERSION}"`` and is made
    with :data:`DEFAULT_PARAMS`. A complete one is returned at once (one made before the generator
    wrote ``visible.json`` first gets it, replayed from ``meta.json`` in well under a second; a
    folder that cannot be written keeps going without it, with a warning). Otherwise generation runs
    under a lock file, so concurrent processes generate it once; leftovers of a killed run (its
    temporary folder, or a folder without a matching ``meta.json``) are removed first.

    Args:
        progress: show a tqdm progress bar while generating.

    Returns:
        The dataset root.
    """
    params = dict(DEFAULT_PARAMS)
    cache = default_cache_dir()
    root = cache / f"synthetic-v{SYNTHETIC_VERSION}"
    if is_synthetic_dataset(root, **params):
        add_missing_visible(root, lambda meta: visible_labels(meta, root))
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with _file_lock(cache / f".{root.name}.lock") as locked:
        if is_synthetic_dataset(root, **params):  # another process finished while we waited
            add_missing_visible(root, lambda meta: visible_labels(meta, root))
            return root
        if locked:  # nobody else is generating: temporary folders left are from killed runs
            for stale in cache.glob(f".{root.name}.tmp-*"):
                logger.warning("removing %s, left by an interrupted generation", stale)
                shutil.rmtree(stale, ignore_errors=True)
        if root.exists():
            logger.warning("%s is incomplete or from other parameters; regenerating it", root)
            trash = cache / f".{root.name}.stale-{uuid.uuid4().hex[:8]}"
            move_into_place(root, trash)  # aside first: a half-deleted folder never looks complete
            shutil.rmtree(trash, ignore_errors=True)
        logger.info("generating the default synthetic dataset into %s (once)", root)
        return make_synthetic(root, progress=progress, **params)
