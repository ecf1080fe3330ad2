"""data_tools.make_digits_family: the digits family (FSDD-like recordings + sklearn digit scans) and the
FSDD folder-per-class copy, built from a fake FSDD folder made here."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from avcorr.data.layout import load_split
from avcorr.data.tagging import folder_source
from data_tools import make_digits_family as mdf
from data_tools import validate
from data_tools._digits_render import partition_scans
from data_tools._fsdd import DIGIT_NAMES, make_fsdd_folder, official_split
from data_tools._media import probe
from tests.media import make_wav

pytestmark = pytest.mark.ffmpeg

SPEAKERS = ("alice", "bob")
INDICES = (0, 1, 2, 5, 6, 10, 11, 12)  # test 0-4, val 5-9, train 10+
SR = 8000
BAD = {  # file name -> the start of its skip reason
    "notes.txt": "not a .wav file",
    "3_bob.wav": "name is not",
    "4_alice_20.wav": "empty file",
    "5_alice_21.wav": "not a readable PCM wav",
    "6_bob_22.wav": "not 8000 Hz mono 16-bit",
    "7_alice_13.wav": "longer than a clip",  # usable by the folder mode, too long for a 2 s clip
}


def _sound(digit: int, speaker: int, index: int) -> np.ndarray:
    """A distinct chirp per recording, 0.15-1.0 s."""
    rng = np.random.default_rng([digit, speaker, index])
    n = int(rng.uniform(0.15, 1.0) * SR)
    t = np.arange(n) / SR
    f0 = 200 + 150 * digit
    x = 0.5 * np.sin(2 * np.pi * (f0 * t + 300 * t**2)) + 0.05 * rng.standard_normal(n)
    return np.clip(x * np.hanning(n), -1, 1)


def make_fake_fsdd(folder: Path) -> Path:
    """FSDD-like recordings (2 speakers x 10 digits x 8 indices) plus bad entries, in ``folder/recordings``."""
    rec = folder / "recordings"
    rec.mkdir(parents=True)
    for d in range(10):
        for s, speaker in enumerate(SPEAKERS):
            for i in INDICES:
                make_wav(rec / f"{d}_{speaker}_{i}.wav", _sound(d, s, i), SR)
    (rec / "notes.txt").write_text("not audio")
    make_wav(rec / "3_bob.wav", _sound(3, 1, 99), SR)
    (rec / "4_alice_20.wav").write_bytes(b"")
    (rec / "5_alice_21.wav").write_text("RIFF but not really")
    make_wav(rec / "6_bob_22.wav", _sound(6, 1, 22), 16000)
    make_wav(rec / "7_alice_13.wav", 440.0, SR, duration=2.5)
    (rec / ".hidden.wav").write_bytes(b"")  # hidden entries are ignored
    return folder


def _pcm(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    with wave.open(str(path)) as f:
        fmt = (f.getnchannels(), f.getsampwidth(), f.getframerate())
        return fmt, np.frombuffer(f.readframes(f.getnframes()), "<i2")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("sklearn")
    base = tmp_path_factory.mktemp("digits")
    fsdd = make_fake_fsdd(base / "fsdd")
    root = base / "family"
    assert mdf.main([str(fsdd), str(root), "--scale", "tiny", "--workers", "2", "--no-progress"]) == 0
    return fsdd, root, json.loads((root / "meta.json").read_text())


def test_layout_media_and_labels(built):
    fsdd, root, meta = built
    assert validate.main([str(root), "--quiet"]) == 0
    params = meta["params"]
    assert params["clips_per_class"] == [2, 1, 1] and params["size"] == 64 and params["sample_rate"] == SR
    for split, n in zip(("train", "val", "test"), (20, 10, 10)):
        index = load_split(root, split)
        assert len(index) == n and index.classes == list(DIGIT_NAMES)
        assert sorted(c.labels[0] for c in index.clips) == sorted(DIGIT_NAMES * (n // 10))
        for clip in index.clips:
            assert len(clip.vid) == 11 and clip.video is not None and clip.audio is not None
            assert clip.labels == (DIGIT_NAMES[meta["clips"][split][clip.vid]["digit"]],)
    ids = [v for c in meta["clips"].values() for v in c]
    assert any(v.startswith("-") for v in ids) and len(set(ids)) == len(ids) == 40
    info = probe(next((root / "test" / "video").glob("*.mp4")))
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["width"], video["height"], video["avg_frame_rate"]) == (64, 64, "12/1")
    assert int(video["nb_frames"]) == 24 and abs(float(info["format"]["duration"]) - 2.0) < 0.1
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", SR, 1)
    assert meta["sources"]["recordings"]["licence"] == "CC BY-SA 4.0"
    assert meta["sources"]["scans"]["licence"] == "CC BY 4.0"


def test_audio_is_the_recording_at_its_offset(built):
    fsdd, root, meta = built
    for split, clips in meta["clips"].items():
        for vid, e in clips.items():
            fmt, clip = _pcm(root / split / "audio" / f"{vid}.wav")
            _, rec = _pcm(fsdd / "recordings" / e["recording"])
            assert fmt == (1, 2, SR) and len(clip) == 2 * SR and len(rec) == e["num_samples"]
            assert np.array_equal(clip[e["offset"]:e["offset"] + len(rec)], rec)
            rest = np.concatenate([clip[:e["offset"]], clip[e["offset"] + len(rec):]])
            assert not rest.any()
            assert e["recording"].startswith(f"{e['digit']}_{e['speaker']}_")


def test_splits_never_share_recordings_or_scans(built):
    from sklearn.datasets import load_digits

    labels = load_digits().target
    parts = partition_scans(labels)
    _, _, meta = built
    scans_by_split = {}
    for split, clips in meta["clips"].items():
        used = set()
        for e in clips.values():
            assert official_split(int(e["recording"].rsplit("_", 1)[1][:-4])) == split
            assert labels[e["scan"]] == e["digit"]
            assert all(labels[s] != e["digit"] for s in e["distractor_scans"])
            assert 1 <= len(e["distractor_scans"]) <= 3
            used |= {e["scan"], *e["distractor_scans"]}
        assert used <= {int(i) for p in parts[split].values() for i in p}
        scans_by_split[split] = used
    assert not scans_by_split["test"] & (scans_by_split["train"] | scans_by_split["val"])
    assert not scans_by_split["train"] & scans_by_split["val"]
    # speakers balanced: train has 2 clips per digit, one per speaker
    for d in range(10):
        speakers = sorted(e["speaker"] for e in meta["clips"]["train"].values() if e["digit"] == d)
        assert speakers == list(SPEAKERS)
    # every split is partitioned disjointly and covers all scans
    all_parts = [int(i) for p in parts.values() for q in p.values() for i in q]
    assert sorted(all_parts) == list(range(len(labels)))


def test_boxes_hold_the_sounding_scan(built):
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0
    _, root, meta = built
    params = meta["params"]
    size, lo, hi = params["size"], *params["scan_size"]
    for split, clips in meta["clips"].items():
        boxes = json.loads((root / split / "boxes.json").read_text())
        for vid, e in clips.items():
            (box,) = boxes[vid]
            assert box == e["box"]
            area = (box[2] - box[0]) * (box[3] - box[1])
            assert (lo / size) ** 2 - 1e-6 <= area <= (hi / size) ** 2 + 1e-6
            plan = mdf.ClipPlan.from_meta(split, vid, e)
            scans = images[[plan.scan, *plan.distractor_scans]]
            frames, placed = mdf.render_clip(plan, scans, params)
            without, _ = mdf.render_clip(plan, scans, params, draw_sounding=False)
            mid = frames.shape[0] // 2  # t = duration / 2 at 12 fps
            diff = np.abs(frames[mid].astype(int) - without[mid]).max(axis=2) > 0
            x1, y1, x2, y2 = (round(v * size) for v in box)
            assert diff[y1:y2, x1:x2].sum() > 0.1 * (x2 - x1) * (y2 - y1)  # the scan is visible
            diff[y1:y2, x1:x2] = False
            assert not diff.any()  # ... and only inside its box
            assert [p is not None for p in placed[1:]] == e["distractors_drawn"]
            for other in placed[1:]:
                if other is not None:
                    lo_xy = np.maximum(placed[0].xy, other.xy)
                    hi_xy = np.minimum(placed[0].xy + placed[0].wh, other.xy + other.wh)
                    inter = np.prod(np.clip(hi_xy - lo_xy, 0, None), axis=1)
                    assert inter.max() <= params["max_overlap"] * min(placed[0].area, other.area)
    # the mp4 shows the render (lossy: compare a decoded frame loosely)
    vid, e = next(iter(meta["clips"]["test"].items()))
    plan = mdf.ClipPlan.from_meta("test", vid, e)
    frames, _ = mdf.render_clip(plan, images[[plan.scan, *plan.distractor_scans]], params)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(root / "test" / "video" / f"{vid}.mp4"), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    decoded = np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 4


def test_visible_json_lists_every_scan_drawn(built, tmp_path, capsys):
    from sklearn.datasets import load_digits

    from data_tools import write_visible

    fsdd, root, meta = built
    digit_of = load_digits().target
    n_silent = 0
    for split, clips in meta["clips"].items():
        index = load_split(root, split)
        for clip in index.clips:
            entry = clips[clip.vid]
            silent = [DIGIT_NAMES[digit_of[s]] for s, drawn in zip(entry["distractor_scans"], entry["distractors_drawn"])
                      if drawn]
            assert index.visible_labels(clip) == (DIGIT_NAMES[entry["digit"]], *silent)
            n_silent += len(silent)
    assert n_silent > 0
    # a family built before visible.json: the same command adds it (and only it); write_visible does too
    old = tmp_path / "old"
    shutil.copytree(root, old)
    for p in old.glob("*/visible.json"):
        p.unlink()
    stamp = (old / "meta.json").stat().st_mtime_ns
    assert mdf.main([str(fsdd), str(old), "--scale", "tiny", "--no-progress"]) == 0
    assert (old / "meta.json").stat().st_mtime_ns == stamp
    for p in old.glob("*/visible.json"):
        p.unlink()
    assert write_visible.main([str(old)]) == 0 and "20 clips" in capsys.readouterr().out
    assert {p.relative_to(old): p.read_bytes() for p in old.rglob("*.json")} == {
        p.relative_to(root): p.read_bytes() for p in root.rglob("*.json")}
    assert write_visible.main([str(tmp_path / "nothing")]) == 2 and "meta.json" in capsys.readouterr().err
    meta["family"] = "shapes"
    (old / "meta.json").write_text(json.dumps(meta))
    assert write_visible.main([str(old)]) == 2 and "family 'shapes'" in capsys.readouterr().err


def test_skipped_files_are_listed(built):
    fsdd, root, meta = built
    with open(root / "skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    reasons = {Path(r["path"]).name: r["reason"] for r in rows}
    assert sorted(reasons) == sorted(BAD)
    for name, start in BAD.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    assert meta["sources"]["recordings"]["skipped"] == len(BAD)


def test_deterministic_and_rerun_rules(built, tmp_path, monkeypatch):
    fsdd, root, meta = built
    again = mdf.make_digits_family(fsdd / "recordings", tmp_path / "again", scale="tiny", workers=1)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel.suffix in (".wav", ".json", ".csv") and rel.name not in ("meta.json", "skipped.csv"):
            assert path.read_bytes() == (again / rel).read_bytes(), rel
    meta2 = json.loads((again / "meta.json").read_text())
    assert meta2["clips"] == meta["clips"] and meta2["params"] == meta["params"]
    # a clip does not depend on how many clips per class are asked for
    from data_tools._fsdd import scan_fsdd
    from sklearn.datasets import load_digits

    recs, _, _ = scan_fsdd(fsdd)
    parts = partition_scans(load_digits().target)
    kw = dict(seed=0, clip_samples=2 * SR, distractors=(1, 3))
    plans = mdf.plan_split(recs, parts, "train", 2, **kw)
    assert plans == [mdf.ClipPlan.from_meta("train", v, e) for v, e in meta["clips"]["train"].items()]
    assert plans[:10] == mdf.plan_split(recs, parts, "train", 1, **kw)
    # same parameters: returned untouched; other parameters or a foreign folder: refused
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert mdf.make_digits_family(fsdd, root, scale="tiny") == root
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="family"):
        mdf.make_digits_family(fsdd, root, scale="tiny", seed=1)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="foreign"):
        mdf.make_digits_family(fsdd, tmp_path / "foreign", scale="tiny")
    # a run that fails midway leaves nothing that looks finished
    calls = []

    def failing_encode(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("killed")

    monkeypatch.setattr("data_tools._recorded_family.encode_mp4", failing_encode)
    with pytest.raises(RuntimeError, match="killed"):
        mdf.make_digits_family(fsdd, tmp_path / "broken", scale="tiny", workers=1)
    assert not (tmp_path / "broken").exists() and not list(tmp_path.glob(".broken*"))


def test_bad_sources(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "readme.txt").write_text("x")
    (bad / "1_x_1.wav").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no FSDD recordings"):
        mdf.make_digits_family(bad, tmp_path / "out", scale="tiny")
    assert mdf.main([str(bad), str(tmp_path / "out"), "--scale", "tiny", "--no-progress"]) == 2
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_fsdd_folder(tmp_path / "missing", tmp_path / "out")
    # a digit without val recordings: a clear error naming the digit and the split
    some = tmp_path / "some"
    some.mkdir()
    for d in range(10):
        for i in (0, 10) if d == 4 else (0, 5, 10):
            make_wav(some / f"{d}_alice_{i}.wav", _sound(d, 0, i), SR)
    with pytest.raises(ValueError, match="digit 4 for the val split"):
        mdf.make_digits_family(some, tmp_path / "out", scale="tiny")
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        mdf.make_digits_family(some, tmp_path / "out", scale="tiny")


def test_folder_mode(tmp_path):
    fsdd = make_fake_fsdd(tmp_path / "fsdd")
    out = tmp_path / "folders"
    assert mdf.main([str(fsdd), "--folder", str(out), "--no-progress"]) == 0
    src = fsdd / "recordings"
    copied = sorted(out.glob("*/*/*.wav"))
    assert len(copied) == 10 * len(SPEAKERS) * len(INDICES) + 1  # + the 2.5 s one
    for path in copied:
        split, cls, name = path.relative_to(out).parts
        digit, _, index = name[:-4].split("_")
        assert cls == DIGIT_NAMES[int(digit)] and split == official_split(int(index))
        assert path.read_bytes() == (src / name).read_bytes()
    skipped = {Path(r["path"]).name for r in csv.DictReader(open(out / "skipped.csv", newline=""))}
    assert skipped == set(BAD) - {"7_alice_13.wav"}
    for split, n in (("train", 61), ("val", 40), ("test", 60)):
        source = folder_source(out, split)
        assert len(source.clips) == n and source.classes == sorted(DIGIT_NAMES)
    stamp = (out / "meta.json").stat().st_mtime_ns
    assert make_fsdd_folder(fsdd, out) == out and (out / "meta.json").stat().st_mtime_ns == stamp
    linked = make_fsdd_folder(fsdd, tmp_path / "linked", link=True)
    one = linked / "test" / "zero" / "0_alice_0.wav"
    assert one.stat().st_ino == (src / "0_alice_0.wav").stat().st_ino
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        make_fsdd_folder(fsdd, tmp_path / "taken")


def built_as_main_is(root: Path, module: str, src: Path, out: Path, *args: str) -> None:
    """Build ``out`` from ``src`` with ``python -m module``; every file must be ``root``'s, byte for byte."""
    subprocess.run([sys.executable, "-m", module, str(src), str(out), *args], cwd=Path(__file__).resolve().parents[2],
                   check=True, capture_output=True)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in files:
        assert (root / rel).read_bytes() == (out / rel).read_bytes(), rel

def test_meta_names_the_module_however_it_is_run(built, tmp_path):
    """``python -m`` runs the builder as ``__main__``: meta.json still names the module, and the dataset is the same
    to the byte; a root built before, whose meta.json says ``__main__``, is still this dataset."""
    fsdd, root, meta = built
    assert meta["generator"] == mdf.GENERATOR == "data_tools.make_digits_family"
    built_as_main_is(root, "data_tools.make_digits_family", fsdd, tmp_path / "as_main", "--scale", "tiny",
                     "--workers", "2", "--no-progress")
    old = tmp_path / "old"
    shutil.copytree(root, old)
    meta = json.loads((root / "meta.json").read_text())  # as built (not the fixture's dict)
    (old / "meta.json").write_text(json.dumps({**meta, "generator": "__main__"}))
    stamp = (old / "meta.json").stat().st_mtime_ns
    assert mdf.make_digits_family(fsdd, old, scale="tiny") == old and (old / "meta.json").stat().st_mtime_ns == stamp
