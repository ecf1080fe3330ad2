"""Generate a synthetic benchmark family: a dataset of another kind than the embedded one, in the avcorr
layout, to check that a recipe learns on data nobody tuned it for.

Families (see :data:`FAMILIES` for every parameter):

- ``clutter``: 12 classes, 36/8/8 clips per class, 160x160 px, 15 fps, 4 s, 22.05 kHz mono. A small
  textured sounding object (5-15 % of the frame area) among 2-4 silent distractors that look like
  other classes (some partly covering it) on a busy background; intermittent sounds (on 50-80 % of
  the clip) over background noise at 25-30 dB SNR.
- ``wide``: 6 classes, 40/10/10 clips per class, 176x144 px, 8 fps, 2 s, 44.1 kHz stereo (the source
  panned after the object's position). Objects of 10-30 % of the frame area moving fast, one silent
  distractor in half of the clips, a room background, camera noise and flicker; continuous sounds.

``--scale tiny`` makes the same family with 3/2/2 clips per class and shorter clips, for tests.

Usage::

    python -m data_tools.make_synthetic_family clutter /data/clutter
    python -m data_tools.make_synthetic_family wide /tmp/wide --scale tiny --seed 1

Each split's ``visible.json`` lists the classes of every object drawn in a clip: the sounding one,
then the silent distractors' (:func:`visible_labels` replays them from ``meta.json`` without
rendering, for a dataset built before they were written).

The dataset is built in a temporary folder beside ``ROOT`` and renamed when complete (``meta.json``
last). Running again with the same parameters on a complete dataset leaves it untouched (one built
before ``visible.json`` was written gets it, and only it); a folder holding anything else is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from avcorr.data.layout import VISIBLE_FILE
from avcorr.data.synthetic import read_meta  # meta.json as a dict, None when absent or broken
from avcorr.data.writer import (
    add_missing_visible,
    building_folder,
    check_replayed_boxes,
    encode_mp4,
    pool_size,
    run_parallel,
    write_class_csv,
    write_json,
    write_wav,
)
from data_tools._family_synth import (
    FAMILIES,
    SCALES,
    SPLITS,
    FamilySpec,
    clip_id,
    family_spec,
    plan_clip,
    render_clip,
)
from data_tools._family_visual import prepare_shapes
from data_tools.make_synthetic import _disk_usage

__all__ = ["FAMILIES", "FAMILY_VERSION", "GENERATOR", "family_params", "is_family_dataset", "main", "make_family",
           "visible_labels"]

logger = logging.getLogger(__name__)

GENERATOR = "data_tools.make_synthetic_family"
"""The ``generator`` written in ``meta.json``."""

FAMILY_VERSION = 1
"""Bumped whenever the generated content changes."""


def family_params(name: str, *, scale: str = "full", seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Every parameter of a family dataset, as ``meta.json`` stores them.

    Args:
        name: a key of :data:`FAMILIES`.
        scale: ``"full"`` or ``"tiny"``.
        seed: dataset seed (>= 0).
        **overrides: :class:`~data_tools._family_synth.FamilySpec` fields to change.

    Returns:
        A JSON-ready dict: ``scale``, ``seed`` and the spec's fields.

    Raises:
        ValueError: unknown family, scale or parameter, or a value out of range.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    spec = family_spec(name, scale, **overrides)
    return json.loads(json.dumps({"scale": scale, "seed": int(seed), **spec.params()}))


def is_family_dataset(root: str | os.PathLike[str], params: dict[str, Any]) -> bool:
    """Whether ``root`` holds a complete family dataset made with exactly ``params``.

    Args:
        root: the dataset folder.
        params: from :func:`family_params`.

    Returns:
        True when its ``meta.json`` (written last) names this generator, version and parameters.
    """
    meta = read_meta(Path(root))
    return (meta is not None and meta.get("generator") == GENERATOR and meta.get("version") == FAMILY_VERSION
            and meta.get("params") == params)


def _refusal(root: Path, params: dict[str, Any]) -> str:
    meta = read_meta(root)
    if meta is None or meta.get("generator") != GENERATOR:
        return f"{root}: exists, is not empty and is not a complete family dataset (no meta.json of {GENERATOR})"
    if meta.get("version") != FAMILY_VERSION:
        return f"{root}: holds a family dataset of generator version {meta.get('version')}, not {FAMILY_VERSION}"
    stored = meta.get("params") or {}
    differ = sorted(k for k in set(stored) | set(params) if stored.get(k) != params.get(k))
    shown = ", ".join(f"{k}={stored.get(k)!r} (asked {params.get(k)!r})" for k in differ[:5])
    return f"{root}: holds the family dataset {meta.get('family')!r} with other parameters: {shown}"


def _write_clip(task: tuple[str, FamilySpec, int, str, int]) -> tuple[str, int, str, str, list[float], list[str]]:
    """Pool worker: render one clip and write its wav and mp4 under the split folder; return its split,
    index, id, label, box and the classes drawn (``visible.json``)."""
    folder, spec, seed, split, index = task
    clip = render_clip(spec, split, index, seed)
    wav = Path(folder) / split / "audio" / f"{clip.vid}.wav"
    write_wav(wav, clip.audio, spec.sample_rate)
    encode_mp4(Path(folder) / split / "video" / f"{clip.vid}.mp4", clip.frames, wav, spec.fps)
    return (split, index, clip.vid, clip.label, [round(float(x), 6) for x in clip.box],
            _visible_names(spec, clip.class_index, clip.distractors))


def make_family(name: str, root: str | os.PathLike[str], *, scale: str = "full", seed: int = 0,
                workers: int | None = None, progress: bool = False, **overrides: Any) -> Path:
    """Generate family ``name`` into ``root`` (see the module docstring).

    Clip ``i`` of a split depends only on ``(name, parameters, seed, split, i)``, not on the workers. A
    complete dataset with the same parameters is left as it is, but given its missing ``visible.json``.

    Args:
        name: a key of :data:`FAMILIES`.
        root: the folder to create; it must not exist, or be empty, or already hold this dataset.
        scale: ``"full"`` (the benchmark) or ``"tiny"`` (3/2/2 short clips per class, for tests).
        seed: dataset seed (>= 0).
        workers: processes rendering and encoding; default ``min(2, usable cores)``.
        progress: show a progress bar.
        **overrides: family parameters to change (fields of
            :class:`~data_tools._family_synth.FamilySpec`, e.g. ``clips_per_class=(2, 1, 1)``).

    Returns:
        ``root`` as an absolute Path.

    Raises:
        FileExistsError: ``root`` is not empty and is not this dataset with these parameters.
        ValueError: unknown family, scale or parameter, or a value out of range.
        RuntimeError: ffmpeg is missing or failed on a clip.
    """
    params = family_params(name, scale=scale, seed=seed, **overrides)
    spec = family_spec(name, scale, **overrides)
    root = Path(root).expanduser().absolute()
    if is_family_dataset(root, params):
        logger.info("%s already holds the %s family dataset", root, name)
        add_missing_visible(root, lambda meta: visible_labels(meta, root))
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(_refusal(root, params) + "; remove it or choose another folder")
    for stale in root.parent.glob(f".{root.name}.tmp-*"):
        logger.warning("%s is left by an interrupted or running build; remove it if no build is running", stale)
    started = time.perf_counter()
    prepare_shapes([cls.shape for cls in spec.class_list])  # once here; forked workers inherit it
    with building_folder(root, exist_ok=lambda r: is_family_dataset(r, params)) as tmp:
        tasks = []
        for split, per_class in zip(SPLITS, spec.clips_per_class):
            (tmp / split / "video").mkdir(parents=True)
            (tmp / split / "audio").mkdir(parents=True)
            tasks += [(str(tmp), spec, int(seed), split, i) for i in range(per_class * spec.num_classes)]
        ids = [clip_id(name, seed, split, i) for _, _, _, split, i in tasks]
        if len(set(ids)) != len(ids):  # 66-bit hashes: never expected
            raise RuntimeError(f"clip id collision in family {name!r} with seed {seed}; choose another seed")
        results = run_parallel(_write_clip, tasks, pool_size(workers), progress=progress, desc=f"family {name}")
        _write_indexes(tmp, spec, params, results)
    logger.info("wrote the %s family to %s in %.1f s", name, root, time.perf_counter() - started)
    return root


def _write_indexes(folder: Path, spec: FamilySpec, params: dict[str, Any],
                   results: list[tuple[str, int, str, str, list[float], list[str]]]) -> None:
    """The per-split json files, the class csv and, last, ``meta.json``."""
    order = {split: k for k, split in enumerate(SPLITS)}
    results = sorted(results, key=lambda r: (order[r[0]], r[1]))
    for split in SPLITS:
        rows = [r for r in results if r[0] == split]
        write_json(folder / split / "vid2genre.json", {vid: label for _, _, vid, label, _, _ in rows},
                   one_line_per_key=True)
        write_json(folder / split / "boxes.json", {vid: [box] for _, _, vid, _, box, _ in rows}, one_line_per_key=True)
        write_json(folder / split / VISIBLE_FILE, {vid: drawn for _, _, vid, _, _, drawn in rows},
                   one_line_per_key=True)
    classes = spec.class_list
    write_class_csv(folder / "class_labels_indices.csv", [(c.mid, c.display_name) for c in classes])
    meta = {
        "generator": GENERATOR,
        "version": FAMILY_VERSION,
        "family": spec.name,
        "params": params,
        "splits": {split: sum(r[0] == split for r in results) for split in SPLITS},
        "classes": [{"index": i, "mid": c.mid, "display_name": c.display_name, "shape": c.shape,
                     "pattern": c.pattern, "colours": [list(rgb) for rgb in c.colours], "sound": c.sound}
                    for i, c in enumerate(classes)],
        "video": {"codec": "h264", "pix_fmt": "yuv420p", "width": spec.width, "height": spec.height,
                  "fps": spec.fps, "keyframe_interval": spec.fps, "audio_codec": "aac"},
        "audio": {"format": "wav", "encoding": "pcm_s16le", "channels": spec.channels,
                  "sample_rate": spec.sample_rate},
        "boxes": "sounding object's bounding box at duration / 2, normalised [x1, y1, x2, y2] by width and height",
    }
    write_json(folder / "meta.json", meta)  # last: its presence marks the dataset complete


def visible_labels(meta: dict[str, Any], root: str | os.PathLike[str] | None = None) -> dict[str, dict[str, list[str]]]:
    """The classes drawn in every clip (``visible.json``) of a family dataset, from its ``meta.json``.

    Each clip's scene is replayed with :func:`~data_tools._family_synth.plan_clip` from the
    parameters ``meta.json`` records; no frame or sound is made.

    Args:
        meta: the dataset's ``meta.json`` object.
        root: the dataset's folder; when given, the replayed boxes must be those of its ``boxes.json``
            (a folder made by other generator code is refused rather than given wrong labels).

    Returns:
        ``{split: {vid: [sounding class, the silent objects' classes, each once ...]}}`` in clip order.

    Raises:
        ValueError: ``meta.json`` names another generator or version, or parameters this code does not
            make; a replayed box differs from ``boxes.json``.
        KeyError, TypeError: ``meta.json`` has no or other ``params``.
    """
    if meta.get("generator") != GENERATOR or meta.get("version") != FAMILY_VERSION:
        raise ValueError(f"made by {meta.get('generator')!r} version {meta.get('version')!r}; only {GENERATOR} "
                         f"version {FAMILY_VERSION} can be replayed here")
    params = meta["params"]
    overrides = {k: v for k, v in params.items() if k not in ("name", "scale", "seed")}
    if family_params(params["name"], scale=params["scale"], seed=params["seed"], **overrides) != params:
        raise ValueError(f"its params are not those of family {params['name']!r} as this code makes it")
    spec = family_spec(params["name"], params["scale"], **overrides)
    out: dict[str, dict[str, list[str]]] = {}
    for split, per_class in zip(SPLITS, spec.clips_per_class):
        plans = [plan_clip(spec, split, i, params["seed"]) for i in range(per_class * spec.num_classes)]
        if root is not None:
            check_replayed_boxes(root, split, {plan.vid: plan.box for plan in plans})
        out[split] = {plan.vid: _visible_names(spec, plan.class_index, plan.distractors) for plan in plans}
    return out


def _visible_names(spec: FamilySpec, class_index: int, distractors: Sequence[int]) -> list[str]:
    """The sounding class's display name, then each silent object's once."""
    return list(dict.fromkeys(spec.class_list[c].display_name for c in (class_index, *distractors)))


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.make_synthetic_family",
        description="Generate a synthetic benchmark family (a dataset unlike the embedded one) in the avcorr layout.",
    )
    parser.add_argument("name", choices=sorted(FAMILIES), help="the family")
    parser.add_argument("root", type=Path, help="folder to create (must not exist, or be empty)")
    parser.add_argument("--scale", choices=SCALES, default="full",
                        help="full: the benchmark; tiny: a few short clips per class for tests (default full)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default min(2, cores))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: arguments without the program name; ``None`` = ``sys.argv[1:]``.

    Returns:
        The exit status (0 on success).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        root = make_family(args.name, args.root, scale=args.scale, seed=args.seed, workers=args.workers,
                           progress=not args.no_progress)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = json.loads((root / "meta.json").read_text(encoding="utf-8"))["splits"]
    per_split = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(f"{root}: family {args.name} ({args.scale}), {per_split} clips; "
          f"{_disk_usage(root) / 1e6:.1f} MB on disk; {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
