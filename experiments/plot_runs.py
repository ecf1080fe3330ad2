"""Validation curves of finished runs side by side: a panel per group, a line per run, against optimiser steps.

    python -m experiments.plot_runs OUT.png --metric acc \\
        "ltcommands (dev): before=runs/a/s0,runs/a/s1" "ltcommands (dev): after=runs/b/s0" ...

Each positional argument is ``PANEL: LABEL=RUN[,RUN...]``; runs of one label share a colour. A run
folder is one ``avcorr.train`` wrote (its ``metrics.jsonl``). Steps, not epochs, so that runs with
other epoch lengths compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from avcorr._atomic import atomic_path

__all__ = ["main", "parse_group", "val_curve"]


def val_curve(run: Path, metric: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``metric`` in the validation rows of ``run/metrics.jsonl``.

    Raises:
        FileNotFoundError: no metrics.jsonl in ``run``.
        ValueError: no validation row has ``metric``.
    """
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no metrics.jsonl (not a finished avcorr.train run folder)")
    steps, values = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("split") == "val" and metric in row:
            steps.append(int(row["step"]))
            values.append(float(row[metric]))
    if not steps:
        raise ValueError(f"{path}: no validation row has {metric!r}")
    return steps, values


def parse_group(spec: str) -> tuple[str, str, list[Path]]:
    """``"PANEL: LABEL=RUN[,RUN...]"`` -> (panel, label, runs)."""
    panel, sep, rest = spec.partition(":")
    label, eq, runs = rest.partition("=")
    if not sep or not eq or not runs.strip():
        raise ValueError(f"{spec!r}: expected 'PANEL: LABEL=RUN[,RUN...]'")
    return panel.strip(), label.strip(), [Path(r.strip()) for r in runs.split(",") if r.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.plot_runs", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the .png to write")
    p.add_argument("groups", nargs="+", help="PANEL: LABEL=RUN[,RUN...]")
    p.add_argument("--metric", default="acc", help="validation metric (default acc)")
    args = p.parse_args(argv)
    try:
        groups = [parse_group(g) for g in args.groups]
        curves = {(panel, label): [val_curve(r, args.metric) for r in runs] for panel, label, runs in groups}
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(panel for panel, _, _ in groups))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    colours = {}
    for (panel, label), runs in curves.items():
        ax = axes[0][panels.index(panel)]
        colour = colours.setdefault(label, f"C{len(colours)}")
        for i, (steps, values) in enumerate(runs):
            ax.plot(steps, values, color=colour, lw=1.2, alpha=0.85, label=label if i == 0 else None)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("optimiser step", fontsize=8)
        ax.set_ylabel(f"val {args.metric}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
