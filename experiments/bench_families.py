"""The recipes across dataset families: does a shipped config learn on data it was not tuned on?

For every (recipe, family, seed) this trains the SHIPPED config with only ``data.root`` and
``train.seed`` changed, evaluates ``best.pt`` on the test split, and writes one JSON per run, a
summary table (mean +- std over seeds; held-out families marked) and learning-curve pictures.

Families (see docs/data.md, "Dataset families"):

* ``embedded``  the embedded synthetic dataset (generated into the cache when missing);
* ``clutter``, ``wide``  ``python -m data_tools.make_synthetic_family NAME DIR/NAME``;
* ``digits``  ``python -m data_tools.make_digits_family FSDD DIR/digits`` (real recordings and scans);
* ``ltcommands``  audio only, for the tagging recipes: the Lithuanian Speech Commands (real recordings,
  20 words, 28 speakers) split by speaker, ``python -m data_tools.make_speech_commands_folder
  SRC/dataset DIR/ltcommands-folders`` (``--lt-commands SRC`` builds it);
* ``ltwords``  the same recordings as an audio-visual development family of the digits family's kind
  (each word paired with the word drawn as text, silent distractor words):
  ``python -m data_tools.make_words_family DIR/ltcommands-folders DIR/ltwords`` (``--lt-commands SRC``
  builds both);

each family is expected at ``--data DIR/<family>`` (built there with ``--build`` when missing; the
digits family needs ``--fsdd``). Tagging recipes read ``DIR/<family>-folders`` (a folder per class:
``data_tools.make_folder_dataset`` of the layout, or for ``digits`` every FSDD recording with the
official split, ``make_digits_family --folder``). Audio-only families are skipped by the audio-visual
recipes.

Example (the table in experiments/RESULTS.md)::

    python -m experiments.bench_families --data /data/families --fsdd /data/fsdd --build \\
        --recipes avenet,avolnet,ezvsl,sop,ast_folder,panns_folder --seeds 0,1,2 --out runs/families

A finished run (its ``result.json``) is never redone, so the command resumes after a kill.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from avcorr._atomic import atomic_path, write_json

# recipe -> (config file, the test metrics reported, the baseline metrics beside them, needs folders)
RECIPES: dict[str, dict[str, Any]] = {
    "avenet": {"config": "avenet.py", "metrics": ["avc_acc", "ceiling/avc_acc", "a2v/ndcg@10", "v2a/ndcg@10",
                                                  "a2v/class_recall@1", "v2a/class_recall@1"],
               "retrieval": True},
    "avenet_pairs": {"config": "avenet.py", "metrics": ["avc_acc", "a2v/ndcg@10", "v2a/ndcg@10"],
                     "retrieval": True, "overrides": ["avc.loss=pairs"]},  # the paper's objective, same sizes
    "avolnet": {"config": "avolnet.py", "metrics": ["fixed/ciou@0.5", "center/fixed/ciou@0.5", "ciou@0.5",
                                                    "auc_ciou"]},
    "avolnet_paper": {"config": "avolnet_paper.py", "metrics": ["fixed/ciou@0.5", "center/fixed/ciou@0.5", "ciou@0.5",
                                                                "auc_ciou"]},
    "ezvsl": {"config": "ezvsl.py", "metrics": ["fixed/ciou@0.5", "center/fixed/ciou@0.5", "ciou@0.5", "auc_ciou"]},
    "sop": {"config": "sop.py", "metrics": ["nsdr", "sdr", "sir", "sar"]},
    "ast_folder": {"config": "ast_folder.py", "metrics": ["acc", "mAP"], "folders": True},
    "panns_folder": {"config": "panns_folder.py", "metrics": ["acc", "mAP"], "folders": True},
}
FAMILIES = ("embedded", "clutter", "wide", "digits", "ltcommands", "ltwords")
HELD_OUT = ("wide", "digits")  # never used to choose a hyperparameter
LT_COMMANDS_URL = "https://github.com/kolesov93/lt_speech_commands"
AUDIO_ONLY = ("ltcommands",)  # folders of recordings only: tagging recipes


def machine() -> str:
    """CPU model, usable cores and torch threads of this machine."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    return f"{model}, {cores} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, no GPU" \
        if not torch.cuda.is_available() else f"{model}, {cores} cores, {torch.cuda.get_device_name()}"


