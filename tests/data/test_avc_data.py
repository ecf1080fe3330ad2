import json

import numpy as np
import pytest
import torch

from avcorr.data import decode
from avcorr.data.avc import AVCPairDataset, collate_pairs
from avcorr.data.errors import BadClipError
from avcorr.data.layout import load_split


def _ds(root, split="train", **kw):
    args = dict(sample_rate=16000, seconds=1.0, image_size=32)
    args.update(kw)
    return AVCPairDataset(load_split(root, split), **args)


def test_positives_same_clip_negatives_other_clip(tiny_root):
    torch.manual_seed(0)
    ds = _ds(tiny_root, pairs_per_clip=6)
    labels = []
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert item["audio"].shape == (16000,) and torch.isfinite(item["audio"]).all()
        if item["label"] == 1:
            assert item["audio_vid"] == item["vid"]
        else:
            assert item["audio_vid"] != item["vid"]
        labels.append(int(item["label"]))
    assert 0.25 < np.mean(labels) < 0.75  # both kinds drawn, about half each


def test_clip_negatives_ignore_labels(tiny_copy):
    # relabel every clip with one class: label-free negatives still exist, class negatives cannot
    p = tiny_copy / "train" / "vid2genre.json"
    v2g = json.loads(p.read_text())
    p.write_text(json.dumps({k: "Same" for k in v2g}))
    (tiny_copy / "class_labels_indices.csv").unlink()
    torch.manual_seed(0)
    ds = _ds(tiny_copy, negatives="clip", positive_fraction=0.0)
    assert all(ds[i]["label"] == 0 and ds[i]["audio_vid"] != ds[i]["vid"] for i in range(4))
    ds = _ds(tiny_copy, negatives="class", positive_fraction=0.0)
    with pytest.raises(RuntimeError, match="negative"):
        ds[0]


def test_class_negatives_use_other_classes(tiny_root):
    torch.manual_seed(0)
    ds = _ds(tiny_root, negatives="class", positive_fraction=0.0, pairs_per_clip=3)
    label = {c.vid: c.labels for c in ds.clips}
    for i in range(len(ds)):
        item = ds[i]
        assert not set(label[item["vid"]]) & set(label[item["audio_vid"]])


def test_audio_is_centred_on_a_frame_time_and_matches_file(tiny_root):
    torch.manual_seed(0)
    ds = _ds(tiny_root, augment=False)
    clips = {c.vid: c for c in ds.clips}
    for i in range(6):
        item = ds[i]
        fps = decode.probe_video(clips[item["vid"]].video).fps
        t = float(item["time"])
        k = t * fps - 0.5
        assert abs(k - round(k)) < 1e-4  # the centre of a frame's display interval
        assert 0.5 - 1e-6 <= t <= 2.0 - 0.5 + 1e-6  # the 1 s window lies inside the 2 s clip
        if item["label"] == 1:
            ref = decode.read_audio(clips[item["vid"]].audio, t - 0.5, 1.0, 16000)
            assert torch.allclose(item["audio"], ref, atol=1e-6)


def test_eval_pairs_are_deterministic_and_balanced(tiny_root):
    a = _ds(tiny_root, "val", train=False, pairs_per_clip=4)
    b = _ds(tiny_root, "val", train=False, pairs_per_clip=4)
    items_a = [a[i] for i in range(len(a))]
    items_b = [b[i] for i in range(len(b))]
    for x, y in zip(items_a, items_b):
        assert x["vid"] == y["vid"] and x["audio_vid"] == y["audio_vid"] and float(x["time"]) == float(y["time"])
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["audio"], y["audio"])
    assert sum(int(x["label"]) for x in items_a) == len(items_a) // 2


def test_collate(tiny_root):
    ds = _ds(tiny_root, "val", train=False)
    batch = collate_pairs([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32) and batch["audio"].shape == (3, 16000)
    assert batch["label"].dtype == torch.int64 and len(batch["vid"]) == 3 and batch["skipped"] == []


@pytest.mark.ffmpeg
def test_short_audio_is_padded_not_dropped(tmp_path):
    from tests.media import make_video

    root = tmp_path / "r"
    (root / "train" / "video").mkdir(parents=True)
    for vid in ("aaaaaaaaaaa", "-bbbbbbbbbb"):
        make_video(root / "train" / "video" / f"{vid}.mp4", duration=0.6, fps=10, size=(40, 30), audio_sr=8000)
    (root / "train" / "vid2genre.json").write_text(json.dumps({"aaaaaaaaaaa": "x", "-bbbbbbbbbb": "y"}))
    torch.manual_seed(0)
    ds = _ds(root, image_size=24)
    item = ds[0]  # audio comes from the mp4 track, resampled 8 kHz -> 16 kHz, padded to 1 s
    assert item["audio"].shape == (16000,)
    assert item["audio"][:4000].abs().sum() > 0


def test_one_frame_video_with_long_audio_is_said(tmp_path, caplog):
    from tests.media import make_video

    root = tmp_path / "r"
    (root / "train" / "video").mkdir(parents=True)
    make_video(root / "train" / "video" / "aaaaaaaaaaa.mp4", duration=0.1, fps=10, size=(40, 30), audio_sr=8000,
               audio_seconds=3.0)  # one frame, 3 s of audio
    make_video(root / "train" / "video" / "bbbbbbbbbbb.mp4", duration=1.0, fps=10, size=(40, 30), audio_sr=8000)
    (root / "train" / "vid2genre.json").write_text(json.dumps({"aaaaaaaaaaa": "x", "bbbbbbbbbbb": "y"}))
    ds = _ds(root, image_size=24)
    with caplog.at_level("WARNING"):
        ds[0], ds[1]
    said = [r.getMessage() for r in caplog.records if "frame(s)" in r.getMessage()]
    assert len(said) == 1 and "aaaaaaaaaaa" in said[0] and "1 frame(s)" in said[0] and "3.0" in said[0]


def test_too_few_clips_is_a_clear_error(tmp_path):
    root = tmp_path / "r"
    (root / "train" / "audio").mkdir(parents=True)
    (root / "train" / "vid2genre.json").write_text(json.dumps({"aaaaaaaaaaa": "x"}))
    with pytest.raises(BadClipError, match="at least 2 usable clips"):
        _ds(root)


def test_open_readers_stay_within_count_and_memory_budget(tiny_root):
    from avcorr.data._clip_media import ClipMedia

    clips = load_split(tiny_root, "train").clips
    media = ClipMedia(open_readers=2)
    for clip in clips[:4]:
        media.info(clip)
        assert media.frames(clip, [0.05]).shape[0] == 1
    assert list(media._readers) == [c.vid for c in clips[2:4]]  # least recently used closed first
    tiny = ClipMedia(reader_budget_mb=1e-6)  # below one reader's estimate: only the newest stays open
    for clip in clips[:3]:
        tiny.frames(clip, [0.05])
    assert list(tiny._readers) == [clips[2].vid] and tiny._held == pytest.approx(tiny._readers[clips[2].vid][1])
    tiny.drop(clips[2].vid)
    assert not tiny._readers and tiny._held == pytest.approx(0.0)
    unlimited = ClipMedia()
    for clip in clips:
        unlimited.frames(clip, [0.05])
    assert len(unlimited._readers) == len(clips)  # small clips: all fit in the default budget
