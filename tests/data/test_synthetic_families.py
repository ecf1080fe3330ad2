"""The synthetic benchmark families of data_tools.make_synthetic_family, at tiny scale."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from avcorr.data.layout import load_split
from data_tools import make_synthetic_family as msf
from data_tools import validate
from data_tools._family_synth import FamilySpec, clip_id, family_spec, plan_clip, render_clip
from data_tools.make_synthetic_family import FAMILIES, family_params, is_family_dataset, make_family, visible_labels

# ffmpeg: skipped with the reason where ffmpeg/ffprobe are missing (tests/conftest.py); slow: building the
# two families takes ~10 s on 2 cores
pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

NAMES = ("clutter", "wide")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("families")
    return {name: make_family(name, base / name, scale="tiny", seed=0, workers=2) for name in NAMES}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """float (N, C) in [-1, 1] and the sample rate."""
    with wave.open(str(path)) as f:
        channels, rate, frames = f.getnchannels(), f.getframerate(), f.getnframes()
        pcm = np.frombuffer(f.readframes(frames), "<i2").reshape(frames, channels)
    return pcm / 32768.0, rate


def _frame_rms(x: np.ndarray, rate: int, hop: float = 0.04) -> np.ndarray:
    """RMS of consecutive ``hop``-second frames of mono ``x`` (N,)."""
    n = int(hop * rate)
    frames = x[: len(x) // n * n].reshape(-1, n)
    return np.sqrt(np.mean(frames**2, axis=1))


def _clips(root: Path, split: str = "train") -> list[tuple[str, str]]:
    """(vid, label) in the order of vid2genre.json (clip index order)."""
    return list(_load(root / split / "vid2genre.json").items())


# ----------------------------------------------------------------------------- layout


@pytest.mark.parametrize("name", NAMES)
def test_layout_loads_and_validates(roots: dict[str, Path], name: str) -> None:
    root, spec = roots[name], family_spec(name, "tiny")
    assert validate.main([str(root), "--quiet"]) == 0
    names = [c.display_name for c in spec.class_list]
    meta = _load(root / "meta.json")
    assert meta["family"] == name and meta["version"] == msf.FAMILY_VERSION and meta["generator"] == msf.GENERATOR
    assert meta["params"] == family_params(name, scale="tiny", seed=0)
    assert set(meta["params"]) >= {"seed", "scale", "width", "height", "fps", "duration", "sample_rate",
                                   "channels", "area_range", "distractors", "active_range", "snr_db"}
    assert [c["display_name"] for c in meta["classes"]] == names
    ids = []
    for split, per_class in zip(SPLITS, spec.clips_per_class):
        loaded = {clip.vid: clip for clip in load_split(root, split).clips}
        assert len(loaded) == per_class * spec.num_classes
        for i, (vid, _) in enumerate(_clips(root, split)):
            clip = loaded[vid]
            assert clip.vid == clip_id(name, 0, split, i)
            assert clip.labels == (names[i % spec.num_classes],)
            assert clip.video is not None and clip.audio is not None and len(clip.boxes) == 1
        ids += list(loaded)
    assert all(ID_RE.match(vid) for vid in ids) and len(set(ids)) == len(ids)
    assert any(vid.startswith("-") for vid in ids)
    other = next(n for n in NAMES if n != name)
    assert not set(ids) & {clip_id(other, 0, s, i) for s in SPLITS for i in range(len(ids))}


def _ffprobe(path: Path) -> dict[str, dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, check=True, text=True).stdout
    info = json.loads(out)
    streams = {s["codec_type"]: s for s in info["streams"]}
    streams["format"] = info["format"]
    return streams


@pytest.mark.parametrize("name", NAMES)
def test_media_formats(roots: dict[str, Path], name: str) -> None:
    root, spec = roots[name], family_spec(name, "tiny")
    for vid, _ in _clips(root, "val")[:3]:
        streams = _ffprobe(root / "val" / "video" / f"{vid}.mp4")
        video, audio = streams["video"], streams["audio"]
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", spec.width, spec.height)
        assert video["r_frame_rate"] == f"{spec.fps}/1"
        assert abs(float(streams["format"]["duration"]) - spec.duration) < 0.1
        assert (audio["codec_name"], audio["channels"], int(audio["sample_rate"])) == (
            "aac", spec.channels, spec.sample_rate)
        with wave.open(str(root / "val" / "audio" / f"{vid}.wav")) as f:
            assert (f.getnchannels(), f.getframerate(), f.getsampwidth()) == (spec.channels, spec.sample_rate, 2)
            assert f.getnframes() == round(spec.duration * spec.sample_rate)


# ----------------------------------------------------------------------------- pictures


@pytest.mark.parametrize("name", NAMES)
def test_box_areas_in_range(roots: dict[str, Path], name: str) -> None:
    root, spec = roots[name], family_spec(name, "tiny")
    lo, hi = spec.area_range
    for split in SPLITS:
        for vid, boxes in _load(root / split / "boxes.json").items():
            ((x1, y1, x2, y2),) = boxes
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1, vid
            assert lo - 1e-4 <= (x2 - x1) * (y2 - y1) <= hi + 1e-4, vid


@pytest.mark.parametrize("name", NAMES)
def test_sounding_object_is_in_its_box(roots: dict[str, Path], name: str) -> None:
    """Frames drawn without the sounding object differ from the real ones only inside its box."""
    root, spec = roots[name], family_spec(name, "tiny")
    boxes = _load(root / "train" / "boxes.json")
    scale = np.array([spec.width, spec.height, spec.width, spec.height])
    occluded = 0
    for index, (vid, _) in enumerate(_clips(root)[:8]):
        clip = render_clip(spec, "train", index, 0)
        bare = render_clip(spec, "train", index, 0, without_sounding=True)
        assert clip.vid == vid and np.allclose(clip.box, boxes[vid][0], atol=1e-5)
        diff = np.abs(clip.frames[clip.mid_frame].astype(int) - bare.frames[clip.mid_frame]).max(axis=-1) > 2
        x1, y1, x2, y2 = clip.box * scale
        ys, xs = np.nonzero(diff)
        assert xs.min() >= x1 - 1.5 and xs.max() + 1 <= x2 + 1.5 and ys.min() >= y1 - 1.5 and ys.max() + 1 <= y2 + 1.5
        # the visible part of the object is what changed, and it fills a good part of its box
        assert (diff & clip.mask).sum() >= 0.9 * clip.mask.sum()
        assert clip.mask.sum() >= 0.25 * (x2 - x1) * (y2 - y1)
        assert clip.min_visible >= spec.min_visible
        occluded += clip.min_visible < 0.97
        if name == "clutter":
            assert spec.distractors[0] <= len(clip.distractors) <= spec.distractors[1]
            assert clip.class_index not in clip.distractors
    if name == "clutter":
        assert occluded >= 1  # some distractors do cover part of the sounding object


def test_wide_frames_are_noisy_and_flicker(roots: dict[str, Path]) -> None:
    spec = family_spec("wide", "tiny")
    clip = render_clip(spec, "train", 1, 0)
    steps = np.diff(clip.frames.astype(float), axis=0)
    assert np.all(np.std(steps, axis=(1, 2, 3)) > 2.0)  # camera noise changes every frame
    means = clip.frames.mean(axis=(1, 2, 3))
    assert np.ptp(means) > 1.0


# ----------------------------------------------------------------------------- sounds


def _silent_fraction(x: np.ndarray, rate: int) -> tuple[float, np.ndarray]:
    rms = _frame_rms(x, rate)
    silent = rms < np.percentile(rms, 90) * 10 ** (-18 / 20)
    return float(silent.mean()), silent


def test_clutter_sound_is_intermittent_over_noise(roots: dict[str, Path]) -> None:
    root, spec = roots["clutter"], family_spec("clutter", "tiny")
    for index, (vid, _) in enumerate(_clips(root)):
        audio, rate = _read_wav(root / "train" / "audio" / f"{vid}.wav")
        fraction, silent = _silent_fraction(audio[:, 0], rate)
        active = render_clip(spec, "train", index, 0, video=False).active_fraction
        assert spec.active_range[0] <= active <= spec.active_range[1]
        assert abs(fraction - (1 - active)) < 0.1, (vid, fraction, active)
        # every second of the clip holds some of the sound
        per_second = int(1 / 0.04)
        assert all(not silent[k : k + per_second].all() for k in range(len(silent) - per_second + 1))
        rms = _frame_rms(audio[:, 0], rate)
        floor, level = np.median(rms[silent]), np.median(rms[~silent])
        assert floor > 0 and 18 < 20 * np.log10(level / floor) < 45  # background noise, well below the source


def test_wide_sound_is_continuous_and_panned(roots: dict[str, Path]) -> None:
    root = roots["wide"]
    boxes = _load(root / "train" / "boxes.json")
    balance, centre = [], []
    for vid, _ in _clips(root):
        audio, rate = _read_wav(root / "train" / "audio" / f"{vid}.wav")
        assert _silent_fraction(audio.mean(axis=1), rate)[0] < 0.05
        mid = len(audio) // 2
        left, right = np.sqrt(np.mean(audio[mid - rate // 10 : mid + rate // 10] ** 2, axis=0))
        balance.append(20 * np.log10(right / left))
        x1, _, x2, _ = boxes[vid][0]
        centre.append((x1 + x2) / 2)
    assert np.corrcoef(balance, centre)[0, 1] > 0.8  # the source sounds from where its object is


def _spectral_shape(x: np.ndarray, rate: int) -> np.ndarray:
    """Log energy in 30 log-spaced bands (80 Hz to 0.45 rate) over the non-silent frames, mean removed."""
    n = 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    loud = power.sum(axis=1) > 0.05 * np.percentile(power.sum(axis=1), 90)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    edges = np.geomspace(80, 0.45 * rate, 31)
    bands = np.array([power[loud][:, (freqs >= a) & (freqs < b)].sum() for a, b in zip(edges[:-1], edges[1:])])
    feature = np.log10(bands + 1e-9)
    return feature - feature.mean()


@pytest.mark.parametrize("name", NAMES)
def test_classes_differ_in_sound(roots: dict[str, Path], name: str) -> None:
    """A simple spectral feature tells the classes apart: nearest class mean, leave-one-out."""
    root = roots[name]
    features, labels = [], []
    for split in SPLITS:
        for vid, label in _clips(root, split):
            audio, rate = _read_wav(root / split / "audio" / f"{vid}.wav")
            features.append(_spectral_shape(audio.mean(axis=1), rate))
            labels.append(label)
    features, labels = np.array(features), np.array(labels)
    classes = sorted(set(labels))
    within, between, correct = [], [], 0
    for i, (feature, label) in enumerate(zip(features, labels)):
        keep = np.arange(len(labels)) != i
        means = {c: features[keep & (labels == c)].mean(axis=0) for c in classes}
        dists = {c: np.linalg.norm(feature - m) for c, m in means.items()}
        correct += min(dists, key=dists.get) == label
        within.append(dists[label])
        between += [d for c, d in dists.items() if c != label]
    assert correct / len(labels) >= 0.9
    assert np.mean(between) > 2 * np.mean(within)


# ----------------------------------------------------------------------------- visible.json

# sha256 over meta.json, the class csv and each split's vid2genre.json and boxes.json of the tiny builds, as
# the generator wrote them before visible.json (commit 7b9e4a4; its wav/mp4 files were byte-identical too,
# checked once by hand)
BEFORE_VISIBLE = {"clutter": "631e44433369004fac089c6c16e35e1dd110243e746939e344a326d8e510c63c",
                  "wide": "25ca2c59c5139f2814f19d4e264f992f9f2c36fa0b97e505fcab7ee827490f69"}


@pytest.mark.parametrize("name", NAMES)
def test_visible_json_lists_the_drawn_classes_and_changes_nothing_else(roots: dict[str, Path], name: str) -> None:
    root, spec = roots[name], family_spec(name, "tiny")
    files = ["meta.json", "class_labels_indices.csv"] + [f"{s}/{f}" for s in SPLITS for f in ("vid2genre.json",
                                                                                             "boxes.json")]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.encode() + b"\0" + (root / path).read_bytes())
    assert digest.hexdigest() == BEFORE_VISIBLE[name]
    silent = 0
    for split in SPLITS:
        genre, visible = _load(root / split / "vid2genre.json"), _load(root / split / "visible.json")
        assert list(visible) == list(genre)
        for index, vid in enumerate(genre):
            plan = plan_clip(spec, split, index, 0)
            names = [spec.class_list[c].display_name for c in plan.distractors]
            assert plan.vid == vid and visible[vid] == [genre[vid], *names], (split, index)
            silent += len(names)
        assert sorted(p.name for p in (root / split).iterdir()) == ["audio", "boxes.json", "vid2genre.json",
                                                                    "video", "visible.json"]
    assert silent > 0
    # the plan is the rendered scene
    for index in range(3):
        clip, plan = render_clip(spec, "val", index, 0, video=False), plan_clip(spec, "val", index, 0)
        assert (plan.vid, plan.class_index, plan.label, plan.distractors) == (
            clip.vid, clip.class_index, clip.label, clip.distractors)
        np.testing.assert_array_equal(plan.box, clip.box)


def test_a_family_built_before_visible_json_gets_it(roots: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from data_tools import write_visible

    root = roots["clutter"]
    old = tmp_path / "old"
    shutil.copytree(root, old)
    for split in SPLITS:
        (old / split / "visible.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in old.rglob("*") if p.is_file()}
    assert make_family("clutter", old, scale="tiny", seed=0) == old  # the same command adds it, and only it
    assert {p: p.stat().st_mtime_ns for p in before} == before
    for split in SPLITS:
        assert (old / split / "visible.json").read_bytes() == (root / split / "visible.json").read_bytes()
        (old / split / "visible.json").unlink()
    assert write_visible.main([str(old)]) == 0 and "old/val/visible.json: 12 clips" in capsys.readouterr().out
    for split in SPLITS:
        assert (old / split / "visible.json").read_bytes() == (root / split / "visible.json").read_bytes()
    meta = _load(old / "meta.json")
    with pytest.raises(ValueError, match="unknown parameter.*'unknown'"):
        visible_labels(dict(meta, params=dict(meta["params"], unknown=1)))
    fewer = {k: v for k, v in meta["params"].items() if k != "flicker"}  # a parameter this code adds
    with pytest.raises(ValueError, match="not those of family 'clutter'"):
        visible_labels(dict(meta, params=fewer))
    with pytest.raises(ValueError, match="version 2"):
        visible_labels(dict(meta, version=2))
    boxes = _load(old / "test" / "boxes.json")
    vid = next(iter(boxes))
    boxes[vid][0][3] -= 0.001
    (old / "test" / "boxes.json").write_text(json.dumps(boxes))
    assert write_visible.main([str(old)]) == 2 and f"boxes.json: clip {vid!r}" in capsys.readouterr().err


# ----------------------------------------------------------------------------- determinism and completeness


def test_same_seed_same_bytes_other_seed_other_clips(roots: dict[str, Path], tmp_path: Path) -> None:
    root = roots["wide"]
    # other clip counts, one worker: the clips that exist in both are byte-identical
    again = make_family("wide", tmp_path / "again", scale="tiny", seed=0, workers=1, clips_per_class=(1, 0, 0))
    first = _clips(root)[:6]
    assert _clips(again) == first
    for vid, _ in first:
        assert (again / "train/audio" / f"{vid}.wav").read_bytes() == (root / "train/audio" / f"{vid}.wav").read_bytes()
    assert _load(again / "train/boxes.json") == {vid: _load(root / "train/boxes.json")[vid] for vid, _ in first}
    spec = family_spec("wide", "tiny")
    one = render_clip(spec, "train", 0, 1, video=False)
    zero = render_clip(spec, "train", 0, 0, video=False)
    assert one.vid != zero.vid and one.label == zero.label
    assert not np.allclose(one.audio, zero.audio) and not np.allclose(one.box, zero.box)


def test_rerun_untouched_and_other_params_refused(roots: dict[str, Path], tmp_path: Path) -> None:
    root = roots["wide"]
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert make_family("wide", root, scale="tiny", seed=0) == root
    assert msf.main(["wide", str(root), "--scale", "tiny", "--no-progress"]) == 0
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="seed=0 \\(asked 1\\)"):
        make_family("wide", root, scale="tiny", seed=1)
    with pytest.raises(FileExistsError, match="other parameters"):
        make_family("wide", root, scale="full")
    assert msf.main(["clutter", str(root), "--scale", "tiny", "--no-progress"]) == 2
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a complete family dataset"):
        make_family("wide", tmp_path / "junk", scale="tiny")
    assert (root / "meta.json").stat().st_mtime_ns == stamp


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing(path: Path, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError(f"{path}: ffmpeg failed")
        msf_encode(path, *args, **kwargs)

    msf_encode = msf.encode_mp4
    monkeypatch.setattr(msf, "encode_mp4", failing)
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        make_family("wide", tmp_path / "ds", scale="tiny", workers=1, clips_per_class=(1, 0, 0))
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []


def test_killed_build_leaves_no_finished_folder(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    code = ("import sys; from data_tools.make_synthetic_family import make_family; "
            "make_family('wide', sys.argv[1], scale='tiny', workers=1, clips_per_class=(6, 0, 0))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".ds.tmp-*/train/video/*.mp4")):
            assert proc.poll() is None and time.monotonic() < deadline, "the build ended before it was killed"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert not root.exists()  # only the hidden temporary folder is left
    assert [p.name.startswith(".ds.tmp-") for p in tmp_path.iterdir()] == [True]
    assert not is_family_dataset(next(tmp_path.iterdir()), family_params("wide", scale="tiny", clips_per_class=(6, 0, 0)))


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        family_spec("nope")
    with pytest.raises(ValueError, match="unknown scale"):
        family_spec("wide", "huge")
    with pytest.raises(ValueError, match="unknown parameter.*'colour'"):
        family_spec("wide", colour=1)
    with pytest.raises(ValueError, match="width=33"):
        family_spec("wide", width=33)
    with pytest.raises(ValueError, match="area_range"):
        family_spec("clutter", area_range=(0.2, 0.1))
    with pytest.raises(ValueError, match="seed"):
        family_params("wide", seed=-1)
    assert isinstance(FAMILIES["clutter"], FamilySpec)
    assert (FAMILIES["clutter"].num_classes, FAMILIES["wide"].num_classes) == (12, 6)
