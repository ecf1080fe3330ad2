"""The digits family: real spoken digits paired with real handwritten digit scans, in the avcorr layout.

Each clip (default 2 s, 128x128 px, 12 fps) shows a light paper background with ONE sounding digit
scan (a real scan of digit d, 28-48 px, i.e. about 5-14 % of the frame, drifting slowly) and 1-3
SILENT scans of other digits that overlap it by at most 10 %; its audio is one real recording of
digit d, untouched, at a random offset inside the clip (silence elsewhere), at FSDD's native 8 kHz
mono, in ``audio/<vid>.wav`` and as the mp4's AAC track. ``boxes.json`` holds the sounding scan's box
at the middle time; ``visible.json`` the classes of every scan drawn (the sounding digit first). Class names are ``zero`` .. ``nine`` (mids ``/fsdd/0`` .. ``/fsdd/9``).

Sources (never shipped; see ``meta.json`` of a built dataset):
  * recordings: the Free Spoken Digit Dataset (CC BY-SA 4.0), a local copy of
    https://github.com/Jakobovski/free-spoken-digit-dataset; test clips use only its official test
    recordings (index 0-4), val index 5-9, train index 10-49, speakers balanced;
  * pictures: scikit-learn's ``load_digits()`` (UCI handwritten digits, CC BY 4.0), split per class
    60/20/20 once and for all, so test pictures are never seen in training either.

Selection and rendering are deterministic from ``(seed, split, index)``: clip ``i`` of a split is
digit ``i % 10``; the recordings of a (split, digit) are taken round-robin over speakers.

``--folder OUT`` instead (or also) copies ALL FSDD recordings into ``OUT/{train,val,test}/<digit>/``
for folder-per-class tagging (``python -m avcorr.train --config ast_folder.py data.root=OUT``).

Example:
    python -m data_tools.make_digits_family free-spoken-digit-dataset /data/digits
    python -m data_tools.make_digits_family free-spoken-digit-dataset --folder /data/fsdd_folders
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from data_tools import _recorded_family as fam
from data_tools._digits_render import SCANS_SOURCE, load_scans, partition_scans, render_frames
from data_tools._fsdd import (
    DIGIT_NAMES,
    FSDD_SAMPLE_RATE,
    FSDD_SOURCE,
    SPLITS,
    Recording,
    make_fsdd_folder,
    read_recording,
    scan_fsdd,
)
from data_tools._recorded_family import SPLIT_CODES, clip_audio

__all__ = ["FAMILY", "GENERATOR", "SCALES", "ClipPlan", "clip_audio", "clip_id", "make_digits_family",
           "make_fsdd_folder", "plan_split", "render_clip", "visible_labels"]

logger = logging.getLogger(__name__)

FAMILY = "digits"
GENERATOR = "data_tools.make_digits_family"
"""What ``meta.json`` names as its generator: this module's import name, however it is run (``python -m`` runs it
as ``__main__``)."""
VERSION = 1
"""Bumped whenever the built content changes for the same parameters."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {"clips_per_class": (40, 10, 10), "size": 128, "scan_size": (28, 48), "duration": 2.0, "fps": 12},
    "tiny": {"clips_per_class": (2, 1, 1), "size": 64, "scan_size": (14, 24), "duration": 2.0, "fps": 12},
}
"""Preset parameters; explicit arguments override them."""


def clip_id(seed: int, split: str, index: int) -> str:
    """The 11-character id (``[A-Za-z0-9_-]``) of clip ``index`` of ``split``; one in eight starts with ``-``."""
    return fam.clip_id(FAMILY, seed, split, index)


