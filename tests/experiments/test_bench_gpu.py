"""experiments/bench_gpu.py: skips cleanly without CUDA; on the CPU (its smoke mode) both models train from shards
and report positive rates, a busy fraction in (0, 1] and the compute-only rate."""

from __future__ import annotations

import math

import pytest
import torch

from avcorr.data.shard_writer import ShardOptions
from data_tools.make_shards import make_shards
from experiments import bench_gpu
from tests.commands.test_report import TINY_LOC
from tests.conftest import TINY_AVC

STEPS = ["--device", "cpu", "--batch", "4", "--workers", "0", "--steps", "2", "--warmup", "1"]


def _data_only(overrides):
    return [o for o in overrides if o.split("=")[0].split(".")[0] in ("model", "data") and "num_workers" not in o]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip is what a machine without CUDA does")
def test_skips_without_cuda(capsys, tmp_path):
    assert bench_gpu.main(["--shards", str(tmp_path)]) == {}
    assert "no CUDA device here: skipped" in capsys.readouterr().out


def test_both_models_train_from_shards_on_the_cpu(tiny_root, tmp_path, capsys):
    shards = tmp_path / "shards"
    make_shards(tiny_root, shards, splits=["train"], options=ShardOptions(frames_per_clip=2, size=40, sample_rate=16000))
    for name, overrides in (("avenet", TINY_AVC), ("avolnet", TINY_LOC)):
        got = bench_gpu.main(["--shards", str(shards), "--models", name, *STEPS, *_data_only(overrides)])
        r = got[name]
        assert r["samples_per_s"] > 0 and r["compute_samples_per_s"] > 0 and math.isnan(r["peak_gib"])
        assert 0 < r["busy"] <= 1.0
        out = capsys.readouterr().out
        assert out.splitlines()[-1].startswith(name) and "busy" in out
    with pytest.raises(SystemExit, match="unknown model"):
        bench_gpu.main(["--shards", str(shards), "--models", "l3net", *STEPS])
