"""data_tools write through avcorr._atomic: what a killed run leaves is found and removed, a failed
ffmpeg run leaves nothing that looks finished."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from avcorr._atomic import temp_path
from data_tools import _media
from data_tools import split as split_tool
from tests.media import make_wav


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    sub = tmp_path / "out" / "violin"
    sub.mkdir(parents=True)
    killed = sub / f".a.wav.tmp{dead}"                       # avcorr._atomic's, its writer gone
    older = sub / ".b.wav.avtmp-12-0a1b2c.wav"               # the name data_tools used before
    live = sub / f".c.wav.tmp{os.getppid()}"                 # a writer still running: kept
    folder = tmp_path / "out" / f".d.tmp{dead}"              # a folder being built when killed
    (folder / "x").mkdir(parents=True)
    for path in (killed, older, live, sub / "done.wav"):
        path.write_bytes(b"RIFF")
    assert _media.remove_stale_temps(tmp_path / "out") == 1  # this folder only: the built folder
    assert not folder.exists() and killed.exists()
    assert _media.remove_stale_temps(tmp_path / "out", recursive=True) == 2
    assert sorted(p.name for p in sub.iterdir()) == [live.name, "done.wav"]
    assert _media.remove_stale_temps(tmp_path / "missing", recursive=True) == 0


def test_stale_temps_of_one_output(tmp_path):
    dead = _dead_pid()
    mine = [tmp_path / f".ROOT.tmp{dead}", tmp_path / ".ROOT.avtmp-7-split"]
    others = [tmp_path / f".ROOT.json.tmp{dead}", tmp_path / f".ROOTS.tmp{dead}", tmp_path / "ROOT"]
    for path in mine + others:
        path.mkdir()
    assert _media.stale_temps(tmp_path, "ROOT") == sorted(mine)
    assert _media.stale_temps(tmp_path) == sorted(mine + others[:2])


def test_split_removes_what_its_killed_run_left(tmp_path):
    raw = tmp_path / "RAW"
    (raw / "audio").mkdir(parents=True)
    labels = {f"c{i}": "Alpha" if i % 2 else "Beta" for i in range(10)}
    for vid in labels:
        make_wav(raw / "audio" / f"{vid}.wav", 440.0, 8000, duration=0.05)
    (raw / "vid2genre.json").write_text(json.dumps(labels))
    killed = tmp_path / f".ROOT.tmp{_dead_pid()}"
    (killed / "train" / "audio").mkdir(parents=True)
    result = split_tool.build_split(raw, tmp_path / "ROOT", val=0.2, test=0.2, seed=0, progress=False)
    assert sum(result["counts"].values()) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RAW", "ROOT"]  # no temporary left either


@pytest.mark.ffmpeg
def test_a_failed_conversion_leaves_no_output_and_no_temporary(tmp_path):
    (tmp_path / "in").mkdir()
    good = make_wav(tmp_path / "in" / "good.wav", 440.0, 8000, duration=0.1)
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"not audio at all" * 64)
    out = tmp_path / "out"
    out.mkdir()
    (out / "good.wav").write_bytes(b"old")
    with pytest.raises(_media.FFmpegError):
        _media.to_wav(bad, out / "good.wav", 8000)
    with pytest.raises(_media.FFmpegError):
        _media.to_wav_many([(good, out / "a.wav"), (bad, out / "b.wav")], 8000)
    assert sorted(p.name for p in out.iterdir()) == ["good.wav"] and (out / "good.wav").read_bytes() == b"old"
    _media.to_wav_many([(good, out / "a.wav"), (good, out / "good.wav")], 8000)
    assert (out / "a.wav").read_bytes() == (out / "good.wav").read_bytes() != b"old"
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "good.wav"]
    assert not temp_path(out / "a.wav").exists()
