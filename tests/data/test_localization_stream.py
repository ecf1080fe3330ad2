"""Localization evaluation from shards (avcorr.data.localization_stream) against the per-sample dataset."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avcorr.data import decode
from avcorr.data.layout import load_split
from avcorr.data.localization import LocalizationDataset, collate_localization
from avcorr.data.localization_stream import LocalizationShardStream, crop_boxes, shards_have_boxes
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import read_manifest
from avcorr.data.transforms import denormalize
from data_tools import make_shards as ms
from tests.data.test_avc_stream import _corrupt_member
from tests.media import make_video
from tests.conftest import assert_same_batch_layout

OPTS = dict(sample_rate=16000, seconds=1.0, image_size=32)


@pytest.fixture(scope="module")
def shard_root(tiny_root, tmp_path_factory) -> Path:
    """train (12 clips, 4 shards) and val (6 clips, 2 shards) of the tiny dataset."""
    out = tmp_path_factory.mktemp("loc_shards")
    for split in ("train", "val"):
        ms.shard_split(load_split(tiny_root, split), out, ShardOptions(frames_per_clip=3, size=48, sample_rate=16000),
                       clips_per_shard=3)
    return out


def _vids(folder: Path) -> list[str]:
    return [v for e in read_manifest(folder)["shards"] for v in e["clips"]]


def test_items_have_the_per_sample_layout(tiny_root, shard_root):
    stream = LocalizationShardStream(str(shard_root / "val"), **OPTS)
    files = LocalizationDataset(load_split(tiny_root, "val"), **OPTS)
    ours = next(iter(DataLoader(stream, batch_size=4, collate_fn=collate_localization)))
    theirs = next(iter(DataLoader(files, batch_size=4, collate_fn=collate_localization)))
    assert_same_batch_layout(ours, theirs)
    items = list(stream)
    assert len(stream) == len(items) == 6 and sorted(i["vid"] for i in items) == sorted(_vids(shard_root / "val"))
    clips = {c.vid: c for c in load_split(tiny_root, "val").clips}
    for item in items:
        clip = clips[item["vid"]]
        # the stored frame nearest to the middle (1.0 s): frame 8 of 16, at 8.5 / 8 s; the audio centred on it
        assert float(item["time"]) == float(item["audio_time"]) == 8.5 / 8
        source = clip.audio if clip.audio is not None else clip.video
        want = decode.read_audio(source, float(item["time"]) - 0.5, 1.0, 16000)
        np.testing.assert_allclose(item["audio"].numpy(), want.numpy(), atol=1e-4)
        # square videos: the crop is the whole frame and the boxes are those of boxes.json
        np.testing.assert_allclose(item["boxes"], [list(b) for b in clip.boxes], atol=1e-9)
    assert shards_have_boxes(str(shard_root / "val"))


def test_crop_boxes_cuts_and_drops():
    boxes, cut, dropped = crop_boxes([[0.3, 0.2, 0.5, 0.6], [0.1, 0.1, 0.4, 0.5], [0.8, 0.0, 0.9, 1.0]],
                                     [0.25, 0.0, 0.75, 1.0])
    np.testing.assert_allclose(boxes, [[0.1, 0.2, 0.5, 0.6], [0.0, 0.1, 0.3, 0.5]])
    assert (cut, dropped) == (1, 1)
    with pytest.raises(ValueError, match="no area"):
        crop_boxes([[0, 0, 1, 1]], [0.5, 0, 0.5, 1])


@pytest.fixture(scope="module")
def wide_shards(tmp_path_factory) -> Path:
    """Two 64 x 32 clips (2 s at 8 fps): stored as their central 32 x 32 squares (crop x in [0.25, 0.75]).

    In frame 8 (the middle, 1.0 s) the yellow bar of tests.media's "moving" pattern spans x = 32..36 px of
    the lower half; clip ``bar`` has that box, clip ``edge`` one box half outside the crop and one wholly outside.
    """
    root = tmp_path_factory.mktemp("wide") / "root"
    (root / "test" / "video").mkdir(parents=True)
    for vid in ("bar", "edge"):
        make_video(root / "test" / "video" / f"{vid}.mp4", duration=2.0, fps=8, size=(64, 32), gop=1)
    (root / "test" / "vid2genre.json").write_text(json.dumps({"bar": "a", "edge": "b"}))
    (root / "test" / "boxes.json").write_text(json.dumps({
        "bar": [[32 / 64, 0.5, 36 / 64, 1.0]],
        "edge": [[0.125, 0.5, 0.375, 1.0], [0.0, 0.0, 0.2, 0.4]]}))
    out = tmp_path_factory.mktemp("wide_shards")
    ms.shard_split(load_split(root, "test"), out, ShardOptions(frames_per_clip=3, size=32, sample_rate=16000,
                                                               format="raw"), clips_per_shard=2)
    return out / "test"


def test_boxes_are_moved_into_the_stored_crop(wide_shards, caplog):
    with caplog.at_level(logging.WARNING):
        items = {i["vid"]: i for i in LocalizationShardStream(str(wide_shards), **OPTS)}
    assert "1 box(es) lay partly outside the stored centre crop and were cut to it, 1 wholly outside" in caplog.text
    (box,) = items["bar"]["boxes"]
    np.testing.assert_allclose(box, [0.5, 0.5, 0.625, 1.0], atol=1e-9)
    # the bar is where the moved box says, in the picture the model sees
    picture = denormalize(items["bar"]["image"]).permute(1, 2, 0).numpy()  # (32, 32, 3) in [0, 1]
    yellow = (picture[:, :, 0] > 0.7) & (picture[:, :, 2] < 0.45)
    rows, cols = np.nonzero(yellow)
    assert rows.size and rows.min() >= 16 and cols.min() >= 16 - 1 and cols.max() <= 20
    np.testing.assert_allclose(items["edge"]["boxes"], [[0.0, 0.5, 0.25, 1.0]], atol=1e-9)


def test_evaluation_is_deterministic_and_ranks_and_workers_cover_the_split(shard_root):
    def read(rank=0, world=1, workers=2):
        stream = LocalizationShardStream(str(shard_root / "train"), rank=rank, world_size=world, **OPTS)
        return [b for b in DataLoader(stream, batch_size=2, collate_fn=collate_localization, num_workers=workers)]

    first, again = read(), read(workers=0)
    vids = [v for b in first for v in b["vid"]]
    assert sorted(vids) == sorted(_vids(shard_root / "train")) and len(vids) == 12
    flat = {v: (img, b["boxes"][i]) for b in first for i, (v, img) in enumerate(zip(b["vid"], b["image"]))}
    for b in again:
        for i, v in enumerate(b["vid"]):
            assert torch.equal(flat[v][0], b["image"][i]) and flat[v][1] == b["boxes"][i]
    seen = [[v for b in read(rank, 2) for v in b["vid"]] for rank in range(2)]
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == sorted(vids)


def test_corrupt_member_is_skipped_and_counted(shard_root, tmp_path):
    folder = tmp_path / "val"
    shutil.copytree(shard_root / "val", folder)
    bad = _corrupt_member(folder / read_manifest(folder)["shards"][1]["name"], ".json")
    batches = list(DataLoader(LocalizationShardStream(str(folder), **OPTS), batch_size=4,
                              collate_fn=collate_localization))
    skipped = [s for b in batches for s in b["skipped"]]
    assert [v for v, _ in skipped] == [bad] and "not valid JSON" in skipped[0][1]
    assert sorted(v for b in batches for v in b["vid"]) == sorted(set(_vids(folder)) - {bad})
