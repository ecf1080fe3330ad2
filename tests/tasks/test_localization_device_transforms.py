"""data.device_transforms for the localization task: AVC positives augmented on the device in training,
squashed uint8 frames normalised on the device in evaluation, boxes untouched; the model sees what the
per-sample CPU path gives it."""

from __future__ import annotations

import json

import pytest
import torch

from avcorr import train
from avcorr.data.transforms import denormalize
from avcorr.engine.checkpoint import load_checkpoint
from tests.commands.test_report import TINY_LOC
from tests.tasks.test_avc_device_transforms import _batches, _raw_batches, _root, assert_the_cpu_paths

LOC = ("avolnet.py", TINY_LOC)


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_evaluation_batches_are_the_cpu_paths(storage, tiny_root, shards):
    overrides = _root(storage, tiny_root, shards)
    ours, theirs = (_batches(overrides, "val", False, on, LOC) for on in (True, False))
    assert any(boxes for b in theirs for boxes in b["boxes"])  # the comparison covers boxed clips
    assert_the_cpu_paths(ours, theirs)  # the boxes too, exactly


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_training_positives_draw_the_same_augmentations(storage, tiny_root, shards):
    """The AVC positives of the AVC task's test, with the same tolerance: the frames differ only where the CPU
    path's rounding and saturation before resizing do."""
    overrides = [*_root(storage, tiny_root, shards), "data.audio.gain_jitter=0.2"]
    ours, theirs = (_batches(overrides, "train", True, on, LOC) for on in (True, False))
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert set(a) == set(b) and a["vid"] == b["vid"] and bool(a["label"].all())
        assert torch.equal(a["audio"], b["audio"])
        levels = (denormalize(a["image"]) - denormalize(b["image"])).abs() * 255
        assert float(levels.mean()) < 1.0 and float(levels.flatten().quantile(0.99)) < 8


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_what_the_loader_hands_over(storage, tiny_root, shards):
    """With the switch: uint8 frames (and int16 audio from int16 shards); without it the batches of before."""
    overrides = _root(storage, tiny_root, shards)
    _, (train_on, *_) = _raw_batches(overrides, "train", True, True, 0, LOC)
    _, (val_on, *_) = _raw_batches(overrides, "val", False, True, 0, LOC)
    _, (train_off, *_) = _raw_batches(overrides, "train", True, False, 0, LOC)
    _, (val_off, *_) = _raw_batches(overrides, "val", False, False, 0, LOC)
    audio = torch.int16 if storage == "shards" else torch.float32
    assert train_on["image"].dtype == val_on["image"].dtype == torch.uint8
    assert train_on["audio"].dtype == val_on["audio"].dtype == audio
    assert train_on["image_jitter"].shape == (train_on["image"].shape[0], 3) and "image_jitter" not in val_on
    assert ("audio_gain" in train_on) == (storage == "shards") and "audio_gain" not in val_on
    assert {"image_jitter", "audio_gain"}.isdisjoint(set(train_off) | set(val_off))
    assert train_off["image"].dtype == val_off["image"].dtype == torch.float32
    assert train_off["audio"].dtype == val_off["audio"].dtype == torch.float32
    assert set(val_off) == {"image", "audio", "label", "time", "audio_time", "vid", "audio_vid", "boxes", "skipped"}
    assert val_on["boxes"] == val_off["boxes"] and val_on["vid"] == val_off["vid"]


def test_two_training_steps_with_device_transforms(tiny_root, shards, tmp_path):
    run = tmp_path / "run"
    assert train.main(["--config", "avolnet.py", "--no-progress", *_root("shards", tiny_root, shards),
                       f"train.out_dir={run}", *TINY_LOC, "data.device_transforms=True", "train.channels_last=True",
                       "train.epochs=1", "train.max_steps=2"]) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["device_transforms"] is True
    (val,) = [r for r in (json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "val"]
    assert val["num_clips"] == val["num_boxed"] == 6 and 0.0 <= val["fixed/auc_ciou"] <= 1.0
