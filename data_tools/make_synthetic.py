"""Generate the synthetic audio-visual dataset (coloured shapes that each make their own sound).

Example:
    python -m data_tools.make_synthetic /data/syn --classes 8 --clips-per-class 40 10 10
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Sequence

from avcorr.data.synthetic import CLASSES, SPLITS, make_synthetic


def _disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _count_clips(root: Path) -> dict[str, int]:
    return {split: sum(1 for _ in (root / split / "audio").glob("*.wav")) for split in SPLITS}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.make_synthetic",
        description="Generate the deterministic synthetic audio-visual dataset in the avcorr layout.",
    )
    parser.add_argument("root", type=Path, help="folder to create (must not exist, or be empty)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--classes", type=int, default=8, help=f"number of classes, 1 to {len(CLASSES)} (default 8)"
    )
    parser.add_argument(
        "--clips-per-class", type=int, nargs=3, default=[40, 10, 10], metavar=("TRAIN", "VAL", "TEST"),
        help="clips per class in train, val and test (default 40 10 10)",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="clip length in seconds (default 3)")
    parser.add_argument("--fps", type=float, default=10, help="video frame rate (default 10)")
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels, even (default 128)")
    parser.add_argument("--sr", type=int, default=48000, help="audio sample rate in Hz (default 48000)")
    parser.add_argument("--max-distractors", type=int, default=2, help="most silent objects per clip (default 2)")
    parser.add_argument("--distractor-prob", type=float, default=0.5,
                        help="probability that a clip has silent distractors (default 0.5)")
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
    fps = int(args.fps) if float(args.fps).is_integer() else args.fps
    started = time.perf_counter()
    root = make_synthetic(
        args.root,
        seed=args.seed,
        num_classes=args.classes,
        clips_per_class=tuple(args.clips_per_class),
        duration=args.duration,
        fps=fps,
        size=args.size,
        sample_rate=args.sr,
        max_distractors=args.max_distractors,
        distractor_prob=args.distractor_prob,
        workers=args.workers,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - started
    counts = _count_clips(root)
    per_split = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(f"{root}: {per_split} clips; {_disk_usage(root) / 1e6:.1f} MB on disk; {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
