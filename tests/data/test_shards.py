"""Shards: written by data_tools.make_shards, read back by avcorr.data.shards against the per-sample decoders."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from avcorr.data import decode
from avcorr.data.layout import Clip, load_split
from avcorr.data.shard_writer import ShardOptions, clip_members, shard_frame_indices
from avcorr.data.shards import (
    ShardDataset,
    ShardError,
    decode_sample,
    file_sha256,
    iter_shard,
    read_manifest,
    verify_shards,
)
from avcorr.data.transforms import resize_centre_crop
from data_tools import make_shards as ms

SPLIT = "val"  # 6 clips of 2 s, 48 px, 16 kHz mono PCM16


def _shards(folder: Path) -> list[Path]:
    return [folder / e["name"] for e in read_manifest(folder)["shards"]]


def _samples(folder: Path) -> list[dict]:
    return [s for path in _shards(folder) for s in iter_shard(path)]


def _expected_frames(clip: Clip, times, size: int) -> np.ndarray:
    frames = decode.read_frames(clip.video, list(times)).permute(0, 2, 3, 1).numpy()
    return np.stack([resize_centre_crop(np.ascontiguousarray(f), size) for f in frames])


def _audio_source(clip: Clip) -> Path:
    return clip.audio if clip.audio is not None else clip.video


@pytest.fixture(scope="module")
def jpeg_shards(tiny_root, tmp_path_factory) -> Path:
    """The val split as JPEG + int16 shards at the source rate, one clip per shard (6 shards)."""
    out = tmp_path_factory.mktemp("jpeg")
    ms.shard_split(load_split(tiny_root, SPLIT), out, ShardOptions(frames_per_clip=2, size=64, sample_rate=16000),
                   clips_per_shard=1)
    return out / SPLIT


def test_raw_shards_read_back_bit_exactly(tiny_root, tmp_path):
    index = load_split(tiny_root, SPLIT)
    options = ShardOptions(frames_per_clip=3, size=20, sample_rate=8000, format="raw", audio_dtype="float32")
    summary = ms.shard_split(index, tmp_path, options, clips_per_shard=4, workers=2)
    folder = tmp_path / SPLIT
    assert (summary.shards, summary.written, summary.clips, summary.skipped) == (2, 2, 6, [])
    manifest = read_manifest(folder)
    assert manifest["settings"]["format"] == "raw" and manifest["avcorr_version"]
    assert [len(e["clips"]) for e in manifest["shards"]] == [4, 2]
    assert not (folder / ms.PROGRESS_FILE).exists()
    samples = _samples(folder)
    clips = {c.vid: c for c in index.clips}
    assert [s["vid"] for s in samples] == [c.vid for c in index.clips]
    for s in samples:
        clip = clips[s["vid"]]
        assert s["frames"].dtype == np.uint8 and s["frames"].shape == (3, 20, 20, 3)
        np.testing.assert_array_equal(s["frames"], _expected_frames(clip, s["frame_times"], 20))
        # the frames are those whose 1 s window fits in the 2 s of audio, evenly spaced
        fps = s["fps"]
        assert all(0.5 <= t - 0.0 and t + 0.5 <= s["audio_duration"] for t in s["frame_times"])
        np.testing.assert_allclose(s["frame_times"], [(k + 0.5) / fps for k in s["frame_indices"]])
        assert s["audio"].dtype == np.float32
        np.testing.assert_array_equal(s["audio"], decode.read_audio(_audio_source(clip), 0.0, None, 8000).numpy())
        assert s["sample_rate"] == 8000 and s["audio_start"] == 0.0
        assert s["labels"] == list(clip.labels) and s["label_indices"] == index.label_indices(clip)
        assert s["boxes"] == [list(b) for b in clip.boxes] and s["boxes"]
        assert s["crop"] == [0.0, 0.0, 1.0, 1.0]  # square frames: nothing cropped
        assert s["source"]["video"] == f"{SPLIT}/video/{clip.vid}.mp4"


def test_jpeg_frames_within_psnr_and_int16_audio_exact_at_the_source_rate(tiny_root, jpeg_shards):
    clips = {c.vid: c for c in load_split(tiny_root, SPLIT).clips}
    samples = _samples(jpeg_shards)
    assert sorted(s["vid"] for s in samples) == sorted(clips)
    for s in samples:
        clip = clips[s["vid"]]
        want = _expected_frames(clip, s["frame_times"], 64).astype(np.float64)
        mse = np.mean((s["frames"].astype(np.float64) - want) ** 2)
        # quality 90, 4:2:0 chroma; a neighbouring frame is at 24-31 dB
        assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 30
        # 16-bit mono PCM at the stored rate: int16 storage loses nothing
        np.testing.assert_array_equal(s["audio"], decode.read_audio(_audio_source(clip), 0.0, None, 16000).numpy())
    # decode only some frames
    one = next(iter_shard(_shards(jpeg_shards)[0], frames=lambda meta: [meta["frames"]["count"] - 1]))
    np.testing.assert_array_equal(one["frames"], samples[0]["frames"][1:])
    assert list(one["frame_times"]) == list(samples[0]["frame_times"][1:])
    assert one["frame_indices"] == samples[0]["frame_indices"][1:]
    with tarfile.open(_shards(jpeg_shards)[0]) as tar:
        vid = samples[0]["vid"]
        assert tar.getnames() == [f"{vid}.json", f"{vid}.000.jpg", f"{vid}.001.jpg", f"{vid}.audio.npy"]
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_wide_video_is_centre_cropped_and_its_audio_track_used(tmp_path):
    from tests.media import make_video

    video = make_video(tmp_path / "-wide.mp4", duration=2.0, fps=10, size=(64, 32), audio_sr=16000,
                       audio_seconds=3.0)
    clip = Clip("-wide", ("Violin",), video, None, ((0.1, 0.2, 0.3, 0.4),))
    members = dict(clip_members(clip, ShardOptions(frames_per_clip=4, size=16, sample_rate=16000, format="raw",
                                                   audio_dtype="float32"), root=tmp_path))
    assert list(members) == ["-wide.json", "-wide.frames.npy", "-wide.audio.npy"]
    s = decode_sample("-wide", {k.split(".", 1)[1]: v for k, v in members.items()})
    assert s["crop"] == [0.25, 0.0, 0.75, 1.0] and s["video_size"] == [64, 32]
    assert s["source"] == {"video": "-wide.mp4", "audio": "-wide.mp4"}
    # audio (3 s) longer than video (2 s): every frame is a frame of the video
    assert max(s["frame_indices"]) <= 19 and s["frame_times"][-1] < 2.0
    np.testing.assert_array_equal(s["frames"], _expected_frames(clip, s["frame_times"], 16))
    np.testing.assert_array_equal(s["audio"], decode.read_audio(video, 0.0, None, 16000).numpy())
    # --seconds 1: one second of audio around the middle of the usable frames, the frames inside it
    members = dict(clip_members(clip, ShardOptions(frames_per_clip=2, size=16, sample_rate=16000, seconds=1.0,
                                                   window=0.5, format="raw", audio_dtype="float32")))
    s = decode_sample("-wide", {k.split(".", 1)[1]: v for k, v in members.items()})
    assert s["audio"].shape == (16000,) and 0.0 < s["audio_start"] < 1.0
    np.testing.assert_array_equal(s["audio"], decode.read_audio(video, s["audio_start"], 1.0, 16000).numpy())
    assert all(s["audio_start"] + 0.25 <= t <= s["audio_start"] + 0.75 for t in s["frame_times"])


def test_frame_indices():
    # 10 s at 10 fps, 10 s of audio, 1 s window: frames 5..94 usable, 10 evenly spaced
    idx, start = shard_frame_indices(10.0, 100, 10.0, 10, 1.0)
    assert start == 0.0 and idx == [9, 18, 27, 36, 45, 54, 63, 72, 81, 90]
    assert shard_frame_indices(10.0, 100, 10.0, 1, 1.0)[0] == [50]
    # audio longer than the video: frames stay inside the video
    assert max(shard_frame_indices(10.0, 20, 30.0, 5, 1.0)[0]) <= 19
    # more frames wanted than usable: repeats
    assert shard_frame_indices(10.0, 4, 0.4, 6, 1.0)[0] == [0, 1, 1, 2, 3, 3]
    # --seconds 2 of a 10 s clip: the 2 s around the middle, frames whose window fits in them
    idx, start = shard_frame_indices(10.0, 100, 10.0, 3, 1.0, seconds=2.0)
    assert start == pytest.approx(4.0) and all(45 <= k <= 54 for k in idx)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_killed_run_resumes(tiny_root, tmp_path, monkeypatch):
    index = load_split(tiny_root, SPLIT)
    options = ShardOptions(frames_per_clip=2, size=16, sample_rate=8000)
    folder = tmp_path / SPLIT
    calls = {"n": 0}
    real = ms.clip_members

    def dies_on_the_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(ms, "clip_members", dies_on_the_fifth)
    with pytest.raises(RuntimeError, match="killed"):
        ms.shard_split(index, tmp_path, options, clips_per_shard=2)
    assert sorted(p.name for p in folder.glob("shard-*")) == ["shard-000000.tar", "shard-000001.tar"]
    assert not (folder / "manifest.json").exists() and (folder / ms.PROGRESS_FILE).exists()
    monkeypatch.setattr(ms, "clip_members", real)
    kept = {p.name: (p.stat().st_mtime_ns, file_sha256(p)) for p in folder.glob("shard-*.tar")}
    stale = folder / f".shard-000002.tar.tmp{_dead_pid()}"
    stale.write_bytes(b"half a shard")

    summary = ms.shard_split(index, tmp_path, options, clips_per_shard=2)
    assert (summary.shards, summary.written, summary.clips) == (3, 1, 6)
    assert {n: (folder / n).stat().st_mtime_ns for n in kept} == {n: v[0] for n, v in kept.items()}
    assert not stale.exists() and not (folder / ms.PROGRESS_FILE).exists()
    manifest = read_manifest(folder)
    assert [e["name"] for e in manifest["shards"]] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [e["sha256"] for e in manifest["shards"][:2]] == [kept[n][1] for n in sorted(kept)]
    assert sum(len(e["clips"]) for e in manifest["shards"]) == 6 and verify_shards(folder) == []

    # a deleted shard is written again, byte for byte; the others are not touched
    last = folder / "shard-000002.tar"
    sha = file_sha256(last)
    last.unlink()
    assert ms.shard_split(index, tmp_path, options, clips_per_shard=2).written == 1
    assert file_sha256(last) == sha and verify_shards(folder) == []
    assert ms.shard_split(index, tmp_path, options, clips_per_shard=2).written == 0


def test_other_options_are_an_error_unless_overwrite(tiny_root, tmp_path):
    index = load_split(tiny_root, SPLIT)
    ms.shard_split(index, tmp_path, ShardOptions(frames_per_clip=1, size=8, sample_rate=8000), clips_per_shard=3)
    with pytest.raises(ShardError, match="frames_per_clip: 1 there, 2 now"):
        ms.shard_split(index, tmp_path, ShardOptions(frames_per_clip=2, size=8, sample_rate=8000), clips_per_shard=3)
    ms.shard_split(index, tmp_path, ShardOptions(frames_per_clip=2, size=8, sample_rate=8000), clips_per_shard=6,
                   overwrite=True)
    assert [p.name for p in (tmp_path / SPLIT).glob("shard-*.tar")] == ["shard-000000.tar"]
    assert {s["frames"].shape for s in _samples(tmp_path / SPLIT)} == {(2, 8, 8, 3)}


def test_corrupt_shard_is_caught(jpeg_shards, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(jpeg_shards, folder)
    assert verify_shards(folder) == []
    shard = _shards(folder)[1]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify_shards(folder)
    assert len(problems) == 1 and shard.name in problems[0] and "sha256" in problems[0]
    cut = _shards(folder)[2]
    cut.write_bytes(cut.read_bytes()[:1500])
    assert len(verify_shards(folder)) == 2
    with pytest.raises(ShardError, match=cut.name):
        list(iter_shard(cut))


def test_bad_clips_are_skipped_and_listed(tiny_copy, tmp_path):
    from tests.media import make_nan_wav, make_non_media

    index = load_split(tiny_copy, SPLIT)
    broken_video, nan_audio = index.clips[1], index.clips[4]
    make_non_media(broken_video.video)
    make_nan_wav(nan_audio.audio, sr=16000, duration=2.0)
    summary = ms.shard_split(index, tmp_path, ShardOptions(frames_per_clip=1, size=8, sample_rate=16000),
                             clips_per_shard=2)
    assert summary.clips == 4 and [v for v, _ in summary.skipped] == [broken_video.vid, nan_audio.vid]
    with open(tmp_path / SPLIT / "skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["path"]) for r in rows] == [(broken_video.vid, str(broken_video.video)),
                                                    (nan_audio.vid, str(nan_audio.video))]
    assert rows[0]["reason"] and "NaN" in rows[1]["reason"] and str(nan_audio.audio) in rows[1]["reason"]
    manifest = read_manifest(tmp_path / SPLIT)
    assert manifest["num_skipped"] == 2
    stored = [v for e in manifest["shards"] for v in e["clips"]]
    assert stored == [c.vid for c in index.clips if c not in (broken_video, nan_audio)]
    assert sorted(s["vid"] for s in _samples(tmp_path / SPLIT)) == sorted(stored)


def test_shard_dataset_splits_ranks_and_workers(jpeg_shards):
    urls = [str(p) for p in _shards(jpeg_shards)]
    vids = [v for e in read_manifest(jpeg_shards)["shards"] for v in e["clips"]]
    assert len(urls) == 6
    # every (rank, worker) reads its own shards; together they are every shard once, every epoch
    for epoch in (0, 1):
        parts = [ShardDataset(urls, shuffle=3, seed=5, rank=r, world_size=2).shards_for(epoch, w, 2)
                 for r in range(2) for w in range(2)]
        flat = [u for p in parts for u in p]
        assert sorted(flat) == sorted(urls) and all(parts)
    epochs: list[list[list[str]]] = [[], []]  # epoch -> rank -> vids in reading order
    for rank in range(2):
        ds = ShardDataset(urls, shuffle=3, seed=5, rank=rank, world_size=2, transform=lambda s: s["vid"])
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        for epoch in (0, 1):
            ds.set_epoch(epoch)
            epochs[epoch].append(list(loader))
    for per_rank in epochs:  # each clip exactly once per epoch over the ranks
        assert sorted(v for vids_of_rank in per_rank for v in vids_of_rank) == sorted(vids)
    assert epochs[0] != epochs[1]  # a new epoch reshuffles
    again = ShardDataset(urls, shuffle=3, seed=5, rank=0, world_size=2, transform=lambda s: s["vid"])
    assert list(again) == list(ShardDataset(urls, shuffle=3, seed=5, rank=0, world_size=2,
                                            transform=lambda s: s["vid"]))  # seeded
    assert [s for s in ShardDataset(urls, transform=lambda s: s["vid"])] == vids  # no shuffle: the manifest order


def test_fsspec_urls(jpeg_shards):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for p in jpeg_shards.iterdir():
        fs.pipe(f"/shards-test/val/{p.name}", p.read_bytes())
    try:
        local = [s["vid"] for s in _samples(jpeg_shards)]
        ds = ShardDataset.from_manifest("memory://shards-test/val")
        remote = list(ds)
        assert [s["vid"] for s in remote] == local
        np.testing.assert_array_equal(remote[0]["frames"], _samples(jpeg_shards)[0]["frames"])
        assert [s["vid"] for s in iter_shard(f"file://{_shards(jpeg_shards)[0]}")] == local[:1]
    finally:
        fs.rm("/shards-test", recursive=True)


def test_webdataset_reads_the_shards(jpeg_shards):
    wds = pytest.importorskip("webdataset", reason="webdataset is not installed (optional check of the format)")
    ours = {s["vid"]: s for s in _samples(jpeg_shards)}
    urls = [str(p) for p in _shards(jpeg_shards)]
    theirs = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))
    assert sorted(s["__key__"] for s in theirs) == sorted(ours)
    for s in theirs:
        mine = ours[s["__key__"]]
        assert s["json"]["labels"] == mine["labels"] and s["json"]["boxes"] == mine["boxes"]
        frames = np.stack([s[f"{i:03d}.jpg"] for i in range(2)])
        assert frames.shape == mine["frames"].shape
        assert np.abs(frames.astype(int) - mine["frames"]).max() <= 2  # another JPEG decoder
        np.testing.assert_array_equal(s["audio.npy"].astype(np.float32) / 32768, mine["audio"])


def test_command_line(tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert ms.main([str(tiny_root), str(out), "--split", SPLIT, "--frames-per-clip", "1", "--size", "8",
                    "--sample-rate", "8000", "--shard-size", "0.01", "--workers", "0", "--no-progress"]) == 0
    assert "val: 6 clips in" in capsys.readouterr().out
    manifest = json.loads((out / SPLIT / "manifest.json").read_text())
    assert manifest["per_shard"] >= 1 and sum(len(e["clips"]) for e in manifest["shards"]) == 6
    assert ms.main([str(tiny_root), str(out), "--split", SPLIT, "--size", "9", "--no-progress"]) == 2
    assert "size: 8 there, 9 now" in capsys.readouterr().err
    assert ms.main([str(tiny_root), str(out), "--split", "nope", "--no-progress"]) == 2
    assert os.listdir(out) == [SPLIT]


def test_shuffle_buffer_holds_samples_as_read_and_decodes_them_as_they_leave(jpeg_shards, tmp_path, monkeypatch,
                                                                              caplog):
    import shutil

    from avcorr.data import shards
    from tests.data.test_avc_stream import _corrupt_member

    folder = tmp_path / "copy"
    shutil.copytree(jpeg_shards, folder)
    bad = _corrupt_member(_shards(folder)[2], ".audio.npy")  # found only when its arrays are decoded
    urls = [str(p) for p in _shards(folder)]

    def picker():  # one random frame per clip, drawn as the clips are read (as a training stream draws them)
        rng = np.random.default_rng(7)
        return lambda meta: [int(rng.integers(meta["frames"]["count"]))]

    def decode_first(key, members, where):  # the order of decoding every sample before the buffer
        try:
            return decode_sample(key, members, where, frames=pick)
        except ShardError as e:
            return shards.BadSample(key, str(e))

    pick, order = picker(), ShardDataset(urls, shuffle=3, seed=5).shards_for(1)  # epoch 1's shard order
    expected = list(shards._buffer_shuffle((s for u in order for s in iter_shard(u, decode=decode_first)), 3,
                                           np.random.default_rng([5, 1, 0, 0])))
    counts = {"read": 0, "decoded": 0}
    real_json, real_arrays = shards._sample_json, shards._decode_arrays

    def count(name, real):
        def wrapped(*args):
            counts[name] += 1
            return real(*args)
        return wrapped

    monkeypatch.setattr(shards, "_sample_json", count("read", real_json))
    monkeypatch.setattr(shards, "_decode_arrays", count("decoded", real_arrays))
    got = ShardDataset(urls, shuffle=3, seed=5, skip_errors=True).samples(1, frames=picker())
    first = next(got)
    assert counts == {"read": 4, "decoded": 1}  # 3 clips wait in the buffer as read, the one that left is decoded
    with caplog.at_level("WARNING", logger="avcorr.data.shards"):
        got = [first, *got]
    assert [getattr(s, "vid", None) or s["vid"] for s in got] == [getattr(s, "vid", None) or s["vid"] for s in expected]
    for ours, theirs in zip(got, expected):
        if isinstance(theirs, shards.BadSample):  # the corrupt clip, in its place, found when it left the buffer
            assert ours == theirs and ours.vid == bad and "audio.npy: not a readable .npy" in ours.reason
            continue
        assert np.array_equal(ours["frames"], theirs["frames"]) and np.array_equal(ours["audio"], theirs["audio"])
        assert list(ours["frame_times"]) == list(theirs["frame_times"])
    assert sum(f"skipped sample {bad}" in r.getMessage() for r in caplog.records) == 1  # logged once
    assert counts == {"read": 6, "decoded": 6}
