"""data_tools.make_words_family: spoken words paired with the word drawn as text, built from a tiny
speech folder (numpy tones) made here."""

from __future__ import annotations

import csv
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from avcorr.data.decode import frame_centre, read_frames
from avcorr.data.layout import load_split
from data_tools import make_words_family as mwf
from data_tools import validate
from data_tools._media import probe
from data_tools._words_render import drawable
from tests.data.test_digits_family import built_as_main_is
from tests.media import make_wav

pytestmark = pytest.mark.ffmpeg

WORDS = ("ačiū", "du", "stop", "į_kairę")  # sorted; non-ASCII folder names, as the Lithuanian set has
SPEAKERS = {"train": ("01", "02"), "val": ("03",), "test": ("04",)}
SR = 16000
BAD = {  # file name -> the start of its skip reason
    "notes.txt": "not a .wav file",
    "09_nohash_0.wav": "not a readable wav",
    "03_nohash_7.wav": "not mono",
    "04_nohash_9.wav": "longer than a clip",
}
SIZE = 64


def _tone(word: int, speaker: str, n: int, sr: int = SR) -> np.ndarray:
    """A distinct short chirp per recording, 0.3-0.7 s."""
    rng = np.random.default_rng([word, int(speaker), n])
    length = int(rng.uniform(0.3, 0.7) * sr)
    t = np.arange(length) / sr
    return 0.95 * np.sin(2 * np.pi * (300 + 200 * word) * t + 400 * t**2) * np.hanning(length)


