"""An evaluation shared by two DDP ranks (gloo, mp.spawn), from shards and from files: each rank reads a disjoint
share of the split, the shares cover it once, and the merged evaluators give the metrics of one process over the
same items."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from avcorr.data.avc import AVCPairDataset, collate_pairs
from avcorr.data.avc_stream import AVCShardStream
from avcorr.data.layout import load_split
from avcorr.data.localization import LocalizationDataset, collate_localization
from avcorr.data.localization_stream import LocalizationShardStream
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import read_manifest
from avcorr.engine.evaluation import evaluation_pass, share_evaluation
from avcorr.engine.protocol import Task
from avcorr.tasks.avc import AVCEvaluator
from avcorr.tasks.localization import LocalizationEvaluator
from data_tools import make_shards as ms

OPTS = dict(sample_rate=16000, seconds=1.0, image_size=32)


class _PairProbe(nn.Module):
    """A fixed stand-in for a correspondence model: logits from the audio's spread and the frame's brightness."""

    def forward(self, batch):
        a, v = batch["audio"].float().std(-1) * 4, batch["image"].float().mean((1, 2, 3))
        logits = torch.stack([v - a, a - v], -1)
        return {"loss": F.cross_entropy(logits, batch["label"]), "logits": logits}


class _MapProbe(nn.Module):
    """A fixed stand-in for a localizer: the frame's brightness, pooled to 8 x 8, as the map."""

    def forward(self, batch):
        maps = F.avg_pool2d(batch["image"].float().mean(1, keepdim=True), 4).squeeze(1)
        return {"loss": maps.mean(), "map": maps}


class _Task:
    """What evaluation_pass and share_evaluation ask of a task."""

    to_device = staticmethod(Task.to_device)

    def __init__(self, evaluator, collate):
        self.evaluator, self.collate_fn = evaluator, collate

    def new_evaluator(self):
        return self.evaluator()

    def device_transform(self, batch):
        return batch


def _datasets(folder: str) -> tuple:
    """The AVC and localization evaluation datasets of ``folder``: shard streams, or the files path's datasets
    when ``folder`` is ``ROOT/split`` of a dataset in the layout."""
    if Path(folder, "vid2genre.json").is_file():
        index = load_split(Path(folder).parent, Path(folder).name)
        return (AVCPairDataset(index, train=False, pairs_per_clip=2, seed=4, **OPTS),
                LocalizationDataset(index, **OPTS))
    return (AVCShardStream(folder, train=False, pairs_per_clip=2, seed=4, **OPTS),
            LocalizationShardStream(folder, **OPTS))


def _evaluate(folder: str, rank: int, world: int) -> dict:
    """AVC and localization metrics of the split at ``folder`` (this rank's share when ``world`` > 1, merged)."""
    pairs, frames = _datasets(folder)
    setups = {
        "avc": (pairs, _Task(AVCEvaluator, collate_pairs), _PairProbe()),
        "localization": (frames, _Task(LocalizationEvaluator, collate_localization), _MapProbe()),
    }
    out = {}
    for name, (dataset, task, module) in setups.items():
        dataset, shared = share_evaluation(dataset, task, rank, world)
        assert shared == (world > 1)
        batches = list(DataLoader(dataset, batch_size=4, collate_fn=task.collate_fn, num_workers=1))
        evaluator = evaluation_pass(module, batches, task, torch.device("cpu"), shared=world > 1)
        out[name] = {"vids": [v for b in batches for v in b["vid"]], "metrics": evaluator.compute()}
    return out


def _as_rank(rank: int, world: int, folder: str, store: str, out: str) -> None:
    torch.set_num_threads(1)
    # a file store: no TCP store server thread in rank 0 to outlive (a rare SIGABRT at exit under load)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        Path(out, f"rank{rank}.json").write_text(json.dumps(_evaluate(folder, rank, world)))
        dist.barrier()  # no rank leaves while another is still in a collective
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("storage", ["shards", "files"])
def test_two_gloo_ranks_share_an_evaluation_and_get_the_one_process_metrics(tiny_root, tmp_path, storage):
    if storage == "shards":  # 6 clips in 3 shards of 2: rank 0 reads two, rank 1 one (an uneven split)
        ms.shard_split(load_split(tiny_root, "val"), tmp_path,
                       ShardOptions(frames_per_clip=3, size=48, sample_rate=16000), clips_per_shard=2)
        folder = str(tmp_path / "val")
        vids = sorted(v for e in read_manifest(folder)["shards"] for v in e["clips"])
        counts = (4, 2)  # clips a rank reads
    else:  # items 0, 2, 4... to rank 0, 1, 3, 5... to rank 1 (a pair's clip is its index // 2)
        folder = str(tiny_root / "val")
        vids = sorted(c.vid for c in load_split(tiny_root, "val").clips)
        counts = (3, 3)
    single = _evaluate(folder, 0, 1)
    out = tmp_path / "ranks"
    out.mkdir()
    mp.spawn(_as_rank, args=(2, folder, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for name, per_clip in (("avc", 2), ("localization", 1)):
        shares = [set(r[name]["vids"]) for r in ranks]
        if storage == "files" and name == "avc":  # each clip's two pairs go one to each rank
            assert len(ranks[0][name]["vids"]) == len(ranks[1][name]["vids"]) == 6
            assert sorted(ranks[0][name]["vids"] + ranks[1][name]["vids"]) == sorted(single[name]["vids"])
            assert sorted(shares[0]) == sorted(shares[1]) == vids
            ours, theirs = ranks[0][name]["metrics"], single[name]["metrics"]
            assert ranks[1][name]["metrics"] == ours and ours["num_pairs"] == theirs["num_pairs"] == 12
            assert ours["avc_acc"] == theirs["avc_acc"] and ours["ceiling/avc_acc"] == theirs["ceiling/avc_acc"]
            continue
        assert len(ranks[0][name]["vids"]) == counts[0] * per_clip and len(ranks[1][name]["vids"]) == counts[1] * per_clip
        assert not shares[0] & shares[1] and sorted(shares[0] | shares[1]) == vids  # disjoint, the split once
        ours, theirs = ranks[0][name]["metrics"], single[name]["metrics"]
        assert ranks[1][name]["metrics"] == ours  # every rank gets the merged metrics
        assert set(ours) == set(theirs)
        for key, value in theirs.items():
            if isinstance(value, int) or key in ("avc_acc", "baseline/avc_acc", "ceiling/avc_acc"):
                assert ours[key] == value, key  # counts and proportions of the same items: exact
            else:  # float32 batch losses of other batches, float64 sums in another order
                assert math.isclose(ours[key], value, rel_tol=1e-6, abs_tol=1e-9) or (
                    math.isnan(ours[key]) and math.isnan(value)), key
    assert single["avc"]["metrics"]["num_pairs"] == 12 and single["localization"]["metrics"]["num_boxed"] == 6
    assert "ciou@0.5" in single["localization"]["metrics"]
