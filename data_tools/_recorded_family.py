"""Building a family of real recordings paired with pictures (the digits and words families).

What both builders share: clip ids, the clip's audio (one recording at an offset, silence
elsewhere), the order in which a class's recordings are used (round-robin over speakers), and the
resumable build: a root that already holds the dataset with the same parameters is kept, anything
else in the way is refused, and the dataset is written into a temporary folder renamed when
complete, ``meta.json`` last. Each clip is written by a family's pool worker, which returns the
clip's plan (with ``split``, ``index`` and ``vid``) and its ``meta.json`` entry (with ``box``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from avcorr.data.writer import (
    building_folder,
    encode_mp4,
    pool_size,
    run_parallel,
    write_class_csv,
    write_json,
    write_wav,
)
from data_tools._fsdd import SPLITS, write_skipped

__all__ = ["SPLITS", "SPLIT_CODES", "build_family", "clip_audio", "clip_id", "folder_mb", "int_list",
           "is_complete", "root_is_ready", "speaker_round_robin", "write_clip_media"]

logger = logging.getLogger(__name__)

SPLIT_CODES = {s: i for i, s in enumerate(SPLITS)}
"""Split name -> the integer used in random keys."""


class _Spoken(Protocol):
    speaker: str


R = TypeVar("R", bound=_Spoken)


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


def is_complete(root: Path, generator: str, version: int, params: dict[str, Any]) -> bool:
    """Whether ``root/meta.json`` (written last) names this generator, version and parameters."""
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("generator") == generator and meta.get("version") == version
            and meta.get("params") == params)


def root_is_ready(root: Path, generator: str, version: int, params: dict[str, Any], family: str) -> bool:
    """True when ``root`` already holds this dataset; False when it is free (missing or empty).

    Raises:
        FileExistsError: ``root`` holds something else (another dataset, other parameters, a file).
    """
    if is_complete(root, generator, version, params):
        logger.info("%s already holds the %s family with these parameters", root, family)
        return True
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: exists and is not a complete {family} family with these parameters "
                              "(meta.json missing or different); remove it or choose another folder")
    return False


def write_clip_media(folder: Path, vid: str, audio: np.ndarray, sample_rate: int, frames: np.ndarray,
                     fps: float) -> None:
    """Write ``folder/audio/<vid>.wav`` and ``folder/video/<vid>.mp4`` (the frames with that audio track).

    Args:
        folder: the split folder.
        vid: the clip id.
        audio: float (N,) in [-1, 1].
        sample_rate: Hz.
        frames: uint8 (T, H, W, 3) RGB.
        fps: frame rate.
    """
    wav = folder / "audio" / f"{vid}.wav"
    write_wav(wav, audio, sample_rate)
    encode_mp4(folder / "video" / f"{vid}.mp4", frames, wav, fps)


def build_family(root: Path, write_clip: Callable[[tuple[Any, ...]], tuple[Any, dict[str, Any]]],
                 tasks: Sequence[tuple[Any, ...]], *, generator: str, version: int, params: dict[str, Any],
                 label: Callable[[dict[str, Any]], str], classes: Sequence[tuple[str, str]],
                 skipped: Sequence[tuple[str, str]], meta: Callable[[dict[str, dict[str, Any]]], dict[str, Any]],
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
        write_json(tmp / "meta.json", meta(clips))  # last


def int_list(text: str, n: int) -> tuple[int, ...]:
    """``"a,b"`` -> ``(a, b)`` for argparse: exactly ``n`` comma-separated integers."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated integers, got {text!r}") from None
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated integers, got {text!r}")
    return values


def folder_mb(root: Path) -> float:
    """Total size of the files under ``root``, MB."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
