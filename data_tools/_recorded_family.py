"""Building a family of real recordings paired with pictures (the digits and words families).

What both builders share: clip ids, the clip's audio (one recording at an offset, silence
elsewhere), the order in which a class's recordings are used (round-robin over speakers), and the
resumable build: a root that already holds the dataset with the same parameters is kept, anything
else in the way is refused, and the dataset is written into a temporary folder renamed when
complete, ``meta.json`` last. Each clip is written by a family's pool worker, which returns the
clip's plan (with ``split``, ``index`` and ``vid``) and its ``meta.json`` entry (with ``box``).

Each split's ``visible.json`` lists the classes of every picture drawn in a clip, sounding or silent
(:func:`visible_from_meta`); :func:`write_visible` (:func:`avcorr.data.writer.write_visible`) adds it to
a family built before it existed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from avcorr.data.layout import VISIBLE_FILE
from avcorr.data.writer import (
    building_folder,
    encode_mp4,
    pool_size,
    run_parallel,
    write_class_csv,
    write_json,
    write_visible,
    write_wav,
)
from data_tools._fsdd import SPLITS, write_skipped

__all__ = ["BUILD_ERRORS", "RUN_AS_MAIN", "SPLITS", "SPLIT_CODES", "add_clip_args", "build_family",
           "check_clip_params", "clip_audio", "clip_id", "folder_mb", "int_list", "is_complete", "plan_from_meta",
           "print_built", "root_is_ready", "skip_long", "speaker_round_robin", "visible_from_meta", "write_clip",
           "write_visible"]

logger = logging.getLogger(__name__)

SPLIT_CODES = {s: i for i, s in enumerate(SPLITS)}
"""Split name -> the integer used in random keys."""

BUILD_ERRORS = (FileExistsError, FileNotFoundError, ValueError, ImportError, RuntimeError)
"""What a builder raises for bad input or a missing tool: a command line prints it and exits 2."""


class _Spoken(Protocol):
    speaker: str
    path: Path
    num_samples: int


R = TypeVar("R", bound=_Spoken)
P = TypeVar("P")


def clip_id(family: str, seed: int, split: str, index: int) -> str:
    """The 11-character id (``[A-Za-z0-9_-]``) of clip ``index`` of ``split``; one in eight starts with ``-``."""
    digest = hashlib.blake2b(f"avcorr-{family}:{seed}:{split}:{index}".encode(), digest_size=9).digest()
    vid = base64.urlsafe_b64encode(digest).decode("ascii")[:11]
    return "-" + vid[1:] if index % 8 == 5 else vid


def clip_audio(samples: np.ndarray, offset: int, clip_samples: int) -> np.ndarray:
    """The clip's audio: the recording at ``offset``, zeros elsewhere.

    Args:
        samples: int16 (L,) the recording.
        offset: its first sample in the clip.
        clip_samples: N, the clip's length.

    Returns:
        float64 (N,) in [-1, 1]; ``write_wav`` turns it back into exactly ``samples``.
    """
    out = np.zeros(clip_samples)
    out[offset:offset + len(samples)] = samples / 32767.0
    return out


def plan_from_meta(cls: type[P], split: str, vid: str, entry: dict[str, Any], listed: str) -> P:
    """A clip plan (a dataclass with ``split`` and ``vid``) from its entry in ``meta.json``'s ``clips[split]``.

    Args:
        cls: the plan's class.
        split, vid: where the clip is.
        entry: its meta entry (extra keys ignored).
        listed: the field stored as a list and held as a tuple.
    """
    names = [f for f in cls.__dataclass_fields__ if f not in ("split", "vid", listed)]  # type: ignore[attr-defined]
    return cls(split=split, vid=vid, **{listed: tuple(entry[listed])}, **{k: entry[k] for k in names})


def check_clip_params(seed: int, duration: float, fps: float, size: int, max_overlap: float, min_size: int) -> None:
    """Raise ValueError naming the first parameter out of range (seed, length, rate, frame side, overlap)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not (duration > 0 and fps > 0):
        raise ValueError(f"duration and fps must be > 0, got {duration}, {fps}")
    if size < min_size or size % 2:
        raise ValueError(f"size must be even and >= {min_size}, got {size}")
    if not 0 <= max_overlap < 1:
        raise ValueError(f"max_overlap must be in [0, 1), got {max_overlap}")


