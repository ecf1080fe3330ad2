"""Interrupt and resume: a resumed run ends exactly where the uninterrupted one does; every skip is counted."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avcorr import train
from avcorr.engine.checkpoint import load_checkpoint
from avcorr.tasks.base import Task
from tests.conftest import TINY_AVC

REPO = Path(__file__).resolve().parents[2]
# 12 training clips x 2 pairs / batch 4 = 6 steps per epoch; 6 val clips x 2 pairs / batch 8 = 2 val batches,
# so Task.to_device is called 8 times per epoch: calls 1-6 train epoch 1, 7-8 validate it, 9-14 train epoch 2
STEPS, CALLS_PER_EPOCH = 6, 8


def _args(root, run, *extra):
    return ["--config", "avenet.py", "--no-progress", f"data.root={root}", f"train.out_dir={run}", *TINY_AVC,
            "train.epochs=3", *extra]


def _rows(run):
    """metrics.jsonl without the timing (the one thing an interruption may change)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]


def _assert_same_run(run, ref):
    got, want = load_checkpoint(run / "checkpoints" / "last.pt"), load_checkpoint(ref / "checkpoints" / "last.pt")
    assert got["epoch"] == want["epoch"] == 3 and got["step"] == want["step"] == 3 * STEPS
    assert got["model"].keys() == want["model"].keys()
    for k in want["model"]:
        assert torch.equal(got["model"][k], want["model"][k]), k
    assert got["metrics"] == want["metrics"] and got["best"] == want["best"]
    assert _rows(run) == _rows(ref)
    best, ref_best = load_checkpoint(run / "checkpoints" / "best.pt"), load_checkpoint(ref / "checkpoints" / "best.pt")
    assert best["epoch"] == ref_best["epoch"]
    assert all(torch.equal(best["model"][k], ref_best["model"][k]) for k in ref_best["model"])


@pytest.fixture(scope="module")
def reference(tiny_root, tmp_path_factory):
    """The uninterrupted 3-epoch run (no loader workers)."""
    run = tmp_path_factory.mktemp("ref") / "run"
    assert train.main(_args(tiny_root, run)) == 0
    return run


@pytest.mark.parametrize("stop_call, workers, where", [
    (CALLS_PER_EPOCH + 3, 0, "epoch 2, after 2 of 6 steps"),  # mid-epoch
    (CALLS_PER_EPOCH + 1, 0, "end of epoch 1"),  # at the epoch boundary
    (CALLS_PER_EPOCH * 2 - 1, 0, "epoch 2 trained, its validation not done"),  # during validation
    (CALLS_PER_EPOCH + 4, 2, "epoch 2, after 3 of 6 steps"),  # loader workers: items do not depend on them
])
def test_interrupted_and_resumed_equals_uninterrupted(tiny_root, tmp_path, monkeypatch, capsys, reference,
                                                      stop_call, workers, where):
    run = tmp_path / "run"
    args = _args(tiny_root, run, f"data.num_workers={workers}")
    calls = {"n": 0}
    real = Task.to_device

    def interrupt(batch, device, channels_last=False):
        calls["n"] += 1
        if calls["n"] == stop_call:
            raise KeyboardInterrupt
        return real(batch, device, channels_last)

    monkeypatch.setattr(Task, "to_device", staticmethod(interrupt))
    assert train.main(args) == 130
    err = capsys.readouterr().err
    assert f"({where})" in err and "--resume" in err
    monkeypatch.setattr(Task, "to_device", staticmethod(real))
    # a checkpoint write killed earlier left its temporary file behind; a live process's one is kept
    stale = run / "checkpoints" / ".last.pt.tmp999999999"
    stale.write_bytes(b"")
    live = run / "checkpoints" / f".best.pt.tmp{os.getppid()}"
    live.write_bytes(b"")
    assert train.main(args + ["--resume"]) == 0
    assert not stale.exists() and live.exists()
    live.unlink()
    _assert_same_run(run, reference)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_sigterm_saves_last_and_says_how_to_resume(tiny_root, tmp_path):
    """A real SIGTERM in the middle of training: last.pt is written, the exit code says so, the run resumes."""
    run = tmp_path / "run"
    args = _args(tiny_root, run, "train.epochs=50", "data.num_workers=1")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "avcorr.train", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (run / "metrics.jsonl").is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.5)  # inside epoch 2 by now, usually
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    line = [ln for ln in err.splitlines() if ln.startswith("error: interrupted by SIGTERM")]
    assert line and "last.pt" in line[0] and "--resume" in line[0], err[-3000:]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] >= 1 and last["step"] >= STEPS
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    # it resumes (to a short end) from where it stopped
    assert train.main(_args(tiny_root, run, f"train.epochs={last['epoch'] + 1}", "--resume")) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == (last["epoch"] + 1) * STEPS


def test_random_states_round_trip_through_a_checkpoint(tmp_path):
    import random

    import numpy as np

    from avcorr.engine._resume import rng_state, set_rng_state
    from avcorr.engine.checkpoint import save_checkpoint

    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    save_checkpoint({"model": {}, "config": {}, "rng": rng_state()}, tmp_path / "last.pt")
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)], np.random.randn())
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])  # weights_only holds it
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)], np.random.randn())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and first[3] == again[3]


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_every_skip_counted_whatever_the_worker_count(tiny_copy, tmp_path, workers):
    """With loader workers, the skips of the first batches they build used to be lost (5 of 6 reported)."""
    from tests.commands.test_train import _damage

    bad, vids = _damage(tiny_copy)
    text = tiny_copy / "train" / "video" / f"{vids[5]}.mp4"
    text.write_text("this is a text file, not a video\n")  # the case that went missing
    bad[vids[5]] = "text"
    run = tmp_path / "run"
    # positives only: every clip's own frame and audio are read in the epoch, so every damage is met
    assert train.main(_args(tiny_copy, run, "train.epochs=1", "avc.positive_fraction=1.0",
                            f"data.num_workers={workers}")) == 0
    log = (run / "train.log").read_text()
    assert {v for v in vids if f"skipped clip {v}" in log} == set(bad)
    row = [r for r in _rows(run) if r["split"] == "train"][-1]
    assert row["skipped_clips"] == len(bad) == 6


def test_stop_signals_wait_for_the_step_boundary():
    from avcorr.engine._resume import StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # the first: only a request
        assert stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            with stop.critical():
                os.kill(os.getpid(), signal.SIGINT)  # the second, inside a step: raised when the step ends
                done = True
        assert done
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # outside a step: at once
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before
