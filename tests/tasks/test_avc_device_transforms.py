"""data.device_transforms: uint8 frames travel to the device, where the AVC task finishes them batched
(colour jitter, flip, normalisation); the model sees what the per-sample CPU path gives it."""

from __future__ import annotations

import json

import pytest
import torch

from avcorr import train
from avcorr.config import ConfigError, check_config, load_config
from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.transforms import denormalize
from avcorr.engine.checkpoint import load_checkpoint
from avcorr.engine.loader import make_loader
from avcorr.tasks import build_task
from data_tools import make_shards as ms
from tests.conftest import TINY_AVC

CPU = torch.device("cpu")


def _root(storage, tiny_root, shards):
    return [f"data.root={shards if storage == 'shards' else tiny_root}", f"data.storage={storage}"]


def _batches(overrides, split, train_mode, on, config=("avenet.py", TINY_AVC)):
    """The batches the module gets: loaded in this process, moved (channels-last) and finished by the task."""
    task, raw = _raw_batches(overrides, split, train_mode, on, 0, config)
    return [task.device_transform(task.to_device(b, CPU, channels_last=True)) for b in raw]


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_evaluation_batches_are_the_cpu_paths(storage, tiny_root, shards):
    overrides = _root(storage, tiny_root, shards)
    assert_the_cpu_paths(_batches(overrides, "val", False, True), _batches(overrides, "val", False, False))


def assert_the_cpu_paths(ours, theirs, frames="image", channels_last=True):
    """Finished evaluation batches equal the CPU path's: the same keys (the jitter and gain dropped on the
    device), float32 frames (channels-last when they moved so) to 1e-6, everything else exactly."""
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        assert a[frames].dtype == torch.float32
        assert a[frames].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        torch.testing.assert_close(a[frames], b[frames], rtol=0, atol=1e-6)
        for key, value in b.items():
            if key != frames:  # ids, boxes, and the audio (int16 shards hand over their samples: exact)
                assert (torch.equal(a[key], value) if isinstance(value, torch.Tensor) else a[key] == value), key


@pytest.mark.parametrize("storage", ["files", "shards"])
def test_training_batches_draw_the_same_augmentations(storage, tiny_root, shards):
    """Same seeds, same pairs, crops, flips and jitter; the frames differ only where the CPU path's
    rounding and saturation before resizing do (a few edge pixels of saturated shapes)."""
    overrides = _root(storage, tiny_root, shards)
    ours, theirs = _batches(overrides, "train", True, True), _batches(overrides, "train", True, False)
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert a["vid"] == b["vid"] and torch.equal(a["audio"], b["audio"])
        levels = (denormalize(a["image"]) - denormalize(b["image"])).abs() * 255
        assert float(levels.mean()) < 1.0 and float(levels.flatten().quantile(0.99)) < 8


@pytest.mark.parametrize("storage,workers", [("files", 2), ("shards", 0)])
def test_two_training_steps_with_device_transforms(storage, workers, tiny_root, shards, tmp_path):
    run = tmp_path / "run"
    args = ["--config", "avenet.py", "--no-progress", *_root(storage, tiny_root, shards), f"train.out_dir={run}",
            *TINY_AVC, "data.device_transforms=True", "train.channels_last=True", "train.epochs=1",
            "train.max_steps=2", f"data.num_workers={workers}"]
    assert train.main(args) == 0
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["config"]["data"]["device_transforms"] is True
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in val if r["split"] == "val"]
    assert len(val) == 1 and 0.0 <= val[0]["avc_acc"] <= 1.0


def test_the_tagging_task_does_not_take_the_switch():
    for config in ("avolnet.py", "sop.py"):
        check_config(load_config(config, ["data.device_transforms=True"]))
    cfg = load_config("panns_folder.py", ["data.device_transforms=True"])
    with pytest.raises(ConfigError, match="data.device_transforms=True: implemented for the tasks avc, localization"):
        check_config(cfg)


# -- audio as int16 between the processes (streams of int16 shards) ----------------------------


def _raw_batches(overrides, split, train_mode, on, workers, config=("avenet.py", TINY_AVC)):
    """The batches as the loader (its worker processes) hands them over, and the task that finishes them.

    ``config``: the config file and its tiny overrides (put before ``overrides``)."""
    name, tiny = config
    cfg = load_config(name, [*tiny, *overrides, f"data.device_transforms={on}"])
    task = build_task(cfg)
    loader = make_loader(task.build_dataset(split, train_mode), task, 4, train=train_mode, num_workers=workers, seed=3)
    if train_mode and hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(0)
    return task, list(loader)


@pytest.mark.parametrize("train_mode", [True, False])
def test_stream_workers_hand_over_int16_audio_that_the_device_turns_into_the_float_path(train_mode, shards):
    overrides = [*_root("shards", None, shards), "data.audio.gain_jitter=0.2"]
    split = "train" if train_mode else "val"
    task, raw = _raw_batches(overrides, split, train_mode, True, workers=2)
    plain_task, plain = _raw_batches(overrides, split, train_mode, False, workers=2)
    assert len(raw) == len(plain) > 1
    gains = set()
    for a, b in zip(raw, plain):
        assert a["audio"].dtype == torch.int16 and a["audio"].shape == b["audio"].shape  # half of float32's bytes
        assert a["audio_gain"].dtype == torch.float32 and a["audio_gain"].shape == (a["audio"].shape[0],)
        assert b["audio"].dtype == torch.float32 and "audio_gain" not in b
        gains |= set(a["audio_gain"].tolist())
        done = task.device_transform(task.to_device(a, CPU))
        assert set(done) == set(plain_task.device_transform(task.to_device(b, CPU)))  # audio_gain is dropped
        assert done["audio"].dtype == torch.float32
        # within the int16 step (1/32768 of full scale); in fact exact: the shards hold int16 samples
        torch.testing.assert_close(done["audio"], b["audio"], rtol=0, atol=1 / 32767)
        assert torch.equal(done["audio"], b["audio"])
    assert (len(gains) > 1) if train_mode else gains == {1.0}  # the gain jitter is drawn in training only


def test_the_per_sample_path_and_float_shards_keep_float32_audio(tiny_root, tmp_path):
    _, files = _raw_batches(_root("files", tiny_root, None), "val", False, True, workers=0)
    assert files[0]["audio"].dtype == torch.float32 and "audio_gain" not in files[0]
    ms.shard_split(load_split(tiny_root, "val"), tmp_path, ShardOptions(frames_per_clip=3, size=40, sample_rate=16000,
                                                                          audio_dtype="float16"), clips_per_shard=3)
    _, floats = _raw_batches(_root("shards", None, tmp_path), "val", False, True, workers=0)
    assert floats[0]["audio"].dtype == torch.float32 and "audio_gain" not in floats[0]
