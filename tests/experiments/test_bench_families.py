"""experiments/bench_families.py: the families built from a copy of the Lithuanian Speech Commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avcorr.data.layout import load_split
from avcorr.data.writer import write_wav
from data_tools import make_speech_commands_folder, make_words_family
from experiments import bench_families as bf

pytestmark = pytest.mark.ffmpeg

WORDS = ("ačiū", "du", "ne", "į_kairę")


def _lt_copy(folder):
    """A clone-like folder: ``folder/dataset/<word>/<speaker>_nohash_0.wav`` (4 words x 4 speakers)."""
    rng = np.random.default_rng(0)
    for w in WORDS:
        for s in ("01", "02", "03", "04"):
            write_wav(folder / "dataset" / w / f"{s}_nohash_0.wav", 0.3 * rng.standard_normal(4000), 16000)
    return folder


def test_ltwords_is_built_from_the_ltcommands_folders(tmp_path, monkeypatch):
    ran = []

    def run_here(cmd, log=None):  # the tools' own command lines, run in this process
        ran.append(cmd[2])
        tool = {"data_tools.make_speech_commands_folder": make_speech_commands_folder,
                "data_tools.make_words_family": make_words_family}[cmd[2]]
        assert tool.main(cmd[3:]) == 0
        return 0.0

    monkeypatch.setattr(bf, "_run", run_here)
    data = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="ltwords family needs --lt-commands"):
        bf.family_root(data, "ltwords", False, build=True, fsdd=None)
    lt = _lt_copy(tmp_path / "lt_speech_commands")
    root = bf.family_root(data, "ltwords", False, build=True, fsdd=None, lt_commands=lt)
    assert root == data / "ltwords" and (data / "ltcommands-folders" / "meta.json").is_file()
    assert ran == ["data_tools.make_speech_commands_folder", "data_tools.make_words_family"]
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    assert meta["sources"]["recordings"]["name"] == "Lithuanian Speech Commands"
    assert "academic research" in meta["licence"] and meta["params"]["source"] == str(data / "ltcommands-folders")
    assert load_split(root, "train").classes == sorted(WORDS) and len(load_split(root, "test")) == 4
    # built once: found again without building, and the folder copy is not made twice
    assert bf.family_root(data, "ltwords", False, build=False, fsdd=None) == root
    folders = bf.family_root(data, "ltcommands", True, build=True, fsdd=None, lt_commands=lt)
    assert folders == data / "ltcommands-folders"
    assert len(ran) == 2 and "ltwords" in bf.FAMILIES and "ltwords" not in bf.HELD_OUT + bf.AUDIO_ONLY
