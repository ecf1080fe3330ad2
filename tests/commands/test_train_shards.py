"""Training the AVC task from shards (data.storage=shards): a short run, a corrupt member, an exact resume."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avcorr import evaluate, train
from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import read_manifest
from avcorr.engine.checkpoint import load_checkpoint
from data_tools import make_shards as ms
from tests.conftest import TINY_AVC
from tests.data.test_avc_stream import _corrupt_member
from tests.data.test_shards_http import _free_port


@pytest.fixture(scope="module")
def shards(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("train_shards")
    for split in ("train", "val", "test"):
        ms.shard_split(load_split(tiny_root, split), out, ShardOptions(frames_per_clip=3, size=32, sample_rate=16000),
                       clips_per_shard=3)
    return out


def _args(root, run, *extra):
    return ["--config", "avenet.py", "--no-progress", f"data.root={root}", "data.storage=shards",
            f"train.out_dir={run}", *TINY_AVC, *extra]


def test_two_steps_from_shards_with_a_corrupt_member(shards, tmp_path):
    root = tmp_path / "shards"
    shutil.copytree(shards, root)
    bad = _corrupt_member(root / "val" / read_manifest(root / "val")["shards"][0]["name"], ".audio.npy")
    run = tmp_path / "run"
    assert train.main(_args(root, run, "train.epochs=1", "train.max_steps=2", "data.num_workers=2")) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["storage"] == "shards"
    assert (run / "checkpoints" / "best.pt").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert len(val) == 1 and val[0]["num_pairs"] == 2 * 5  # 6 val clips, one skipped, 2 pairs each
    assert bad in last["resume"]["skipped"] and "audio.npy: not a readable .npy" in last["resume"]["skipped"][bad]
    assert f"skipped clip {bad}" in (run / "train.log").read_text()
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "test", "--workers", "0",
                          "--no-progress"]) == 0
    assert json.loads((run / "checkpoints" / "eval_test.json").read_text())["num_pairs"] == 12


def test_resume_part_way_into_a_streamed_epoch_is_exact(shards, tmp_path, monkeypatch):
    from avcorr.tasks.base import Task

    straight = tmp_path / "straight"
    assert train.main(_args(shards, straight)) == 0
    run = tmp_path / "run"
    calls = {"n": 0}
    real = Task.to_device

    def interrupt_later(batch, device, channels_last=False):
        calls["n"] += 1
        if calls["n"] == 10:  # the second step of epoch 2 (6 steps per epoch, 2 validation batches)
            raise KeyboardInterrupt
        return real(batch, device, channels_last)

    monkeypatch.setattr(Task, "to_device", staticmethod(interrupt_later))
    assert train.main(_args(shards, run)) == 130
    assert load_checkpoint(run / "checkpoints" / "last.pt")["resume"]["progress"]["steps"] == 1
    monkeypatch.setattr(Task, "to_device", staticmethod(real))
    assert train.main(_args(shards, run) + ["--resume"]) == 0
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (straight, run))
    assert a["step"] == b["step"] == 12
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_shards_config_errors(tiny_root, tmp_path, capsys):
    assert train.main(_args(tiny_root, tmp_path / "run")) == 2
    assert "manifest.json: missing" in capsys.readouterr().err
    assert train.main(["--config", "panns_folder.py", "--no-progress", f"data.root={tiny_root}",
                       "data.storage=shards"]) == 2
    assert "implemented for the tasks avc, localization, separation; task 'tagging'" in capsys.readouterr().err


def test_localization_trains_from_shards_and_evaluates(shards, tmp_path):
    from tests.commands.test_localize import TINY_LOC

    run = tmp_path / "loc"
    assert train.main(["--config", "avolnet.py", "--no-progress", f"data.root={shards}", "data.storage=shards",
                       f"train.out_dir={run}", *TINY_LOC, "model.name=test_avolnet", "train.max_steps=2"]) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["storage"] == "shards"
    (val,) = [r for r in (json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "val"]
    assert val["num_clips"] == val["num_boxed"] == 6 and "fixed/auc_ciou" in val  # boxes read from the shards
    assert last["best"] == val["fixed/auc_ciou"]  # selected on the boxes the validation shards hold
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "test", "--workers", "0",
                          "--no-progress"]) == 0
    result = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert result["num_clips"] == result["num_boxed"] == 6 and 0.0 <= result["fixed/auc_ciou"] <= 1.0


def test_separation_trains_from_shards_and_evaluates(shards, tmp_path):
    from tests.tasks.test_sop import TINY_SOP

    run = tmp_path / "sop"
    assert train.main(["--config", "sop.py", "--no-progress", f"data.root={shards}", "data.storage=shards",
                       f"train.out_dir={run}", *TINY_SOP, "data.audio.sample_rate=16000", "train.max_steps=2",
                       "data.num_workers=2"]) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["storage"] == "shards"
    val = [r for r in (json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "val"]
    assert val and val[-1]["num_mixtures"] == 6 and all(np.isfinite(val[-1][k]) for k in ("sdr", "nsdr"))
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "test", "--workers", "0",
                          "--no-progress"]) == 0
    result = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert result["num_mixtures"] == 6 and np.isfinite(result["nsdr"])


def _train_as_rank(rank: int, world: int, args: list[str], port: int, out: str) -> None:
    from avcorr.engine import trainer

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    real = trainer.evaluation_pass

    def spy(module, loader, *rest, **kwargs):  # the clips this rank validates
        batches = list(loader)
        (Path(out) / f"val{rank}.json").write_text(json.dumps([v for b in batches for v in b["vid"]]))
        return real(module, batches, *rest, **kwargs)

    trainer.evaluation_pass = spy
    if train.main(args) != 0:
        raise SystemExit(f"rank {rank}: training failed")


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("storage", ["shards", "files"])
def test_two_ranks_share_the_validation_and_log_the_one_process_metrics(shards, tiny_root, tmp_path, storage):
    import torch.multiprocessing as mp

    run = tmp_path / "run"
    args = _args(shards, run, "train.epochs=1", "train.max_steps=1", "train.num_threads=1")
    if storage == "files":
        args = [a for a in args if not a.startswith(("data.root=", "data.storage="))] + [f"data.root={tiny_root}"]
    mp.spawn(_train_as_rank, args=(2, args, _free_port(), str(tmp_path)), nprocs=2, join=True)
    seen = [json.loads((tmp_path / f"val{r}.json").read_text()) for r in range(2)]
    if storage == "shards":  # whole shards to each rank
        shares = [set(v) for v in seen]
        assert all(shares) and not shares[0] & shares[1]
        assert sorted(shares[0] | shares[1]) == sorted(v for e in read_manifest(shards / "val")["shards"]
                                                       for v in e["clips"])
    else:  # pairs 0, 2, 4... to rank 0, the others to rank 1: each of the 6 clips' 2 pairs once
        assert len(seen[0]) == len(seen[1]) == 6
        assert sorted(seen[0] + seen[1]) == sorted(2 * [c.vid for c in load_split(tiny_root, "val").clips])
    (val,) = [r for r in (json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "val"]
    # each rank validated one of the 2 val shards with rank 0's model (its BatchNorm statistics copied to rank 1);
    # the merged metrics are one process's over the whole split
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "val", "--workers", "0",
                          "--no-progress"]) == 0
    single = json.loads((run / "checkpoints" / "eval_val.json").read_text())
    assert val["num_pairs"] == single["num_pairs"] == 12
    assert val["avc_acc"] == single["avc_acc"] and val["baseline/avc_acc"] == single["baseline/avc_acc"]
    assert math.isclose(val["loss"], single["loss"], rel_tol=1e-6)  # float32 losses of other batches
