"""Tagging data: the four sources, fixed-length windows, bad clips, collation and the two samplers."""

import json
import shutil

import numpy as np
import pytest
import torch

from avcorr.data.errors import LayoutError
from avcorr.data.tagging import (
    BalancedClassSampler,
    TaggingDataset,
    WeightedClipSampler,
    ast_json_source,
    collate_tagging,
    folder_source,
    hdf5_source,
    label_rarity_weights,
    layout_source,
    layout_to_folders,
    open_source,
    read_weight_file,
)
from tests.media import make_audio, make_nan_wav, make_video
from tests.media import make_wav as _make_wav


def make_wav(path, *args, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    return _make_wav(path, *args, **kwargs)


def _noise(seed, sr=16000, seconds=1.0):
    return (np.random.default_rng(seed).uniform(-0.3, 0.3, int(sr * seconds))).astype(np.float32)


@pytest.fixture()
def folder_root(tmp_path):
    """cat/ dog/ pig/ with distinct contents; one clip copied into cat/ and dog/; dog/001.wav vs pig/001.wav differ."""
    root = tmp_path / "animals"
    for k, cls in enumerate(["cat", "dog", "pig"]):
        for i in range(6):
            make_wav(root / cls / f"{cls}{i}.wav", _noise(100 * k + i), 16000)
    make_wav(root / "dog" / "001.wav", _noise(7), 16000)
    make_wav(root / "pig" / "001.wav", _noise(8), 16000)
    shutil.copyfile(root / "cat" / "cat0.wav", root / "dog" / "cat0_copy.wav")
    make_wav(root / "pig" / "nested" / "deep.wav", _noise(9), 16000)
    (root / "pig" / "notes.txt").write_text("not audio")
    return root


def test_folder_hash_split_duplicates_and_determinism(folder_root):
    tr = folder_source(folder_root, "train", val_fraction=0.3)
    va = folder_source(folder_root, "val", val_fraction=0.3)
    assert tr.classes == va.classes == ["cat", "dog", "pig"]
    vids = [c.vid for c in tr.clips + va.clips]
    assert len(vids) == len(set(vids)) == 3 * 6 + 2 + 1  # the copy is one clip; the two 001.wav are two
    both = [c for c in tr.clips + va.clips if len(c.labels) == 2]
    assert len(both) == 1 and tr.label_space.indices(both[0].labels) == (0, 1) and both[0].vid.startswith("cat/cat0")
    assert tr.is_multilabel and va.is_multilabel  # the hash split agrees on the mode for both splits
    assert any(c.vid == "pig/nested/deep.wav" for c in tr.clips + va.clips)
    assert 0 < len(va.clips) < len(tr.clips)
    # deterministic, and adding a file moves no other clip
    again = folder_source(folder_root, "val", val_fraction=0.3)
    assert [c.vid for c in again.clips] == [c.vid for c in va.clips]
    make_wav(folder_root / "cat" / "new.wav", _noise(55), 16000)
    after = {c.vid for c in folder_source(folder_root, "val", val_fraction=0.3).clips}
    assert {c.vid for c in va.clips} <= after
    with pytest.raises(LayoutError, match="no test/"):
        folder_source(folder_root, "test")
    with pytest.raises(LayoutError, match="not among"):
        folder_source(folder_root, "train", classes=["cat", "dog"])


def test_folder_explicit_splits(tmp_path):
    seed = 100  # every file different: the reader takes identical files in two classes for one multi-label clip
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                seed += 1
                make_wav(tmp_path / split / cls / f"{i}.wav", _noise(seed), 8000)
    make_wav(tmp_path / "val" / "c" / "0.wav", _noise(1), 8000)  # a class only in val still gets an index
    tr = folder_source(tmp_path, "train")
    va = folder_source(tmp_path, "val")
    assert tr.classes == va.classes == ["a", "b", "c"]
    assert len(tr.clips) == 6 and len(va.clips) == 5
    assert not tr.label_space.multilabel and not tr.is_multilabel  # this split's own clips
    with pytest.raises(LayoutError, match="does not exist"):
        folder_source(tmp_path, "test")


def test_layout_source_and_layout_to_folders(tiny_root, tmp_path):
    src = layout_source(tiny_root, "train")
    assert src.classes and len(src.clips) == 12 and not src.is_multilabel
    assert all(c.media.suffix == ".wav" for c in src.clips)
    out = tmp_path / "folders"
    counts = layout_to_folders(tiny_root, out)
    assert counts == {"train": 12, "val": 6, "test": 6}
    f = folder_source(out, "train")
    assert f.classes == sorted(src.classes) and len(f.clips) == 12
    with pytest.raises(FileExistsError):
        layout_to_folders(tiny_root, out)


@pytest.mark.ffmpeg
def test_window_crop_pad_resample_and_channels(tmp_path):
    sr = 8000
    t = np.arange(int(2.0 * 44100)) / 44100
    ramp = np.stack([np.sin(2 * np.pi * 440 * t) * 0.5, np.sin(2 * np.pi * 440 * t) * 0.1], axis=1).astype(np.float32)
    make_wav(tmp_path / "x" / "long.wav", ramp, 44100)  # 2 s stereo at 44.1 kHz
    make_wav(tmp_path / "x" / "short.wav", 330.0, 22050, duration=0.25)
    (tmp_path / "y").mkdir()
    make_audio(tmp_path / "y" / "coded.flac", 550.0, 16000, duration=1.5)
    src = folder_source(tmp_path, "train", val_fraction=0.0)
    ds_tr = TaggingDataset(src, sample_rate=sr, clip_samples=sr, train=True, multilabel=False)
    ds_ev = TaggingDataset(src, sample_rate=sr, clip_samples=sr, train=False, multilabel=False)
    ds_full = TaggingDataset(src, sample_rate=sr, clip_samples=sr, train=False, multilabel=False, eval_crop="full")
    i_long = next(i for i, c in enumerate(src.clips) if c.vid == "x/long.wav")
    i_short = next(i for i, c in enumerate(src.clips) if c.vid == "x/short.wav")
    for ds in (ds_tr, ds_ev):
        for i in range(len(ds)):
            item = ds[i]
            assert item["wave"].shape == (sr,) and item["wave"].dtype == torch.float32
            assert item["target"].sum() == 1 and item["label"] == int(item["target"].argmax())
    # short clip: zero padding at the end; long clip in eval: the centre second, channels averaged
    short = ds_ev[i_short]["wave"]
    assert short[: int(0.24 * sr)].abs().max() > 0.3 and short[int(0.26 * sr):].abs().max() == 0
    centre = ds_ev[i_long]["wave"].numpy()
    spectrum = np.abs(np.fft.rfft(centre))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1 Hz bins: resampled correctly
    assert np.abs(centre).max() == pytest.approx(0.3, abs=0.02)  # (0.5 + 0.1) / 2
    assert ds_full[i_long]["wave"].shape == (2 * sr,)
    # random training windows differ
    torch.manual_seed(0)
    w = [ds_tr[i_long]["wave"] for _ in range(4)]
    assert any(not torch.equal(w[0], x) for x in w[1:])
    # a short clip lands at a random place of the training window, whole
    starts = set()
    for _ in range(12):
        x = ds_tr[i_short]["wave"]
        nz = torch.nonzero(x.abs() > 1e-4).flatten()
        assert int(nz[-1] - nz[0]) == pytest.approx(0.25 * sr, abs=8)  # the whole quarter second
        starts.add(int(nz[0]))
    assert len(starts) > 6 and min(starts) < 0.3 * sr and max(starts) > 0.4 * sr


def test_bad_clips_skipped_and_counted(tmp_path):
    for i in range(4):
        make_wav(tmp_path / "a" / f"{i}.wav", _noise(i), 8000)
    make_nan_wav(tmp_path / "a" / "nan.wav", sr=8000, duration=1.0)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "empty.wav").write_bytes(b"")
    (tmp_path / "b" / "garbage.mp3").write_bytes(b"\x00 not audio" * 100)
    make_wav(tmp_path / "b" / "ok.wav", _noise(9), 8000)
    src = folder_source(tmp_path, "train", val_fraction=0.0)
    ev = TaggingDataset(src, sample_rate=8000, clip_samples=4000, train=False, multilabel=False)
    batch = collate_tagging([ev[i] for i in range(len(ev))])
    bad = {v for v, _ in batch["skipped"]}
    assert bad == {"a/nan.wav", "b/empty.wav", "b/garbage.mp3"}
    assert batch["wave"].shape == (5, 4000) and len(batch["vid"]) == 5 and torch.isfinite(batch["wave"]).all()
    tr = TaggingDataset(src, sample_rate=8000, clip_samples=4000, train=True, multilabel=False)
    seen = set()
    torch.manual_seed(1)
    for i in range(len(tr)):
        item = tr[i]
        assert item["vid"] not in bad  # a bad clip is replaced by another, never by zeros
        seen.update(v for v, _ in item["skipped"])
    assert seen == bad
    # a whole batch of bad clips collates to an empty batch
    empty = collate_tagging([ev[i] for i, c in enumerate(ev.clips) if c.vid in bad])
    assert empty["wave"].shape[0] == 0 and len(empty["skipped"]) == 3


