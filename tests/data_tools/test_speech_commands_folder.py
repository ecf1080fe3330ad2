"""data_tools.make_speech_commands_folder: a Speech Commands-style set -> speaker-disjoint folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from avcorr.data.tagging import folder_source
from avcorr.data.wav import parse_wav, read_wav_frames
from avcorr.data.writer import write_wav
from data_tools.make_speech_commands_folder import (
    assign_speakers,
    main,
    make_speech_commands_folder,
    scan_speech_commands,
    snippet_seconds,
    speaker_of,
)

WORDS = ("ačiū", "į_kairę", "stop")  # non-ASCII folder names, as the Lithuanian set has
SPEAKERS = [f"{i:02d}" for i in range(1, 11)]


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    for w in WORDS:
        for s in SPEAKERS:
            write_wav(src / w / f"{s}_nohash_0.wav", 0.1 * rng.standard_normal(1600), 16000)
    write_wav(src / "_background_noise_" / "1.wav", np.zeros(800), 16000)  # not a word
    (src / "stop" / "05_nohash_1.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")  # broken header
    (src / "stop" / "notes.txt").write_text("not audio")
    return src


def test_speaker_of_reads_the_nohash_convention():
    assert speaker_of("0a7c2a8d_nohash_0.wav") == "0a7c2a8d"
    assert speaker_of("12_nohash_3.wav") == "12"
    assert speaker_of("lonely.wav") == "lonely"  # no convention: the file is its own speaker


def test_assign_speakers_is_deterministic_disjoint_and_counted():
    split = assign_speakers(SPEAKERS, val=0.2, test=0.2, seed=0)
    assert sorted(split) == SPEAKERS
    assert sorted(split.values()).count("test") == 2 and sorted(split.values()).count("val") == 2
    assert split == assign_speakers(list(reversed(SPEAKERS)), val=0.2, test=0.2, seed=0)  # order-free
    assert split != assign_speakers(SPEAKERS, val=0.2, test=0.2, seed=1)
    assert sorted(assign_speakers(SPEAKERS[:3], val=0.05, test=0.05, seed=0).values()) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="one left for train"):
        assign_speakers(["a", "b"], val=0.4, test=0.4, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        assign_speakers(SPEAKERS, val=0.6, test=0.6, seed=0)


def test_scan_skips_with_reasons_and_ignores_background(tmp_path):
    recordings, skipped = scan_speech_commands(_source(tmp_path))
    assert len(recordings) == len(WORDS) * len(SPEAKERS)
    assert {r.word for r in recordings} == set(WORDS)
    reasons = {Path(p).name: r for p, r in skipped}
    assert set(reasons) == {"05_nohash_1.wav", "notes.txt"}
    assert "broken WAV header" in reasons["05_nohash_1.wav"] and reasons["notes.txt"] == "not a .wav file"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_speech_commands(tmp_path / "nowhere")


def test_folders_are_speaker_disjoint_and_read_by_the_folder_source(tmp_path):
    src = _source(tmp_path)
    out = make_speech_commands_folder(src, tmp_path / "out", val=0.2, test=0.2, link=True)
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["splits"] == {"train": 18, "val": 6, "test": 6} and meta["skipped"] == 2
    assert meta["classes"] == sorted(WORDS)
    speakers = {s: {speaker_of(p.name) for p in (out / s).rglob("*.wav")} for s in ("train", "val", "test")}
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["val"] & speakers["test"])
    for word in WORDS:  # every word of a speaker goes to that speaker's split
        assert {p.name for p in (out / "test" / word).iterdir()} == {f"{s}_nohash_0.wav" for s in speakers["test"]}
    one = next((out / "train" / "stop").iterdir())
    assert one.read_bytes() == (src / "stop" / one.name).read_bytes()
    with open(out / "skipped.csv", newline="", encoding="utf-8") as f:
        assert {row["id"] for row in csv.DictReader(f)} == {"05_nohash_1", "notes"}
    train = folder_source(out, "train")
    assert sorted(train.classes) == sorted(WORDS) and len(train.clips) == 18
    assert len(folder_source(out, "test", classes=train.classes).clips) == 6


def test_official_lists_win_and_a_finished_copy_is_kept(tmp_path):
    src = _source(tmp_path)
    (src / "validation_list.txt").write_text("ačiū/01_nohash_0.wav\nstop/02_nohash_0.wav\n", encoding="utf-8")
    (src / "testing_list.txt").write_text("į_kairę/03_nohash_0.wav\n", encoding="utf-8")
    out = make_speech_commands_folder(src, tmp_path / "out")
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["splits"] == {"train": 27, "val": 2, "test": 1} and meta["split_rule"].startswith("official")
    assert (out / "test" / "į_kairę" / "03_nohash_0.wav").is_file()
    stamp = (out / "meta.json").stat().st_mtime_ns
    assert make_speech_commands_folder(src, tmp_path / "out") == out  # complete: untouched
    assert (out / "meta.json").stat().st_mtime_ns == stamp


def test_cli_reports_and_refuses_a_foreign_folder(tmp_path, capsys):
    src = _source(tmp_path)
    assert main([str(src), str(tmp_path / "out"), "--val", "0.2", "--test", "0.2", "--no-progress"]) == 0
    assert "train 18 files (6 speakers)" in capsys.readouterr().out
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main([str(src), str(foreign), "--no-progress"]) == 2
    assert "foreign" in capsys.readouterr().err and (foreign / "keep.txt").read_text() == "mine"


def test_snippets_resampled_to_the_loudest_stretch(tmp_path):
    src = tmp_path / "src"
    rate = 16000
    for i, s in enumerate(SPEAKERS[:5]):
        x = 0.01 * np.sin(np.arange(rate) * 0.05)  # 1 s of quiet tone with a loud burst at 0.6-0.8 s
        x[int(0.6 * rate):int(0.8 * rate)] = 0.5 * np.sin(np.arange(int(0.2 * rate)) * 0.3)
        write_wav(src / "stop" / f"{s}_nohash_0.wav", x, rate)
        write_wav(src / "go" / f"{s}_nohash_0.wav", x, rate)
    out = make_speech_commands_folder(src, tmp_path / "out", val=0.2, test=0.2, sample_rate=8000, snippet=(0.2, 0.3))
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["params"]["sample_rate"] == 8000 and meta["params"]["snippet"] == [0.2, 0.3]
    for path in out.rglob("*.wav"):
        with open(path, "rb") as f:
            layout = parse_wav(f, str(path), path.stat().st_size)
            audio = read_wav_frames(f, str(path), layout, 0, layout.available_frames)[:, 0]
        split, word = path.parent.parent.name, path.parent.name
        seconds = snippet_seconds(f"{split}/{word}/{path.name}", 0.2, 0.3, 0)
        assert layout.sample_rate == 8000 and layout.num_channels == 1
        assert abs(audio.shape[0] - round(seconds * 8000)) <= 1
        assert 0.2 <= seconds <= 0.3
        assert np.abs(audio).max() > 0.4  # the burst is inside
        assert np.mean(np.abs(audio) > 0.1) > 0.5  # mostly the burst: the stretch is the loudest one
    assert snippet_seconds("a", 0.2, 0.3, 0) == snippet_seconds("a", 0.2, 0.3, 0) != snippet_seconds("a", 0.2, 0.3, 1)
    with pytest.raises(ValueError, match="snippet"):
        make_speech_commands_folder(src, tmp_path / "bad", snippet=(0.5, 0.2))
