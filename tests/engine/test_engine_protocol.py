"""The engine's contract (avcorr/engine/protocol.py): the trainer trains a task it has never heard of,
and reads no task's keys."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from avcorr._atomic import write_text
from avcorr.config import Config
from avcorr.engine.checkpoint import load_checkpoint
from avcorr.engine.protocol import Evaluator, Task
from avcorr.engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]

# Keys that belong to avcorr's task families (their batches, module outputs and metrics).
TASK_KEYS = ("label", "labels", "logits", "avc_acc", "acc", "mAP", "target", "image", "audio", "audios", "wave",
             "embeddings", "frames", "vid", "audio_vid", "boxes", "map", "masks", "pos_logit", "neg_logit",
             "num_pairs", "num_clips", "ciou@0.5", "sdr", "nsdr")
TASK_KEY = re.compile(r"""["'](%s)["']""" % "|".join(re.escape(k) for k in TASK_KEYS))


def _task_keys(text: str) -> list[str]:
    return [f"{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in TASK_KEY.finditer(text)]


def test_the_engine_reads_no_task_keys():
    """No quoted key of a task family anywhere in avcorr/engine/ (code, comments and docstrings)."""
    files = sorted((REPO / "avcorr" / "engine").rglob("*.py"))
    assert any(p.name == "trainer.py" for p in files)
    found = [f"{p.relative_to(REPO)}:{hit}" for p in files for hit in _task_keys(p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_key_check_catches_a_task_key():
    assert _task_keys('x = 1\nb = batch["label"].shape[0]\n') == ['2: "label"']
    assert _task_keys("name = 'avc_acc' if main else 'acc'") == ["1: 'avc_acc'", "1: 'acc'"]
    assert _task_keys('out["loss"], batch.get("skipped")') == []


# -- a task the engine has never heard of: y = w . x + b regression ------------------------------

W, B = torch.tensor([1.5, -2.0]), 0.25
BAD = {3, 10, 17, 18}  # items whose "decoding" fails: the collate drops them and reports them
# (4 of 24: the 3 training batches of 8 cannot all have the same size)


class _Points(Dataset):
    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 2, generator=g)
        self.y = self.x @ W + B
        self.offset = seed * 1000

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i in BAD:
            return {"bad": f"p{self.offset + i}"}
        return {"x": self.x[i], "y": self.y[i]}


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [it for it in items if "bad" not in it]
    return {"x": torch.stack([it["x"] for it in good]), "y": torch.stack([it["y"] for it in good]),
            "skipped": [(it["bad"], "cannot decode") for it in items if "bad" in it]}


class _Regression(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pred = self.model(batch["x"]).squeeze(-1)
        return {"loss": (pred - batch["y"]).pow(2).mean(), "pred": pred.detach()}


class _MSE(Evaluator):
    def __init__(self):
        self.residuals: list[torch.Tensor] = []

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        self.residuals.append(out["pred"] - batch["y"])

    def compute(self) -> dict[str, float]:
        r = torch.cat(self.residuals)
        return {"mse": float(r.pow(2).mean()), "points": int(r.numel())}

    def pictures(self) -> dict[str, Any]:
        return {"residuals": torch.cat(self.residuals).tolist()}


class ToyTask(Task):
    """Regression of a line; records what the trainer asked of it."""

    main_metric = "mse"
    collate_fn = staticmethod(_collate)

    def __init__(self):
        self.steps: list[tuple[float, int, float, float]] = []  # loss, batch size, close, judged
        self.pictures: list[tuple[Path, str]] = []

    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1)

    def wrap(self, model: nn.Module) -> nn.Module:
        return _Regression(model)

    def build_dataset(self, split: str, train: bool) -> Dataset:
        return _Points(24 if train else 20, seed={"fit": 1, "check": 2}[split])

    def new_evaluator(self) -> Evaluator:
        return _MSE()

    def batch_size(self, batch: dict[str, Any]) -> int:
        return batch["y"].shape[0]

    def train_metrics(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
        pred = out["pred"]
        close, judged = float(((pred - batch["y"]).abs() < 1.0).sum()), float(batch["y"].shape[0])
        self.steps.append((out["loss"].item(), self.batch_size(batch), close, judged))
        return {"within_1": (close, judged)}

    def write_pictures(self, pictures: dict[str, Any], out_dir: Path, split: str) -> list[Path]:
        self.pictures.append((out_dir, split))
        return [write_text(out_dir / f"residuals_{split}.json", json.dumps(pictures["residuals"]))]


def _config(tmp_path: Path) -> Config:
    cfg = Config(name="toy", task="toy")
    cfg.data.train_split, cfg.data.val_split, cfg.data.num_workers = "fit", "check", 0
    cfg.train.device, cfg.train.epochs, cfg.train.batch_size, cfg.train.eval_batch_size = "cpu", 2, 8, 7
    cfg.train.num_threads, cfg.train.out_dir = 1, str(tmp_path / "run")
    cfg.optim.name, cfg.optim.lr = "sgd", 0.05
    return cfg


def test_the_trainer_trains_a_task_it_has_never_heard_of(tmp_path):
    cfg, task = _config(tmp_path), ToyTask()
    run = tmp_path / "run"
    trainer = Trainer(cfg, task, run, progress=False)
    try:
        state = trainer.fit()
    finally:
        trainer.close()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    val_rows = [r for r in rows if r["split"] == "val"]
    assert [r["epoch"] for r in train_rows] == [1, 2] and [r["epoch"] for r in val_rows] == [1, 2]
    assert state.step == 6 and len(task.steps) == 6  # 24 points, batches of 8, two epochs

    # the epoch's loss is weighted by the task's batch sizes (bad points dropped: not all 8), its
    # training metric is the task's sums over counts, and the skipped points are counted
    for row, steps in zip(train_rows, (task.steps[:3], task.steps[3:])):
        sizes = [b for _, b, _, _ in steps]
        assert sum(sizes) == 24 - len(BAD) and len(set(sizes)) > 1
        assert row["loss"] == pytest.approx(sum(loss * b for loss, b, _, _ in steps) / sum(sizes))
        assert row["within_1"] == pytest.approx(sum(c for *_, c, _ in steps) / sum(j for *_, j in steps))
    assert train_rows[0]["skipped_clips"] == len(BAD)

    # validation: the evaluator's metrics, best.pt selected on the task's main metric (lower is better)
    assert all(r["points"] == 20 - len(BAD) for r in val_rows)
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"] == min(r["mse"] for r in val_rows)
    assert "at_chance" not in val_rows[0]  # the task has no baseline (Task.chance_test's default)

    # the last validation measured the weights saved in last.pt
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    model = nn.Linear(2, 1)
    model.load_state_dict(last["model"])
    data = _Points(20, seed=2)
    keep = [i for i in range(20) if i not in BAD]
    with torch.no_grad():
        mse = float((model(data.x[keep]).squeeze(-1) - data.y[keep]).pow(2).mean())
    assert val_rows[-1]["mse"] == pytest.approx(mse, rel=1e-5)

    # pictures: written by the task after each validation, into the run folder, named after the split
    assert task.pictures == [(run, "check"), (run, "check")]
    residuals = json.loads((run / "residuals_check.json").read_text())
    assert len(residuals) == 20 - len(BAD)
    assert sum(r * r for r in residuals) / len(residuals) == pytest.approx(val_rows[-1]["mse"], rel=1e-5)


def test_a_task_must_implement_the_contract():
    class Half(Task):
        def build_model(self) -> nn.Module:
            return nn.Linear(1, 1)

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_the_progress_saved_by_an_older_avcorr_resumes():
    """A mid-epoch last.pt written before the tasks reported their training metrics still loads."""
    from dataclasses import asdict

    from avcorr.engine.trainer import EpochProgress

    old = {"steps": 2, "positions": 16, "loss_sum": 3.0, "n": 16, "correct": 5, "n_judged": 16, "seconds": 1.5}
    p = EpochProgress.from_state(old)
    assert (p.steps, p.positions, p.loss_sum, p.n, p.seconds) == (2, 16, 3.0, 16, 1.5)
    assert p.sums == {} and p.counts == {}
    new = EpochProgress(steps=1, sums={"within_1": 3.0}, counts={"within_1": 8.0})
    assert EpochProgress.from_state(asdict(new)) == new


class _Scaled(ToyTask):
    """Ships x as int16 hundredths; its device hook turns them back into floats (the module cannot take ints)."""

    def __init__(self):
        super().__init__()
        self.finished = 0

    @staticmethod
    def _ints(items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = _collate(items)
        batch["x"] = (batch["x"] * 100).round().to(torch.int16)
        return batch

    collate_fn = _ints

    def device_transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        assert batch["x"].dtype == torch.int16 and batch["x"].device.type == "cpu"
        self.finished += 1
        return {**batch, "x": batch["x"].float() / 100}


def test_the_engine_finishes_every_batch_with_the_tasks_device_hook(tmp_path):
    cfg, task = _config(tmp_path), _Scaled()
    trainer = Trainer(cfg, task, tmp_path / "run", progress=False)
    try:
        state = trainer.fit()
    finally:
        trainer.close()
    assert state.step == 6 and len(task.steps) == 6
    assert task.finished == 6 + 2 * 3  # every training batch, and the 3 validation batches of each epoch
    assert Task.device_transform(task, {"x": 1}) == {"x": 1}  # the protocol's default: the batch unchanged
