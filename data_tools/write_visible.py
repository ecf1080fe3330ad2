"""Add ``<split>/visible.json`` to a digits or words family built before the builders wrote it.

Reads ``ROOT/meta.json`` (which names the pictures of every clip and which silent ones were drawn) and
writes, for every split, ``ROOT/<split>/visible.json``: ``{vid: [class, ...]}``, the classes of every
picture drawn in the clip, the sounding one first (see :mod:`avcorr.data.layout`). Nothing else is
read or changed; running it again writes the same files. The digits family needs scikit-learn (the
digit of each scan).

Usage::

    python -m data_tools.write_visible ROOT [ROOT ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from data_tools import _recorded_family as fam

__all__ = ["main", "write_visible"]


def _visible(meta: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """The family's own :func:`visible_labels` of a ``meta.json`` object, chosen by its ``family``."""
    family = meta.get("family")
    if family == "digits":
        from data_tools.make_digits_family import visible_labels
    elif family == "words":
        from data_tools.make_words_family import visible_labels  # type: ignore[assignment]
    else:
        raise ValueError(f"family {family!r}: only the digits and words families are known here")
    return visible_labels(meta)


def write_visible(root: str | Path) -> list[Path]:
    """Write every split's ``visible.json`` of a built digits or words family from its ``meta.json``.

    Args:
        root: the family's folder.

    Returns:
        the files written.

    Raises:
        FileNotFoundError: ``root/meta.json`` or a split's ``vid2genre.json`` is missing.
        ValueError: ``meta.json`` is invalid, of another family, or does not describe the clips of
            ``vid2genre.json``.
        ImportError: scikit-learn is missing (digits family).
    """
    return fam.write_visible(root, _visible)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m data_tools.write_visible",
                                description="Add <split>/visible.json (the classes drawn in each clip) to built "
                                            "digits / words families, from their meta.json.")
    p.add_argument("roots", type=Path, nargs="+", metavar="ROOT", help="a built family folder")
    args = p.parse_args(argv)
    from avcorr._cli import setup_logging

    setup_logging()
    status = 0
    for root in args.roots:
        try:
            written = write_visible(root)
        except fam.BUILD_ERRORS as err:
            print(f"error: {err}", file=sys.stderr)
            status = 2
            continue
        for path in written:
            clips = json.loads(path.read_text(encoding="utf-8"))
            silent = sum(len(v) - 1 for v in clips.values())
            print(f"{path}: {len(clips)} clips, {silent} silent pictures drawn")
    return status


if __name__ == "__main__":
    sys.exit(main())
