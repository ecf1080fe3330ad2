"""Add ``<split>/visible.json`` to a dataset built before its generator wrote it: a digits or words
family, a synthetic family (``clutter``, ``wide``) or the embedded synthetic dataset.

Reads ``ROOT/meta.json`` and writes, for every split, ``ROOT/<split>/visible.json``: ``{vid: [class,
...]}``, the classes of every object drawn in the clip, the sounding one first (see
:mod:`avcorr.data.layout`). The digits and words families' ``meta.json`` names the pictures of every
clip and which silent ones were drawn; the synthetic generators' records their parameters, from which
every clip's scene is replayed without rendering (:func:`avcorr.data.synthetic.visible_labels`,
:func:`data_tools.make_synthetic_family.visible_labels`), checked against the split's ``boxes.json``.
No media is read or changed; running it again writes the same files. The digits family needs
scikit-learn (the digit of each scan).

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


def _visible(meta: dict[str, Any], root: Path) -> dict[str, dict[str, list[str]]]:
    """The generator's own ``visible_labels`` of a ``meta.json`` object, chosen by its ``generator`` or ``family``."""
    from avcorr.data import synthetic
    from data_tools import make_synthetic_family

    family = meta.get("family")
    if meta.get("generator") == synthetic.__name__:
        return synthetic.visible_labels(meta, root)
    if meta.get("generator") == make_synthetic_family.GENERATOR:
        return make_synthetic_family.visible_labels(meta, root)
    if family == "digits":
        from data_tools.make_digits_family import visible_labels
    elif family == "words":
        from data_tools.make_words_family import visible_labels  # type: ignore[assignment]
    else:
        raise ValueError(f"generator {meta.get('generator')!r}, family {family!r}: only the digits, words and "
                         "synthetic families and the embedded synthetic dataset are known here")
    return visible_labels(meta)


def write_visible(root: str | Path) -> list[Path]:
    """Write every split's ``visible.json`` of a built dataset (see the module docstring) from its ``meta.json``.

    Args:
        root: the dataset's folder.

    Returns:
        the files written.

    Raises:
        FileNotFoundError: ``root/meta.json`` or a split's ``vid2genre.json`` is missing.
        ValueError: ``meta.json`` is invalid, of another generator, or does not describe the clips of
            ``vid2genre.json`` (for a synthetic dataset: a replayed box is not that of ``boxes.json``).
        ImportError: scikit-learn is missing (digits family).
    """
    root = Path(root).expanduser().absolute()
    return fam.write_visible(root, lambda meta: _visible(meta, root))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m data_tools.write_visible",
                                description="Add <split>/visible.json (the classes drawn in each clip) to built "
                                            "digits / words / synthetic families and embedded synthetic "
                                            "datasets, from their meta.json.")
    p.add_argument("roots", type=Path, nargs="+", metavar="ROOT", help="a built dataset folder")
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
            print(f"{path}: {len(clips)} clips, {silent} silent objects drawn")
    return status


if __name__ == "__main__":
    sys.exit(main())
