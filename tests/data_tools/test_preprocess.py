"""data_tools.preprocess: to-wav, split, extract-audio over class folders, with bad files and re-runs."""

from __future__ import annotations

import csv
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from data_tools import preprocess
from tests.media import make_audio, make_non_media, make_video, make_wav, tone, wav_expected

pytestmark = pytest.mark.ffmpeg


def _read(path: Path) -> tuple[np.ndarray, int]:
    """(samples (T, C) float32, rate) of a 16-bit PCM wav."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return data.astype(np.float32) / 32768, w.getframerate()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """IN/violin/{a.wav (stereo 44.1 kHz 2 s), b.flac, b.mp3 (name clash)},
    IN/guitar/{c.mp3, d.mp4, bad.wav, silent.mp4}."""
    root = tmp_path_factory.mktemp("in") / "IN"
    (root / "violin").mkdir(parents=True)
    (root / "guitar").mkdir()
    make_wav(root / "violin" / "a.wav", 440.0, 44100, channels=2, duration=2.0)
    make_audio(root / "violin" / "b.flac", 330.0, 22050, duration=1.0)
    shutil.copy(root / "violin" / "b.flac", root / "violin" / "b.mp3")  # clashes with b.flac -> b.wav
    make_audio(root / "guitar" / "c.mp3", 550.0, 22050, duration=1.0)
    make_video(root / "guitar" / "d.mp4", duration=1.0, fps=5, size=(32, 16), audio_sr=16000)
    make_non_media(root / "guitar" / "bad.wav")
    make_video(root / "guitar" / "silent.mp4", duration=0.6, fps=5, size=(32, 16), audio_sr=None)
    (root / "guitar" / "notes.txt").write_text("not media")
    make_wav(root / ".hidden.wav", 440.0, 8000, duration=0.1)
    return root


def test_to_wav_tree_bad_files_and_rerun(tree, tmp_path):
    out = tmp_path / "OUT"
    summary = preprocess.to_wav(tree, out, 16000, workers=2)
    assert summary.written == 4 and summary.existing == 0
    reasons = {path.name: reason for path, reason in summary.failed}
    assert set(reasons) == {"b.mp3", "bad.wav", "silent.mp4"}
    assert "already used by" in reasons["b.mp3"]
    assert reasons["silent.mp4"] == "no audio stream"
    assert "not a media file" in reasons["bad.wav"]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert files == ["guitar", "guitar/c.wav", "guitar/d.wav", "skipped.csv", "violin", "violin/a.wav",
                     "violin/b.wav"]
    with open(out / "skipped.csv", newline="") as f:  # each failed input named, with its reason
        assert {(r["id"], Path(r["path"]).name, r["reason"]) for r in csv.DictReader(f)} == \
            {(Path(name).stem, name, reason) for name, reason in reasons.items()}
    # mono downmix (the mean of the channels: 0.5 and 0.25 peaks -> 0.375) at 16 kHz, 2 s
    data, rate = _read(out / "violin" / "a.wav")
    assert rate == 16000 and data.shape[1] == 1 and abs(len(data) - 32000) <= 32
    assert abs(np.abs(data[1000:-1000]).max() - 0.375) < 0.02
    # a re-run skips finished files and removes a killed run's temporary file
    stale = out / "violin" / ".b.wav.avtmp-999-abc.wav"
    stale.write_bytes(b"RIFF")
    mtime = (out / "violin" / "a.wav").stat().st_mtime_ns
    again = preprocess.to_wav(tree, out, 16000, workers=2)
    assert again.existing == 4 and again.written == 0 and len(again.failed) == 3
    assert not stale.exists() and (out / "violin" / "a.wav").stat().st_mtime_ns == mtime


def test_to_wav_batch_matches_one_by_one_and_copies_ready_wav(tree, tmp_path):
    src = tmp_path / "IN"
    src.mkdir()
    for name in ("c.mp3", "d.mp4"):
        shutil.copy(next(tree.rglob(name)), src / name)
    shutil.copy(tree / "violin" / "b.flac", src / "b.flac")
    ready = make_wav(src / "m.wav", 440.0, 16000, duration=0.5)  # already mono 16-bit 16 kHz: copied
    batched = preprocess.to_wav(src, tmp_path / "B", 16000, batch=8)
    single = preprocess.to_wav(src, tmp_path / "S", 16000, batch=1, workers=1)
    assert batched.written == single.written == 4 and not batched.failed
    for name in ("b.wav", "c.wav", "d.wav", "m.wav"):
        assert (tmp_path / "B" / name).read_bytes() == (tmp_path / "S" / name).read_bytes(), name
    data, rate = _read(tmp_path / "B" / "m.wav")
    assert rate == 16000 and np.array_equal(data, wav_expected(440.0, 16000, duration=0.5))
    assert (tmp_path / "B" / "m.wav").read_bytes() == ready.read_bytes()


def test_split_exact_pieces(tmp_path):
    src = tmp_path / "IN" / "cls"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    samples = rng.uniform(-0.9, 0.9, size=(12 * 8000, 1))
    make_wav(src / "long.wav", samples, 8000)
    expected = wav_expected(samples, 8000)
    make_wav(src / "stereo.wav", tone(220.0, 6.0, 8000, channels=2), 8000, subtype="FLOAT")
    make_wav(src / "short.wav", 440.0, 8000, duration=3.0)
    make_audio(src / "enc.flac", 330.0, 8000, duration=7.0)
    out = tmp_path / "OUT"
    summary = preprocess.split_audio(src.parent, out, 5.0, workers=2)
    assert summary.written == 4 and summary.pieces == 3 + 2 + 1 + 2 and not summary.failed
    pieces = [_read(out / "cls" / f"long_{k}.wav") for k in range(3)]
    assert [len(p) for p, _ in pieces] == [40000, 40000, 16000]
    assert np.array_equal(np.concatenate([p for p, _ in pieces]), expected)  # byte-exact cuts
    with wave.open(str(out / "cls" / "enc_1.wav")) as w:
        assert (w.getframerate(), w.getnframes()) == (8000, 16000)
    # the float stereo file keeps its format: 4-byte float samples, 2 channels
    header = (out / "cls" / "stereo_1.wav").read_bytes()[:44]
    assert header[20:22] == b"\x03\x00" and header[22:24] == b"\x02\x00"
    assert int.from_bytes(header[40:44], "little") == 8000 * 2 * 4  # 1 s left after 5 s
    # --drop-last: no partial pieces; the 3 s file has none at all
    dropped = preprocess.split_audio(src.parent, tmp_path / "OUT2", 5.0, drop_last=True)
    assert dropped.short == 1 and dropped.pieces == 2 + 1 + 1
    assert sorted(p.name for p in (tmp_path / "OUT2" / "cls").iterdir()) == \
        ["enc_0.wav", "long_0.wav", "long_1.wav", "stereo_0.wav"]
    # a re-run after losing one piece writes only that piece
    (out / "cls" / "long_1.wav").unlink()
    again = preprocess.split_audio(src.parent, out, 5.0)
    assert again.pieces == 1 and again.written == 1 and again.existing == 3
    assert np.array_equal(_read(out / "cls" / "long_1.wav")[0], expected[40000:80000])


def test_extract_audio_and_cli(tmp_path, capsys):
    videos = tmp_path / "VIDEOS" / "drums"
    videos.mkdir(parents=True)
    make_video(videos / "v1.mp4", duration=1.0, fps=5, size=(32, 16), audio_sr=16000, audio_channels=2)
    make_video(videos / "v2.mkv", duration=0.8, fps=5, size=(32, 16), audio_sr=22050)
    make_video(videos / "mute.mp4", duration=0.6, fps=5, size=(32, 16), audio_sr=None)
    make_wav(videos / "not_a_video.wav", 440.0, 8000, duration=0.2)
    out = tmp_path / "OUT"
    assert preprocess.main(["extract-audio", str(videos.parent), str(out), "--sr", "8000", "--workers", "2",
                            "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "3 input files: 2 processed" in line and "1 failed" in line and f"listed in {out / 'skipped.csv'}" in line
    assert sorted(p.name for p in (out / "drums").iterdir()) == ["v1.wav", "v2.wav"]
    data, rate = _read(out / "drums" / "v1.wav")
    assert rate == 8000 and data.shape[1] == 1 and abs(len(data) - 8000) <= 0.07 * 8000  # AAC pads a frame
    assert preprocess.main(["split", str(out), str(tmp_path / "P"), "--seconds", "0.6", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "P" / "drums").iterdir()) == \
        ["v1_0.wav", "v1_1.wav", "v2_0.wav", "v2_1.wav"]
    assert preprocess.main(["to-wav", str(tmp_path / "missing"), str(out), "--no-progress"]) == 1
    assert "no such file or folder" in capsys.readouterr().err
