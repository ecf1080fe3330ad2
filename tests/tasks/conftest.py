"""Fixtures of the task tests."""

from __future__ import annotations

import pytest

from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from data_tools import make_shards as ms


@pytest.fixture(scope="session")
def shards(tiny_root, tmp_path_factory):
    """Shards of the tiny dataset's train and val splits (3 frames of 40 px per clip, int16 audio at 16 kHz)."""
    out = tmp_path_factory.mktemp("device_shards")
    for split in ("train", "val"):
        ms.shard_split(load_split(tiny_root, split), out, ShardOptions(frames_per_clip=3, size=40, sample_rate=16000),
                       clips_per_shard=3)
    return out
