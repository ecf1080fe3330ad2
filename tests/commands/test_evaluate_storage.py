"""``python -m avcorr.evaluate --data ROOT`` on either storage: a run trained from files evaluated from shards of the
same clips (and back), ``--storage`` against the wrong root, and the files-only tools stopped clearly on shards."""

from __future__ import annotations

import json

import pytest

from avcorr import evaluate, localize, retrieve
from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from data_tools import make_shards as ms
from tests.commands.test_report import TINY_LOC, _untrained_run
from tests.conftest import TINY, TINY_AVC


@pytest.fixture(scope="module")
def shards(tiny_root, tmp_path_factory):
    """The tiny dataset's val and test splits as shards: every frame at its own size (the frames are square, so the
    centre crop is the whole frame), bit-exact (raw), 3 per clip so that one sits at the clip's middle time."""
    out = tmp_path_factory.mktemp("eval_shards")
    options = ShardOptions(frames_per_clip=3, size=TINY["size"], sample_rate=16000, format="raw")
    for split in ("val", "test"):
        ms.shard_split(load_split(tiny_root, split), out, options, clips_per_shard=3)
    return out


@pytest.fixture(scope="module")
def runs(tiny_root, tmp_path_factory):
    """Untrained AVC and localization runs whose config says they were trained from the files."""
    base = tmp_path_factory.mktemp("eval_runs")
    return {name: _untrained_run(base / name, config, [*overrides, f"data.root={tiny_root}"]) / "checkpoints" / "best.pt"
            for name, config, overrides in (("avc", "avenet.py", TINY_AVC), ("localization", "avolnet.py", TINY_LOC))}


def _evaluate(checkpoint, out, *extra) -> dict:
    assert evaluate.main(["--checkpoint", str(checkpoint), "--split", "test", "--workers", "0", "--device", "cpu",
                          "--no-progress", "--out", str(out), *extra]) == 0
    return json.loads((out / "eval_test.json").read_text())


def test_a_files_run_evaluates_from_shards_of_the_same_clips(runs, shards, tiny_root, tmp_path):
    loc_files = _evaluate(runs["localization"], tmp_path / "lf")
    loc_shards = _evaluate(runs["localization"], tmp_path / "ls", "--data", str(shards))
    assert (loc_files["storage"], loc_shards["storage"]) == ("files", "shards")
    assert loc_shards["data_root"] == str(shards)
    # the same clips, the same middle frames (bit-exact), audio centred within half a frame of the same time
    for key in ("num_clips", "num_boxed", "center/ciou_mean", "center/fixed/ciou_mean"):
        assert loc_shards[key] == loc_files[key] == pytest.approx(loc_files[key]), key
    assert loc_files["num_clips"] == 6
    for key in ("ciou_mean", "fixed/ciou_mean", "auc_ciou", "fixed/auc_ciou"):
        assert loc_shards[key] == pytest.approx(loc_files[key], abs=1e-3), key
    avc_files = _evaluate(runs["avc"], tmp_path / "af")
    avc_shards = _evaluate(runs["avc"], tmp_path / "as", "--data", str(shards))
    # the pairs differ (the shards' negatives come from the stream's buffer), their number does not
    assert avc_files["num_pairs"] == avc_shards["num_pairs"] == 6 * 2
    assert {"avc_acc", "baseline/avc_acc"} <= set(avc_shards)
    # and back: --data naming the dataset folder reads files again, as does --storage files
    assert _evaluate(runs["avc"], tmp_path / "af2", "--data", str(tiny_root), "--storage", "files")["storage"] == "files"


def test_storage_that_does_not_fit_the_root_is_a_clear_error(runs, shards, tiny_root, tmp_path, capsys):
    base = ["--checkpoint", str(runs["avc"]), "--split", "test", "--workers", "0", "--device", "cpu", "--no-progress",
            "--out", str(tmp_path)]
    assert evaluate.main([*base, "--data", str(tiny_root), "--storage", "shards"]) == 2
    err = capsys.readouterr().err
    assert f"{tiny_root}: storage 'shards' expects the output of python -m data_tools.make_shards" in err
    assert str(tiny_root / "test" / "manifest.json") in err
    assert evaluate.main([*base, "--storage", "shards"]) == 2  # the run's own root, which holds files
    assert "expects the output of python -m data_tools.make_shards" in capsys.readouterr().err
    assert evaluate.main([*base, "--data", str(shards), "--storage", "files"]) == 2
    assert f"{shards}: storage 'files' expects a dataset folder in the layout" in capsys.readouterr().err
    assert evaluate.main([*base, "--data", str(shards), "--retrieval"]) == 2  # retrieval embeds clip files
    assert "--retrieval reads clip files: pass --data ROOT" in capsys.readouterr().err
    assert not (tmp_path / "eval_test.json").exists()


def test_a_shard_run_evaluates_from_files_and_files_only_tools_say_to_pass_a_files_root(shards, tiny_root, tmp_path,
                                                                                        capsys):
    loc = _untrained_run(tmp_path / "loc", "avolnet.py", [*TINY_LOC, f"data.root={shards}", "data.storage=shards"])
    assert localize.main(["--checkpoint", str(loc / "checkpoints" / "best.pt"), "--grid", "--out", str(tmp_path / "g"),
                          "--device", "cpu"]) == 2
    assert f"{shards}: holds shards" in capsys.readouterr().err
    avc = _untrained_run(tmp_path / "avc", "avenet.py", [*TINY_AVC, f"data.root={shards}", "data.storage=shards"])
    assert retrieve.main(["index", "--checkpoint", str(avc / "checkpoints" / "best.pt"), "--out", str(tmp_path / "i"),
                          "--device", "cpu", "--no-progress"]) == 2
    assert "reads clip files: pass --data ROOT" in capsys.readouterr().err
    from_files = _evaluate(avc / "checkpoints" / "best.pt", tmp_path / "e", "--data", str(tiny_root))
    assert (from_files["storage"], from_files["num_pairs"]) == ("files", 12)