def speaker_round_robin(recordings: Sequence[R], rng_key: Sequence[int], rotate: int) -> list[R]:
    """The recordings of one (split, class), each speaker's shuffled, interleaved over speakers.

    Args:
        recordings: the recordings (each with a ``speaker``).
        rng_key: the random key of this (split, class), e.g. ``(seed, split code, class index)``.
        rotate: which speaker comes first (modulo their number), so that speakers are balanced
            over classes too.

    Returns:
        All of ``recordings``, reordered.
    """
    speakers = sorted({r.speaker for r in recordings})
    start = rotate % len(speakers)
    speakers = speakers[start:] + speakers[:start]
    lists = []
    for s in speakers:
        own = [r for r in recordings if r.speaker == s]
        key = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big")
        order = np.random.default_rng([*rng_key, key]).permutation(len(own))
        lists.append([own[i] for i in order])
    return [lst[r] for r in range(max(map(len, lists))) for lst in lists if r < len(lst)]


RUN_AS_MAIN = "__main__"
"""The generator that ``meta.json`` of a family built with ``python -m`` named before the builders recorded their
module's import name; such a root is the same dataset when its ``family``, version and parameters match."""


def is_complete(root: Path, generator: str, version: int, params: dict[str, Any], family: str | None = None) -> bool:
    """Whether ``root/meta.json`` (written last) names this generator, version and parameters.

    Args:
        root: the dataset folder.
        generator: the builder's module name.
        version: its content version.
        params: the dataset parameters.
        family: the family's name: a ``meta.json`` naming :data:`RUN_AS_MAIN` as its generator and this
            ``family`` counts as this generator's (None: only ``generator`` does).
    """
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    same = meta.get("generator") == generator or (
        family is not None and meta.get("generator") == RUN_AS_MAIN and meta.get("family") == family)
    return same and meta.get("version") == version and meta.get("params") == params


def root_is_ready(root: Path, generator: str, version: int, params: dict[str, Any], family: str,
                  visible: Callable[[dict[str, Any]], dict[str, dict[str, list[str]]]] | None = None) -> bool:
    """True when ``root`` already holds this dataset; False when it is free (missing or empty).

    A complete dataset built before ``visible.json`` existed gets its missing ``visible.json`` files
    (from ``meta.json`` with ``visible``; nothing else is touched).

    Raises:
        FileExistsError: ``root`` holds something else (another dataset, other parameters, a file).
    """
    if is_complete(root, generator, version, params, family):
        logger.info("%s already holds the %s family with these parameters", root, family)
        if visible is not None and not all((root / s / VISIBLE_FILE).is_file() for s in SPLITS):
            write_visible(root, visible, missing_only=True)
        return True
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: exists and is not a complete {family} family with these parameters "
                              "(meta.json missing or different); remove it or choose another folder")
    return False


def skip_long(recordings: Sequence[R], duration: float, sample_rate: Callable[[R], int],
              skipped: list[tuple[str, str]]) -> None:
    """Log and add to ``skipped`` every recording longer than a clip of ``duration`` seconds."""
    for rec in recordings:
        rate = sample_rate(rec)
        if rec.num_samples > round(duration * rate):
            reason = f"longer than a clip ({rec.num_samples / rate:.3f} s > {duration} s)"
            logger.warning("%s: skipped: %s", rec.path, reason)
            skipped.append((str(rec.path), reason))


