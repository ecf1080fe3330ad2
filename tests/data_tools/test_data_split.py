"""data_tools.split: stratified, deterministic train/val/test layout that the validator accepts."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from avcorr.data.layout import load_split, validate
from data_tools import split as split_tool
from tests.media import make_video, make_wav

pytestmark = pytest.mark.ffmpeg

CSV = 'index,mid,display_name\n0,/m/a,"Alpha"\n1,/m/b,"Beta, b"\n2,/m/c,"Gamma"\n3,/m/d,"Delta"\n'


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("media")
    return (make_video(folder / "v.mp4", duration=0.5, fps=4, size=(32, 16), audio_sr=None),
            make_wav(folder / "a.wav", 440.0, 8000, duration=0.1))


def _make_raw(root: Path, media: tuple[Path, Path], labels: dict[str, object]) -> Path:
    video, audio = media
    (root / "video").mkdir(parents=True)
    (root / "audio").mkdir()
    for vid in labels:
        shutil.copyfile(video, root / "video" / f"{vid}.mp4")
        shutil.copyfile(audio, root / "audio" / f"{vid}.wav")
    (root / "vid2genre.json").write_text(json.dumps(labels))
    (root / "class_labels_indices.csv").write_text(CSV)
    return root


def _labels() -> dict[str, object]:
    labels: dict[str, object] = {}
    labels.update({f"-a{i:02d}": "Alpha" for i in range(20)})      # 20 clips
    labels.update({f"b_{i:02d}": "Beta, b" for i in range(10)})    # 10 clips
    labels.update({f"c{i}": "/m/c" for i in range(3)})             # 3 clips, as a mid
    labels.update({f"ab{i}": ["Alpha", "Beta, b"] for i in range(2)})
    labels["cd0"] = ["Alpha", "Delta"]                            # Delta: 1 clip -> its group
    return labels


def _assignment(root: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "val", "test"):
        for vid in json.loads((root / split / "vid2genre.json").read_text()):
            assert vid not in out, f"{vid} in two splits"
            out[vid] = split
    return out


def test_split_copies_and_validates(tmp_path, media):
    raw = _make_raw(tmp_path / "RAW", media, _labels())
    root = tmp_path / "ROOT"
    assert split_tool.main([str(raw), "--out", str(root), "--val", "0.1", "--test", "0.1", "--seed", "0",
                            "--no-progress"]) == 0
    report = validate(root)
    assert report.ok, report.format()
    got = _assignment(root)
    assert set(got) == set(_labels())
    # stratified on the rarest label: Alpha-only 20 -> 16/2/2, Beta 10 + 2 multi (rarer than Alpha) -> 10/1/1,
    # Gamma 3 -> 1/1/1, Delta 1 -> train
    groups = {"A": [v for v in got if v.startswith("-a")], "B": [v for v in got if v.startswith(("b_", "ab"))],
              "C": [v for v in got if v.startswith("c") and not v.startswith("cd")]}
    expected = {"A": (16, 2, 2), "B": (10, 1, 1), "C": (1, 1, 1)}
    for name, vids in groups.items():
        counts = Counter(got[v] for v in vids)
        assert (counts["train"], counts["val"], counts["test"]) == expected[name], name
    assert got["cd0"] == "train"
    # media copied (not linked), labels kept as written, the csv copied
    train = load_split(root, "train")
    assert all(c.video.is_file() and not c.video.is_symlink() and c.audio.is_file() for c in train.clips)
    v2g = json.loads((root / got["ab0"] / "vid2genre.json").read_text())
    assert v2g["ab0"] == ["Alpha", "Beta, b"]
    assert (root / "class_labels_indices.csv").read_text() == CSV
    assert train.classes == ["Alpha", "Beta, b", "Gamma", "Delta"]
    assert not list(tmp_path.glob(".ROOT*"))  # the temporary build folder is gone


def test_split_is_deterministic_and_order_free(tmp_path, media):
    labels = _labels()
    raw = _make_raw(tmp_path / "RAW", media, labels)
    assert split_tool.main([str(raw), "--out", str(tmp_path / "r1"), "--no-progress"]) == 0
    reordered = dict(reversed(list(labels.items())))
    (raw / "vid2genre.json").write_text(json.dumps(reordered))
    assert split_tool.main([str(raw), "--out", str(tmp_path / "r2"), "--no-progress", "--workers", "1"]) == 0
    assert split_tool.main([str(raw), "--out", str(tmp_path / "r3"), "--no-progress", "--seed", "1"]) == 0
    first, second, other = (_assignment(tmp_path / r) for r in ("r1", "r2", "r3"))
    assert first == second
    assert first != other and Counter(first.values()) == Counter(other.values())
    # the pure function agrees with the files
    parsed = {v: (tuple(x) if isinstance(x, list) else (x,)) for v, x in labels.items()}
    assert split_tool.assign_splits(parsed, 0.1, 0.1, seed=0) == first


def test_split_link_and_skips(tmp_path, media):
    labels = _labels()
    raw = _make_raw(tmp_path / "RAW", media, labels)
    (raw / "audio" / "-a00.wav").unlink()                     # no audio: skipped
    data = json.loads((raw / "vid2genre.json").read_text())
    data["../escape"] = "Alpha"                               # unsafe id: skipped, nothing written for it
    data["nolabel"] = 3                                       # not a label
    (raw / "vid2genre.json").write_text(json.dumps(data))
    (raw / "video" / ".-a01.mp4.avtmp-1-ab.mp4").write_bytes(b"partial")  # a temporary file is not media
    root = tmp_path / "ROOT"
    result = split_tool.build_split(raw, root, val=0.2, test=0.2, seed=3, link=True)
    assert result["skipped"] == {"missing_media": 1, "unsafe_id": 1, "bad_labels": 1}
    with open(root / "skipped.csv", newline="") as f:  # every skipped clip named, with its file and reason
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"-a00", "../escape", "nolabel"}
    assert rows["-a00"]["path"] == str(raw / "video" / "-a00.mp4") and "no audio file" in rows["-a00"]["reason"]
    assert rows["../escape"]["path"] == str(raw / "vid2genre.json")
    assert sum(result["counts"].values()) == len(labels) - 1
    assert validate(root).ok
    got = _assignment(root)
    assert "-a00" not in got and "../escape" not in got
    for vid, split in got.items():
        link = root / split / "video" / f"{vid}.mp4"
        assert link.is_symlink() and Path(os.readlink(link)) == (raw / "video" / f"{vid}.mp4").resolve()
    assert not (tmp_path / "escape").exists()
    # an existing non-empty root is refused; bad fractions too
    assert split_tool.main([str(raw), "--out", str(root), "--no-progress"]) == 1
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        split_tool.assign_splits({"x": ("A",)}, 0.6, 0.5)


def test_group_sizes():
    sizes = {n: split_tool._group_sizes(n, 0.1, 0.1) for n in (1, 2, 3, 10, 25, 100)}
    assert sizes == {1: (0, 0), 2: (0, 0), 3: (1, 1), 10: (1, 1), 25: (3, 3), 100: (10, 10)}
    assert split_tool._group_sizes(4, 0.5, 0.4) == (1, 2)  # at least one clip stays in train
    assert split_tool._group_sizes(10, 0.0, 0.2) == (0, 2)
