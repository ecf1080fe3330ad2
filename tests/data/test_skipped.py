"""Skipped inputs are named: on screen with the reason, and in a ``skipped.csv`` (id, path, reason) beside the
outputs (retrieve index, evaluate and localize --grid are tested with their commands; here the helpers and the
commands over several files: tag, recognize)."""

import csv
import json

import pytest

from avcorr import tag
from avcorr.recognize_cli import main as recognize_main
from avcorr.config import Config, config_to_dict
from avcorr.data.layout import Clip
from avcorr.data.skipped import clip_paths, skipped_rows, write_skipped_csv
from avcorr.engine.checkpoint import save_checkpoint
from avcorr.models import create_model
from tests import oracle_tagger  # noqa: F401  (registers oracle_tone_noise)
from tests.media import make_non_media, make_wav


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rows_name_each_clip_once_with_its_file(tmp_path):
    clips = [Clip("a", ("x",), tmp_path / "video" / "a.mp4", tmp_path / "audio" / "a.wav"),
             Clip("b", ("x",), None, tmp_path / "audio" / "b.wav")]
    paths = clip_paths(clips)
    assert paths == {"a": str(tmp_path / "video" / "a.mp4"), "b": str(tmp_path / "audio" / "b.wav")}
    # what a sound-only reader (the tagging dataset) decodes: the audio file where there is one
    assert clip_paths(clips, audio_first=True) == {"a": str(tmp_path / "audio" / "a.wav"), "b": paths["b"]}
    rows = skipped_rows([("a", f"{paths['a']}: not a readable video file"), ("b", "no video file"),
                         ("a", "again"), ("c", "gone, with a comma")], paths)
    assert rows == [{"id": "a", "path": paths["a"], "reason": "not a readable video file"},
                    {"id": "b", "path": paths["b"], "reason": "no video file"},
                    {"id": "c", "path": "", "reason": "gone, with a comma"}]
    out = write_skipped_csv(tmp_path / "o" / "skipped.csv", rows)
    assert _read(out) == rows and not list((tmp_path / "o").glob(".*"))
    assert write_skipped_csv(out, []).read_text() == "id,path,reason\n"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """A tagging checkpoint whose answers are certain (class 0 = Tone, 1 = Noise)."""
    cfg = Config(task="tagging")
    cfg.model.name, cfg.model.width = "oracle_tone_noise", None
    cfg.model.kwargs = {"sample_rate": 16000, "clip_seconds": 2.0}
    cfg.tagging.classes, cfg.tagging.label_mode = ["Tone", "Noise"], "multi"
    path = tmp_path_factory.mktemp("oracle") / "best.pt"
    save_checkpoint({"config": config_to_dict(cfg),
                     "model": create_model(cfg.model.name, num_classes=2, **cfg.model.kwargs).state_dict()}, path)
    return path


@pytest.mark.ffmpeg
def test_tag_names_the_files_it_skips(oracle, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    good = make_wav(tmp_path / "in" / "good.wav", 440.0, 16000, duration=2.0)
    text = make_non_media(tmp_path / "in" / "text.mp4")
    missing = tmp_path / "in" / "missing.wav"
    out = tmp_path / "out"
    assert tag.main(["--checkpoint", str(oracle), "--input", str(good), str(text), str(missing), "--out", str(out),
                     "--quiet", "--no-plot"]) == 1
    captured = capsys.readouterr()
    assert f"{good}: 2 s tagged" in captured.out and (out / "good.srt").is_file()
    assert f"skipped {text}: " in captured.err and f"skipped {missing}: " in captured.err
    assert f"2 of 3 file(s) skipped, listed in {out / 'skipped.csv'}" in captured.err
    rows = {r["id"]: r for r in _read(out / "skipped.csv")}
    assert set(rows) == {"text", "missing"}
    assert rows["text"]["path"] == str(text) and not rows["text"]["reason"].startswith(str(text))
    assert rows["missing"]["path"] == str(missing)
    # the next run in the same folder replaces the list
    assert tag.main(["--checkpoint", str(oracle), "--input", str(good), "--out", str(out), "--no-progress",
                     "--no-plot"]) == 0
    assert _read(out / "skipped.csv") == []
    # without --out, the outputs and the list go beside each input
    other = tmp_path / "other"
    other.mkdir()
    bad = make_non_media(other / "bad.wav")
    assert tag.main(["--checkpoint", str(oracle), "--input", str(bad), str(good), "--quiet", "--no-plot"]) == 1
    assert [r["id"] for r in _read(other / "skipped.csv")] == ["bad"]
    assert (tmp_path / "in" / "good.srt").is_file() and not (tmp_path / "in" / "skipped.csv").exists()


def test_recognize_names_the_files_it_skips(oracle, tmp_path, capsys):
    good = make_wav(tmp_path / "good.wav", 440.0, 16000, duration=2.0)
    text = make_non_media(tmp_path / "text.wav")
    assert recognize_main([str(text), str(good), "--checkpoint", str(oracle), "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[0]["file"] == str(text) and lines[0]["skipped"] and "labels" in lines[1]
    assert lines[1]["labels"][0]["label"] == "Tone"
    assert f"skipped {text}: " in captured.err and "1 of 2 file(s) skipped" in captured.err
