"""The one atomic writer (avcorr/_atomic.py) and the one ffmpeg lookup (avcorr/_ffmpeg.py)."""

import json
import os

import pytest

from avcorr._atomic import (atomic_open, atomic_path, move_into_place, stale_temporaries, temp_path, write_bytes,
                            write_json, write_text)
from avcorr._ffmpeg import ToolNotFoundError, find_tool


def test_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the folder is created
    assert write_json(path, {"x": 1}) == path and json.loads(path.read_text()) == {"x": 1}
    write_text(path, "two\n")
    assert path.read_text() == "two\n"
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    with atomic_open(tmp_path / "c.csv", "w", newline="") as f:
        f.write("a,b\r\n")
    assert (tmp_path / "c.csv").read_bytes() == b"a,b\r\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.bin", "c.csv", "sub"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with pytest.raises(TypeError):  # not JSON: nothing written at all
        write_json(tmp_path / "new.json", {"x": object()})
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of a write
        with atomic_open(tmp_path / "new.csv") as f:
            f.write("partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_folder_can_be_built_atomically(tmp_path):
    out = tmp_path / "tree"
    with pytest.raises(ValueError):
        with atomic_path(out) as tmp:
            (tmp / "x").mkdir(parents=True)
            raise ValueError("stop")
    assert os.listdir(tmp_path) == []
    with atomic_path(out) as tmp:
        (tmp / "x").mkdir(parents=True)
        (tmp / "x" / "f").write_text("1")
    assert (out / "x" / "f").read_text() == "1" and os.listdir(tmp_path) == ["tree"]


def test_a_finished_file_or_folder_is_moved_into_place(tmp_path):
    staged = tmp_path / "staging" / "clip.part.mp4"  # finished under a name of its own (a download)
    staged.parent.mkdir()
    staged.write_bytes(b"new")
    (tmp_path / "clip.mp4").write_bytes(b"old")
    assert move_into_place(staged, tmp_path / "clip.mp4") == tmp_path / "clip.mp4"
    assert (tmp_path / "clip.mp4").read_bytes() == b"new" and not staged.exists()
    built = tmp_path / ".root.tmp-x"  # a folder built under a mkdtemp name replaces an empty folder only
    (built / "train").mkdir(parents=True)
    (tmp_path / "root").mkdir()
    move_into_place(built, tmp_path / "root")
    assert (tmp_path / "root" / "train").is_dir() and not built.exists()
    (built / "val").mkdir(parents=True)
    with pytest.raises(OSError):
        move_into_place(built, tmp_path / "root")  # not empty: both stay as they were
    assert (built / "val").is_dir() and sorted(os.listdir(tmp_path / "root")) == ["train"]


def test_stale_temporaries_are_those_of_dead_processes(tmp_path):
    mine = temp_path(tmp_path / "a.pt")
    assert mine.name == f".a.pt.tmp{os.getpid()}"
    mine.write_text("")
    dead = tmp_path / ".b.pt.tmp999999999"  # no such pid
    dead.write_text("")
    (tmp_path / "c.pt").write_text("")
    assert stale_temporaries(tmp_path) == [dead]
    assert stale_temporaries(tmp_path / "missing") == []


def test_missing_ffmpeg_is_one_clear_error(monkeypatch):
    assert os.path.basename(find_tool("ffprobe")) == "ffprobe"
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolNotFoundError, match=r"the `ffmpeg` binary is needed \(writing the MP4\) and was not "
                                                r"found on PATH; install ffmpeg"):
        find_tool("ffmpeg", needed_for="writing the MP4")
    # the callers' old error types still catch it
    assert issubclass(ToolNotFoundError, FileNotFoundError) and issubclass(ToolNotFoundError, RuntimeError)
    from data_tools import _media

    with pytest.raises(FileNotFoundError, match="needed .by the data tools."):
        _media.ffmpeg_exe()
    from avcorr.inference.timeline import probe_media

    with pytest.raises(RuntimeError, match="`ffprobe` binary is needed .avcorr.tag."):
        probe_media(__file__)
    with pytest.raises(ValueError, match="unknown tool"):
        find_tool("ffplay")
