"""Shared fixtures: small datasets made once per test session (never downloaded)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Fixtures whose media are made with the ffmpeg binary: a test that uses one is marked `ffmpeg` (pytest.ini).
_FFMPEG_FIXTURES = {"tiny_root", "tiny_copy"}


def pytest_collection_modifyitems(config, items):
    """Mark the users of the ffmpeg-made fixtures `ffmpeg`; skip every `ffmpeg` test, with the reason, when the
    binary is missing."""
    missing = shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None
    for item in items:
        if _FFMPEG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ffmpeg)
        if missing and item.get_closest_marker("ffmpeg") is not None:
            item.add_marker(pytest.mark.skip(reason="needs the ffmpeg and ffprobe binaries on PATH "
                                                    "(apt-get install ffmpeg)"))


# A tiny synthetic AV dataset: 3 classes, 4/2/2 clips per class, 2 s, 8 fps, 48 px, 16 kHz.
TINY = dict(seed=1, num_classes=3, clips_per_class=(4, 2, 2), duration=2.0, fps=8, size=48, sample_rate=16000,
            max_distractors=1, workers=2)

# Overrides that make any AVC config train in seconds on the tiny dataset.
TINY_AVC = [
    "model.name=test_avenet", "data.image_size=32", "data.audio.sample_rate=16000", "data.audio.n_fft=256",
    "data.audio.win_length=160", "data.audio.hop_length=160", "data.audio.n_frames=100", "data.audio.seconds=1.0",
    "data.audio.n_mels=0", "data.num_workers=0",
    "avc.train_pairs_per_clip=2", "avc.eval_pairs_per_clip=2", "train.batch_size=4", "train.eval_batch_size=8",
    "train.epochs=2", "optim.warmup_steps=0", "train.report_gallery=0",  # galleries: tests/commands/test_report.py
]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    from avcorr.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("data") / "tiny", **TINY)


@pytest.fixture()
def tiny_copy(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    dst = tmp_path / "root"
    shutil.copytree(tiny_root, dst)
    return dst


def assert_same_batch_layout(ours: dict, theirs: dict) -> None:
    """Two collated batches have the same keys, tensor shapes and dtypes, and same-sized lists of the same type
    (a stream of shards against the per-sample dataset it stands in for)."""
    import torch

    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert (ours[key].shape, ours[key].dtype) == (value.shape, value.dtype), key
        else:
            assert type(ours[key]) is type(value) and len(ours[key]) == len(value), key
