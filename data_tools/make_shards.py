"""Write the splits of a dataset as tar shards of pre-decoded frames and audio (WebDataset convention).

Usage::

    python -m data_tools.make_shards ROOT OUT [--split train,val,test] [--frames-per-clip 10] [--size 224]
        [--sample-rate 48000] [--seconds T] [--window 1.0] [--format jpeg|raw] [--quality 90]
        [--audio-dtype int16|float16|float32] [--shard-size 256 | --clips-per-shard K] [--workers W]
        [--overwrite]

Writes ``OUT/<split>/shard-000000.tar ...``, then ``OUT/<split>/skipped.csv`` and, last,
``OUT/<split>/manifest.json``. What a sample holds is described in :mod:`avcorr.data.shard_writer`,
the member names and the manifest in :mod:`avcorr.data.shards`.

Clips are decoded by ``--workers`` processes; the main process writes one shard at a time, in clip
order, each to a temporary name renamed when complete. Shard ``i`` holds clips ``i*K .. i*K+K-1`` of
the split's clips with video (``--clips-per-shard K``; ``--shard-size MB`` sets K from the encoded size
of the first clips, so sizes are approximate). After each shard, ``OUT/<split>/.progress.json`` records
it, so a killed run started again with the same options keeps the shards whose sha256 matches and
writes the others (temporaries of dead processes are deleted). Different options (or a changed list of
clips, or a ``visible.json`` added or changed) than the shards already there are an error unless
``--overwrite``, which deletes them first. A clip that cannot be decoded is skipped, logged and listed
in ``skipped.csv``; it never stops the run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tarfile
from collections import deque
from itertools import islice
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import avcorr
from avcorr._atomic import atomic_path, stale_temporaries, write_json
from avcorr.data.errors import BadClipError, LayoutError
from avcorr.data.layout import Clip, SplitIndex, available_splits, load_split
from avcorr.data.shard_writer import AUDIO_DTYPES, FRAME_FORMATS, ShardOptions, add_sample, clip_members
from avcorr.data.shards import MANIFEST_FILE, ShardError, file_sha256, shard_name
from avcorr.data.skipped import SKIPPED_FILE, clip_paths, skipped_rows, write_skipped_csv

logger = logging.getLogger(__name__)

__all__ = ["PROGRESS_FILE", "SplitSummary", "make_shards", "main", "shard_split"]

PROGRESS_FILE = ".progress.json"
_ESTIMATE_CLIPS = 4
_FORMAT_VERSION = 1


@dataclass
class SplitSummary:
    """What :func:`shard_split` did for one split.

    Args:
        split: the split.
        folder: its shard folder.
        shards: shards in the manifest.
        written: shards written by this run.
        clips: clips stored.
        skipped: ``(vid, reason)`` of the clips left out.
        bytes: total size of the shards.
    """

    split: str
    folder: Path
    shards: int = 0
    written: int = 0
    clips: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0

    def line(self) -> str:
        return (f"{self.split}: {self.clips} clips in {self.shards} shards ({self.written} written now, "
                f"{self.shards - self.written} kept), {len(self.skipped)} skipped, {self.bytes / 2**20:.1f} MiB "
                f"-> {self.folder / MANIFEST_FILE}")


# ------------------------------------------------------------------------------------- workers


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _encode(job: tuple[Clip, ShardOptions, str, list[int], tuple[str, ...] | None]
            ) -> tuple[str, list[tuple[str, bytes]] | None, str]:
    """One clip: ``(vid, members, "")`` when it decodes, ``(vid, None, reason)`` when it does not."""
    clip, options, root, label_indices, visible = job
    try:
        return clip.vid, clip_members(clip, options, root=root, label_indices=label_indices, visible=visible), ""
    except BadClipError as e:
        return clip.vid, None, str(e)


def _ordered_map(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, jobs)`` in order, over ``workers`` processes (0 or 1: in this process), at most 2 per worker ahead."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    pool = ProcessPoolExecutor(workers, initializer=_worker_init)
    try:
        it = iter(jobs)
        pending = deque(pool.submit(fn, job) for job in islice(it, 2 * workers))
        while pending:
            result = pending.popleft().result()
            for job in it:
                pending.append(pool.submit(fn, job))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------- one split


def _fingerprint(vids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(vids).encode()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ShardError(str(path), f"not valid JSON ({e}); delete it or use --overwrite") from e


_FINGERPRINTS = {"clips": "clips: the split's clip list changed",
                 "visible": "visible: the split's visible.json was added or changed (the samples store its labels)"}


def _check_settings(folder: Path, found: dict[str, Any], settings: dict[str, Any]) -> None:
    differ = [k for k in settings if found.get("settings", {}).get(k) != settings[k]]
    if differ:
        old = found.get("settings", {})
        lines = "; ".join(_FINGERPRINTS.get(k) or f"{k}: {old.get(k)!r} there, {settings[k]!r} now" for k in differ)
        raise ShardError(str(folder), f"holds shards made with other settings ({lines}); use the same options, "
                                      "another OUT, or --overwrite to replace them")


def _clear(folder: Path) -> None:
    for p in [*folder.glob("shard-*.tar"), folder / MANIFEST_FILE, folder / PROGRESS_FILE, folder / SKIPPED_FILE]:
        p.unlink(missing_ok=True)


def _estimate_clips_per_shard(clips: list[Clip], options: ShardOptions, root: str, megabytes: float) -> int:
    """K such that K clips take about ``megabytes``, from the encoded size of the first good clips."""
    sizes = []
    for clip in clips:
        _, members, _ = _encode((clip, options, root, [], None))
        if members is not None:
            sizes.append(sum(512 * (2 + (len(d) + 511) // 512) for _, d in members))  # tar headers, padding
            if len(sizes) == _ESTIMATE_CLIPS:
                break
    if not sizes:
        return 100
    return max(1, int(megabytes * 2**20 // (sum(sizes) / len(sizes))))


def shard_split(index: SplitIndex, out: str | Path, options: ShardOptions, *, clips_per_shard: int | None = None,
                shard_size_mb: float | None = 256.0, workers: int = 0, overwrite: bool = False,
                progress: bool = False) -> SplitSummary:
    """Write one split's shards, ``skipped.csv`` and (last) ``manifest.json`` into ``out/<split>``.

    Args:
        index: the split, from :func:`~avcorr.data.layout.load_split`.
        out: the output root.
        options: what each sample stores.
        clips_per_shard: clips per shard; None = from ``shard_size_mb``.
        shard_size_mb: approximate shard size when ``clips_per_shard`` is None.
        workers: decoding processes (0: in this process).
        overwrite: delete shards made with other settings instead of stopping.
        progress: show a progress bar.

    Returns:
        the :class:`SplitSummary`.

    Raises:
        ShardError: the folder holds shards made with other settings (without ``overwrite``).
    """
    folder = Path(out) / index.split
    root = str(index.root)
    usable = [c for c in index.clips if c.video is not None]
    early = [(c.vid, "no video file") for c in index.clips if c.video is None]
    settings = {"root": root, "split": index.split, **options.to_dict(), "clips_per_shard": clips_per_shard,
                "shard_size_mb": None if clips_per_shard else shard_size_mb,
                "clips": _fingerprint([c.vid for c in usable])}
    has_visible = index.visible is not None
    if has_visible:  # absent without visible.json: shards made before it keep their settings
        settings["visible"] = _fingerprint(["\t".join((c.vid, *index.visible_labels(c))) for c in usable])
    found = _read_json(folder / MANIFEST_FILE) or _read_json(folder / PROGRESS_FILE)
    if found is not None and overwrite:
        _clear(folder)
        found = None
    if found is not None:
        _check_settings(folder, found, settings)
    for tmp in stale_temporaries(folder):
        logger.info("deleting %s, left by a killed run", tmp)
        tmp.unlink(missing_ok=True)
    k = found.get("per_shard") if found else None
    k = k or clips_per_shard or _estimate_clips_per_shard(usable, options, root, float(shard_size_mb or 256.0))
    plan = [usable[i:i + k] for i in range(0, len(usable), k)]
    done: dict[str, dict[str, Any]] = {}
    for entry in (found or {}).get("shards", []):
        path = folder / entry["name"]
        if path.is_file() and path.stat().st_size == entry["bytes"] and file_sha256(path) == entry["sha256"]:
            done[entry["name"]] = entry
        else:
            logger.warning("%s: missing or changed since it was written; writing it again", path)
    state = {"settings": settings, "per_shard": k, "shards": list(done.values())}
    todo = [(i, clips) for i, clips in enumerate(plan) if shard_name(i) not in done]
    jobs = ((c, options, root, index.label_indices(c), index.visible_labels(c) if has_visible else None)
            for _, clips in todo for c in clips)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(c) for _, c in todo), desc=f"{index.split} shards", unit="clip")
    results = _ordered_map(_encode, jobs, workers)
    try:
        for i, clips in todo:
            entry = _write_shard(folder / shard_name(i), clips, results, bar)
            done[entry["name"]] = entry
            state["shards"] = [done[shard_name(j)] for j in range(len(plan)) if shard_name(j) in done]
            write_json(folder / PROGRESS_FILE, state)
    finally:
        results.close()  # stops the worker processes when a shard failed
        if bar is not None:
            bar.close()
    shards = [done[shard_name(j)] for j in range(len(plan))]
    skipped = early + [tuple(s) for e in shards for s in e["skipped"]]
    write_skipped_csv(folder / SKIPPED_FILE, skipped_rows(skipped, clip_paths(index.clips)))
    manifest = {
        "format": "avcorr-shards", "format_version": _FORMAT_VERSION, "avcorr_version": avcorr.__version__,
        "split": index.split, "classes": list(index.classes), "is_multilabel": index.is_multilabel,
        "num_clips": sum(len(e["clips"]) for e in shards), "num_skipped": len(skipped),
        "settings": settings, "per_shard": k, "shards": shards,
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / MANIFEST_FILE, manifest)
    (folder / PROGRESS_FILE).unlink(missing_ok=True)
    for vid, reason in skipped:
        logger.warning("%s: skipped clip %s: %s", index.split, vid, reason)
    return SplitSummary(index.split, folder, shards=len(shards), written=len(todo), clips=manifest["num_clips"],
                        skipped=skipped, bytes=sum(e["bytes"] for e in shards))


def _write_shard(path: Path, clips: list[Clip], results: Iterator[tuple[str, Any, str]], bar: Any) -> dict[str, Any]:
    """Write the samples of ``clips`` (their results come next from ``results``) as one shard, atomically."""
    stored, skipped = [], []
    with atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for clip in clips:
                vid, members, reason = next(results)
                assert vid == clip.vid, (vid, clip.vid)
                if members is None:
                    skipped.append([vid, reason])
                else:
                    add_sample(tar, members)
                    stored.append(vid)
                if bar is not None:
                    bar.update(1)
    return {"name": path.name, "clips": stored, "skipped": skipped, "bytes": path.stat().st_size,
            "sha256": file_sha256(path)}


def make_shards(root: str | Path, out: str | Path, splits: Sequence[str] | None = None,
                options: ShardOptions | None = None, **kwargs: Any) -> list[SplitSummary]:
    """Shard the splits of a dataset root; see :func:`shard_split` for ``kwargs``.

    Args:
        root: the dataset root.
        out: the output root (``out/<split>/``).
        splits: the splits; None = every split the root has.
        options: what each sample stores (default :class:`ShardOptions`).

    Returns:
        one summary per split.
    """
    splits = list(splits) if splits else available_splits(root)
    if not splits:
        raise LayoutError(f"{root}: no train/val/test split folder with a vid2genre.json")
    return [shard_split(load_split(root, split), out, options or ShardOptions(), **kwargs) for split in splits]


# ------------------------------------------------------------------------------------- command line


def _parser():
    from avcorr._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m data_tools.make_shards", description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="the dataset root (vid2genre layout)")
    p.add_argument("out", type=Path, help="output folder; each split goes to OUT/<split>/")
    p.add_argument("--split", default=None, help="comma-separated splits (default: every split ROOT has)")
    d = ShardOptions()
    p.add_argument("--frames-per-clip", type=int, default=d.frames_per_clip,
                   help=f"frames per clip (default {d.frames_per_clip})")
    p.add_argument("--size", type=int, default=d.size,
                   help=f"side of the stored square frames: short side resized to it, centre crop (default {d.size})")
    p.add_argument("--sample-rate", type=int, default=d.sample_rate, help=f"audio rate in Hz (default {d.sample_rate})")
    p.add_argument("--seconds", type=float, default=None,
                   help="audio seconds kept per clip, around the middle of the usable frames (default: all)")
    p.add_argument("--window", type=float, default=d.window,
                   help=f"training audio window (s): frames are taken where it fits in the audio (default {d.window})")
    p.add_argument("--format", choices=FRAME_FORMATS, default=d.format, help="jpeg frames or raw uint8 (default jpeg)")
    p.add_argument("--quality", type=int, default=d.quality, help=f"JPEG quality (default {d.quality})")
    p.add_argument("--audio-dtype", choices=AUDIO_DTYPES, default=d.audio_dtype,
                   help="stored audio type (default int16)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--shard-size", type=float, default=256.0, metavar="MB",
                      help="approximate shard size in MiB (default 256)")
    size.add_argument("--clips-per-shard", type=int, default=None, metavar="K", help="clips per shard")
    workers = {"default": min(4, os.cpu_count() or 1), "help": "decoding processes (0: none; default min(4, cores))"}
    add_common_args(p, "workers", "no_progress", workers=workers)
    p.add_argument("--overwrite", action="store_true", help="replace shards made with other settings")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 done, 2 on a bad dataset or option)."""
    args = _parser().parse_args(argv)
    from avcorr._cli import error_exit, setup_logging

    setup_logging()
    try:
        options = ShardOptions(frames_per_clip=args.frames_per_clip, size=args.size, sample_rate=args.sample_rate,
                               seconds=args.seconds, window=args.window, format=args.format, quality=args.quality,
                               audio_dtype=args.audio_dtype)
        if args.clips_per_shard is not None and args.clips_per_shard < 1:
            raise ValueError(f"--clips-per-shard must be >= 1, got {args.clips_per_shard}")
        splits = [s for s in args.split.split(",") if s] if args.split else None
        summaries = make_shards(args.root, args.out, splits, options, clips_per_shard=args.clips_per_shard,
                                shard_size_mb=args.shard_size, workers=args.workers, overwrite=args.overwrite,
                                progress=not args.no_progress)
    except (LayoutError, ShardError, ValueError, OSError) as e:
        return error_exit(e)
    for s in summaries:
        print(s.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
