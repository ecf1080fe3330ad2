"""Smoke run of experiments/bench_feed.py on the tiny dataset: every path and worker count is measured and printed."""

from __future__ import annotations

import math

from experiments import bench_feed
from tests.conftest import TINY_AVC


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
