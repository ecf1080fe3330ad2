"""AVC pairs drawn inside a stream of shards (avcorr.data.avc_stream) against the per-sample AVC dataset."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from avcorr.data import decode
from avcorr.data.avc import AVCPairDataset, collate_pairs
from avcorr.data._shard_stream import evaluation_blocks
from avcorr.data.avc_stream import AVCShardStream
from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import ShardError, read_manifest
from data_tools import make_shards as ms
from tests.conftest import assert_same_batch_layout

OPTS = dict(sample_rate=16000, seconds=1.0, image_size=32)


@pytest.fixture(scope="module")
def shard_root(tiny_root, tmp_path_factory) -> Path:
    """train (12 clips) and val (6 clips) of the tiny dataset, 3 clips per shard, raw frames, float32 audio."""
    out = tmp_path_factory.mktemp("avc_shards")
    options = ShardOptions(frames_per_clip=3, size=48, sample_rate=16000, format="raw", audio_dtype="float32")
    for split in ("train", "val"):
        ms.shard_split(load_split(tiny_root, split), out, options, clips_per_shard=3)
    return out


def _audio_source(clip):
    return clip.audio if clip.audio is not None else clip.video


def test_items_have_the_per_sample_layout_and_the_right_audio(tiny_root, shard_root):
    stream = AVCShardStream(str(shard_root / "train"), pairs_per_clip=2, batch_size=4, **OPTS)
    files = AVCPairDataset(load_split(tiny_root, "train"), pairs_per_clip=2, **OPTS)
    ours = next(iter(DataLoader(stream, batch_size=4, collate_fn=collate_pairs)))
    theirs = next(iter(DataLoader(files, batch_size=4, collate_fn=collate_pairs)))
    assert_same_batch_layout(ours, theirs)
    assert len(stream) == 24 == len(list(stream))
    clips = {c.vid: c for c in load_split(tiny_root, "train").clips}
    for item in list(stream)[:12]:
        # every window is centred on a frame time of its own clip, and cut exactly as the per-sample reader cuts it
        want = decode.read_audio(_audio_source(clips[item["audio_vid"]]), float(item["audio_time"]) - 0.5, 1.0, 16000)
        np.testing.assert_allclose(item["audio"].numpy(), want.numpy(), atol=1e-6)
        assert (item["vid"] == item["audio_vid"]) == bool(item["label"])
        fps = 8.0
        assert abs((float(item["time"]) * fps - 0.5) - round(float(item["time"]) * fps - 0.5)) < 1e-4


def test_positive_share_and_class_negatives(tiny_root, shard_root):
    labels = {c.vid: set(c.labels) for c in load_split(tiny_root, "train").clips}
    stream = AVCShardStream(str(shard_root / "train"), pairs_per_clip=8, positive_fraction=0.5, seed=3, **OPTS)
    items = list(stream)
    share = np.mean([int(i["label"]) for i in items])
    assert len(items) == 96 and 0.3 < share < 0.7
    assert all(i["audio_vid"] != i["vid"] for i in items if not i["label"])
    assert len({i["vid"] for i in items[:8]}) >= 4  # a batch mixes clips, not 8 pairs of one clip
    unshuffled = list(AVCShardStream(str(shard_root / "train"), pairs_per_clip=8, shuffle=0, pair_buffer=2, **OPTS))
    assert len({i["vid"] for i in unshuffled[:8]}) == 1  # shuffle=0: the 8 pairs of a clip come together
    # "class": a negative's clip shares no label with the frame's (it may sound like a silent object there)
    index = load_split(tiny_root, "train")
    drawn = {c.vid: set(index.visible_labels(c)) for c in index.clips}
    stream = AVCShardStream(str(shard_root / "train"), pairs_per_clip=4, negatives="class", seed=3, **OPTS)
    negatives = [i for i in stream if not i["label"]]
    assert negatives and all(not labels[i["vid"]] & labels[i["audio_vid"]] for i in negatives)
    assert all(bool(i["shares_label"]) == bool(drawn[i["vid"]] & labels[i["audio_vid"]]) for i in negatives)
    # contrastive training: positives only
    assert all(i["label"] for i in AVCShardStream(str(shard_root / "train"), positive_fraction=1.0, **OPTS))


def test_evaluation_pairs_are_fixed_and_the_same_whatever_the_ranks_and_workers(shard_root):
    def pairs(rank=0, world=1, workers=2):
        stream = AVCShardStream(str(shard_root / "val"), train=False, pairs_per_clip=2, seed=1, **OPTS)
        stream.split_across_ranks(rank, world)
        loader = DataLoader(stream, batch_size=5, collate_fn=collate_pairs, num_workers=workers)
        return [(v, a, float(t), float(at), int(lab), audio.numpy().tobytes()) for b in loader
                for v, a, t, at, lab, audio in zip(b["vid"], b["audio_vid"], b["time"], b["audio_time"], b["label"],
                                                   b["audio"])]

    first = pairs()
    assert len(first) == 12 and sum(p[4] for p in first) == 6
    assert sorted({p[0] for p in first}) == sorted(read_manifest(shard_root / "val")["shards"][0]["clips"]
                                                   + read_manifest(shard_root / "val")["shards"][1]["clips"])
    assert pairs() == first
    assert sorted(pairs(workers=0)) == sorted(first)  # 2 shards for 2 workers, or both in one: the same pairs
    shares = [pairs(rank, 2, workers=1) for rank in range(2)]
    assert all(shares) and not {p[0] for p in shares[0]} & {p[0] for p in shares[1]}  # disjoint clips
    assert sorted(shares[0] + shares[1]) == sorted(first)  # the same pairs, every one once
    by_shard = {v: i for i, e in enumerate(read_manifest(shard_root / "val")["shards"]) for v in e["clips"]}
    assert all(by_shard[p[0]] == by_shard[p[1]] for p in first)  # a negative's audio comes from the frame's shard
    assert [len(AVCShardStream(str(shard_root / "val"), train=False, pairs_per_clip=2, rank=r, world_size=2, **OPTS))
            for r in range(2)] == [6, 6]
    with pytest.raises(ValueError, match="split across ranks when it is made"):
        AVCShardStream(str(shard_root / "val"), **OPTS).split_across_ranks(0, 2)


def test_evaluation_blocks_join_small_shards_to_their_neighbours():
    assert evaluation_blocks([3, 3, 3], 2) == [[0], [1], [2]]
    assert evaluation_blocks([1, 3, 1], 2) == [[0, 1, 2]]  # the last small shard joins the block before it
    assert evaluation_blocks([1, 1, 1, 1], 2) == [[0, 1], [2, 3]]
    assert evaluation_blocks([1], 2) == [[0]]
    assert evaluation_blocks([0, 2, 0], 1) == [[0, 1, 2]]


def test_ranks_and_workers_read_disjoint_clips_covering_the_epoch(shard_root):
    vids = [v for e in read_manifest(shard_root / "train")["shards"] for v in e["clips"]]
    for epoch in (0, 1):
        seen = []
        for rank in range(2):
            stream = AVCShardStream(str(shard_root / "train"), rank=rank, world_size=2, batch_size=1, shuffle=4, **OPTS)
            stream.set_epoch(epoch)
            assert len(stream) == 6
            loader = DataLoader(stream, batch_size=1, collate_fn=collate_pairs, num_workers=2)
            assert len(loader) == 6
            got = [v for b in loader for v in b["vid"]]
            assert len(got) == 6
            seen.append(got)
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == sorted(vids)
    # every rank takes the same number of whole batches, even when the clips do not divide evenly
    lengths = [len(AVCShardStream(str(shard_root / "train"), rank=r, world_size=2, batch_size=4, **OPTS))
               for r in range(2)]
    assert lengths == [4, 4]
    loaders = [DataLoader(AVCShardStream(str(shard_root / "train"), rank=r, world_size=2, batch_size=4, **OPTS),
                          batch_size=4, collate_fn=collate_pairs, num_workers=2, drop_last=True) for r in range(2)]
    assert [len(list(loader)) for loader in loaders] == [1, 1]


def _corrupt_member(shard: Path, suffix: str) -> str:
    """Rewrite ``shard`` with the first member ending in ``suffix`` replaced by garbage; returns its clip id."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    vid = None
    with tarfile.open(shard, "w") as tar:
        for info, data in members:
            if vid is None and info.name.endswith(suffix):
                vid, data = info.name.split(".", 1)[0], b"not an array" * 8
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return vid


