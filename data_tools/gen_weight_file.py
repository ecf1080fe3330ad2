"""Sampling weights of an AST datafile, as AST's ``egs/audioset/gen_weight_file.py`` computes them.

Example:
    python -m data_tools.gen_weight_file datafiles/train.json --label-csv datafiles/class_labels_indices.csv
    python -m avcorr.train --config ast_ags.py tagging.format=ast_json tagging.sampler=weighted \\
        tagging.weight_file=datafiles/train_weight.csv ...

Each label weighs ``1000 / (count + 0.01)`` where ``count`` is the number of datafile entries that
have it; an entry weighs the sum of its labels' weights. The file (default: the json's path with
``.json`` replaced by ``_weight.csv``, as AST names it) has one float per line, in datafile order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from avcorr._atomic import atomic_path


def gen_weight_file(datafile: str | Path, label_csv: str | Path, out: str | Path | None = None) -> Path:
    """Write the weight file of ``datafile``; returns its path."""
    from avcorr.data.tagging import ast_json_source, label_rarity_weights

    datafile = Path(datafile)
    src = ast_json_source(datafile, label_csv=label_csv)
    weights = label_rarity_weights(src.targets())
    out = Path(out) if out else datafile.with_name(datafile.name[: -len(".json")] + "_weight.csv"
                                                   if datafile.name.endswith(".json") else datafile.name + "_weight.csv")
    with atomic_path(out, mkdir=False) as tmp:
        np.savetxt(tmp, weights, delimiter=",")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.gen_weight_file", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datafile", type=Path, help='AST json {"data": [{"wav": ..., "labels": ...}]}')
    p.add_argument("--label-csv", type=Path, default=None,
                   help="class_labels_indices.csv (default: beside the json)")
    p.add_argument("--out", type=Path, default=None, help="weight file (default: <json stem>_weight.csv)")
    args = p.parse_args(argv)
    from avcorr.data.errors import LayoutError

    try:
        out = gen_weight_file(args.datafile, args.label_csv or args.datafile.with_name("class_labels_indices.csv"),
                              args.out)
    except (LayoutError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