def family_root(data: Path, family: str, folders: bool, *, build: bool, fsdd: Path | None,
                lt_commands: Path | None = None) -> Path:
    """The dataset root of ``family`` (a folder per class when ``folders``), built when asked."""
    if family == "embedded" and not folders:
        from avcorr.data.synthetic import ensure_default_dataset

        return ensure_default_dataset(progress=False)
    root = data / (f"{family}-folders" if folders else family)
    if root.is_dir() and any(root.iterdir()):
        return root
    if not build:
        raise FileNotFoundError(f"{root}: missing; build it (see this module's docstring) or pass --build")
    if family in ("ltcommands", "ltwords") and lt_commands is None:
        raise FileNotFoundError(f"the {family} family needs --lt-commands (a copy of the Lithuanian Speech Commands)")
    if family == "ltcommands":
        src = lt_commands / "dataset" if (lt_commands / "dataset").is_dir() else lt_commands
        _run([sys.executable, "-m", "data_tools.make_speech_commands_folder", str(src), str(root), "--no-progress"])
    elif family == "ltwords" and not folders:
        words = family_root(data, "ltcommands", True, build=build, fsdd=fsdd, lt_commands=lt_commands)
        _run([sys.executable, "-m", "data_tools.make_words_family", str(words), str(root), "--no-progress",
              "--source-name", "Lithuanian Speech Commands", "--source-url", LT_COMMANDS_URL,
              "--source-licence", "none stated; the repository says it was created for academic research"])
    elif folders and family != "digits":
        layout = family_root(data, family, False, build=build, fsdd=fsdd, lt_commands=lt_commands)
        _run([sys.executable, "-m", "data_tools.make_folder_dataset", str(layout), str(root)])
    elif family == "digits":
        if fsdd is None:
            raise FileNotFoundError("the digits family needs --fsdd (a copy of the Free Spoken Digit Dataset)")
        extra = ["--folder"] if folders else []
        _run([sys.executable, "-m", "data_tools.make_digits_family", str(fsdd), str(root), *extra])
    else:
        _run([sys.executable, "-m", "data_tools.make_synthetic_family", family, str(root)])
    return root


def _run(cmd: list[str], log: Path | None = None) -> float:
    t0 = time.time()
    if log is None:
        subprocess.run(cmd, check=True)
    else:
        with open(log, "w") as f:
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
    return time.time() - t0


def run_one(recipe: str, family: str, seed: int, root: Path, out: Path, extra: Sequence[str]) -> dict[str, Any]:
    """Train and evaluate one (recipe, family, seed); returns (and stores) its result."""
    spec = RECIPES[recipe]
    run = out / recipe / family / f"seed{seed}"
    result_file = run / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    run.mkdir(parents=True, exist_ok=True)
    overrides = [f"data.root={root}", f"train.seed={seed}", f"train.out_dir={run}", *spec.get("overrides", []),
                 *extra]
    train_s = _run([sys.executable, "-m", "avcorr.train", "--config", spec["config"], "--no-progress", *overrides],
                   log=run / "stdout.txt")
    cmd = [sys.executable, "-m", "avcorr.evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt"),
           "--split", "test", "--no-progress"]
    if spec.get("retrieval"):
        cmd.append("--retrieval")
    _run(cmd, log=run / "eval_stdout.txt")
    test = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    result = {"recipe": recipe, "family": family, "seed": seed, "held_out": family in HELD_OUT,
              "train_seconds": round(train_s, 1), "test": test,
              "val_curve": [r for r in rows if r["split"] == "val"], "overrides": overrides}
    write_json(result_file, result, indent=1)
    return result


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{m:.3f} ± {s:.3f}"