def write_clip(root: str, plan: Any, rec_path: str, samples: np.ndarray, sample_rate: int, frames: np.ndarray,
               placed: Sequence[Any], params: dict[str, Any], listed: str) -> dict[str, Any]:
    """Write a clip's wav (the recording at ``plan.offset``) and mp4; return its ``meta.json`` entry.

    Args:
        root: the dataset's (temporary) root.
        plan: the clip's plan: a dataclass with ``split``, ``vid``, ``offset`` and ``num_samples``.
        rec_path: the recording, for the error message.
        samples: int16 (L,) the recording.
        sample_rate: its rate, Hz.
        frames: uint8 (T, H, W, 3) RGB.
        placed: per picture (sounding first) its ``Placed`` or None.
        params: the dataset parameters (``duration``, ``fps``, ``size``).
        listed: the plan's tuple field, stored as a list.

    Returns:
        The plan's fields but ``split`` and ``vid``, ``distractors_drawn`` and ``box`` (the sounding
        picture's, normalised, at the middle time).

    Raises:
        RuntimeError: the recording's length is not the planned one (it changed during the build).
    """
    if len(samples) != plan.num_samples:
        raise RuntimeError(f"{rec_path}: changed while the dataset was built ({len(samples)} samples, "
                           f"{plan.num_samples} expected)")
    folder = Path(root) / plan.split
    wav = folder / "audio" / f"{plan.vid}.wav"
    write_wav(wav, clip_audio(samples, plan.offset, round(params["duration"] * sample_rate)), sample_rate)
    encode_mp4(folder / "video" / f"{plan.vid}.mp4", frames, wav, params["fps"])
    entry = {k: v for k, v in asdict(plan).items() if k not in ("split", "vid")}
    entry[listed] = list(getattr(plan, listed))
    entry["distractors_drawn"] = [p is not None for p in placed[1:]]
    entry["box"] = [round(v, 6) for v in placed[0].box(params["size"])]
    return entry


def build_family(root: Path, write_clip: Callable[[tuple[Any, ...]], tuple[Any, dict[str, Any]]],
                 tasks: Sequence[tuple[Any, ...]], *, generator: str, version: int, params: dict[str, Any],
                 label: Callable[[dict[str, Any]], str], classes: Sequence[tuple[str, str]],
                 skipped: Sequence[tuple[str, str]], meta: Callable[[dict[str, dict[str, Any]]], dict[str, Any]],
                 visible: Callable[[dict[str, Any]], dict[str, dict[str, list[str]]]],
                 workers: int | None, progress: bool, desc: str) -> None:
    """Write every clip and the index files into a temporary folder renamed to ``root`` when complete.

    Args:
        root: the dataset folder (free: see :func:`root_is_ready`).
        write_clip: a picklable pool worker called with ``(temporary root as str, *task)``; returns
            ``(plan, entry)`` where ``plan`` has ``split``, ``index`` and ``vid`` and ``entry`` (the
            clip's ``meta.json`` entry) has ``box``.
        tasks: one per clip.
        generator, version, params: what ``meta.json`` names (a root finished meanwhile by another
            process with the same ones is kept).
        label: the class display name of a clip, from its entry.
        classes: ``(mid, display name)`` per class, in index order.
        skipped: ``(path, reason)`` of the source entries left out.
        meta: builds ``meta.json`` from ``{split: {vid: entry}}`` in clip order.
        visible: ``{split: {vid: [class, ...]}}``, the classes drawn in each clip, from the ``meta.json``
            object (see :func:`visible_from_meta`).
        workers: processes (default ``min(2, cores)``).
        progress: show a progress bar.
        desc: its label.
    """
    with building_folder(root, exist_ok=lambda r: is_complete(r, generator, version, params)) as tmp:
        for split in SPLITS:
            (tmp / split / "audio").mkdir(parents=True)
            (tmp / split / "video").mkdir()
        results = run_parallel(write_clip, [(str(tmp), *t) for t in tasks], pool_size(workers), progress=progress,
                               desc=desc)
        results.sort(key=lambda r: (SPLIT_CODES[r[0].split], r[0].index))
        clips: dict[str, dict[str, Any]] = {s: {} for s in SPLITS}
        for plan, entry in results:
            clips[plan.split][plan.vid] = entry
        for split in SPLITS:
            write_json(tmp / split / "vid2genre.json", {v: label(e) for v, e in clips[split].items()},
                       one_line_per_key=True)
            write_json(tmp / split / "boxes.json", {v: [e["box"]] for v, e in clips[split].items()},
                       one_line_per_key=True)
        write_class_csv(tmp / "class_labels_indices.csv", classes)
        write_skipped(tmp / "skipped.csv", skipped)
        meta_obj = meta(clips)
        for split, drawn in visible(meta_obj).items():
            write_json(tmp / split / VISIBLE_FILE, drawn, one_line_per_key=True)
        write_json(tmp / "meta.json", meta_obj)  # last