@dataclass(frozen=True)
class ClipPlan:
    """What one clip is made of (everything but the picture geometry, which ``render_clip`` draws).

    Args:
        split, index, vid: where the clip is.
        digit: its class.
        recording: the FSDD file name of its audio; ``speaker`` its speaker.
        offset: first sample of the recording in the clip.
        num_samples: the recording's length in samples.
        scan: the sounding scan (an index into ``load_digits()``).
        distractor_scans: silent scans of other digits (indices into ``load_digits()``).
    """

    split: str
    index: int
    vid: str
    digit: int
    recording: str
    speaker: str
    offset: int
    num_samples: int
    scan: int
    distractor_scans: tuple[int, ...]

    @classmethod
    def from_meta(cls, split: str, vid: str, entry: dict[str, Any]) -> "ClipPlan":
        """The plan of clip ``vid`` from its entry in ``meta.json``'s ``clips[split]`` (to re-render it)."""
        return fam.plan_from_meta(cls, split, vid, entry, "distractor_scans")


def plan_split(recordings: Sequence[Recording], scan_parts: dict[str, dict[int, np.ndarray]], split: str,
               per_class: int, *, seed: int, clip_samples: int, distractors: Sequence[int]) -> list[ClipPlan]:
    """Choose the recording, offset and scans of every clip of one split.

    Clip ``i`` is digit ``i % 10``; its ordinal ``i // 10`` picks the next recording of the
    (split, digit) round-robin and the next sounding scan of a seeded permutation, so a clip does not
    change when ``per_class`` does.

    Args:
        recordings: usable recordings (any split); only those of ``split`` no longer than
            ``clip_samples`` are used.
        scan_parts: :func:`~data_tools._digits_render.partition_scans` of the scans.
        split: ``train``, ``val`` or ``test``.
        per_class: clips per digit.
        seed: dataset seed.
        clip_samples: clip length in samples.
        distractors: (min, max) silent scans per clip.

    Returns:
        ``10 * per_class`` plans in index order.

    Raises:
        ValueError: a digit has no recording or no scan for this split.
    """
    code = SPLIT_CODES[split]
    pools, scan_orders = [], []
    for digit in range(10):
        own = [r for r in recordings if r.split == split and r.digit == digit and r.num_samples <= clip_samples]
        if not own:
            raise ValueError(f"no usable recording of digit {digit} for the {split} split "
                             f"(index {'0-4' if split == 'test' else '5-9' if split == 'val' else '10+'}, "
                             f"at most {clip_samples} samples)")
        if len(scan_parts[split][digit]) == 0:
            raise ValueError(f"no scan of digit {digit} in the {split} split")
        pools.append(fam.speaker_round_robin(own, (seed, code, digit), digit))
        scan_orders.append(np.random.default_rng([seed, code, digit, 2]).permutation(scan_parts[split][digit]))
        if per_class > len(own):
            logger.info("%s: %d clips of digit %d from %d recordings: some are used more than once",
                        split, per_class, digit, len(own))
    plans = []
    for index in range(10 * per_class):
        digit, ordinal = index % 10, index // 10
        rec = pools[digit][ordinal % len(pools[digit])]
        rng = np.random.default_rng([seed, code, index, 0])
        offset = int(rng.integers(0, clip_samples - rec.num_samples + 1))
        k = int(rng.integers(distractors[0], distractors[1] + 1))
        others = rng.choice([d for d in range(10) if d != digit], size=k, replace=False)
        silent = tuple(int(rng.choice(scan_parts[split][int(d)])) for d in others)
        scan = int(scan_orders[digit][ordinal % len(scan_orders[digit])])
        plans.append(ClipPlan(split, index, clip_id(seed, split, index), digit, rec.name, rec.speaker, offset,
                              rec.num_samples, scan, silent))
    return plans


