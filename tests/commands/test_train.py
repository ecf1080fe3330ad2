"""End-to-end: train / resume / evaluate / Ctrl-C / DDP / bad clips on the tiny synthetic dataset."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avcorr import evaluate, train
from avcorr.engine.checkpoint import load_checkpoint
from tests.conftest import TINY_AVC
from tests.media import make_nan_wav, make_truncated, make_video, make_wav

REPO = Path(__file__).resolve().parents[2]


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_resume_evaluate(tiny_root, tmp_path):
    run = tmp_path / "run"
    args = ["--config", "avenet.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}", *TINY_AVC]
    assert train.main(args) == 0
    for name in ("config.json", "train.log", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"tensors": 0, "scalars": 0}).Reload()
    scalars, tensors = events.Tags()["scalars"], events.Tags()["tensors"]
    assert "val/avc_acc" in scalars and "train/loss" in scalars
    assert "val/num_pairs" not in scalars and "val/num_pairs" not in tensors  # a counter is not a curve...
    assert "val/counters/text_summary" in tensors  # ...but a table of numbers
    assert "hparam/best_avc_acc" in scalars  # the HParams tab: config settings beside the best value
    report = (run / "report.html").read_text()  # written at the end of training
    assert "Learning curves" in report and "avc_acc" in report
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["root"] == str(tiny_root) and cfg["model"]["name"] == "test_avenet"
    rows = _rows(run)
    val = [r for r in rows if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    assert all(0.0 <= r["avc_acc"] <= 1.0 and "step" in r for r in val)
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and last["config"]["train"]["epochs"] == 2
    steps_per_epoch = last["step"] // 2
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"] == max(r["avc_acc"] for r in val)

    # resume: two more epochs continue from last.pt (step count carries on, epochs 3-4 appended)
    assert train.main(args[:-1] + ["train.epochs=4", "--resume"]) == 0
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2, 3, 4]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 4 and last["step"] == 4 * steps_per_epoch

    # evaluate needs only the checkpoint
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "test",
                          "--workers", "0", "--no-progress"]) == 0
    result = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert result["split"] == "test" and 0.0 <= result["avc_acc"] <= 1.0 and result["num_pairs"] == 12


def test_checkpoint_loads_weights_only(tiny_root, tmp_path):
    run = tmp_path / "run"
    assert train.main(["--config", "l3net.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}",
                       *TINY_AVC, "model.name=test_l3net", "train.epochs=1"]) == 0
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert state["config"]["model"]["name"] == "test_l3net"


def test_bad_override_exits_with_message(capsys):
    assert train.main(["--config", "avenet.py", "train.epoch=3"]) == 2
    assert "unknown config key 'train.epoch'" in capsys.readouterr().err


def test_ctrl_c_saves_last_and_resumes(tiny_root, tmp_path, monkeypatch):
    from avcorr.tasks.base import Task

    run = tmp_path / "run"
    args = ["--config", "avenet.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}", *TINY_AVC]
    calls = {"n": 0}
    real = Task.to_device

    def interrupt_later(batch, device, channels_last=False):
        calls["n"] += 1
        if calls["n"] == 9:  # inside epoch 2 (6 steps per epoch, plus the validation batches)
            raise KeyboardInterrupt
        return real(batch, device, channels_last)

    monkeypatch.setattr(Task, "to_device", staticmethod(interrupt_later))
    assert train.main(args) == 130
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 1 and last["step"] > 0
    monkeypatch.setattr(Task, "to_device", staticmethod(real))
    assert train.main(args + ["--resume"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2


def _damage(root):
    """Break several training clips in every way the design lists; return their ids and reasons."""
    split = root / "train"
    v2g = json.loads((split / "vid2genre.json").read_text())
    vids = sorted(v2g)
    bad = {}
    # truncated mp4 (and no wav, so the audio must come from the broken file too)
    make_truncated(split / "video" / f"{vids[0]}.mp4", split / "video" / f"{vids[0]}.tmp", 0.05)
    os.replace(split / "video" / f"{vids[0]}.tmp", split / "video" / f"{vids[0]}.mp4")
    (split / "audio" / f"{vids[0]}.wav").unlink()
    bad[vids[0]] = "truncated"
    # mp4 without audio track and no wav
    make_video(split / "video" / f"{vids[1]}.mp4", duration=2.0, fps=8, size=(48, 48), audio_sr=None)
    (split / "audio" / f"{vids[1]}.wav").unlink()
    bad[vids[1]] = "no audio"
    # zero-length wav
    (split / "audio" / f"{vids[2]}.wav").write_bytes(b"")
    bad[vids[2]] = "empty"
    # NaN audio
    make_nan_wav(split / "audio" / f"{vids[3]}.wav", sr=16000, duration=2.0)
    bad[vids[3]] = "nan"
    # unreadable frames: garbage instead of an mp4
    (split / "video" / f"{vids[4]}.mp4").write_bytes(b"\x00not a video" * 50)
    bad[vids[4]] = "garbage"
    return bad, vids


def test_bad_clips_are_skipped_logged_and_counted(tiny_copy, tmp_path):
    bad, vids = _damage(tiny_copy)
    run = tmp_path / "run"
    assert train.main(["--config", "avenet.py", "--no-progress", f"data.root={tiny_copy}", f"train.out_dir={run}",
                       *TINY_AVC, "train.epochs=3", "avc.train_pairs_per_clip=4"]) == 0
    log = (run / "train.log").read_text()
    for vid in bad:
        assert f"skipped clip {vid}" in log, vid
    rows = [r for r in _rows(run) if r["split"] == "train"]
    assert rows[-1]["skipped_clips"] == len(bad)
    good = [v for v in vids if v not in bad]
    assert good and all(f"skipped clip {v}" not in log for v in good)


def test_all_bad_stops_with_clear_error(tiny_copy, tmp_path):
    for wav in (tiny_copy / "train" / "audio").glob("*.wav"):
        wav.write_bytes(b"")
    for mp4 in (tiny_copy / "train" / "video").glob("*.mp4"):
        make_truncated(mp4, mp4.with_suffix(".tmp"), 0.02)
        os.replace(mp4.with_suffix(".tmp"), mp4)
    with pytest.raises(RuntimeError, match="failed to decode"):
        train.main(["--config", "avenet.py", "--no-progress", f"data.root={tiny_copy}",
                    f"train.out_dir={tmp_path / 'run'}", *TINY_AVC])


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.timeout(600)  # above its own 300 + 60 s limits, so that it kills torchrun itself
def test_ddp_two_processes_gloo(tiny_copy, tmp_path):
    run = tmp_path / "run"
    vids = sorted(json.loads((tiny_copy / "train" / "vid2genre.json").read_text()))
    (tiny_copy / "train" / "video" / f"{vids[3]}.mp4").write_text("not a video\n")  # met by one rank or both
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "avcorr.train", "--config", "avenet.py", "--no-progress", f"data.root={tiny_copy}",
           f"train.out_dir={run}", *TINY_AVC, "train.num_threads=1", "train.epochs=2"]
    env["PYTHONFAULTHANDLER"] = "1"  # a hang below is killed with SIGABRT: every process prints its stack
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"2-process DDP run did not finish in 300 s; stacks at the kill:\n{err[-8000:]}")
    assert proc.returncode == 0, err[-3000:]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    # 12 training clips x 2 pairs = 24 examples; 2 ranks x batch 4 -> 3 steps per epoch each
    assert last["epoch"] == 2 and last["step"] == 6
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]  # written once (rank 0), not once per process
    # the skip is counted and logged by rank 0 whichever rank met it
    assert [r["skipped_clips"] for r in _rows(run) if r["split"] == "train"] == [1, 1]
    assert f"skipped clip {vids[3]}" in (run / "train.log").read_text()


@pytest.mark.ffmpeg
def test_user_data_of_other_rates_sizes_and_multilabel(tmp_path):
    """A dataset unlike the synthetic one: other fps, sizes, sample rates, channels, durations,
    a container other than mp4, a clip whose audio is only in its video, multi-label json."""
    root = tmp_path / "mine"
    specs = [  # (vid, fps, size, duration, wav (sr, channels) or None, container, labels)
        ("-aBcDeFgHiJ", 25, (80, 60), 2.5, (44100, 2), ".mp4", ["Guitar"]),
        ("kLmNoPqRsTu", 30, (64, 48), 1.5, (22050, 1), ".mp4", ["Guitar", "Singing"]),
        ("vWxYz012345", 12, (96, 72), 3.0, None, ".mp4", ["Singing"]),
        ("678_9-abcde", 15, (64, 64), 2.0, (32000, 1), ".mkv", ["Drum"]),
        ("fghijklmnop", 24, (72, 54), 2.2, (48000, 2), ".mp4", ["Drum", "Guitar"]),
    ]
    for split in ("train", "val"):
        (root / split / "video").mkdir(parents=True)
        (root / split / "audio").mkdir(parents=True)
        v2g = {}
        for k, (vid, fps, size, dur, wav, ext, labels) in enumerate(specs):
            vid = vid if split == "train" else vid[::-1]
            make_video(root / split / "video" / f"{vid}{ext}", duration=dur, fps=fps, size=size,
                       audio_sr=16000 if ext == ".mp4" else 48000, tone_hz=300 + 150 * k)
            if wav is not None:
                make_wav(root / split / "audio" / f"{vid}.wav", 300.0 + 150 * k, wav[0], channels=wav[1], duration=dur)
            v2g[vid] = labels if len(labels) > 1 else labels[0]
        (root / split / "vid2genre.json").write_text(json.dumps(v2g))
    run = tmp_path / "run"
    assert train.main(["--config", "avenet.py", "--no-progress", f"data.root={root}", f"train.out_dir={run}",
                       *TINY_AVC, "data.audio.sample_rate=24000", "train.batch_size=2", "train.epochs=1",
                       "avc.train_pairs_per_clip=4"]) == 0
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert val and val[0]["num_pairs"] == 10 and 0.0 <= val[0]["avc_acc"] <= 1.0
    train_rows = [r for r in _rows(run) if r["split"] == "train"]
    assert train_rows[-1]["skipped_clips"] == 0  # nothing about these files is "bad"
