"""Split a downloaded folder into the train/val/test layout, stratified by class.

Usage::

    python -m data_tools.split RAW --out ROOT --val 0.1 --test 0.1 --seed 0 [--link]

``RAW`` is what :mod:`data_tools.download_audioset` writes (any folder of this shape works)::

    RAW/vid2genre.json               {id: label} or {id: [label, ...]}
    RAW/video/<id>.mp4               (or .mkv .webm .avi .mov)
    RAW/audio/<id>.wav               (or .flac .mp3 .ogg .m4a)
    RAW/class_labels_indices.csv     optional; copied to ROOT (so is ontology.json)

``ROOT`` gets ``train/ val/ test/``, each with its ``vid2genre.json`` and its ``video/`` and ``audio/``
files, copied (default) or symlinked to the RAW files (``--link``, absolute links). ROOT is built in
a temporary folder beside it and renamed when complete, then checked with
:func:`avcorr.data.layout.validate`.

How clips are assigned: every clip goes to the group of its rarest label (the label with the fewest
clips in RAW; ties by name), so a multi-label clip counts for the class that most needs it; each
group is shuffled with a generator seeded by ``(seed, label)`` over the sorted ids, and its first
``round(n * test)`` clips go to test, the next ``round(n * val)`` to val, the rest to train. A group of
3 clips or more gets at least one val and one test clip when the fraction is not 0. The result
depends only on the ids, the labels, the fractions and the seed (not on file order or workers).

Which clips are kept: ids of ``vid2genre.json`` that name a file safely (no ``/``, ``..``) and have
both a video and an audio file (only the one kind when RAW has only ``video/`` or only ``audio/``);
the others are skipped and counted, the first few are logged, and every one is listed in
``ROOT/skipped.csv`` (id, path, reason).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from avcorr._atomic import atomic_path
from avcorr.data.errors import LayoutError
from avcorr.data.layout import AUDIO_EXTENSIONS, SPLITS, VIDEO_EXTENSIONS, check_vid
from avcorr.data.skipped import SKIPPED_FILE, write_skipped_csv

from data_tools import _media

logger = logging.getLogger(__name__)

__all__ = ["assign_splits", "build_split", "main", "stratum_keys"]

_COPIED_FILES = ("class_labels_indices.csv", "ontology.json")
_MAX_LOGGED = 10


def _as_labels(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(dict.fromkeys(value))
    return None


def stratum_keys(labels: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """The stratum of each clip: its rarest label (fewest clips; ties broken by name), "" when unlabelled.

    Args:
        labels: id -> labels.

    Returns:
        id -> stratum.
    """
    counts = Counter(label for ls in labels.values() for label in ls)
    return {vid: min(ls, key=lambda label: (counts[label], label)) if ls else "" for vid, ls in labels.items()}


def _group_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    """(n_val, n_test) of a group of ``n`` clips."""
    n_test = math.floor(n * test + 0.5)
    n_val = math.floor(n * val + 0.5)
    if n >= 3:
        n_test = max(n_test, 1 if test > 0 else 0)
        n_val = max(n_val, 1 if val > 0 else 0)
    keep_train = 1 if val + test < 1 and n > 0 else 0
    while n_val + n_test > n - keep_train:
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def assign_splits(labels: dict[str, tuple[str, ...]], val: float, test: float, seed: int = 0) -> dict[str, str]:
    """Assign every clip to ``train``, ``val`` or ``test``, stratified by its rarest label.

    Args:
        labels: id -> labels.
        val: fraction of each class for val, in [0, 1).
        test: fraction of each class for test, in [0, 1); ``val + test < 1``.
        seed: shuffling seed.

    Returns:
        id -> split name, for every id of ``labels``.

    Raises:
        ValueError: fractions out of range.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"need 0 <= val, test and val + test < 1, got val={val}, test={test}")
    groups: dict[str, list[str]] = {}
    for vid, key in stratum_keys(labels).items():
        groups.setdefault(key, []).append(vid)
    out: dict[str, str] = {}
    for key in sorted(groups):
        vids = sorted(groups[key])
        random.Random(f"{seed}:{key}").shuffle(vids)
        n_val, n_test = _group_sizes(len(vids), val, test)
        for i, vid in enumerate(vids):
            out[vid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def _scan(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """id -> its media file in ``folder`` (preferred extension first); hidden and temporary files ignored."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    rank = {ext: i for i, ext in enumerate(extensions)}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            suffix = suffix.lower()
            if entry.name.startswith(".") or suffix not in rank or not entry.is_file():
                continue
            current = found.get(stem)
            if current is None or rank[suffix] < rank[current.suffix.lower()]:
                found[stem] = Path(entry.path)
    return found


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        os.symlink(os.path.abspath(src), dst)
    else:
        shutil.copyfile(src, dst)


def build_split(
    raw: str | Path,
    out: str | Path,
    *,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    link: bool = False,
    workers: int = 4,
    progress: bool = False,
) -> dict[str, Any]:
    """Build the train/val/test layout from a RAW folder (see the module docstring).

    Args:
        raw: the RAW folder.
        out: the dataset root to create; must not exist or be empty.
        val: fraction of each class for val.
        test: fraction of each class for test.
        seed: shuffling seed.
        link: symlink the media instead of copying them.
        workers: parallel copies.
        progress: show a progress bar.

    Returns:
        ``{"root": Path, "counts": {split: n}, "skipped": {reason: n}, "skipped_csv": Path}`` (the csv
        lists each skipped clip: id, path, reason).

    Raises:
        FileNotFoundError: no ``RAW/vid2genre.json``.
        ValueError: ``vid2genre.json`` is not a JSON object, no clip is usable, bad fractions, or ``out``
            exists and is not empty.
    """
    from tqdm.auto import tqdm

    raw, out = Path(raw), Path(out)
    json_path = raw / "vid2genre.json"
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path}: not found; RAW must hold vid2genre.json, video/ and audio/")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except ValueError as err:
        raise ValueError(f"{json_path}: invalid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{json_path}: expected a JSON object {{id: label or [labels]}}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty folder; choose a new --out")
    has_video, has_audio = (raw / "video").is_dir(), (raw / "audio").is_dir()
    if not has_video and not has_audio:
        raise ValueError(f"{raw}: has neither video/ nor audio/")
    videos = _scan(raw / "video", VIDEO_EXTENSIONS)
    audios = _scan(raw / "audio", AUDIO_EXTENSIONS)

    skipped: Counter[str] = Counter()
    skipped_list: list[dict[str, str]] = []  # id, path, reason: written to ROOT/skipped.csv
    labels: dict[str, tuple[str, ...]] = {}
    for vid, value in data.items():
        reason = None
        try:
            check_vid(vid, json_path)
        except LayoutError as err:
            reason, detail = "unsafe_id", str(err)
        if reason is None and _as_labels(value) is None:
            reason, detail = "bad_labels", f"{json_path}: id {vid!r}: expected a label or a list of labels"
        if reason is None and ((has_video and vid not in videos) or (has_audio and vid not in audios)):
            missing = [k for k, have, found in (("video", has_video, videos), ("audio", has_audio, audios))
                       if have and vid not in found]
            reason, detail = "missing_media", f"id {vid!r}: no {' and no '.join(missing)} file in {raw}"
        if reason is not None:
            if sum(skipped.values()) < _MAX_LOGGED:
                logger.warning("skipped: %s", detail)
            skipped[reason] += 1
            media = videos.get(vid) if isinstance(vid, str) else None
            media = media or (audios.get(vid) if isinstance(vid, str) else None)
            skipped_list.append({"id": str(vid), "path": str(media or json_path), "reason": detail})
            continue
        labels[vid] = _as_labels(value)  # type: ignore[assignment]
    if sum(skipped.values()) > _MAX_LOGGED:
        logger.warning("%d clips skipped in all (%s); every one is listed in %s", sum(skipped.values()),
                       ", ".join(f"{k} {v}" for k, v in skipped.items()), out / SKIPPED_FILE)
    if not labels:
        raise ValueError(f"{raw}: no usable clip (skipped: {dict(skipped)})")

    assignment = assign_splits(labels, val, test, seed)
    _media.remove_stale_temps(out.parent, name=out.name)  # what a killed run of this command left
    # built under a temporary name and renamed over the empty (or missing) ``out`` when complete
    with atomic_path(out) as tmp:
        jobs: list[tuple[Path, Path]] = []
        for split in SPLITS:
            for kind, have in (("video", has_video), ("audio", has_audio)):
                if have:
                    (tmp / split / kind).mkdir(parents=True, exist_ok=True)
        for vid, split in assignment.items():
            if has_video:
                jobs.append((videos[vid], tmp / split / "video" / videos[vid].name))
            if has_audio:
                jobs.append((audios[vid], tmp / split / "audio" / audios[vid].name))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=len(jobs), unit="file", desc="linking" if link else "copying", disable=not progress) as bar:
            for _ in pool.map(lambda job: _place(job[0], job[1], link), jobs):
                bar.update(1)
        for split in SPLITS:
            split_labels = {vid: (ls[0] if len(ls) == 1 else list(ls)) for vid, ls in labels.items()
                            if assignment[vid] == split}
            text = json.dumps(dict(sorted(split_labels.items())), indent=1, ensure_ascii=False) + "\n"
            (tmp / split / "vid2genre.json").write_text(text, encoding="utf-8")
        for name in _COPIED_FILES:
            if (raw / name).is_file():
                shutil.copyfile(raw / name, tmp / name)
        write_skipped_csv(tmp / SKIPPED_FILE, skipped_list)
    counts = Counter(assignment.values())
    return {"root": out, "counts": {s: counts.get(s, 0) for s in SPLITS}, "skipped": dict(skipped),
            "skipped_csv": out / SKIPPED_FILE}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_tools.split",
        description="Split RAW (vid2genre.json, video/, audio/) into ROOT/{train,val,test}, stratified by class.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("raw", type=Path, help="the downloaded folder (vid2genre.json, video/, audio/)")
    p.add_argument("--out", type=Path, required=True, help="the dataset root to create (must not exist or be empty)")
    p.add_argument("--val", type=float, default=0.1, help="fraction of each class for val")
    p.add_argument("--test", type=float, default=0.1, help="fraction of each class for test")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed")
    p.add_argument("--link", action="store_true", help="symlink the media files instead of copying them")
    p.add_argument("--workers", type=int, default=4, help="parallel copies")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the split.

    Args:
        argv: arguments without the program name; None = ``sys.argv[1:]``.

    Returns:
        0 when ROOT was built and the validator found no error, 1 otherwise.
    """
    args = _parser().parse_args(argv)
    from avcorr._cli import setup_logging
    from avcorr.data.layout import validate

    setup_logging()
    try:
        result = build_split(args.raw, args.out, val=args.val, test=args.test, seed=args.seed, link=args.link,
                             workers=args.workers, progress=not args.no_progress)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = validate(result["root"])
    print(report.format(warnings=True))
    skipped = ", ".join(f"{k} {v}" for k, v in result["skipped"].items()) or "none"
    print(f"{result['root']}: " + ", ".join(f"{s} {n}" for s, n in result["counts"].items())
          + f" clips ({'symlinked' if args.link else 'copied'}); skipped: {skipped}"
          + (f" (listed in {result['skipped_csv']})" if result["skipped"] else ""))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