def test_single_label_mode_rejects_multilabel_clips(folder_root):
    src = folder_source(folder_root, "train", val_fraction=0.0)
    with pytest.raises(LayoutError, match="label_mode"):
        TaggingDataset(src, sample_rate=16000, clip_samples=16000, train=True, multilabel=False)
    ds = TaggingDataset(src, sample_rate=16000, clip_samples=16000, train=True, multilabel=True)
    labels = [ds[i]["label"] for i in range(3)]
    assert labels == [-1, -1, -1]


def test_collate_pads_full_clips():
    items = [{"wave": torch.ones(5), "target": torch.tensor([1.0, 0]), "label": 0, "vid": "a", "skipped": []},
             {"wave": torch.ones(3), "target": torch.tensor([0, 1.0]), "label": 1, "vid": "b", "skipped": []}]
    b = collate_tagging(items)
    assert b["wave"].shape == (2, 5) and b["wave"][1, 3:].abs().sum() == 0
    assert b["label"].tolist() == [0, 1] and b["target"].shape == (2, 2)


def _write_pack(path, names, waves, targets, sr):
    import h5py

    with h5py.File(path, "w") as hf:
        hf.create_dataset("audio_name", data=np.array([n.encode() for n in names], dtype="S20"))
        hf.create_dataset("waveform", data=np.asarray(waves, dtype=np.int16))
        hf.create_dataset("target", data=np.asarray(targets, dtype=bool))
        hf.attrs.create("sample_rate", data=sr, dtype=np.int32)