def table(results: list[dict[str, Any]]) -> str:
    """A markdown table: one row per (recipe, metric), one column per family; mean ± std over seeds."""
    families = [f for f in FAMILIES if any(r["family"] == f for r in results)]
    head = "| recipe | metric | " + " | ".join(f + (" (held out)" if f in HELD_OUT else "") for f in families) + " |"
    lines = [head, "|" + "---|" * (len(families) + 2)]
    for recipe, spec in RECIPES.items():
        mine = [r for r in results if r["recipe"] == recipe]
        if not mine:
            continue
        for metric in spec["metrics"] + ["train_minutes"]:
            cells = []
            for f in families:
                rs = [r for r in mine if r["family"] == f]
                vals = [r["train_seconds"] / 60 if metric == "train_minutes" else r["test"].get(metric) for r in rs]
                cells.append(f"{_mean_std(vals)} (n={len(rs)})" if rs else "")
            lines.append(f"| {recipe} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(results: list[dict[str, Any]], path: Path) -> None:
    """Validation learning curves: a panel per (recipe, family), a line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = [r for r in RECIPES if any(x["recipe"] == r for x in results)]
    families = [f for f in FAMILIES if any(x["family"] == f for x in results)]
    fig, axes = plt.subplots(len(recipes), len(families), figsize=(3.2 * len(families), 2.4 * len(recipes)),
                             squeeze=False)
    for i, recipe in enumerate(recipes):
        for j, fam in enumerate(families):
            ax = axes[i][j]
            for r in results:
                if r["recipe"] == recipe and r["family"] == fam and r["val_curve"]:
                    metric = next((m for m in ("avc_acc", "auc_ciou", "nsdr", "acc") if m in r["val_curve"][0]), "loss")
                    ax.plot([p["epoch"] for p in r["val_curve"]], [p.get(metric) for p in r["val_curve"]],
                            marker=".", label=f"seed {r['seed']}")
                    ax.set_ylabel(f"val {metric}", fontsize=8)
            ax.set_title(f"{recipe} / {fam}" + (" (held out)" if fam in HELD_OUT else ""), fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench_families", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding (or receiving, with --build) the families")
    p.add_argument("--fsdd", type=Path, default=None, help="a copy of the Free Spoken Digit Dataset (digits family)")
    p.add_argument("--lt-commands", type=Path, default=None,
                   help=f"a copy of {LT_COMMANDS_URL} (ltcommands and ltwords families)")
    p.add_argument("--build", action="store_true", help="build missing families")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--recipes", default="avenet,avolnet,ezvsl,sop,ast_folder,panns_folder")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, default=Path("runs/families"))
    p.add_argument("--summary-only", action="store_true", help="only rebuild the table and curves from finished runs")
    p.add_argument("extra", nargs="*", help="key=value overrides for every run (e.g. train.epochs=2 for a smoke test)")
    args = p.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    recipes = [r for r in args.recipes.split(",") if r]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    for name in recipes:
        if name not in RECIPES:
            p.error(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    for name in families:
        if name not in FAMILIES:
            p.error(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if not args.summary_only:
        print(f"machine: {machine()}", flush=True)
        for recipe in recipes:
            for fam in families:
                if fam in AUDIO_ONLY and not RECIPES[recipe].get("folders"):
                    continue
                root = family_root(args.data, fam, bool(RECIPES[recipe].get("folders")), build=args.build,
                                   fsdd=args.fsdd, lt_commands=args.lt_commands)
                for seed in seeds:
                    r = run_one(recipe, fam, seed, root, args.out, args.extra)
                    shown = ", ".join(f"{m} {r['test'].get(m)}" for m in RECIPES[recipe]["metrics"])
                    print(f"{recipe} {fam} seed {seed}: {shown} ({r['train_seconds'] / 60:.1f} min)", flush=True)
    results = [json.loads(f.read_text()) for f in sorted(args.out.glob("*/*/seed*/result.json"))]
    results = [r for r in results if r["recipe"] in recipes and r["family"] in families]
    text = table(results)
    (args.out / "table.md").write_text(f"machine: {machine()}\n\n{text}\n")
    print(text)
    if results:
        curves(results, args.out / "curves.png")
        print(f"wrote {args.out / 'table.md'} and {args.out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
