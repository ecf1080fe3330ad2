"""data.device_transforms for Sound of Pixels: uint8 frames jittered, flipped and normalised on the device
(one draw per source for its frames), int16 sources of int16 shards scaled there; the model sees what the
per-sample CPU path gives it, the mixtures bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avcorr import train
from avcorr.data.transforms import denormalize, device_frames
from avcorr.engine.checkpoint import load_checkpoint
from avcorr.tasks.separation import device_source_frames
from tests.tasks.test_avc_device_transforms import _batches, _raw_batches, _root, assert_the_cpu_paths
from tests.tasks.test_sop import TINY_SOP

SOP = ("sop.py", [*TINY_SOP, "data.audio.sample_rate=16000"])  # the rate of the shards


def _frames(batch):
    """float (B, N, 3, Tf, S, S) -> the pixels in [0, 1] as (B * N * Tf, 3, S, S)."""
    f = batch["frames"]
    return denormalize(f.transpose(2, 3).reshape(-1, 3, *f.shape[-2:]))


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_evaluation_batches_are_the_cpu_paths(storage, tiny_root, shards):
    overrides = _root(storage, tiny_root, shards)
    ours, theirs = (_batches(overrides, "val", False, on, SOP) for on in (True, False))
    assert_the_cpu_paths(ours, theirs, "frames", channels_last=False)  # 6-d frames stay contiguous


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_training_batches_draw_the_same_mixtures_and_augmentations(storage, tiny_root, shards):
    """Same seeds, same mixtures, windows and gains (the sources equal bit for bit), same crops, flips and
    jitter: the frames differ only by the CPU path's rounding before resizing (the AVC test's tolerance)."""
    overrides = [*_root(storage, tiny_root, shards), "data.audio.gain_jitter=0.3"]
    ours, theirs = (_batches(overrides, "train", True, on, SOP) for on in (True, False))
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert set(a) == set(b) and a["vid"] == b["vid"] and torch.equal(a["lengths"], b["lengths"])
        assert a["audios"].dtype == torch.float32 and torch.equal(a["audios"], b["audios"])
        levels = (_frames(a) - _frames(b)).abs() * 255
        assert float(levels.mean()) < 1.0 and float(levels.flatten().quantile(0.99)) < 8


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_what_the_loader_hands_over(storage, tiny_root, shards):
    """With the switch: uint8 frames, one jitter per source; int16 sources and their scales from int16 shards
    only. Without it: the batches of before."""
    overrides = [*_root(storage, tiny_root, shards), "data.audio.gain_jitter=0.3"]
    task, (on, *_) = _raw_batches(overrides, "train", True, True, 0, SOP)
    _, (off, *_) = _raw_batches(overrides, "train", True, False, 0, SOP)
    b, n = off["audios"].shape[:2]
    assert on["frames"].dtype == torch.uint8 and on["frames"].shape == off["frames"].shape
    assert on["frames_jitter"].shape == (b, n, 3) and len(set(on["frames_jitter"][..., 0].flatten().tolist())) > 1
    if storage == "shards":
        assert on["audios"].dtype == torch.int16 and on["audio_gain"].shape == (b, n)
        num_mix = task.cfg.separation.num_mix  # the scale is gain x 1/N, the gain drawn in [0.7, 1.3]
        assert bool(((on["audio_gain"] * num_mix - 1).abs() <= 0.3 + 1e-6).all())
        assert len(set(on["audio_gain"].flatten().tolist())) > 1
    else:  # the per-sample path reads float audio (not necessarily 16-bit): it stays float32
        assert on["audios"].dtype == torch.float32 and "audio_gain" not in on
    assert off["frames"].dtype == off["audios"].dtype == torch.float32
    assert set(off) == {"audios", "lengths", "frames", "label", "start", "vid", "skipped"}


def test_device_source_frames_give_each_source_its_jitter_on_all_its_frames():
    frames = torch.randint(0, 256, (2, 3, 3, 4, 8, 8), dtype=torch.uint8)  # (B, N, 3, Tf, S, S)
    jitter = torch.rand(2, 3, 3) + 0.5
    jitter[..., 2] = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    out = device_source_frames(frames, jitter)
    assert out.shape == frames.shape and out.dtype == torch.float32 and out.is_contiguous()
    for i in range(2):
        for k in range(3):
            want = device_frames(frames[i, k].transpose(0, 1), jitter[i, k].expand(4, 3)).transpose(0, 1)
            torch.testing.assert_close(out[i, k], want, rtol=0, atol=0)
    torch.testing.assert_close(device_source_frames(frames), device_source_frames(frames, torch.tensor([1.0, 1.0, 0.0])
                                                                                   .expand(2, 3, 3)))
    with pytest.raises(ValueError, match=r"\(B, N, 3, Tf, S, S\)"):
        device_source_frames(frames[0])


def test_two_training_steps_with_device_transforms(tiny_root, shards, tmp_path):
    run = tmp_path / "run"
    assert train.main(["--config", "sop.py", "--no-progress", *_root("shards", tiny_root, shards),
                       f"train.out_dir={run}", *SOP[1], "data.device_transforms=True", "data.audio.gain_jitter=0.3",
                       "train.epochs=1", "train.max_steps=2"]) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["device_transforms"] is True
    val = [r for r in (json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "val"]
    assert val and val[-1]["num_mixtures"] == 6 and all(np.isfinite(val[-1][k]) for k in ("sdr", "nsdr"))
