"""Sound-of-Pixels mixtures drawn inside a stream of shards (avcorr.data.separation_stream) against the
per-sample mixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avcorr.data import decode
from avcorr.data.layout import load_split
from avcorr.data.separation import SeparationDataset, collate_mixtures
from avcorr.data.separation_stream import SeparationShardStream
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import ShardError, iter_shard, read_manifest
from avcorr.data.transforms import frame_transform
from data_tools import make_shards as ms
from tests.data.test_avc_stream import _corrupt_member
from tests.conftest import assert_same_batch_layout

KW = dict(num_mix=2, sample_rate=8000, num_samples=8000, frames_per_clip=2, frame_stride=0.5, image_size=32)


@pytest.fixture(scope="module")
def shard_root(tiny_root, tmp_path_factory) -> Path:
    """train (12 clips, 4 shards) and val (6 clips, 2 shards) of the tiny dataset at 8 kHz, float32 audio."""
    out = tmp_path_factory.mktemp("sep_shards")
    options = ShardOptions(frames_per_clip=4, size=48, sample_rate=8000, audio_dtype="float32")
    for split in ("train", "val"):
        ms.shard_split(load_split(tiny_root, split), out, options, clips_per_shard=3)
    return out


def _vids(folder: Path) -> list[str]:
    return [v for e in read_manifest(folder)["shards"] for v in e["clips"]]


def test_mixtures_have_the_per_sample_layout_and_the_right_sources(tiny_root, shard_root):
    stream = SeparationShardStream(str(shard_root / "val"), train=False, **KW)
    files = SeparationDataset(load_split(tiny_root, "val"), train=False, **KW)
    ours = next(iter(DataLoader(stream, batch_size=3, collate_fn=collate_mixtures)))
    theirs = next(iter(DataLoader(files, batch_size=3, collate_fn=collate_mixtures)))
    assert_same_batch_layout(ours, theirs)
    index = load_split(tiny_root, "val")
    clips = {c.vid: c for c in index.clips}
    items = list(stream)
    assert len(items) == len(stream) == 6 and sorted(i["vid"][0] for i in items) == sorted(_vids(shard_root / "val"))
    for item in items:
        a, b = (clips[v] for v in item["vid"])
        assert a.vid != b.vid and not set(a.labels) & set(b.labels)  # sources of different classes
        assert item["label"].tolist() == [index.label_indices(a)[0], index.label_indices(b)[0]]
        # evaluation: 1 s windows centred in the 2 s clips, each source scaled by 1 / N
        assert item["start"].tolist() == [0.5, 0.5] and item["lengths"].tolist() == [8000, 8000]
        for k, clip in enumerate((a, b)):
            want = decode.read_audio(clip.audio, 0.0, 2.0, 8000)[4000:12000] / 2  # the stored clip, cut
            np.testing.assert_allclose(item["audios"][k].numpy(), want.numpy(), atol=1e-6)
    # frames: the stored ones nearest to 0.5 s and 1.0 s around the window's centre (stored at 0.6875, 0.9375,
    # 1.1875, 1.4375 s: positions 0 and 1, the earlier on a tie), through the evaluation transform
    stored = {s["vid"]: s["frames"] for e in read_manifest(shard_root / "val")["shards"]
              for s in iter_shard(shard_root / "val" / e["name"])}
    item = items[0]
    want = frame_transform(32, train=False)(torch.from_numpy(stored[item["vid"][0]][[0, 1]]).permute(0, 3, 1, 2))
    assert torch.equal(item["frames"][0], want.transpose(0, 1))


def test_short_clips_are_zero_padded_and_training_draws_vary(shard_root):
    long = dict(KW, num_samples=24000)  # a 3 s window on 2 s clips
    item = next(iter(SeparationShardStream(str(shard_root / "val"), train=False, **long)))
    assert item["lengths"].tolist() == [16000, 16000] and item["start"].tolist() == [0.0, 0.0]
    assert float(item["audios"][:, 16000:].abs().max()) == 0.0 and float(item["audios"][:, :16000].abs().max()) > 0
    stream = SeparationShardStream(str(shard_root / "train"), train=True, mixes_per_clip=2, gain_jitter=0.5, seed=1,
                                   batch_size=4, **KW)
    items = list(stream)
    assert len(items) == len(stream) == 24
    starts = torch.stack([i["start"] for i in items])
    assert float(starts.min()) >= 0 and float(starts.max()) <= 1.0 and len(set(starts.flatten().tolist())) > 10
    assert len({i["vid"][0] for i in items[:4]}) >= 3  # a batch mixes many first clips
    assert all(i["vid"][0] != i["vid"][1] for i in items)


def test_evaluation_is_deterministic_and_ranks_and_workers_are_disjoint(shard_root):
    def read(workers, rank=0, world=1):
        stream = SeparationShardStream(str(shard_root / "val"), train=False, seed=3, **KW)
        stream.split_across_ranks(rank, world)
        loader = DataLoader(stream, batch_size=2, collate_fn=collate_mixtures, num_workers=workers)
        return [(tuple(v), a) for b in loader for v, a in zip(b["vid"], b["audios"])]

    first, again = read(2), read(2)
    assert [v for v, _ in first] == [v for v, _ in again]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(first, again))
    # evaluation mixtures do not depend on who reads them: one process, or 2 ranks with a share each
    fingerprint = sorted((v, a.numpy().tobytes()) for v, a in first)
    assert sorted((v, a.numpy().tobytes()) for v, a in read(0)) == fingerprint
    shares = [read(1, rank, 2) for rank in range(2)]
    assert all(shares) and not {m[0] for m, _ in shares[0]} & {m[0] for m, _ in shares[1]}
    assert sorted((v, a.numpy().tobytes()) for share in shares for v, a in share) == fingerprint
    for epoch in (0, 1):
        seen = []
        for rank in range(2):
            stream = SeparationShardStream(str(shard_root / "train"), rank=rank, world_size=2, shuffle=4, **KW)
            stream.set_epoch(epoch)
            loader = DataLoader(stream, batch_size=1, collate_fn=collate_mixtures, num_workers=2)
            mixtures = [v for b in loader for v in b["vid"]]
            assert len(mixtures) == len(stream) == 6
            seen.append(mixtures)
        firsts = [[m[0] for m in s] for s in seen]
        assert sorted(firsts[0] + firsts[1]) == sorted(_vids(shard_root / "train"))
        # partners come from the same worker's shards: no clip is read by both ranks
        assert not {v for m in seen[0] for v in m} & {v for m in seen[1] for v in m}


def test_corrupt_member_is_skipped_and_counted(shard_root, tmp_path):
    folder = tmp_path / "val"
    shutil.copytree(shard_root / "val", folder)
    bad = _corrupt_member(folder / read_manifest(folder)["shards"][0]["name"], ".audio.npy")
    batches = list(DataLoader(SeparationShardStream(str(folder), train=False, **KW), batch_size=2,
                              collate_fn=collate_mixtures))
    skipped = [s for b in batches for s in b["skipped"]]
    assert [v for v, _ in skipped] == [bad] and "not a readable .npy" in skipped[0][1]
    mixtures = [v for b in batches for v in b["vid"]]
    assert len(mixtures) == 5 and bad not in {v for m in mixtures for v in m}
    with pytest.raises(ShardError, match="8000 Hz, the model takes 11025 Hz"):
        SeparationShardStream(str(folder), **dict(KW, sample_rate=11025))
