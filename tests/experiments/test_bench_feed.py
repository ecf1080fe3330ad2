"""Smoke runs of experiments/bench_feed.py on the tiny dataset: every path and worker count of each task is measured
and printed, each beside its ratio to the per-sample path of the same run."""

from __future__ import annotations

import math
import re

import pytest

from experiments import bench_feed
from tests.commands.test_report import TINY_LOC, TINY_SOP
from tests.conftest import TINY_AVC


def _table(out: str, unit: str) -> list[list[str]]:
    """The rows of the printed table: ``[path, workers, rate, per process, ratio]``."""
    header = re.search(rf"^path +workers +{unit}/s +per process +vs per-sample$", out, re.M)
    assert header, out
    rows = out[header.end():].strip("\n").split("\n\n")[0].splitlines()
    return [re.split(r" {2,}", r.strip()) for r in rows if not r.startswith("(")]


def test_quick_run_measures_every_path_and_worker_count(tiny_root, capsys):
    overrides = [o for o in TINY_AVC if o.split("=")[0].split(".")[0] in ("model", "data")]
    overrides.append("train.batch_size=4")
    best = bench_feed.main(["--root", str(tiny_root), "--quick", "--workers", "0,1", *overrides])
    assert set(best) == {"raw", "finish", "files/0", "files/1", "shards/0", "shards/1", "shards_dev/0", "shards_dev/1",
                         "shards_dev_f32/0", "shards_dev_f32/1"}
    assert all(math.isfinite(v) and v > 0 for v in best.values())
    out = capsys.readouterr().out
    assert "load average" in out and "12 clips" in out
    assert out.count("per-sample AVCPairDataset") == 2 and out.count("shards AVCShardStream") == 2
    assert out.count("uint8 frames, int16 audio (device)") == 3  # 2 rows and its ratio line
    assert out.count("uint8 frames, float32 audio (device)") == 2
    int16 = out.split("\nint16 / float32 audio (device transforms; the audio travels as int16): ")[1]
    assert int16.startswith(f"0 workers {best['shards_dev/0'] / best['shards_dev_f32/0']:.2f}x")
    ratios = out.split("\nshards / per-sample:")[1]
    assert f"0 workers {best['shards/0'] / best['files/0']:.2f}x" in ratios
    assert f"1 worker {best['shards/1'] / best['files/1']:.2f}x" in ratios


@pytest.mark.parametrize("task, overrides, unit, datasets", [
    ("localization", TINY_LOC, "pairs", ("AVCPairDataset", "AVCShardStream")),
    ("sop", [*TINY_SOP, "train.batch_size=4"], "mixtures", ("SeparationDataset", "SeparationShardStream")),
])
def test_quick_run_of_the_localization_and_sop_feeds(task, overrides, unit, datasets, tiny_root, capsys):
    best = bench_feed.main(["--task", task, "--root", str(tiny_root), "--quick", "--workers", "0,1", *overrides])
    paths = ("files", "files_dev", "shards", "shards_dev")
    assert set(best) == {"finish"} | {f"{p}/{w}" for p in paths for w in (0, 1)}
    assert all(math.isfinite(v) and v > 0 for v in best.values())
    out = capsys.readouterr().out
    assert f"[{task}] machine:" in out and "load average" in out
    assert "12 clips" in out and f"2 {unit} per clip (24 an epoch)" in out  # --quick: 2 items a clip
    rows = _table(out, unit)
    assert len(rows) == 2 * len(paths) + 1 and all(len(r) == 5 for r in rows)
    names = [r[0] for r in rows]
    assert names.count(f"per-sample {datasets[0]} + DataLoader") == 2
    assert names.count(f"shards {datasets[1]} + DataLoader") == 2
    assert names.count("per-sample, uint8 frames, float32 audio (device)") == 2
    assert names.count("shards, uint8 frames, int16 audio (device)") == 2  # the tiny shards store int16
    assert [r[1] for r in rows] == ["0"] * 4 + ["1"] * 4 + ["-"]
    for name, workers, rate, per_process, ratio in rows:
        assert float(rate) > 0 and float(per_process) > 0 and float(ratio.rstrip("x")) > 0
    files0 = [r for r in rows if r[1] == "0"][0]
    assert files0[4] == "1.00x"  # the per-sample path is its own reference
    ratios = out.split("\nshards / per-sample: ")[1].splitlines()[0]
    assert ratios == ", ".join(f"{w} worker{'s' * (w != 1)} {best[f'shards/{w}'] / best[f'files/{w}']:.2f}x" for w in (0, 1))
    dev = out.split("\nshards, uint8 frames, int16 audio (device) / per-sample: ")[1].splitlines()[0]
    assert dev.startswith(f"0 workers {best['shards_dev/0'] / best['files/0']:.2f}x")


def test_all_runs_each_task_and_prefixes_its_figures(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(bench_feed, "bench_task",
                        lambda name, args: ran.append((name, args.config)) or {"files/1": 1.0})
    assert bench_feed.main(["--task", "all", "--workers", "1,2"]) == {
        "avc/files/1": 1.0, "localization/files/1": 1.0, "sop/files/1": 1.0}
    assert ran == [("avc", ""), ("localization", ""), ("sop", "")]  # each task's own quickstart
    for extra in (["--config", "ezvsl.py"], ["--shards", "out"]):
        with pytest.raises(SystemExit, match="name one task"):
            bench_feed.main(["--task", "all", *extra])


def test_a_config_of_another_task_is_refused(tiny_root):
    with pytest.raises(SystemExit, match="task 'avc'; --task sop measures the separation task"):
        bench_feed.main(["--task", "sop", "--config", "avenet.py", "--root", str(tiny_root), "--quick"])