def test_hdf5_pack_and_index(tmp_path):
    import h5py

    sr = 16000
    t = np.arange(sr) / sr
    waves = [(np.sin(2 * np.pi * f * t) * 0.5 * 32767).astype(np.int16) for f in (200, 400, 800)]
    targets = [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]
    _write_pack(tmp_path / "p.h5", ["Ya.wav", "Yb.wav", ""], waves, targets, sr)
    (tmp_path / "class_labels_indices.csv").write_text("index,mid,display_name\n0,/m/a,A\n1,/m/b,B\n2,/m/c,C\n3,/m/d,D\n")
    src = open_source("hdf5", tmp_path, "p.h5")
    assert src.classes == ["A", "B", "C", "D"] and src.num_rows == 3
    assert [src.label_space.indices(c.labels) for c in src.clips] == [(0, 3), (1,)] and len(src.skipped) == 1  # the empty row
    ds = TaggingDataset(src, sample_rate=8000, clip_samples=4000, train=False, multilabel=True)
    x = ds[1]["wave"].numpy()
    assert x.shape == (4000,) and np.argmax(np.abs(np.fft.rfft(x))) == pytest.approx(400 * 4000 / 8000, abs=1)
    assert ds[0]["target"].tolist() == [1, 0, 0, 1]
    assert [idx.tolist() for idx in ds.class_indices()] == [[0], [1], [], [0]]  # the balanced sampler's input
    # an index into the pack (relative hdf5_path) reads the same rows
    (tmp_path / "idx").mkdir()
    with h5py.File(tmp_path / "idx" / "i.h5", "w") as hw:
        hw.create_dataset("audio_name", data=np.array([b"Yb.wav"], dtype="S20"))
        hw.create_dataset("target", data=np.array([[0, 1, 0, 0]], dtype=bool))
        hw.create_dataset("hdf5_path", data=np.array([b"../p.h5"], dtype="S200"))
        hw.create_dataset("index_in_hdf5", data=np.array([1], dtype=np.int32))
    isrc = hdf5_source(tmp_path / "idx" / "i.h5", classes=["A", "B", "C", "D"])
    ids = TaggingDataset(isrc, sample_rate=8000, clip_samples=4000, train=False, multilabel=True)
    assert torch.allclose(ids[0]["wave"], ds[1]["wave"])
    with pytest.raises(LayoutError, match="4 columns"):
        hdf5_source(tmp_path / "p.h5", classes=["A", "B"])