def render_clip(plan: ClipPlan, scans: np.ndarray, params: dict[str, Any], *,
                draw_sounding: bool = True) -> tuple[np.ndarray, list[Any]]:
    """The clip's frames.

    Args:
        plan: the clip.
        scans: (1 + len(plan.distractor_scans), 8, 8) ink of its scans, sounding first:
            ``images[[plan.scan, *plan.distractor_scans]]`` with ``images`` from ``load_scans()``.
        params: the dataset parameters (``seed``, ``size``, ``fps``, ``duration``, ``scan_size``, ``max_overlap``).
        draw_sounding: False paints everything but the sounding scan (the others at the same places).

    Returns:
        ``(frames, placed)``: uint8 (T, H, W, 3), and per scan (sounding first) its
        :class:`~data_tools._digits_render.Placed` or None where a distractor found no room.
    """
    draw = [draw_sounding] + [True] * (len(scans) - 1)
    return render_frames((params["seed"], SPLIT_CODES[plan.split], plan.index), scans, size=params["size"],
                         fps=params["fps"], duration=params["duration"], scan_size=params["scan_size"],
                         max_overlap=params["max_overlap"], draw=draw)


def _write_clip(task: tuple[str, ClipPlan, str, np.ndarray, dict[str, Any]]) -> tuple[ClipPlan, dict[str, Any]]:
    """Pool worker: write one clip's wav and mp4; return its plan and its meta entry."""
    root, plan, rec_path, scans, params = task
    frames, placed = render_clip(plan, scans, params)
    samples = read_recording(rec_path)
    return plan, fam.write_clip(root, plan, rec_path, samples, FSDD_SAMPLE_RATE, frames, placed, params,
                                "distractor_scans")


def _validate(seed: int, clips_per_class: Sequence[int], duration: float, fps: float, size: int,
              scan_size: Sequence[int], distractors: Sequence[int], max_overlap: float) -> dict[str, Any]:
    fam.check_clip_params(seed, duration, fps, size, max_overlap, 16)
    if len(clips_per_class) != 3 or min(clips_per_class) < 1:
        raise ValueError(f"clips_per_class must be three counts >= 1 (train, val, test), got {tuple(clips_per_class)}")
    if not 4 <= scan_size[0] <= scan_size[1] <= size // 2:
        raise ValueError(f"scan_size must be (min, max) with 4 <= min <= max <= size / 2, got {tuple(scan_size)}")
    if not 0 <= distractors[0] <= distractors[1] <= 9:
        raise ValueError(f"distractors must be (min, max) with 0 <= min <= max <= 9, got {tuple(distractors)}")
    return {"seed": int(seed), "clips_per_class": [int(c) for c in clips_per_class], "duration": float(duration),
            "fps": int(fps) if float(fps).is_integer() else float(fps), "size": int(size),
            "scan_size": [int(s) for s in scan_size], "distractors": [int(d) for d in distractors],
            "max_overlap": float(max_overlap), "sample_rate": FSDD_SAMPLE_RATE}


