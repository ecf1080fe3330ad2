"""Tests of the dataset layout reader (avcorr.data.layout) and its CLI (data_tools.validate)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from avcorr.data.errors import LayoutError
from avcorr.data.layout import (
    SPLITS,
    ClassLabel,
    Clip,
    ValidationReport,
    available_splits,
    check_vid,
    load_split,
    read_class_labels,
    validate,
)
from data_tools.validate import main

CSV = (
    "index,mid,display_name\n"
    '0,/m/042v_gx,"Acoustic guitar"\n'
    '1,/m/07y_7,"Violin, fiddle"\n'
    '2,/m/05r5c,"Piano"\n'
)


def make_split(
    root: Path,
    split: str,
    vid2genre: dict[str, Any] | str,
    *,
    video: tuple[str, ...] = (),
    audio: tuple[str, ...] = (),
    boxes: dict[str, Any] | str | None = None,
) -> Path:
    """Write one split: vid2genre.json (dict or raw text), placeholder media files, boxes.json.

    ``video``/``audio`` are file names; a name starting with '!' is written empty (0 bytes).
    """
    split_dir = root / split
    (split_dir / "video").mkdir(parents=True, exist_ok=True)
    (split_dir / "audio").mkdir(parents=True, exist_ok=True)
    text = vid2genre if isinstance(vid2genre, str) else json.dumps(vid2genre)
    (split_dir / "vid2genre.json").write_text(text)
    for folder, names in (("video", video), ("audio", audio)):
        for name in names:
            empty = name.startswith("!")
            (split_dir / folder / name.lstrip("!")).write_bytes(b"" if empty else b"\0")
    if boxes is not None:
        (split_dir / "boxes.json").write_text(boxes if isinstance(boxes, str) else json.dumps(boxes))
    return split_dir


def make_good(root: Path, labels: dict[str, dict[str, Any]]) -> Path:
    """A tree where every id of every split has foo.mp4 and foo.wav."""
    for split, vid2genre in labels.items():
        make_split(root, split, vid2genre, video=tuple(f"{v}.mp4" for v in vid2genre),
                   audio=tuple(f"{v}.wav" for v in vid2genre))
    return root


def find(report: ValidationReport, severity: str, path_end: str, *words: str) -> list:
    """The problems of ``severity`` whose path ends with ``path_end`` and whose message has ``words``."""
    return [p for p in report.problems if p.severity == severity and p.path.endswith(path_end)
            and all(w in p.message for w in words)]


# ----------------------------------------------------------------------------------------------
# Reading good trees


def test_good_tree_single_label(tmp_path: Path) -> None:
    make_good(tmp_path, {
        "train": {"-a1": "dog", "b_2": "cat", "c3": "dog", "d4": "cat"},
        "val": {"e5": "cat", "f6": "dog", "g7": "cat", "h8": "dog"},
    })
    assert available_splits(tmp_path) == ["train", "val"]
    index = load_split(tmp_path, "train")
    assert index.split == "train" and index.root == tmp_path.absolute()
    assert [c.vid for c in index.clips] == ["-a1", "b_2", "c3", "d4"]  # json order
    assert index.classes == ["cat", "dog"]
    assert not index.is_multilabel
    clip = index.clips[0]
    assert clip == Clip("-a1", ("dog",), tmp_path / "train/video/-a1.mp4", tmp_path / "train/audio/-a1.wav")
    assert clip.video.is_absolute()
    assert index.class_to_index == {"cat": 0, "dog": 1}
    assert [index.label_indices(c) for c in index.clips] == [[1], [0], [1], [0]]
    assert len(index) == 4

    report = validate(tmp_path)
    assert report.ok and report.problems == [], report.format()
    assert report.n_clips == {"train": 4, "val": 4}
    assert report.counts == {"train": {"cat": 2, "dog": 2}, "val": {"cat": 2, "dog": 2}}
    assert report.num_csv_classes is None and not report.has_ontology


def test_good_tree_multi_label_with_boxes_and_other_containers(tmp_path: Path) -> None:
    make_split(tmp_path, "train", {"x1": ["dog", "cat", "dog"], "x2": ["cat"], "x3": [], "x4": "bird"},
               video=("x1.mkv", "x1.mp4", "x2.webm", "x4.MOV"), audio=("x1.flac", "x2.wav", "x2.mp3"),
               boxes={"x1": [[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1]], "x2": []})
    index = load_split(tmp_path, "train")
    assert index.is_multilabel
    assert index.classes == ["bird", "cat", "dog"]
    x1, x2, x3, x4 = index.clips
    assert x1.labels == ("dog", "cat")  # duplicates dropped, order kept
    assert index.label_indices(x1) == [2, 1]
    assert x1.video.name == "x1.mp4" and x1.audio.name == "x1.flac"  # .mp4 preferred over .mkv
    assert x2.video.name == "x2.webm" and x2.audio.name == "x2.wav"  # .wav preferred over .mp3
    assert x4.video.name == "x4.MOV" and x4.audio is None
    assert x1.boxes == ((0.1, 0.2, 0.5, 0.6), (0.0, 0.0, 1.0, 1.0))
    assert x2.boxes == () and x4.boxes == ()
    # x3 has no media at all: kept for the dataset to decide, not an error here.
    assert x3 == Clip("x3", (), None, None)
    assert index.label_indices(x3) == []


def test_mids_mapped_through_csv_with_quoted_commas(tmp_path: Path) -> None:
    (tmp_path / "class_labels_indices.csv").write_text(CSV)
    (tmp_path / "ontology.json").write_text("[]")
    make_good(tmp_path, {"test": {"v1": "/m/07y_7", "v2": ["Piano", "/m/07y_7", "Violin, fiddle"],
                                  "v3": "/m/05r5c"}})
    assert read_class_labels(tmp_path) == [
        ClassLabel(0, "/m/042v_gx", "Acoustic guitar"),
        ClassLabel(1, "/m/07y_7", "Violin, fiddle"),
        ClassLabel(2, "/m/05r5c", "Piano"),
    ]
    index = load_split(tmp_path, "test")
    assert index.classes == ["Acoustic guitar", "Violin, fiddle", "Piano"]  # csv order, unused kept
    assert [c.labels for c in index.clips] == [("Violin, fiddle",), ("Piano", "Violin, fiddle"), ("Piano",)]
    assert index.label_indices(index.clips[1]) == [2, 1]
    report = validate(tmp_path)
    assert report.ok, report.format()
    assert report.num_csv_classes == 3 and report.has_ontology
    assert report.counts == {"test": {"Violin, fiddle": 2, "Piano": 2}}  # classes used by the root


def test_read_class_labels_absent_and_malformed(tmp_path: Path) -> None:
    assert read_class_labels(tmp_path) is None
    path = tmp_path / "class_labels_indices.csv"
    path.write_text("index,mid,display_name\n0,/m/a,Dog\n1,/m/b,Violin, fiddle\n")  # unquoted comma
    with pytest.raises(LayoutError, match=r"class_labels_indices\.csv: line 3: expected 3 fields"):
        read_class_labels(tmp_path)
    path.write_text("idx,mid,name\n0,/m/a,Dog\n")
    with pytest.raises(LayoutError, match="line 1: expected the header"):
        read_class_labels(tmp_path)
    path.write_text("index,mid,display_name\n0,/m/a,Dog\nx,/m/b,Cat\n")
    with pytest.raises(LayoutError, match="line 3: index 'x' is not an integer"):
        read_class_labels(tmp_path)
    path.write_text("index,mid,display_name\n0,/m/a,Dog\n1,/m/a,Cat\n")
    with pytest.raises(LayoutError, match="line 3: mid '/m/a' already on line 2"):
        read_class_labels(tmp_path)


def test_class_order_agrees_between_splits(tmp_path: Path) -> None:
    make_good(tmp_path, {"train": {"a": "zebra", "b": "yak"}, "val": {"c": "ant"}, "test": {"d": ["yak", "ant"]}})
    indices = {s: load_split(tmp_path, s) for s in SPLITS}
    for index in indices.values():
        assert index.classes == ["ant", "yak", "zebra"]
        assert index.is_multilabel  # decided over the whole root, not per split
    assert indices["val"].label_indices(indices["val"].clips[0]) == [0]
    assert indices["train"].label_indices(indices["train"].clips[0]) == [2]


# ----------------------------------------------------------------------------------------------
# Structural errors raised by load_split


@pytest.mark.parametrize("vid", ["../evil", "a/b", "a\\b", "", ".hidden", "..", "a..b", "a\x00b", "line\nbreak"])
def test_ids_escaping_their_folder_raise(tmp_path: Path, vid: str) -> None:
    make_split(tmp_path, "train", {"ok": "dog", vid: "dog"})
    with pytest.raises(LayoutError) as info:
        load_split(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path / "train" / "vid2genre.json") in message and repr(vid) in message
    with pytest.raises(LayoutError, match="boxes.json"):
        check_vid(vid, "boxes.json")


def test_youtube_like_ids_accepted() -> None:
    for vid in ["-abc_DEF12", "___", "a-b", "x" * 11]:
        assert check_vid(vid, "f.json") == vid


def test_invalid_json_and_wrong_shapes(tmp_path: Path) -> None:
    path = make_split(tmp_path, "train", '{"a": "dog",\n "b": }') / "vid2genre.json"
    with pytest.raises(LayoutError, match=rf"{re.escape(str(path))}: invalid JSON at line 2"):
        load_split(tmp_path, "train")
    for text, pattern in [
        ('["a", "b"]', "expected a JSON object .* got a list"),
        ('{"a": 3}', "id 'a': expected a label or a list of labels, got a number"),
        ('{"a": ["dog", 3]}', "id 'a': labels must be non-empty strings, got 3"),
        ('{"a": ""}', "id 'a': labels must be non-empty strings, got ''"),
        ('{"a": "dog", "a": "cat"}', "id 'a' appears more than once"),
    ]:
        path.write_text(text)
        with pytest.raises(LayoutError, match=rf"{re.escape(str(path))}: {pattern}"):
            load_split(tmp_path, "train")


def test_missing_root_split_and_vid2genre(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="does not exist"):
        load_split(tmp_path / "nope", "train")
    with pytest.raises(LayoutError, match="does not exist"):
        available_splits(tmp_path / "nope")
    with pytest.raises(LayoutError, match="no split folder"):
        load_split(tmp_path, "train")
    make_good(tmp_path, {"train": {"a": "dog"}})
    val = re.escape(str(tmp_path / "val"))
    with pytest.raises(LayoutError, match=rf"{val}: split folder does not exist \(present: train\)"):
        load_split(tmp_path, "val")
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(tmp_path, "training")
    (tmp_path / "test").mkdir()  # a split folder without vid2genre.json
    with pytest.raises(LayoutError, match=rf"{re.escape(str(tmp_path / 'test' / 'vid2genre.json'))}: missing"):
        load_split(tmp_path, "test")
    assert [c.vid for c in load_split(tmp_path, "train").clips] == ["a"]  # other splits unaffected


def test_unknown_label_and_bad_boxes_raise(tmp_path: Path) -> None:
    (tmp_path / "class_labels_indices.csv").write_text(CSV)
    make_good(tmp_path, {"train": {"a": "Piano", "b": "/m/nope"}})
    with pytest.raises(LayoutError, match=r"vid2genre\.json: id 'b': label '/m/nope' is neither"):
        load_split(tmp_path, "train")
    (tmp_path / "class_labels_indices.csv").unlink()
    for boxes, pattern in [
        ("{bad", "invalid JSON"),
        ({"zzz": [[0, 0, 1, 1]]}, "id 'zzz' is not in"),
        ({"a": [[0, 0, 1]]}, "not 4 numbers"),
        ({"a": [0.1, 0.1, 0.5, 0.5]}, "one bare box"),
        ({"a": [[0, 0, 1.5, 1]]}, r"outside \[0, 1\]"),
        ({"a": [[0.5, 0, 0.2, 1]]}, "x1 < x2"),
    ]:
        make_split(tmp_path, "train", {"a": "Piano", "b": "Piano"}, boxes=boxes)
        with pytest.raises(LayoutError, match=rf"boxes\.json: .*{pattern}"):
            load_split(tmp_path, "train")


def test_visible_labels_from_visible_json(tmp_path: Path) -> None:
    (tmp_path / "class_labels_indices.csv").write_text(CSV)
    make_good(tmp_path, {"train": {"a": "Piano", "b": "/m/07y_7", "c": "Piano"}, "val": {"v": "Piano"}})
    index = load_split(tmp_path, "train")
    assert index.visible is None and [index.visible_labels(c) for c in index.clips] == [
        ("Piano",), ("Violin, fiddle",), ("Piano",)]
    # mids mapped, own labels first, each once; an id not listed shows only its own labels
    (tmp_path / "train" / "visible.json").write_text(json.dumps(
        {"a": ["/m/07y_7", "Piano", "Violin, fiddle"], "b": "Piano", "c": []}))
    index = load_split(tmp_path, "train")
    a, b, c = index.clips
    assert index.visible_labels(a) == ("Piano", "Violin, fiddle") and index.visible_labels(b) == (
        "Violin, fiddle", "Piano") and index.visible_labels(c) == ("Piano",)
    assert a.labels == ("Piano",) and not hasattr(a, "__dict__")  # the clip itself is unchanged
    assert index.visible["c"] is index.visible_labels(c)
    assert load_split(tmp_path, "val").visible is None  # per split
    assert validate(tmp_path).ok
    visible = tmp_path / "train" / "visible.json"
    for content, pattern in [
        ("{bad", "invalid JSON"),
        ('["Piano"]', "expected a JSON object"),
        ({"zzz": ["Piano"]}, "id 'zzz' is not in .*vid2genre.json"),
        ({"a": {"Piano": 1}}, "id 'a': expected a label or a list of labels, got an object"),
        ({"a": ["Piano", 3]}, "id 'a': labels must be non-empty strings, got 3"),
        ({"a": [""]}, "labels must be non-empty strings"),
        ({"a": ["Kazoo"]}, "id 'a': label 'Kazoo' is neither a display_name nor a mid"),
        ('{"a": ["Piano"], "a": []}', "id 'a' appears more than once"),
    ]:
        visible.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(LayoutError, match=rf"train/visible\.json: .*{pattern}"):
            load_split(tmp_path, "train")
        assert find(validate(tmp_path), "error", "train/visible.json")
    (tmp_path / "class_labels_indices.csv").unlink()  # without the csv any non-empty string is a label
    visible.write_text(json.dumps({"a": ["Kazoo"]}))
    assert load_split(tmp_path, "train").visible == {"a": ("Piano", "Kazoo")}


# ----------------------------------------------------------------------------------------------
# validate: every problem of a bad tree, each naming its file


def make_bad(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_labels_indices.csv").write_text(CSV)
    make_split(root, "train", {
        "both1": "/m/07y_7", "both2": "Violin, fiddle", "both3": "Violin, fiddle", "none": "Piano",
        "onlyV": "Piano", "onlyA": "Piano", "empty": "Piano", "unk": "Kazoo", "shared": "Piano",
        "odd id": "Piano", "nolab": [],
    }, video=("nolab.mp4", "both1.mp4", "both2.mp4", "both3.mp4", "both3.avi", "onlyV.mp4", "!empty.mp4",
              "orphan.mp4", "shared.mp4", "odd id.mp4", "notes.txt"),
        audio=("nolab.wav", "both1.wav", "both2.wav", "both3.wav", "onlyA.wav", "empty.wav", "shared.wav",
               "odd id.wav"),
        boxes={"ghost": [[0, 0, 1, 1]], "both1": [[0.1, 0.2, 0.3]], "both2": [[0.5, 0.5, 1.5, 0.9]],
               "both3": [[0.6, 0.1, 0.4, 0.5], [0.1, 0.1, 0.2, 0.2]], "onlyV": [[0.1, 0.5, 0.2, 0.5]]})
    make_split(root, "val", {"shared": "/m/07y_7", "v2": "/m/07y_7", "solo": "Acoustic guitar",
                             "../evil": "Piano"},
               video=("shared.mp4", "v2.mp4", "solo.mp4"), audio=("shared.wav", "v2.wav", "solo.wav"))
    (root / "test").mkdir()  # no vid2genre.json
    (root / "validation").mkdir()
    return root


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    report = validate(make_bad(tmp_path))
    assert not report.ok
    tj, vj = "train/vid2genre.json", "val/vid2genre.json"
    expected = [
        ("error", "test/vid2genre.json", ["missing"]),
        ("error", tj, ["'none'", "neither a video file", "nor an audio file"]),
        ("info", tj, ["'onlyV'", "no audio file", "video's own audio track"]),
        ("warning", tj, ["'onlyA'", "no video file"]),
        ("warning", "train/video/orphan.mp4", ["orphan", "'orphan'"]),
        ("error", "train/video/empty.mp4", ["empty file (0 bytes)"]),
        ("error", tj, ["'unk'", "label 'Kazoo'", "class_labels_indices.csv"]),
        ("warning", vj, ["label 'Acoustic guitar'", "'solo'", "no other clip"]),
        ("warning", vj, ["class 'Piano' has 0 clip(s) in val"]),
        ("error", "train/boxes.json", ["'ghost'", "is not in"]),
        ("error", "train/boxes.json", ["'both1'", "not 4 numbers"]),
        ("error", "train/boxes.json", ["'both2'", "outside [0, 1]"]),
        ("error", "train/boxes.json", ["'both3'", "box 0", "x1 < x2"]),
        ("error", "train/boxes.json", ["'onlyV'", "y1 < y2"]),
        ("warning", vj, ["'shared'", "also in train/", "leakage"]),
        ("error", vj, ["'../evil'", "escape"]),
        ("warning", "train/video/both3.mp4", ["several video files", "both3.avi", "using both3.mp4"]),
        ("warning", "train/video/notes.txt", ["not a video file"]),
        ("warning", tj, ["'odd id'", "not YouTube-like"]),
        ("warning", "validation", ["did you mean val/"]),
        ("warning", tj, ["'nolab' has no label"]),
    ]
    missing = [(sev, end, words) for sev, end, words in expected if not find(report, sev, end, *words)]
    assert not missing, f"not reported: {missing}\n{report.format()}"
    # Good clips draw no complaint; the class of a typo label is not also reported per split.
    assert not [p for p in report.problems if "'both1'" in p.message and "box" not in p.message]
    assert not find(report, "warning", vj, "class 'Acoustic guitar'")
    assert not find(report, "warning", tj, "'unk' has no label")  # its unknown label is the error
    # Counts skip the unknown label and map mids.
    assert report.counts["train"] == {"Acoustic guitar": 0, "Violin, fiddle": 3, "Piano": 6}
    assert report.counts["val"] == {"Acoustic guitar": 1, "Violin, fiddle": 2, "Piano": 0}
    assert report.n_clips == {"train": 11, "val": 3}
    # Errors first, then warnings, then notes; one line each with details, ...
    severities = [p.severity for p in report.problems]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    text = report.format(details=True)
    for p in report.problems:
        assert f"{p.severity.upper()} {p.path}: {p.message}" in text
    # ... and without, errors one line each and the repeated kinds one line per kind.
    text = report.format()
    for p in report.errors:
        assert f"ERROR {p.path}: {p.message}" in text
    assert "INFO 1 clip(s) have a video file but no audio file" in text and "'onlyV'" in text
    assert "WARNING 1 label(s) are used by one clip only (typos?): 'Acoustic guitar'" in text
    assert "'onlyV' has a video file" not in text


def test_validate_root_level_errors(tmp_path: Path) -> None:
    assert find(validate(tmp_path / "nope"), "error", "nope", "does not exist")
    report = validate(tmp_path)
    assert not report.ok and find(report, "error", str(tmp_path), "no split folder")
    (tmp_path / "class_labels_indices.csv").write_text("index,mid,display_name\n0,/m/a,Dog\n1,/m/b\n2,/m/c,Cat,x\n")
    make_good(tmp_path, {"train": {"a": "/m/a", "b": "/m/a"}})
    (tmp_path / "train" / "boxes.json").write_text("[1, 2]")
    report = validate(tmp_path)
    assert find(report, "error", "class_labels_indices.csv", "line 3")
    assert find(report, "error", "class_labels_indices.csv", "line 4")
    assert find(report, "error", "train/boxes.json", "expected a JSON object", "got a list")
    assert find(report, "warning", "class_labels_indices.csv", "look like AudioSet mids")


def test_validate_split_without_media_folders(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "vid2genre.json").write_text(json.dumps({"a": "x", "b": "x"}))
    report = validate(tmp_path)
    assert find(report, "error", "train", "neither a video/ nor an audio/ folder")
    assert not find(report, "error", "vid2genre.json")  # not one error per id on top
    shutil.rmtree(tmp_path / "train")
    make_split(tmp_path, "train", {"a": "x", "b": "x"}, video=("a.mp4", "b.mp4"))
    make_split(tmp_path, "val", {"c": "x", "d": "x"}, video=("c.mp4", "d.mp4"))
    for split in ("train", "val"):
        (tmp_path / split / "audio").rmdir()
    report = validate(tmp_path)
    assert report.ok
    assert find(report, "warning", "train/audio", "video only")
    assert len(report.warnings) == 2 and not report.infos  # not one warning per id on top


def test_validate_missing_or_empty_val_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_good(tmp_path, {"train": {"a": "dog", "b": "dog"}, "test": {"c": "dog", "d": "dog"}})
    report = validate(tmp_path)
    assert not report.ok and find(report, "error", "val", "missing", "best.pt"), report.format()
    make_split(tmp_path, "val", {})
    report = validate(tmp_path)
    assert not report.ok and find(report, "error", "val/vid2genre.json", "val split is empty"), report.format()
    assert len(report.errors) == 1 and not report.warnings  # no "class 'dog' has 0 clip(s) in val" on top
    assert main([str(tmp_path)]) == 1
    assert "val split is empty" in capsys.readouterr().out
    make_good(tmp_path, {"val": {"e": "dog", "f": "dog"}})
    assert validate(tmp_path).ok


def test_benign_layout_cases_are_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Videos without audio files (the README's "audio from the video's track" layout) and labels used once are
    one line each, with a count; --details lists every occurrence; real problems stay listed."""
    train = {f"v{i:02d}": f"label{i:02d}" for i in range(30)}
    make_split(tmp_path, "train", train, video=tuple(f"{v}.mp4" for v in train), audio=("v00.wav",))
    make_split(tmp_path, "val", {"w1": "label00", "w2": "label01"}, video=("w1.mp4", "w2.mp4"),
               audio=("w1.wav", "w2.wav"))
    make_split(tmp_path, "test", {"t1": "label00", "t2": "label01"}, video=("t1.mp4",), audio=("t1.wav", "t2.wav"))
    report = validate(tmp_path)
    # warnings: 28 single-clip labels, 6 (class, split) with one clip, t2 without video
    assert report.ok and len(report.infos) == 29 and len(report.warnings) == 35
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "INFO 29 clip(s) have a video file but no audio file" in out
    assert "'v01', 'v02', 'v03', 'v04', 'v05', ..." in out and "'v06'" not in out
    assert "WARNING 28 label(s) are used by one clip only (typos?)" in out
    assert "WARNING 6 class(es) have fewer than 2 clips in a split: 'label00: 1 in train'" in out
    assert "id 't2' has an audio file but no video file" in out  # listed: the clip is unusable for AV tasks
    assert "OK: 0 error(s), 35 warning(s), 29 note(s)" in out
    assert len([line for line in out.splitlines() if line.startswith(("ERROR", "WARNING", "INFO"))]) == 4
    for flag in ("--details", "-v"):
        assert main([str(tmp_path), flag]) == 0
        out = capsys.readouterr().out
        assert all(f"id 'v{i:02d}' has a video file but no audio file" in out for i in range(1, 30))
        assert all(f"label 'label{i:02d}' of id 'v{i:02d}' is used by no other clip" in out for i in range(2, 30))
    assert main([str(tmp_path), "--quiet"]) == 0
    assert "INFO" not in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_good(tmp_path / "good", {"train": {"a": "dog", "b": "dog", "c": "cat", "d": "cat", "e": "cat"},
                                        "val": {"v1": "dog", "v2": "dog", "v3": "cat", "v4": "cat"},
                                        "test": {"f": "dog", "g": "dog", "h": "cat", "i": "cat"}})
    assert main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "clips: train 5, val 4, test 4" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("cat ", "dog "))}
    assert rows == {"cat": ["3", "2", "2"], "dog": ["2", "2", "2"]}
    assert "OK: 0 error(s), 0 warning(s)" in out

    bad = make_bad(tmp_path / "bad")
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {bad / 'train' / 'video' / 'empty.mp4'}: empty file (0 bytes)" in out
    assert "WARNING " in out and "FAILED:" in out and "clips: train 11, val 3" in out

    assert main([str(bad), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "ERROR " in out and "WARNING " not in out and "clips:" not in out


def test_report_format_limits_classes(tmp_path: Path) -> None:
    make_good(tmp_path, {"train": {f"v{i}": [f"class{i:02d}", "common"] for i in range(50)}})
    text = validate(tmp_path).format(max_classes=10)
    assert "... and 41 more classes" in text
    assert "class00" in text and "common" not in text.split("... and")[0].split("class09")[1]


# ----------------------------------------------------------------------------------------------
# --decode with real media


def _decode_available() -> str | None:
    try:
        importlib.import_module("avcorr.data.decode")
    except ImportError as err:
        return f"avcorr.data.decode is not importable yet ({err})"
    if shutil.which("ffmpeg") is None:
        return "the ffmpeg binary is needed to make test media"
    return None


@pytest.mark.ffmpeg
@pytest.mark.skipif(_decode_available() is not None, reason=str(_decode_available()))
def test_validate_decode_reports_bad_media(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avcorr.data import decode
    from tests.media import (make_corrupt, make_nan_wav, make_non_media, make_truncated, make_video, make_wav,
                             mdat_span)

    ids = ["good", "long", "junk", "cut", "trunc", "corrupt", "nan", "silent", "own"]
    split = make_split(tmp_path, "train", dict.fromkeys(ids, "dog"))
    make_split(tmp_path, "val", {"v1": "dog", "v2": "dog"})
    video, audio = split / "video", split / "audio"
    for name in ("good", "long", "cut", "nan", "own"):
        make_video(video / f"{name}.mp4", duration=1.0, fps=10)
    for vid in ("v1", "v2"):
        make_video(tmp_path / "val" / "video" / f"{vid}.mp4", duration=1.0, fps=10)
    make_wav(audio / "good.wav", 440.0, 16000, duration=1.0)
    make_wav(audio / "long.wav", 440.0, 16000, duration=3.5)
    make_non_media(video / "junk.mp4")
    make_wav(audio / "junk.wav", 440.0, 16000)
    make_truncated(audio / "good.wav", audio / "cut.wav", 0.001)  # 32 bytes: header cut
    make_nan_wav(audio / "nan.wav")
    make_video(video / "silent.mp4", duration=1.0, fps=10, audio_sr=None)
    # an mp4 cut in the middle of its media data, and one with bytes overwritten there (a fuzzed file): both
    # keep a good header, so a probe says nothing; audio from their own tracks
    source = make_video(tmp_path / "source.mp4", duration=3.0, fps=10, pattern="noise")
    start, end = mdat_span(source)
    size = source.stat().st_size
    make_truncated(source, video / "trunc.mp4", (start + end) / 2 / size)
    make_corrupt(source, video / "corrupt.mp4", at=(start + (end - start) * 0.6) / size, nbytes=4000)
    assert decode.probe_video(video / "trunc.mp4").num_frames == decode.probe_video(video / "corrupt.mp4").num_frames

    plain = validate(tmp_path)
    assert plain.ok, plain.format()  # nothing is decoded without decode=True
    report = validate(tmp_path, decode=True)
    text = report.format()
    assert find(report, "error", "train/video/junk.mp4", "cannot be decoded"), text
    assert find(report, "error", "train/audio/cut.wav", "cannot be decoded"), text
    assert find(report, "error", "train/video/trunc.mp4", "truncated"), text
    assert find(report, "error", "train/video/corrupt.mp4"), text
    assert find(report, "error", "train/audio/nan.wav", "cannot be decoded", "NaN"), text
    assert find(report, "error", "train/video/silent.mp4", "'silent'", "no audio at all"), text
    assert find(report, "warning", "train/video/long.mp4", "'long'", "3.50 s")
    assert len(report.errors) == 6, text  # one each
    assert {p.subject for p in report.infos} == {"own", "v1", "v2"}  # the clips whose own track decodes
    for name in ("good", "own", "v1", "v2"):
        assert not [p for p in report.problems if p.severity != "info" and (f"/{name}." in p.path
                                                                              or f"'{name}'" in p.message)], text
    assert main([str(tmp_path), "--decode", "--quiet"]) == 1
    out = capsys.readouterr().out
    for name in ("junk.mp4", "cut.wav", "trunc.mp4", "corrupt.mp4", "nan.wav", "silent.mp4"):
        assert name in out

    # a clean dataset passes, its video-only clips reported once as a note
    for name in ("long", "junk", "cut", "trunc", "corrupt", "nan", "silent"):
        for f in list(video.glob(f"{name}.*")) + list(audio.glob(f"{name}.*")):
            f.unlink()
    (split / "vid2genre.json").write_text(json.dumps({"good": "dog", "own": "dog"}))
    report = validate(tmp_path, decode=True)
    assert report.ok and not report.warnings, report.format()
    assert len(report.infos) == 3  # own, v1, v2: audio from their tracks, which decode
