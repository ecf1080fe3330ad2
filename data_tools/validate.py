"""Check a dataset root against the avcorr layout and print what is wrong.

Usage::

    python -m data_tools.validate ROOT [--decode] [--details] [--quiet] [--all-classes]

Prints the clip counts per split and class, then the problems, then a verdict line. Errors are
listed one per line (``ERROR path: message``); warnings and notes that repeat per clip, label or
file (``INFO``: a video without an audio file, whose audio comes from its own track; ``WARNING``: a
label used by one clip, an orphan file ...) are summarised in one line per kind with a count and the
first names, and ``--details`` lists every occurrence. Exits 0 when no error was found (warnings
allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from avcorr.data.layout import validate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.validate",
        description="Check a dataset root (ROOT/{train,val,test}/vid2genre.json, video/, audio/, "
                    "boxes.json, visible.json, class_labels_indices.csv) and report every problem.",
    )
    parser.add_argument("root", type=Path, help="the dataset root")
    parser.add_argument("--decode", action="store_true",
                        help="also decode every media file (slow, ~0.15 s per 10 s clip): frames at the start, "
                             "middle and end and then every frame, the whole audio; lists truncated and corrupt "
                             "files, NaN/Inf audio, clips without audio, video/audio length mismatches")
    parser.add_argument("--details", "-v", action="store_true",
                        help="list every occurrence of the warnings and notes that are otherwise summarised "
                             "per kind (one line with a count)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the errors and the summary line; no counts, warnings or progress bar")
    parser.add_argument("--all-classes", action="store_true",
                        help="list every class in the counts table (default: the first 40)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the validator.

    Args:
        argv: command-line arguments without the program name (None: ``sys.argv[1:]``).

    Returns:
        the exit status: 0 when no error was found, 1 otherwise.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        report = validate(args.root, decode=args.decode, progress=not args.quiet)
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.format(max_classes=None if args.all_classes else 40,
                        counts=not args.quiet, warnings=not args.quiet, details=args.details))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