def make_digits_family(fsdd_dir: str | os.PathLike[str], root: str | os.PathLike[str], *, scale: str = "full",
                       clips_per_class: Sequence[int] | None = None, seed: int = 0, duration: float | None = None,
                       fps: float | None = None, size: int | None = None, scan_size: Sequence[int] | None = None,
                       distractors: Sequence[int] = (1, 3), max_overlap: float = 0.1, workers: int | None = None,
                       progress: bool = False) -> Path:
    """Build the digits family into ``root`` (see the module docstring).

    FSDD entries that are not usable recordings, and recordings longer than a clip, are skipped,
    logged and listed in ``ROOT/skipped.csv``. The dataset is built in a temporary folder renamed
    when complete (``meta.json`` last); a ``root`` that already holds it with the same parameters
    is returned untouched.

    Args:
        fsdd_dir: the FSDD wavs, or the folder holding ``recordings/``.
        root: the folder to create (must not exist, or be empty, or hold this dataset).
        scale: ``full`` or ``tiny``: presets of :data:`SCALES` for the arguments left None.
        clips_per_class: clips per digit in (train, val, test).
        seed: dataset seed (>= 0).
        duration: clip length, seconds.
        fps: frame rate.
        size: frame side, pixels (even).
        scan_size: (min, max) side of a scan, pixels.
        distractors: (min, max) silent scans per clip.
        max_overlap: the most a scan may overlap another, as a share of the smaller one's area.
        workers: processes (default ``min(2, cores)``).
        progress: show a progress bar.

    Returns:
        ``root`` as an absolute Path.

    Raises:
        ValueError: a parameter out of range, or a digit without recordings or scans in a split.
        FileNotFoundError: no usable recording in ``fsdd_dir``.
        FileExistsError: ``root`` holds something else (another dataset, other parameters).
        ImportError: scikit-learn is missing.
        RuntimeError: ffmpeg is missing or fails.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    preset = SCALES[scale]
    given = {"clips_per_class": clips_per_class, "duration": duration, "fps": fps, "size": size, "scan_size": scan_size}
    chosen = {k: preset[k] if v is None else v for k, v in given.items()}
    params = _validate(seed, chosen["clips_per_class"], chosen["duration"], chosen["fps"], chosen["size"],
                       chosen["scan_size"], distractors, max_overlap)
    root = Path(root).expanduser().absolute()
    if fam.root_is_ready(root, GENERATOR, VERSION, params, FAMILY, visible_labels):
        return root
    started = time.perf_counter()
    images, labels = load_scans()
    recordings, skipped, folder = scan_fsdd(fsdd_dir)
    clip_samples = round(params["duration"] * FSDD_SAMPLE_RATE)
    fam.skip_long(recordings, params["duration"], lambda r: FSDD_SAMPLE_RATE, skipped)
    scan_parts = partition_scans(labels)
    plans = [p for split, n in zip(SPLITS, params["clips_per_class"])
             for p in plan_split(recordings, scan_parts, split, n, seed=seed, clip_samples=clip_samples,
                                 distractors=params["distractors"])]
    if len({p.vid for p in plans}) != len(plans):  # 66-bit hashes: never expected
        raise RuntimeError(f"clip id collision for seed {seed}; choose another seed")
    paths = {r.name: str(r.path) for r in recordings}
    tasks = [(p, paths[p.recording], images[[p.scan, *p.distractor_scans]], params) for p in plans]
    fam.build_family(root, _write_clip, tasks, generator=GENERATOR, version=VERSION, params=params,
                     label=lambda e: DIGIT_NAMES[e["digit"]],
                     classes=[(f"/fsdd/{d}", name) for d, name in enumerate(DIGIT_NAMES)], skipped=skipped,
                     meta=lambda clips: _meta(params, scale, folder, recordings, skipped, clips),
                     visible=lambda meta: visible_labels(meta, labels), workers=workers, progress=progress,
                     desc="digits family")
    logger.info("wrote the digits family to %s in %.1f s", root, time.perf_counter() - started)
    return root


def visible_labels(meta: dict[str, Any], scan_digits: np.ndarray | None = None) -> dict[str, dict[str, list[str]]]:
    """The classes of the scans drawn in every clip (``visible.json``), from a built family's ``meta.json``.

    Args:
        meta: the ``meta.json`` object.
        scan_digits: int64 (N,) the digit of each scan (``load_scans()[1]``); None = loaded here.

    Returns:
        ``{split: {vid: [sounding digit's name, names of the silent scans drawn ...]}}``.

    Raises:
        ValueError: a sounding scan is not of its clip's digit (scikit-learn's scans are not those the
            family was built from) or an entry lacks ``distractors_drawn``.
        ImportError: scikit-learn is missing.
    """
    digits = load_scans()[1] if scan_digits is None else scan_digits

    def sounding(entry: dict[str, Any]) -> str:
        if int(digits[entry["scan"]]) != entry["digit"]:
            raise ValueError(f"scan {entry['scan']} is a {int(digits[entry['scan']])}, the clip says "
                             f"{entry['digit']}: scikit-learn's digit scans are not those the family was built from")
        return DIGIT_NAMES[entry["digit"]]

    return fam.visible_from_meta(meta, sounding, lambda e: [DIGIT_NAMES[int(digits[i])] for i in e["distractor_scans"]])


def _meta(params: dict[str, Any], scale: str, folder: Path, recordings: Sequence[Recording],
          skipped: Sequence[tuple[str, str]], clips: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import sklearn

    clip_samples = round(params["duration"] * FSDD_SAMPLE_RATE)

    return {
        "generator": GENERATOR,
        "version": VERSION,
        "family": FAMILY,
        "scale": scale,
        "params": params,
        "sources": {
            "recordings": {**FSDD_SOURCE, "path": str(folder), "used": len({e["recording"] for c in clips.values() for e in c.values()}),
                           "usable": len(recordings) - sum(r.num_samples > clip_samples for r in recordings),
                           "skipped": len(skipped)},
            "scans": {**SCANS_SOURCE, "scikit_learn": sklearn.__version__},
        },
        "licence": "clips contain FSDD recordings (CC BY-SA 4.0) and UCI digit scans (CC BY 4.0): "
                   "share them under CC BY-SA 4.0, crediting both sources",
        "splits": {s: len(c) for s, c in clips.items()},
        "video": {"codec": "h264", "pix_fmt": "yuv420p", "audio_codec": "aac"},
        "audio": {"format": "wav", "encoding": "pcm_s16le", "channels": 1, "sample_rate": FSDD_SAMPLE_RATE},
        "boxes": "the sounding scan's square at duration / 2, normalised [x1, y1, x2, y2]",
        "clips": clips,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="python -m data_tools.make_digits_family",
                                description="Build the digits family (FSDD recordings + handwritten digit scans) "
                                            "and/or FSDD as a folder per class.")
    p.add_argument("fsdd_dir", type=Path, help="FSDD's recordings/ folder, or the clone holding it")
    p.add_argument("root", type=Path, nargs="?", help="audio-visual dataset to create")
    p.add_argument("--folder", type=Path, metavar="OUT",
                   help="also (or, without ROOT, only) copy every recording to OUT/{train,val,test}/<digit>/")
    p.add_argument("--link", action="store_true", help="--folder: hard-link instead of copying")
    p.add_argument("--scale", choices=sorted(SCALES), default="full", help="preset sizes (default full)")
    p.add_argument("--clips-per-class", type=lambda t: fam.int_list(t, 3), metavar="TRAIN,VAL,TEST",
                   help="clips per digit (default 40,10,10; tiny 2,1,1)")
    p.add_argument("--scan-size", type=lambda t: fam.int_list(t, 2), metavar="MIN,MAX",
                   help="scan side, px (default 28,48)")
    fam.add_clip_args(p, "scans", "default 128; tiny 64")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root is None and args.folder is None:
        parser.error("give ROOT, --folder OUT, or both")
    from avcorr._cli import setup_logging

    setup_logging()
    try:
        if args.folder is not None:
            started = time.perf_counter()
            out = make_fsdd_folder(args.fsdd_dir, args.folder, link=args.link, progress=not args.no_progress)
            counts = {s: sum(1 for _ in (out / s).rglob("*.wav")) for s in SPLITS}
            print(f"{out}: {', '.join(f'{s} {n}' for s, n in counts.items())} recordings; "
                  f"{fam.folder_mb(out):.1f} MB; {time.perf_counter() - started:.1f} s")
        if args.root is not None:
            started = time.perf_counter()
            root = make_digits_family(args.fsdd_dir, args.root, scale=args.scale, clips_per_class=args.clips_per_class,
                                      seed=args.seed, duration=args.duration, fps=args.fps, size=args.size,
                                      scan_size=args.scan_size, distractors=args.distractors, workers=args.workers,
                                      progress=not args.no_progress)
            fam.print_built(root, started)
    except fam.BUILD_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
