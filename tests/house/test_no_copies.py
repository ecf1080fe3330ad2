"""One copy of each piece of plumbing: a second copy written later fails here, naming file:line.

The load-run sequence lives in avcorr/runs.py, atomic writes in avcorr/_atomic.py, the ffmpeg
lookup in avcorr/_ffmpeg.py and the shared command-line arguments in avcorr/_cli.py.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _sources(*trees: str):
    for tree in trees:
        for path in sorted((REPO / tree).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")


def _hits(pattern: str, trees: tuple[str, ...], allowed: set[str]) -> list[str]:
    rx = re.compile(pattern)
    return [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
            for rel, text in _sources(*trees) if rel not in allowed for m in rx.finditer(text)]


# A rename into place: os.replace/os.rename/shutil.move, or Path.replace/Path.rename (one argument, which
# str.replace never has, or called on a temporary's variable).
RENAMES = (r"\bos\.(?:replace|rename)\(|\bshutil\.move\(|\b\w*tmp\w*\.(?:replace|rename)\("
           r"|\.(?:replace|rename)\(\s*[A-Za-z_][\w.]*\s*\)")


def test_one_atomic_writer():
    """Files reach their final name only in avcorr/_atomic.py: atomic_path and its helpers for a write,
    move_into_place for an output finished under a name of its own (a download's .part, a built folder)."""
    assert _hits(RENAMES, ("avcorr", "data_tools", "experiments"), {"avcorr/_atomic.py"}) == []


def test_the_rename_pattern_sees_every_form():
    rx = re.compile(RENAMES)
    for line in ("os.replace(tmp, out)", "os.rename(tmp, root)", "shutil.move(a, b)", "tmp.replace(out / 'x')",
                 "tmp_dir.rename(root)", "part.replace(dest)", "staged.rename(self.path)"):
        assert rx.search(line), line
    for line in ('name.replace("\\\\", "/")', "dataclasses.replace(spec, **changes)", "move_into_place(tmp, out)",
                 "text.replace(old, new)", 'url.replace("{id}", vid)'):
        assert not rx.search(line), line


def test_one_ffmpeg_lookup():
    assert _hits(r"shutil\.which\(|\bwhich\(\s*[\"'](ffmpeg|ffprobe)", ("avcorr", "data_tools", "experiments"),
                 {"avcorr/_ffmpeg.py"}) == []


def test_one_load_run_sequence():
    """No module but avcorr/runs.py reads a checkpoint and builds a model from it (the trainer's resume aside)."""
    found = []
    for rel, text in _sources("avcorr", "experiments", "data_tools"):
        if rel == "avcorr/runs.py" or rel.startswith("avcorr/engine/"):
            continue
        if "load_checkpoint(" in text and re.search(r"build_model\(|build_tagging_model\(|load_state_dict\(", text):
            found.append(rel)
    assert found == []


def test_one_set_of_common_arguments():
    from avcorr._cli import COMMON_ARGS

    flags = "|".join(re.escape(flag) for flag, _ in COMMON_ARGS.values())
    assert _hits(rf"add_argument\(\s*[\"']({flags})[\"']", ("avcorr",), {"avcorr/_cli.py"}) == []


def test_recognize_is_the_function_and_the_command_file_runs_only_as_a_command():
    import importlib
    import subprocess
    import sys

    import pytest

    import avcorr
    from avcorr.inference.tagging import recognize

    assert avcorr.recognize is recognize
    with pytest.raises(ImportError, match="avcorr.recognize is the function"):
        importlib.import_module("avcorr.recognize")
    assert avcorr.recognize is recognize  # the failed import bound nothing
    proc = subprocess.run([sys.executable, "-m", "avcorr.recognize", "--help"], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert proc.returncode == 0 and "--checkpoint" in proc.stdout and "--top-k" in proc.stdout


def test_evaluation_files_say_what_they_hold(tmp_path):
    """eval_<split>.json holds everything; eval_<split>_retrieval.json the retrieval part alone, kept when a
    later plain evaluation rewrites eval_<split>.json."""
    import json

    from avcorr.evaluate import output_dir, output_files, write_evaluation

    assert output_dir("runs/x/checkpoints/best.pt") == Path("runs/x/checkpoints")
    base = {"split": "val", "checkpoint": "c.pt", "epoch": 2, "data_root": "/d", "avc_acc": 0.75,
            "skipped_list": [], "warnings": []}
    full = {**base, "a2v/recall@1": 0.5, "retrieval/num_clips": 8, "baseline/a2v/recall@1": 0.125}
    written = write_evaluation(full, tmp_path / "out")
    assert written == output_files(tmp_path / "out", "val") and written["json"].name == "eval_val.json"
    assert json.loads(written["json"].read_text())["a2v/recall@1"] == 0.5
    retrieval = json.loads(written["retrieval"].read_text())
    assert retrieval == {"split": "val", "checkpoint": "c.pt", "epoch": 2, "data_root": "/d", "a2v/recall@1": 0.5,
                         "retrieval/num_clips": 8, "baseline/a2v/recall@1": 0.125}
    again = write_evaluation(base, tmp_path / "out")
    assert "retrieval" not in again and "a2v/recall@1" not in json.loads(again["json"].read_text())
    assert json.loads(written["retrieval"].read_text()) == retrieval  # still there
    assert written["skipped"].read_text().splitlines() == ["id,path,reason"]