def test_ast_json_source(tmp_path):
    make_wav(tmp_path / "wavs" / "a.wav", _noise(1), 16000)
    make_wav(tmp_path / "wavs" / "b.wav", _noise(2), 16000)
    csv = tmp_path / "labels.csv"
    csv.write_text('index,mid,display_name\n0,/m/dog,Dog\n1,/m/cat,"Cat, domestic"\n')
    doc = {"data": [{"wav": "wavs/a.wav", "labels": "/m/dog,/m/cat"},
                    {"wav": str(tmp_path / "wavs" / "b.wav"), "labels": "/m/cat"}]}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    src = ast_json_source(tmp_path / "d.json", label_csv=csv)
    assert src.classes == ["Dog", "Cat, domestic"] and [src.label_space.indices(c.labels) for c in src.clips] == [(0, 1), (1,)]
    assert [c.row for c in src.clips] == [0, 1] and src.is_multilabel
    assert TaggingDataset(src, sample_rate=16000, clip_samples=8000, train=False, multilabel=True)[0]["wave"].shape == (8000,)
    doc["data"].append({"wav": "wavs/a.wav", "labels": "/m/cow"})
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(LayoutError, match="entry 2"):
        ast_json_source(tmp_path / "bad.json", label_csv=csv)


@pytest.mark.ffmpeg
def test_layout_audio_from_video_track(tmp_path):
    root = tmp_path / "root"
    (root / "train" / "video").mkdir(parents=True)
    make_video(root / "train" / "video" / "vid1.mp4", duration=1.0, fps=8, size=(48, 48), audio_sr=16000)
    (root / "train" / "vid2genre.json").write_text(json.dumps({"vid1": "Tone"}))
    src = layout_source(root, "train")
    ds = TaggingDataset(src, sample_rate=16000, clip_samples=8000, train=False, multilabel=False)
    assert ds[0]["wave"].abs().max() > 0.01 and ds[0]["skipped"] == []


def test_balanced_sampler_balances_and_shards():
    targets = np.zeros((100, 3), bool)
    targets[:80, 0] = True  # a frequent class
    targets[80:95, 1] = True
    targets[95:, 2] = True  # a rare class
    s = BalancedClassSampler(targets, num_samples=300, seed=3, rank=0, world_size=1)
    order = np.array(list(s))
    per_class = targets[order].sum(0)
    assert per_class.tolist() == [100, 100, 100]
    s.set_epoch(1)
    assert not np.array_equal(np.array(list(s)), order)
    s.set_epoch(0)
    assert np.array_equal(np.array(list(s)), order)
    shards = [list(BalancedClassSampler(targets, num_samples=300, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 150
    merged = np.empty(300, dtype=int)
    merged[0::2], merged[1::2] = shards
    assert np.array_equal(merged, order)  # the ranks split one global order


def test_balanced_sampler_from_class_lists_matches_dense():
    rng = np.random.default_rng(0)
    targets = rng.random((500, 7)) < np.array([0.5, 0.2, 0.05, 0.01, 0.0, 0.3, 0.002])
    dense = BalancedClassSampler(targets, seed=4)
    per_class = [np.flatnonzero(targets[:, c]) for c in range(7)]
    for a, b in zip(dense.per_class, per_class):
        assert np.array_equal(a, b)
    sparse = BalancedClassSampler.from_class_lists(per_class, 500, seed=4)
    for epoch in (0, 3):
        dense.set_epoch(epoch)
        sparse.set_epoch(epoch)
        assert list(dense) == list(sparse) and len(sparse) == 500
    with pytest.raises(ValueError, match="at least one labelled clip"):
        BalancedClassSampler.from_class_lists([np.zeros(0, int)] * 3, 10)


def test_weighted_sampler_and_weights(tmp_path):
    targets = np.array([[1, 0], [1, 0], [1, 1], [0, 1]], bool)
    w = label_rarity_weights(targets)
    expected = np.array([1000 / 3.01, 1000 / 3.01, 1000 / 3.01 + 1000 / 2.01, 1000 / 2.01])
    np.testing.assert_allclose(w, expected)
    s = WeightedClipSampler([1.0, 0.0, 3.0], num_samples=4000, seed=0, rank=0, world_size=1)
    counts = np.bincount(list(s), minlength=3)
    assert counts[1] == 0 and counts[2] / counts[0] == pytest.approx(3.0, rel=0.15)
    s0 = list(WeightedClipSampler([1.0, 2.0], num_samples=11, seed=0, rank=0, world_size=2))
    s1 = list(WeightedClipSampler([1.0, 2.0], num_samples=11, seed=0, rank=1, world_size=2))
    assert len(s0) == len(s1) == 6
    f = tmp_path / "w.csv"
    np.savetxt(f, w, delimiter=",")
    np.testing.assert_allclose(read_weight_file(f, expected=4), w)
    with pytest.raises(LayoutError, match="4 weights for 3"):
        read_weight_file(f, expected=3)


def test_a_layout_is_not_taken_for_a_folder_per_class(tiny_root):
    with pytest.raises(LayoutError, match=r"an avcorr layout split.*tagging.format=layout"):
        folder_source(tiny_root, "val")