def visible_from_meta(meta: dict[str, Any], sounding: Callable[[dict[str, Any]], str],
                      silent: Callable[[dict[str, Any]], Sequence[str]]) -> dict[str, dict[str, list[str]]]:
    """The classes drawn in every clip of a family, from its ``meta.json`` object.

    Args:
        meta: the ``meta.json`` object (``clips``: ``{split: {vid: entry}}``, each entry with
            ``distractors_drawn``).
        sounding: the class of a clip's sounding picture, from its entry.
        silent: the classes of its silent pictures (drawn or not, in entry order), from its entry.

    Returns:
        ``{split: {vid: [sounding class, classes of the silent pictures drawn ...]}}`` in clip order,
        each class once.

    Raises:
        ValueError: an entry without ``distractors_drawn`` or with one flag per silent picture missing.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for split, clips in meta["clips"].items():
        out[split] = {}
        for vid, entry in clips.items():
            others, drawn = list(silent(entry)), entry.get("distractors_drawn")
            if not isinstance(drawn, list) or len(drawn) != len(others):
                raise ValueError(f"clip {vid!r} of {split}: expected 'distractors_drawn', one flag per silent "
                                 f"picture ({len(others)}), got {drawn!r}")
            names = [sounding(entry), *(c for c, shown in zip(others, drawn) if shown)]
            out[split][vid] = list(dict.fromkeys(names))
    return out


def int_list(text: str, n: int) -> tuple[int, ...]:
    """``"a,b"`` -> ``(a, b)`` for argparse: exactly ``n`` comma-separated integers."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated integers, got {text!r}") from None
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated integers, got {text!r}")
    return values


def add_clip_args(p: argparse.ArgumentParser, picture: str, size_help: str) -> None:
    """Add the options every family builder has: seed, clip length, frame rate and side, silent
    pictures per clip, workers, progress."""
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--duration", type=float, help="clip length, s (default 2)")
    p.add_argument("--fps", type=float, help="frame rate (default 12)")
    p.add_argument("--size", type=int, help=f"frame side, px ({size_help})")
    p.add_argument("--distractors", type=lambda t: int_list(t, 2), default=(1, 3), metavar="MIN,MAX",
                   help=f"silent {picture} per clip (default 1,3)")
    p.add_argument("--workers", type=int, help="processes (default min(2, cores))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def print_built(root: Path, started: float) -> None:
    """Print (a command line's result) the clips per split, size and build time of a built family."""
    splits = json.loads((root / "meta.json").read_text(encoding="utf-8"))["splits"]
    print(f"{root}: {', '.join(f'{s} {n}' for s, n in splits.items())} clips; "
          f"{folder_mb(root):.1f} MB; {time.perf_counter() - started:.1f} s")


def folder_mb(root: Path) -> float:
    """Total size of the files under ``root``, MB."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