def test_corrupt_member_and_cut_shard_are_skipped_and_reported(shard_root, tmp_path):
    folder = tmp_path / "train"
    shutil.copytree(shard_root / "train", folder)
    shards = [folder / e["name"] for e in read_manifest(folder)["shards"]]
    bad = _corrupt_member(shards[1], ".audio.npy")
    cut = shards[3]
    lost = read_manifest(folder)["shards"][3]["clips"][1:]
    with tarfile.open(cut) as tar:  # cut inside the second clip's json: the first clip stays whole
        second = next(m for m in tar.getmembers() if m.name.split(".", 1)[0] == lost[0])
    cut.write_bytes(cut.read_bytes()[:second.offset_data + 10])
    stream = AVCShardStream(str(folder), train=False, pairs_per_clip=2, **OPTS)
    items = list(stream)
    skipped = [s for i in items for s in i["skipped"]]
    assert bad in [v for v, _ in skipped] and any(f"{shards[1].name}: {bad}.audio.npy: not a readable .npy" in r for v, r in skipped if v == bad)
    assert cut.name in [v for v, _ in skipped]
    assert bad not in {i["vid"] for i in items} and not set(lost) & {i["vid"] for i in items}
    assert len(items) == 2 * (12 - 1 - len(lost))


def test_wrong_rate_and_missing_manifest_are_clear_errors(shard_root, tmp_path):
    with pytest.raises(ShardError, match="16000 Hz, the model takes 48000 Hz"):
        AVCShardStream(str(shard_root / "train"), sample_rate=48000)
    with pytest.raises(ShardError, match="no manifest"):
        AVCShardStream(str(tmp_path), sample_rate=16000)


