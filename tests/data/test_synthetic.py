"""Tests for the embedded synthetic audio-visual dataset (tiny sizes: 3 classes, 1 s, 64 px, 16 kHz)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from avcorr.data import synthetic
from avcorr.data.layout import load_split
from avcorr.data.synthetic import (
    CLASSES,
    SPLITS,
    clip_id,
    ensure_default_dataset,
    is_synthetic_dataset,
    make_synthetic,
    plan_clip,
    render_clip,
    visible_labels,
)

needs_ffmpeg = pytest.mark.ffmpeg  # skipped with the reason where ffmpeg/ffprobe are missing (tests/conftest.py)

TINY = dict(num_classes=3, clips_per_class=(2, 1, 1), duration=1.0, fps=10, size=64, sample_rate=16000)
ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset made with a worker pool."""
    return make_synthetic(tmp_path_factory.mktemp("syn") / "root", seed=0, workers=2, **TINY)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ffprobe_streams(path: Path) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)["streams"]


# ----------------------------------------------------------------------------- layout on disk


@needs_ffmpeg
def test_layout_is_complete(tiny_root: Path) -> None:
    with open(tiny_root / "class_labels_indices.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "mid", "display_name"]
    assert rows[1:] == [[str(i), c.mid, c.display_name] for i, c in enumerate(CLASSES[:3])]
    assert all(row[1].startswith("/syn/") for row in rows[1:])

    meta = _load(tiny_root / "meta.json")
    assert meta["version"] == synthetic.SYNTHETIC_VERSION
    assert meta["params"]["clips_per_class"] == [2, 1, 1] and meta["params"]["sample_rate"] == 16000
    assert [c["display_name"] for c in meta["classes"]] == ["Violin", "Flute", "Drum"]
    assert is_synthetic_dataset(tiny_root, seed=0, **TINY)
    assert not is_synthetic_dataset(tiny_root, seed=1, **TINY)

    all_ids = []
    for split, per_class in zip(SPLITS, TINY["clips_per_class"]):
        folder = tiny_root / split
        genre = _load(folder / "vid2genre.json")
        boxes = _load(folder / "boxes.json")
        assert len(genre) == per_class * 3
        assert sorted(genre.values()) == sorted(["Violin", "Flute", "Drum"] * per_class)
        assert set(boxes) == set(genre)
        assert {p.stem for p in (folder / "audio").glob("*.wav")} == set(genre)
        assert {p.stem for p in (folder / "video").glob("*.mp4")} == set(genre)
        all_ids += list(genre)
    assert all(ID_RE.match(v) for v in all_ids)
    assert len(set(all_ids)) == len(all_ids)
    assert any(v.startswith("-") for v in all_ids)
    # nothing temporary left: no dot-files inside, no temp folder beside it
    assert not [p for p in tiny_root.rglob(".*")]
    assert [p.name for p in tiny_root.parent.iterdir()] == ["root"]


@needs_ffmpeg
def test_media_streams_and_wav_format(tiny_root: Path) -> None:
    for split in SPLITS:
        for vid in _load(tiny_root / split / "vid2genre.json"):
            with wave.open(str(tiny_root / split / "audio" / f"{vid}.wav"), "rb") as f:
                header = (f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes())
                assert header == (1, 2, 16000, 16000), vid
    mp4 = next((tiny_root / "train" / "video").glob("-*.mp4"))  # an id starting with '-' is no ffmpeg option
    streams = {s["codec_type"]: s for s in _ffprobe_streams(mp4)}
    video, audio = streams["video"], streams["audio"]
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert (video["width"], video["height"]) == (64, 64)
    assert int(video["nb_read_frames"]) == 10
    assert video["avg_frame_rate"] == "10/1"
    assert audio["codec_name"] == "aac" and int(audio["sample_rate"]) == 16000 and audio["channels"] == 1
    assert float(audio["duration"]) == pytest.approx(1.0, abs=0.1)


@needs_ffmpeg
def test_boxes_are_normalised_and_ordered(tiny_root: Path) -> None:
    for split in SPLITS:
        for vid, boxes in _load(tiny_root / split / "boxes.json").items():
            assert len(boxes) == 1, vid
            x1, y1, x2, y2 = boxes[0]
            assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0, (vid, boxes)
            assert 0.45 <= x2 - x1 <= 0.71 and 0.45 <= y2 - y1 <= 0.71, (vid, boxes)  # 55-70 % of the side
            # off-centre (the box centre differs from the object's by < 0.07 of its size for these shapes)
            assert np.hypot((x1 + x2) / 2 - 0.5, (y1 + y2) / 2 - 0.5) >= 0.2 - 0.05, (vid, boxes)


@needs_ffmpeg
def test_files_hold_the_rendered_clip(tiny_root: Path) -> None:
    genre = _load(tiny_root / "train" / "vid2genre.json")
    boxes = _load(tiny_root / "train" / "boxes.json")
    clip = render_clip(0, "train", 4, **{k: v for k, v in TINY.items() if k != "clips_per_class"})
    assert clip.vid in genre and genre[clip.vid] == clip.label == CLASSES[4 % 3].display_name
    np.testing.assert_allclose(boxes[clip.vid][0], clip.box, atol=1e-5)
    with wave.open(str(tiny_root / "train" / "audio" / f"{clip.vid}.wav"), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(pcm, np.rint(clip.audio * 32767).astype(np.int16))


@needs_ffmpeg
def test_deterministic_and_seed_dependent(tiny_root: Path, tmp_path: Path) -> None:
    same = make_synthetic(tmp_path / "same", seed=0, workers=1, **TINY)  # other worker count: same data
    other = make_synthetic(tmp_path / "other", seed=1, workers=1, **TINY)
    for split in SPLITS:
        assert _load(same / split / "vid2genre.json") == _load(tiny_root / split / "vid2genre.json")
        assert _load(same / split / "boxes.json") == _load(tiny_root / split / "boxes.json")
        for wav in (tiny_root / split / "audio").glob("*.wav"):
            assert (same / split / "audio" / wav.name).read_bytes() == wav.read_bytes()
        assert set(_load(other / split / "vid2genre.json")).isdisjoint(_load(tiny_root / split / "vid2genre.json"))
    a = render_clip(0, "val", 1, **{k: v for k, v in TINY.items() if k != "clips_per_class"})
    b = render_clip(1, "val", 1, **{k: v for k, v in TINY.items() if k != "clips_per_class"})
    assert a.label == b.label  # the class comes from the index
    assert not np.array_equal(a.audio, b.audio) and not np.array_equal(a.frames, b.frames)
    assert not np.allclose(a.box, b.box)


# ----------------------------------------------------------------------------- visible.json

CLIP_KW = {k: v for k, v in TINY.items() if k != "clips_per_class"}  # render_clip's keyword arguments


def _digest(root: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0" + (root / name).read_bytes())
    return h.hexdigest()


@needs_ffmpeg
def test_other_files_are_those_written_before_visible_json(tiny_root: Path) -> None:
    """Adding visible.json changed no other file: the index files hash as the generator wrote them before
    (commit 7b9e4a4, the same build; its wav/mp4 files were byte-identical too, checked once by hand), and the
    folder holds only visible.json more."""
    names = ["meta.json", "class_labels_indices.csv"] + [f"{s}/{f}" for s in SPLITS for f in ("vid2genre.json",
                                                                                             "boxes.json")]
    assert _digest(tiny_root, names) == "8d518a5090fafab9f245c3952408ee5755f53bb365f2e922b2e88921a13bb4c3"
    for split in SPLITS:
        assert sorted(p.name for p in (tiny_root / split).iterdir()) == ["audio", "boxes.json", "vid2genre.json",
                                                                         "video", "visible.json"]


@needs_ffmpeg
def test_visible_json_lists_the_sounding_class_then_the_silent_ones(tiny_root: Path) -> None:
    silent, params = 0, _load(tiny_root / "meta.json")["params"]
    for split in SPLITS:
        genre = _load(tiny_root / split / "vid2genre.json")
        visible = _load(tiny_root / split / "visible.json")
        assert list(visible) == list(genre)  # the same ids, in clip order
        for index, vid in enumerate(genre):
            plan = plan_clip(params, split, index)
            names = [CLASSES[c].display_name for c in plan.distractors]
            assert plan.vid == vid and visible[vid] == [genre[vid], *names], (split, index)
            silent += len(names)
    assert silent > 0  # some clips have silent objects (distractor_prob 0.5)
    assert load_split(tiny_root, "train").visible is not None


def test_plan_clip_is_the_rendered_scene() -> None:
    kw = dict(CLIP_KW, num_classes=len(CLASSES), max_distractors=3, distractor_prob=0.9)
    params = dict(kw, seed=4, clips_per_class=(1, 1, 1))
    for index in range(6):
        clip, plan = render_clip(4, "val", index, **kw), plan_clip(params, "val", index)
        assert (plan.vid, plan.class_index, plan.label, plan.distractors) == (
            clip.vid, clip.class_index, clip.label, clip.distractors)
        np.testing.assert_array_equal(plan.box, clip.box)
    assert plan_clip(params, "val", 2, class_index=0).class_index == 0
    with pytest.raises(ValueError, match="split"):
        plan_clip(params, "dev", 0)
    with pytest.raises(ValueError, match="num_classes"):
        plan_clip(dict(params, num_classes=0), "val", 0)


def _without_visible(root: Path, dst: Path) -> Path:
    shutil.copytree(root, dst)
    for split in SPLITS:
        (dst / split / "visible.json").unlink()
    return dst


@needs_ffmpeg
def test_write_visible_replays_an_old_dataset(tiny_root: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from data_tools import write_visible

    old = _without_visible(tiny_root, tmp_path / "old")
    assert write_visible.main([str(old)]) == 0
    assert "val/visible.json: 3 clips" in capsys.readouterr().out
    for split in SPLITS:
        assert (old / split / "visible.json").read_bytes() == (tiny_root / split / "visible.json").read_bytes()
    meta = _load(old / "meta.json")
    assert visible_labels(meta) == {s: _load(tiny_root / s / "visible.json") for s in SPLITS}
    # a box that the replay does not give: the folder was made by other code, refused
    boxes = _load(old / "val" / "boxes.json")
    vid = next(iter(boxes))
    boxes[vid][0][0] += 0.01
    (old / "val" / "boxes.json").write_text(json.dumps(boxes))
    assert write_visible.main([str(old)]) == 2
    assert f"boxes.json: clip {vid!r}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="version 3"):
        visible_labels(dict(meta, version=3))


@needs_ffmpeg
def test_complete_dataset_without_visible_json_gets_it_and_nothing_else(
        tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    old = _without_visible(tiny_root, tmp_path / "old")
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file()}
    assert make_synthetic(old, seed=0, **TINY) == old
    for split in SPLITS:
        assert (old / split / "visible.json").read_bytes() == (tiny_root / split / "visible.json").read_bytes()
    assert {p: p.stat().st_mtime_ns for p in before} == before

    # the cache: its first use adds visible.json to a complete copy, without generating anything
    monkeypatch.setenv("AVCORR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synthetic, "DEFAULT_PARAMS", dict(seed=0, **TINY, max_distractors=2, distractor_prob=0.5))
    monkeypatch.setattr(synthetic, "make_synthetic", lambda *a, **k: pytest.fail("regenerated"))
    cached = _without_visible(tiny_root, tmp_path / "cache" / f"synthetic-v{synthetic.SYNTHETIC_VERSION}")
    assert ensure_default_dataset(progress=False) == cached
    assert all((cached / s / "visible.json").read_bytes() == (tiny_root / s / "visible.json").read_bytes()
               for s in SPLITS)
    # one that cannot be replayed is used as it is, with a warning
    for split in SPLITS:
        (cached / split / "visible.json").unlink()
    (cached / "test" / "boxes.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="avcorr.data.writer"):
        assert ensure_default_dataset(progress=False) == cached
    assert "visible.json not added" in caplog.text and not list(cached.glob("*/visible.json"))


# ----------------------------------------------------------------------------- content


def test_clip_ids() -> None:
    ids = [clip_id(0, "train", i) for i in range(1000)]
    assert all(ID_RE.match(v) for v in ids)
    assert len(set(ids)) == 1000
    assert sum(v.startswith("-") for v in ids) >= 100
    assert clip_id(0, "train", 7) == clip_id(0, "train", 7) != clip_id(0, "val", 7) != clip_id(1, "train", 7)


@pytest.mark.parametrize("shape", sorted({c.shape for c in CLASSES}))
def test_shapes_fit_their_unit_square(shape: str) -> None:
    umin, vmin, umax, vmax = synthetic._shape_extent(shape)
    assert -1.01 <= umin < umax <= 1.01 and -1.01 <= vmin < vmax <= 1.01
    assert umax - umin > 1.0 and vmax - vmin > 0.9


def test_class_palette_is_distinct() -> None:
    assert len({c.display_name for c in CLASSES}) == len({c.mid for c in CLASSES}) == len(CLASSES)
    assert len({c.shape for c in CLASSES}) == len(CLASSES)
    colours = np.array([c.colour for c in CLASSES], dtype=int)
    gaps = np.abs(colours[:, None] - colours[None]).max(-1) + np.eye(len(CLASSES), dtype=int) * 999
    assert gaps.min() >= 60


def test_sounding_object_is_inside_its_box() -> None:
    """Pixels of the sounding object's colour in the middle frame lie inside the box, and it shows."""
    size = 64
    kw = dict(num_classes=len(CLASSES), duration=1.0, fps=10, size=size, sample_rate=8000)
    for index in range(2 * len(CLASSES)):
        clip = render_clip(3, "test", index, **kw)
        assert clip.frames.shape == (10, size, size, 3) and clip.frames.dtype == np.uint8 and clip.mid_frame == 5
        colour = np.array(CLASSES[clip.class_index].colour)
        frame = clip.frames[clip.mid_frame].astype(int)
        ys, xs = np.nonzero(np.abs(frame - colour).max(-1) <= 12)
        x1, y1, x2, y2 = clip.box * size
        assert len(xs) >= 0.4 * clip.mask.sum() > 0, index  # edges are anti-aliased
        assert xs.min() >= np.floor(x1) - 1 and xs.max() + 1 <= np.ceil(x2) + 1, (index, clip.box)
        assert ys.min() >= np.floor(y1) - 1 and ys.max() + 1 <= np.ceil(y2) + 1, (index, clip.box)
        mys, mxs = np.nonzero(clip.mask)  # the visible mask lies in the box too
        assert mxs.min() >= np.floor(x1) and mxs.max() + 1 <= np.ceil(x2)
        assert mys.min() >= np.floor(y1) and mys.max() + 1 <= np.ceil(y2)


def test_distractors_are_silent_other_classes_and_leave_the_sounding_object_visible() -> None:
    kw = dict(num_classes=len(CLASSES), duration=0.2, fps=10, size=48, sample_rate=8000)
    counts = []
    for index in range(150):
        clip = render_clip(5, "train", index, **kw)
        assert clip.class_index not in clip.distractors and len(set(clip.distractors)) == len(clip.distractors)
        assert len(clip.distractors) <= 2
        counts.append(len(clip.distractors))
        if clip.distractors:
            # the sounding object's placement does not depend on the distractors
            alone = render_clip(5, "train", index, max_distractors=0, **kw)
            np.testing.assert_allclose(alone.box, clip.box)
            assert alone.distractors == ()
            assert clip.mask.sum() >= 0.4 * alone.mask.sum(), index  # front distractors cover <= 50 % of the box
    assert 0.35 <= np.mean(np.array(counts) > 0) <= 0.65
    assert {1, 2} <= set(counts)


@pytest.mark.parametrize("prob,lo,hi", [(0.0, 0.0, 0.0), (0.25, 0.12, 0.38), (1.0, 1.0, 1.0)])
def test_distractor_probability(prob: float, lo: float, hi: float) -> None:
    kw = dict(num_classes=len(CLASSES), duration=0.2, fps=10, size=32, sample_rate=8000)
    with_distractors = [bool(render_clip(7, "val", i, distractor_prob=prob, **kw).distractors) for i in range(120)]
    assert lo <= np.mean(with_distractors) <= hi


def _log_spectrum(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
    spec = np.log((np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0) + 1e-10)
    spec -= spec.mean()
    return spec / np.linalg.norm(spec)


def test_classes_sound_different_and_fill_the_clip() -> None:
    """Nearest-neighbour on 1-s log spectra recovers the class despite pitch / loudness jitter."""
    kw = dict(num_classes=len(CLASSES), duration=2.0, fps=2, size=16, sample_rate=16000)
    feats, labels = [], []
    for index in range(3 * len(CLASSES)):
        clip = render_clip(0, "train", index, **kw)
        assert clip.audio.dtype == np.float32 and clip.audio.shape == (32000,)
        assert 0 < np.abs(clip.audio).max() <= 1.0
        # energy throughout: every 0.25 s chunk carries a fair share of the clip's energy
        chunks = np.sqrt((clip.audio.reshape(8, -1) ** 2).mean(1))
        assert chunks.min() > 0.1 * np.sqrt((clip.audio**2).mean()), clip.label
        start = (index * 4000) % 16000  # a different 1-s window for each clip
        feats.append(_log_spectrum(clip.audio[start : start + 16000]))
        labels.append(clip.class_index)
    feats_arr, labels_arr = np.array(feats), np.array(labels)
    sim = feats_arr @ feats_arr.T
    np.fill_diagonal(sim, -np.inf)
    assert (labels_arr[sim.argmax(1)] == labels_arr).mean() >= 0.9
    means = np.array([feats_arr[labels_arr == c].mean(0) for c in range(len(CLASSES))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    off_diagonal = (means @ means.T)[~np.eye(len(CLASSES), dtype=bool)]
    assert off_diagonal.max() < 0.9


def test_bad_parameters_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        make_synthetic(tmp_path / "a", size=63)
    with pytest.raises(ValueError, match="num_classes"):
        make_synthetic(tmp_path / "a", num_classes=len(CLASSES) + 1)
    with pytest.raises(ValueError, match="clips_per_class"):
        make_synthetic(tmp_path / "a", clips_per_class=(1, 1))
    with pytest.raises(ValueError, match="split"):
        render_clip(0, "dev", 0)
    assert not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------- atomicity and the cache


@needs_ffmpeg
def test_existing_folders(tiny_root: Path, tmp_path: Path) -> None:
    meta_mtime = (tiny_root / "meta.json").stat().st_mtime_ns
    assert make_synthetic(tiny_root, seed=0, **TINY) == tiny_root  # already complete: untouched
    assert (tiny_root / "meta.json").stat().st_mtime_ns == meta_mtime
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="foreign"):
        make_synthetic(foreign, **TINY)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError):  # same folder, other parameters
        make_synthetic(tiny_root, seed=5, **TINY)


@needs_ffmpeg
@pytest.mark.skipif(os.name != "posix", reason="kills a process group with SIGKILL")
def test_killed_generation_is_not_complete_and_is_regenerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    script = (
        "from avcorr.data import synthetic as s\n"
        "s.DEFAULT_PARAMS = dict(s.DEFAULT_PARAMS, num_classes=3, clips_per_class=(60, 0, 0), duration=1.0,"
        " size=32, sample_rate=8000)\n"
        "s.ensure_default_dataset(progress=False)\n"
    )
    env = dict(os.environ, AVCORR_CACHE=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    name = f"synthetic-v{synthetic.SYNTHETIC_VERSION}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(cache.glob(f".{name}.tmp-*/train/video/*.mp4")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "generation finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (leftover,) = cache.glob(f".{name}.tmp-*")
    root = cache / name
    assert not root.exists()
    assert not is_synthetic_dataset(leftover)
    shutil.copytree(leftover, root)  # a half dataset at the final path is not complete either
    assert not is_synthetic_dataset(root)

    monkeypatch.setenv("AVCORR_CACHE", str(cache))
    monkeypatch.setattr(synthetic, "DEFAULT_PARAMS", dict(synthetic.DEFAULT_PARAMS, **TINY))
    assert ensure_default_dataset(progress=False) == root
    assert is_synthetic_dataset(root, **synthetic.DEFAULT_PARAMS)
    assert not list(cache.glob(f".{name}.tmp-*")) and not list(cache.glob(f".{name}.stale-*"))
    assert len(list((root / "train" / "audio").glob("*.wav"))) == 6
    mtime = (root / "meta.json").stat().st_mtime_ns
    assert ensure_default_dataset(progress=False) == root  # complete now: returned as is
    assert (root / "meta.json").stat().st_mtime_ns == mtime


@needs_ffmpeg
def test_concurrent_ensure_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVCORR_CACHE", str(tmp_path))
    params = dict(synthetic.DEFAULT_PARAMS, **dict(TINY, clips_per_class=(1, 0, 0)))
    monkeypatch.setattr(synthetic, "DEFAULT_PARAMS", params)
    calls = []
    real = synthetic.make_synthetic

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "make_synthetic", counting)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_default_dataset(progress=False))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1] == synthetic.default_cache_dir() / results[0].name
    assert len(calls) == 1
    assert is_synthetic_dataset(results[0], **synthetic.DEFAULT_PARAMS)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVCORR_CACHE", str(tmp_path / "c"))
    assert synthetic.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AVCORR_CACHE")
    assert synthetic.default_cache_dir() == Path.home() / ".cache" / "avcorr"


# ----------------------------------------------------------------------------- CLI


@needs_ffmpeg
def test_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from data_tools.make_synthetic import main

    root = tmp_path / "cli"
    argv = [str(root), "--seed", "2", "--classes", "2", "--clips-per-class", "1", "1", "0", "--duration", "1"]
    argv += ["--fps", "5", "--size", "32", "--sr", "8000", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert "train 2" in line and "val 2" in line and "test 0" in line and "MB" in line
    assert is_synthetic_dataset(root, seed=2, num_classes=2, clips_per_class=(1, 1, 0), fps=5, size=32)
    assert _load(root / "test" / "vid2genre.json") == {} and _load(root / "test" / "boxes.json") == {}
    with pytest.raises(SystemExit):
        main([str(root), "--clips-per-class", "1"])
