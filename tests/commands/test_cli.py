"""Command lines: errors come early and plain (before a model is loaded), file names may start with '-'."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avcorr import tag, train
from avcorr._cli import ArgumentParser
from avcorr.tasks.avc import AVCTask
from tests.conftest import TINY_AVC
from tests.media import make_video, make_wav

REPO = Path(__file__).resolve().parents[2]
recognize = importlib.import_module("avcorr.recognize_cli")  # the command (avcorr.recognize is the function)


@pytest.fixture()
def no_model(monkeypatch):
    """Building or loading any model fails the test: the error must come before."""

    def fail(*args, **kwargs):
        raise AssertionError("a model was built or loaded before the input error")

    monkeypatch.setattr(AVCTask, "build_model", fail)
    monkeypatch.setattr(recognize, "load_tagger", fail)
    monkeypatch.setattr(tag, "load_second_tagger", fail)


@pytest.mark.parametrize("override, message", [
    ("train.epochs=-1", "error: train.epochs=-1: must be at least 0"),
    ("train.epochs=0", "error: train.epochs=0: means 'until train.max_steps', so set train.max_steps > 0"),
    ("train.batch_size=0", "error: train.batch_size=0: must be at least 1"),
    ("optim.lr=-0.001", "error: optim.lr=-0.001: must be at least 0"),
    ("avc.positive_fraction=1.5", "error: avc.positive_fraction=1.5: must be in [0, 1]"),
    ("data.root=/no/such/folder", "error: data.root='/no/such/folder': no such file or folder"),
])
def test_bad_values_rejected_before_anything_runs(override, message, tmp_path, capsys, no_model):
    run = tmp_path / "run"
    assert train.main(["--config", "avenet.py", f"train.out_dir={run}", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1  # one line
    assert not run.exists()  # no run folder that looks started


def test_missing_or_empty_splits_are_one_line_errors(tiny_root, tmp_path, capsys, no_model):
    import shutil

    no_train = tmp_path / "no_train"
    shutil.copytree(tiny_root / "val", no_train / "val")
    no_val_json = tmp_path / "no_val_json"
    shutil.copytree(tiny_root / "train", no_val_json / "train")
    (no_val_json / "val").mkdir()
    empty_val = tmp_path / "empty_val"
    shutil.copytree(tiny_root / "train", empty_val / "train")
    (empty_val / "val").mkdir()
    (empty_val / "val" / "vid2genre.json").write_text("{}")
    cases = [(no_train, f"{no_train / 'train'}: split folder does not exist"),
             (no_val_json, f"{no_val_json / 'val' / 'vid2genre.json'}: missing"),
             (empty_val, f"{empty_val / 'val'}: needs at least 2 usable clips")]
    for root, message in cases:
        args = ["--config", "avenet.py", "--no-progress", f"data.root={root}", f"train.out_dir={tmp_path / 'run'}",
                *TINY_AVC]
        assert train.main(args) == 2, root
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith(f"error: {message}"), err
        assert "Traceback" not in "\n".join(err)


def test_unknown_key_suggests_the_closest_first(capsys):
    assert train.main(["--config", "avenet.py", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    first, rest = err.split("\n", 1)
    assert first == "error: unknown config key 'train.epoch'; did you mean `train.epochs`?"
    assert "valid keys are:" in rest and "data.audio.n_fft" in rest  # the full list still follows
    assert train.main(["--config", "avenet.py", "lr=0.1"]) == 2
    assert "did you mean `optim.lr`?" in capsys.readouterr().err


def test_overrides_before_and_after_options():
    args = train.parse_args(["--config", "avenet.py", "train.epochs=3", "--no-progress", "train.batch_size=2",
                             "--quiet", "data.num_workers=0"])
    assert args.no_progress and args.quiet and args.config == "avenet.py"
    assert args.overrides == ["train.epochs=3", "train.batch_size=2", "data.num_workers=0"]


def test_file_names_starting_with_a_dash():
    p = ArgumentParser(prog="x")
    p.add_argument("--input", nargs="+")
    p.add_argument("--out")
    p.add_argument("--k", type=int)
    p.add_argument("files", nargs="*")
    args = p.parse_args(["--input", "-aBc.wav", "b.wav", "--out", "-o.txt", "--k", "-3", "-x.mp4"])
    assert args.input == ["-aBc.wav", "b.wav"] and args.out == "-o.txt" and args.k == -3 and args.files == ["-x.mp4"]
    assert p.parse_args(["--input=-aBc.wav"]).input == ["-aBc.wav"]
    assert p.parse_args(["--", "-x.mp4"]).files == ["-x.mp4"]


def test_dash_errors_say_how_to_write_such_names(capsys):
    p = ArgumentParser(prog="x")
    p.add_argument("--input")
    with pytest.raises(SystemExit):
        p.parse_args(["--input", "-h.wav"])  # -h is an option here: the one name that needs another spelling
    err = capsys.readouterr().err
    assert "./-name" in err and "--option=-name" in err and "--" in err


def test_recognize_and_tag_say_no_audio_before_loading_a_model(tmp_path, capsys, no_model):
    import cv2

    photo = tmp_path / "-photo.jpg"
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    silent = make_video(tmp_path / "silent.mp4", duration=1.0, fps=8, size=(48, 48), audio_sr=None)
    ckpt = str(tmp_path / "never_read.pt")
    assert recognize.main([str(photo), "--checkpoint", ckpt, str(silent)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: skipped {photo}: no audio stream", f"error: skipped {silent}: no audio stream"]
    assert tag.main(["--checkpoint", ckpt, "--input", str(photo), "--quiet"]) == 1
    assert "-photo.jpg" in capsys.readouterr().err
    with pytest.raises(Exception, match="no audio stream"):
        recognize.recognize(photo, ckpt)


def test_recognize_takes_a_dash_name(tmp_path, monkeypatch, capsys):
    """A file name like a YouTube id starting with '-' reaches the tagger as a file."""
    wav = make_wav(tmp_path / "-aBcDeFgHiJ.wav", 440.0, 16000, duration=0.5)
    seen = []
    monkeypatch.setattr(recognize, "load_tagger", lambda ckpt, device, precision: "tagger")
    monkeypatch.setattr(recognize, "recognize", lambda f, tagger, *a, **k: seen.append(f) or [("tone", 1.0)])
    monkeypatch.chdir(tmp_path)
    assert recognize.main(["--checkpoint", "x.pt", wav.name, "--json"]) == 0
    assert seen == [wav.name] and json.loads(capsys.readouterr().out)["labels"][0]["label"] == "tone"


def test_help_does_not_import_torch():
    """--help of these CLIs is instant: no torch (2+ s) before the options are read."""
    code = ("import sys, runpy\n"
            "for cli in ('avcorr.train', 'avcorr.evaluate', 'avcorr.recognize', 'avcorr.tag', 'avcorr.retrieve',\n"
            "            'avcorr.localize', 'avcorr.separate', 'avcorr.report'):\n"
            "    sys.argv = [cli, '--help']\n"
            "    try:\n"
            "        runpy.run_module(cli, run_name='__main__')\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('torch' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stderr.strip().splitlines()[-1] == "False"


def test_retrieve_cli_choices_match_the_library():
    from avcorr import retrieval, retrieve

    assert retrieve.INDEX_KINDS == retrieval.INDEX_KINDS and retrieve.POOLINGS == retrieval.POOLINGS


def test_console_scripts_point_at_command_mains():
    """Every console script of setup.py names a module and a function that exist (an installed script fails
    only when run, so check it here)."""
    import ast
    import importlib

    tree = ast.parse((REPO / "setup.py").read_text())
    scripts = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and node.value.startswith("avcorr-") and "=" in node.value]
    assert len(scripts) >= 8
    for script in scripts:
        name, target = script.split("=")
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), script