def test_shares_label_counts_the_silent_objects_of_visible_json(tiny_copy, tmp_path):
    """A negative whose audio class is drawn silent in the frame (visible.json) shares a label: files and shards
    alike; shards made without a visible.json keep the labels alone, and are refused once one is added."""
    (tiny_copy / "train" / "visible.json").unlink()  # a dataset without one (the generator writes it)
    train = load_split(tiny_copy, "train")
    out = tmp_path / "shards"
    options = ShardOptions(frames_per_clip=3, size=32, sample_rate=16000)
    ms.shard_split(train, out, options, clips_per_shard=4)
    old = AVCShardStream(str(out / "train"), train=False, pairs_per_clip=6, **OPTS)  # no "visible" stored
    labels = {c.vid: set(c.labels) for c in train.clips}
    negatives = [i for i in old if not i["label"]]
    assert negatives and all(bool(i["shares_label"]) == bool(labels[i["vid"]] & labels[i["audio_vid"]])
                             for i in negatives)
    classes = train.classes
    # each frame also shows a silent object of the next class
    extra = {c.vid: [classes[(classes.index(c.labels[0]) + 1) % len(classes)]] for c in train.clips}
    (tiny_copy / "train" / "visible.json").write_text(json.dumps(extra))
    train = load_split(tiny_copy, "train")
    with pytest.raises(ShardError, match="visible.json was added or changed"):
        ms.shard_split(train, out, options, clips_per_shard=4)
    ms.shard_split(train, out, options, clips_per_shard=4, overwrite=True)
    seen = {c.vid: set(c.labels) | set(extra[c.vid]) for c in train.clips}
    files = AVCPairDataset(train, train=False, pairs_per_clip=6, **OPTS)
    stream = AVCShardStream(str(out / "train"), train=False, pairs_per_clip=6, **OPTS)
    for items in ([files[i] for i in range(len(files))], list(stream)):
        negatives = [i for i in items if not i["label"]]
        assert all(bool(i["shares_label"]) == bool(seen[i["vid"]] & labels[i["audio_vid"]]) for i in negatives)
        silent = [i for i in negatives if i["shares_label"] and not labels[i["vid"]] & labels[i["audio_vid"]]]
        assert silent and any(not i["shares_label"] for i in negatives)  # both kinds drawn
        assert not any(i["shares_label"] for i in items if i["label"])
