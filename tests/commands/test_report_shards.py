"""The run report's galleries of runs trained from shards (data.storage=shards): the clips are read from the shards."""

from __future__ import annotations

import json
import re

import cv2
import pytest

from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import read_manifest
from avcorr.report import build_report
from avcorr.report._gallery import GalleryOptions
from data_tools import make_shards as ms
from tests.commands.test_report import TINY_LOC, TINY_SOP, _untrained_run
from tests.conftest import TINY_AVC
from tests.data.test_avc_stream import _corrupt_member

SIZE = 32  # the stored frames' side


@pytest.fixture(scope="module")
def shards(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_shards")
    for split in ("train", "val", "test"):
        ms.shard_split(load_split(tiny_root, split), out, ShardOptions(frames_per_clip=3, size=SIZE, sample_rate=16000),
                       clips_per_shard=3)
    return out


FAMILIES = {"avc": ("avenet.py", TINY_AVC, "audio -&gt; video"), "localization": ("avolnet.py", TINY_LOC, "cIoU"),
            "separation": ("sop.py", [*TINY_SOP, "data.audio.sample_rate=16000"], "separated:")}


@pytest.mark.parametrize("task", list(FAMILIES))
def test_gallery_of_a_shard_run(task, shards, tmp_path):
    config, overrides, marker = FAMILIES[task]
    run = _untrained_run(tmp_path / "run", config, [*overrides, f"data.root={shards}", "data.storage=shards"])
    text = build_report(run, gallery=GalleryOptions(n=2, device="cpu")).read_text()
    assert 'id="gallery"' in text and "No gallery" not in text and marker in text, text[text.find("gallery"):][:600]
    (folder,) = list((run / "report_files" / "test").glob("g-*"))
    data = json.loads((folder / "gallery.json").read_text())
    assert data["split"] == "test" and data["total"] == 6 and data["skipped"] == []
    linked = {run / src for src in re.findall(r'src="(report_files/[^"]+)"', text)}
    wavs, pictures = [f for f in linked if f.suffix == ".wav"], [f for f in linked if f.suffix in (".jpg", ".png")]
    assert wavs and pictures and all(f.is_file() for f in linked)  # every player and picture has its file
    for f in wavs:
        assert f.stat().st_size > 16000  # 16-bit PCM: at least half a second of sound at 16 kHz
    for f in pictures:
        assert cv2.imread(str(f)) is not None, f
    if task == "avc":  # 2 queries x 2 directions x (query + top 5 of 6), each clip with frame, spectrogram, sound
        assert text.count('<audio controls preload="none"') == 24
        frame = cv2.imread(str(folder / next(f for f in data["directions"][0]["queries"][0].values()
                                             if isinstance(f, str) and f.endswith(".jpg"))))
        assert frame.shape[0] == frame.shape[1]  # the stored square (scaled to the thumbnail height)
    elif task == "localization":
        assert len(data["items"]) == 2 and data["has_boxes"]
        assert all(it["ciou"] is not None and it["boxes"] >= 1 for it in data["items"])  # boxes moved into the crop
        assert all(0.0 <= it["time"] <= 3.0 for it in data["items"])
        assert cv2.imread(str(folder / data["items"][0]["truth"])).shape[:2] == (160, 160)  # the square crop
    else:
        assert len(data["items"]) == 2 and all(len(it["sources"]) == 2 for it in data["items"])
        ids = {s["id"] for it in data["items"] for s in it["sources"]}
        assert ids <= set(read_manifest(shards / "test")["shards"][0]["clips"] + read_manifest(shards / "test")
                          ["shards"][1]["clips"])


def test_a_corrupt_shard_member_is_skipped_and_shown(shards, tmp_path):
    import shutil

    root = tmp_path / "shards"
    shutil.copytree(shards, root)
    bad = _corrupt_member(root / "test" / read_manifest(root / "test")["shards"][0]["name"], ".audio.npy")
    run = _untrained_run(tmp_path / "run", "avolnet.py", [*TINY_LOC, f"data.root={root}", "data.storage=shards"])
    text = build_report(run, gallery=GalleryOptions(n=6, device="cpu")).read_text()
    assert "No gallery" not in text and "1 clip(s) could not be read" in text and bad in text
    (folder,) = list((run / "report_files" / "test").glob("g-*"))
    data = json.loads((folder / "gallery.json").read_text())
    assert len(data["items"]) == 5 and data["skipped"][0][0] == bad and "audio.npy" in data["skipped"][0][1]


def test_a_run_trained_from_shards_ends_with_its_gallery(shards, tmp_path):
    from avcorr import train

    run = tmp_path / "loc"
    assert train.main(["--config", "avolnet.py", "--no-progress", f"data.root={shards}", "data.storage=shards",
                       f"train.out_dir={run}", *TINY_LOC, "train.max_steps=2", "train.report_gallery=2"]) == 0
    text = (run / "report.html").read_text()
    assert "No gallery" not in text and "Localization gallery (test split)" in text
    assert "report gallery" not in (run / "train.log").read_text()  # nothing failed or was skipped
