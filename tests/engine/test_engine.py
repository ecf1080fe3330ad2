import math

import pytest
import torch
from torch import nn

from avcorr.config import OptimConfig
from avcorr.engine.checkpoint import load_checkpoint, save_checkpoint
from avcorr.engine.distributed import resolve_device
from avcorr.engine.optim import build_optimizer, build_scheduler


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision = nn.Linear(2, 2)
        self.vision_head = nn.Linear(2, 2)
        self.audio = nn.Linear(2, 2)


def test_lr_mult_groups_longest_prefix_wins():
    cfg = OptimConfig(name="sgd", lr=0.1, lr_mult={"vision": 0.5, "vision_head": 2.0})
    opt = build_optimizer(_Net(), cfg)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([0.05, 0.1, 0.2])
    sizes = {round(g["lr"], 6): len(g["params"]) for g in opt.param_groups}
    assert sizes == {0.05: 2, 0.1: 2, 0.2: 2}


def test_unknown_optimizer_and_schedule():
    with pytest.raises(ValueError, match="optim.name"):
        build_optimizer(_Net(), OptimConfig(name="lion"))
    opt = build_optimizer(_Net(), OptimConfig())
    with pytest.raises(ValueError, match="optim.schedule"):
        build_scheduler(opt, OptimConfig(schedule="poly"), 10, 2)


def _lrs(cfg, steps_per_epoch, epochs, max_steps=0):
    opt = build_optimizer(_Net(), cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch, epochs, max_steps)
    out = []
    for _ in range(min(steps_per_epoch * epochs, max_steps or steps_per_epoch * epochs)):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_to_zero():
    lrs = _lrs(OptimConfig(name="sgd", lr=1.0, schedule="cosine", warmup_steps=4), 10, 2)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay after warm-up
    assert lrs[-1] < 0.02
    mid = 4 + (20 - 4) // 2
    assert lrs[mid] == pytest.approx(0.5 * (1 + math.cos(math.pi * (mid - 4) / 16)))


def test_cosine_ends_at_max_steps_when_that_comes_first():
    lrs = _lrs(OptimConfig(name="sgd", lr=1.0, schedule="cosine", warmup_steps=2), 10, 100, max_steps=30)
    assert len(lrs) == 30
    assert lrs[-1] < 0.01  # reached the end of its cosine at step 30, not at step 1000
    assert lrs[16] == pytest.approx(0.5 * (1 + math.cos(math.pi * 14 / 28)))
    longer = _lrs(OptimConfig(name="sgd", lr=1.0, schedule="cosine", warmup_steps=2), 10, 2, max_steps=30)
    assert len(longer) == 20 and longer[-1] < 0.02  # epochs come first: max_steps changes nothing


def test_step_schedule_by_epoch():
    lrs = _lrs(OptimConfig(name="sgd", lr=1.0, schedule="step", step_epochs=[1, 2], step_gamma=0.1), 5, 3)
    assert lrs[0] == pytest.approx(1.0) and lrs[5] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.01)


def test_checkpoint_atomic_and_validated(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {"name": "x"}, "epoch": 3}, path)
    assert not list(path.parent.glob(".*tmp*"))  # no temporary file left behind
    assert load_checkpoint(path)["epoch"] == 3
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an avcorr training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "torn.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="torn.pt"):
        load_checkpoint(tmp_path / "torn.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


class _Pickled:
    """Stands for any Python object a foreign checkpoint may hold."""


def test_refused_checkpoint_says_what_it_is_not_how_to_unpickle(tmp_path):
    from avcorr.models._registry import load_checkpoint_state

    torch.save({"model": {"w": torch.ones(1)}, "config": {}, "trainer": _Pickled()}, tmp_path / "objects.pt")
    for load in (load_checkpoint, load_checkpoint_state):
        with pytest.raises(ValueError) as e:
            load(tmp_path / "objects.pt")
        msg = str(e.value)
        assert "objects.pt" in msg and "_Pickled" in msg and "will not unpickle" in msg
        assert "weights_only" not in msg and "add_safe_globals" not in msg
    import pickle

    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(ValueError, match="not a file of tensors written by torch.save"):
        load_checkpoint(tmp_path / "plain.pkl")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty, truncated or not a torch file"):
        load_checkpoint(tmp_path / "empty.pt")


def test_stale_temporaries_removed_only_when_their_writer_is_gone(tmp_path):
    import os

    from avcorr.engine.checkpoint import remove_stale_temporaries

    dead, live = tmp_path / ".last.pt.tmp999999999", tmp_path / f".last.pt.tmp{os.getppid()}"
    other = tmp_path / "notes.tmp999999999"
    for p in (dead, live, other):
        p.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert live.exists() and other.exists() and remove_stale_temporaries(tmp_path / "missing") == []


def test_a_step_budget_without_an_epoch_limit(tiny_root, tmp_path):
    """train.epochs=0 + train.max_steps: train exactly that many steps, validate at the end, cosine ends at 0."""
    import json

    from avcorr import train
    from tests.conftest import TINY_AVC

    run = tmp_path / "run"
    args = ["--config", "avenet.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}", *TINY_AVC,
            "train.epochs=0", "train.max_steps=9", "optim.schedule=cosine"]
    assert train.main(args) == 0  # 6 steps an epoch on the tiny set: the budget ends inside epoch 2
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["split"], r["epoch"], r["step"]) for r in rows] == [("train", 1, 6), ("val", 1, 6), ("train", 2, 9),
                                                                   ("val", 2, 9)]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (2, 9)
    assert ckpt["scheduler"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)  # the cosine ended with the budget
    log = (run / "train.log").read_text()
    assert "2 epochs, 9/9 steps" in log