def make_source(folder: Path, words: tuple[str, ...] = WORDS, *, bad: bool = True) -> Path:
    """``folder/{train,val,test}/<word>/<speaker>_nohash_0.wav`` (+ bad entries); one val file at 8 kHz."""
    for split, speakers in SPEAKERS.items():
        for w, word in enumerate(words):
            for s in speakers:
                sr = 8000 if (split, w) == ("val", 1) else SR
                (folder / split / word).mkdir(parents=True, exist_ok=True)
                make_wav(folder / split / word / f"{s}_nohash_0.wav", _tone(w, s, 0, sr), sr)
    if bad:
        (folder / "train" / "stop" / "notes.txt").write_text("not audio")
        (folder / "train" / "du" / "09_nohash_0.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
        make_wav(folder / "val" / "du" / "03_nohash_7.wav", np.zeros((800, 2)), SR)
        make_wav(folder / "test" / "stop" / "04_nohash_9.wav", 440.0, SR, duration=1.5)
    return folder


def _pcm(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as f:
        assert (f.getnchannels(), f.getsampwidth()) == (1, 2)
        return f.getframerate(), np.frombuffer(f.readframes(f.getnframes()), "<i2")


KW = dict(scale="tiny", clips=(12, "all", "all"), duration=1.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("words")
    src = make_source(base / "src")
    root = base / "family"
    assert mwf.main([str(src), str(root), "--scale", "tiny", "--clips", "12,all,all", "--duration", "1",
                     "--workers", "2", "--no-progress", "--source-licence", "test tones"]) == 0
    return src, root, json.loads((root / "meta.json").read_text(encoding="utf-8"))


def test_layout_labels_and_counts(built):
    src, root, meta = built
    assert validate.main([str(root), "--quiet"]) == 0
    assert meta["splits"] == {"train": 12, "val": 4, "test": 4}  # 8 train recordings, 4 used twice
    for split in ("train", "val", "test"):
        index = load_split(root, split)
        assert index.classes == list(WORDS) and len(index) == meta["splits"][split]
        for clip in index.clips:
            entry = meta["clips"][split][clip.vid]
            assert clip.labels == (entry["word"],) and clip.video is not None and clip.audio is not None
            assert entry["recording"].startswith(f"{entry['word']}/")
            assert entry["word"] not in entry["distractors"] and 1 <= len(entry["distractors"]) <= 3
    assert sorted(meta["clips"]["val"][v]["word"] for v in meta["clips"]["val"]) == sorted(WORDS)
    uses = [e["use"] for e in meta["clips"]["train"].values()]
    assert uses == [0] * 8 + [1] * 4
    assert meta["drawn_as"]["į_kairę"] == "i kaire" and meta["drawn_as"]["ačiū"] == "aciu"
    assert meta["sources"]["recordings"]["licence"] == "test tones" and "test tones" in meta["licence"]
    info = probe(next((root / "test" / "video").glob("*.mp4")))
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["width"], video["height"], int(video["nb_frames"])) == (SIZE, SIZE, 12)
    assert (audio["codec_name"], int(audio["sample_rate"])) == ("aac", SR)


def test_audio_is_the_recording_at_its_offset_and_rate(built):
    src, root, meta = built
    rates = set()
    for split, clips in meta["clips"].items():
        for vid, e in clips.items():
            rate, clip = _pcm(root / split / "audio" / f"{vid}.wav")
            rec_rate, rec = _pcm(src / split / e["recording"])
            assert rate == rec_rate == e["sample_rate"] and len(clip) == rate and len(rec) == e["num_samples"]
            assert np.array_equal(clip[e["offset"]:e["offset"] + len(rec)], rec)
            assert not np.concatenate([clip[:e["offset"]], clip[e["offset"] + len(rec):]]).any()
            rates.add(rate)
    assert rates == {8000, SR}


def test_boxes_hold_the_sounding_word(built):
    _, root, meta = built
    params = meta["params"]
    for split, clips in meta["clips"].items():
        boxes = json.loads((root / split / "boxes.json").read_text(encoding="utf-8"))
        for vid, e in clips.items():
            (box,) = boxes[vid]
            assert box == e["box"] and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
            plan = mwf.ClipPlan.from_meta(split, vid, e)
            frames, placed, _ = mwf.render_clip(plan, params)
            without, _, _ = mwf.render_clip(plan, params, draw_sounding=False)
            mid = frames.shape[0] // 2  # t = duration / 2 at 12 fps
            diff = np.abs(frames[mid].astype(int) - without[mid]).max(axis=2) > 0
            x1, y1, x2, y2 = (round(v * SIZE) for v in box)
            inside = diff[y1:y2, x1:x2]
            assert inside.sum() > 0.1 * inside.size  # ink of the word fills its box ...
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()  # tightly
            diff[y1:y2, x1:x2] = False
            assert not diff.any()  # ... and is only there
            assert [p is not None for p in placed[1:]] == e["distractors_drawn"]
            for other in placed[1:]:  # the silent words keep clear of it
                if other is not None:
                    lo = np.maximum(placed[0].xy - params["gap"], other.xy)
                    hi = np.minimum(placed[0].xy + placed[0].wh + params["gap"], other.xy + other.wh)
                    assert (np.clip(hi - lo, 0, None).prod(axis=1) == 0).all()
    for split, clips in meta["clips"].items():  # avcorr's reader sees the render at the boxes' time (lossy)
        vid, e = next(iter(clips.items()))
        frames, _, _ = mwf.render_clip(mwf.ClipPlan.from_meta(split, vid, e), params)
        mid = frames.shape[0] // 2
        (decoded,) = read_frames(root / split / "video" / f"{vid}.mp4", [frame_centre(mid, params["fps"])])
        assert np.abs(decoded.permute(1, 2, 0).numpy().astype(int) - frames[mid]).mean() < 4


def test_visible_json_lists_every_word_drawn(built, tmp_path):
    from data_tools.write_visible import write_visible

    src, root, meta = built
    n_silent = 0
    for split, clips in meta["clips"].items():
        index = load_split(root, split)
        for clip in index.clips:
            entry = clips[clip.vid]
            silent = [w for w, drawn in zip(entry["distractors"], entry["distractors_drawn"]) if drawn]
            assert index.visible_labels(clip) == (entry["word"], *silent)
            n_silent += len(silent)
    assert n_silent > 0
    # a family built before visible.json: the builder adds the missing files, write_visible rewrites them all
    old = tmp_path / "old"
    shutil.copytree(root, old)
    (old / "val" / "visible.json").unlink()
    (old / "test" / "visible.json").write_text("{}")
    assert mwf.make_words_family(src, old, **KW) == old
    assert (old / "val" / "visible.json").read_bytes() == (root / "val" / "visible.json").read_bytes()
    assert (old / "test" / "visible.json").read_text() == "{}"  # present: left as it is
    assert len(write_visible(old)) == 3
    assert all((old / s / "visible.json").read_bytes() == (root / s / "visible.json").read_bytes()
               for s in meta["clips"])
    (old / "val" / "vid2genre.json").write_text("{}")
    with pytest.raises(ValueError, match="val clips are not those of"):
        write_visible(old)


def test_skips_are_logged_and_counted(built):
    _, root, meta = built
    with open(root / "skipped.csv", newline="", encoding="utf-8") as f:
        reasons = {Path(r["path"]).name: r["reason"] for r in csv.DictReader(f)}
    assert {name: reason[:len(BAD.get(name, ""))] for name, reason in reasons.items()} == BAD, reasons
    assert meta["sources"]["recordings"]["skipped"] == len(BAD)


def test_deterministic_resumable_and_rerun_rules(built, tmp_path, monkeypatch):
    src, root, meta = built
    calls = []

    def failing_encode(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("killed")

    with monkeypatch.context() as m:  # a build that dies midway leaves nothing that looks finished ...
        m.setattr("data_tools._recorded_family.encode_mp4", failing_encode)
        with pytest.raises(RuntimeError, match="killed"):
            mwf.make_words_family(src, tmp_path / "again", workers=1, **KW)
    assert not (tmp_path / "again").exists() and not list(tmp_path.glob(".again*"))
    again = mwf.make_words_family(src, tmp_path / "again", workers=1, **KW)  # ... and the next one starts afresh
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel.name != "meta.json":
            assert path.read_bytes() == (again / rel).read_bytes(), rel
    meta2 = json.loads((again / "meta.json").read_text(encoding="utf-8"))
    assert meta2["clips"] == meta["clips"] and meta2["params"] == meta["params"]
    # a clip does not depend on how many clips are asked for
    recs, _, classes = mwf.scan_source(src)
    kw = dict(seed=0, duration=1.0, distractors=(1, 3), max_uses=2)
    plans = mwf.plan_split(recs, classes, "train", 12, **kw)
    assert plans == [mwf.ClipPlan.from_meta("train", v, e) for v, e in meta["clips"]["train"].items()]
    assert plans[:5] == mwf.plan_split(recs, classes, "train", 5, **kw)
    assert len(mwf.plan_split(recs, classes, "train", 40, **kw)) == 16  # at most 2 uses of 8 recordings
    # same parameters: returned untouched; other parameters or a foreign folder: refused
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert mwf.make_words_family(src, root, **KW) == root and (root / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="words family"):
        mwf.make_words_family(src, root, seed=1, **KW)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="foreign"):
        mwf.make_words_family(src, tmp_path / "foreign", **KW)


def test_drawable_transliterates_for_the_fonts():
    assert drawable("į_kairę") == "i kaire" and drawable("ačiū") == "aciu" and drawable("pauzė") == "pauze"
    assert drawable("ąčęėįšųūž_ĄČĘĖĮŠŲŪŽ") == "aceeisuuz ACEEISUUZ"
    with pytest.raises(ValueError, match="no ASCII form"):
        drawable("日本")


def test_bad_sources(tmp_path, capsys):
    src = make_source(tmp_path / "src", bad=False)
    (src / "val").rename(tmp_path / "val_elsewhere")
    with pytest.raises(FileNotFoundError, match=r"no val folder"):
        mwf.make_words_family(src, tmp_path / "out", **KW)
    assert mwf.main([str(src), str(tmp_path / "out"), "--scale", "tiny", "--no-progress"]) == 2
    assert "no val folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
    alike = make_source(tmp_path / "alike", ("ne", "nė"), bad=False)
    with pytest.raises(ValueError, match="both be drawn as 'ne'"):
        mwf.make_words_family(alike, tmp_path / "out", scale="tiny", distractors=(1, 1))
    with pytest.raises(ValueError, match="silent words"):
        mwf.make_words_family(make_source(tmp_path / "few", ("du", "trys"), bad=False), tmp_path / "out", **KW)
    with pytest.raises(ValueError, match="clips must be"):
        mwf.make_words_family(src, tmp_path / "out", scale="tiny", clips=(0, "all", "all"))


def test_meta_names_the_module_however_it_is_run(built, tmp_path):
    """``python -m`` runs the builder as ``__main__``: meta.json still names the module, and the dataset is the same
    to the byte; a root built before, whose meta.json says ``__main__``, is still this dataset."""
    src, root, meta = built
    assert meta["generator"] == mwf.GENERATOR == "data_tools.make_words_family"
    built_as_main_is(root, "data_tools.make_words_family", src, tmp_path / "as_main", "--scale", "tiny", "--clips",
                     "12,all,all", "--duration", "1", "--workers", "2", "--no-progress",
                     "--source-licence", "test tones")
    old = tmp_path / "old"  # as a python -m build wrote it before
    shutil.copytree(root, old)
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))  # as built (not the fixture's dict)
    write = (old / "meta.json").write_text
    write(json.dumps({**meta, "generator": "__main__"}), encoding="utf-8")
    stamp = (old / "meta.json").stat().st_mtime_ns
    assert mwf.make_words_family(src, old, **KW) == old and (old / "meta.json").stat().st_mtime_ns == stamp
    write(json.dumps({**meta, "generator": "__main__", "family": "digits"}), encoding="utf-8")
    with pytest.raises(FileExistsError, match="words family"):
        mwf.make_words_family(src, old, **KW)
