"""The dataset layout: reading a dataset root and checking it.

Every avcorr tool reads (and the preparation tools write) this layout::

    ROOT/
      class_labels_indices.csv     optional, AudioSet format: index,mid,display_name
      ontology.json                optional, AudioSet ontology
      train/ val/ test/            a split may be absent; at least one must exist
        vid2genre.json             {vid: label} or {vid: [label, ...]}; a label is a display name or a mid
        video/<vid>.mp4            also .mkv .webm .avi .mov (.mp4 preferred)
        audio/<vid>.wav            also .flac .mp3 .ogg .m4a (.wav preferred)
        boxes.json                 optional: {vid: [[x1, y1, x2, y2], ...]} normalized to [0, 1]
        visible.json               optional: {vid: [label, ...]} every object drawn in the clip's frames,
                                   sounding or silent (a clip not listed shows only its own labels)

:func:`load_split` turns one split into a :class:`SplitIndex` (a list of :class:`Clip` and the
split's :class:`LabelSpace`, both defined in :mod:`avcorr.data.records`, the records every data
format is read into) and raises
:class:`~avcorr.data.errors.LayoutError`, naming the file, at the first structural problem.
:func:`validate` checks a whole root and reports *every* problem it finds in a
:class:`ValidationReport` instead of stopping at the first.

Example:
    >>> index = load_split("data/music", "train")
    >>> clip = index.clips[0]
    >>> clip.vid, clip.labels, clip.video, clip.audio
    ('-0Ab_cd12', ('Violin, fiddle',), PosixPath('.../train/video/-0Ab_cd12.mp4'), PosixPath(...))
    >>> index.label_indices(clip)
    [3]
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from avcorr.data.errors import LayoutError
from avcorr.data._problems import Problem, _Sink, _unsafe_vid_reason, check_vid
from avcorr.data.records import Box, ClassLabel, Clip, LabelSpace, _OnLabelSpace

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_EXTENSIONS",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "ClassLabel",
    "Clip",
    "LabelSpace",
    "Problem",
    "SplitIndex",
    "ValidationReport",
    "available_splits",
    "check_vid",
    "load_split",
    "read_class_csv",
    "read_class_labels",
    "validate",
]

SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")  # in order of preference
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")  # in order of preference
CLASS_LABELS_FILE = "class_labels_indices.csv"
ONTOLOGY_FILE = "ontology.json"
VID2GENRE_FILE = "vid2genre.json"
BOXES_FILE = "boxes.json"
VISIBLE_FILE = "visible.json"
VIDEO_DIR = "video"
AUDIO_DIR = "audio"
DURATION_TOLERANCE_S = 1.0  # validate(decode=True) warns above this video/audio length difference

_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")
_CSV_HEADER = ["index", "mid", "display_name"]
# Folder names people use for a split that the layout calls something else.
_SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "dev": "val",
                  "eval": "test", "testing": "test"}


# ----------------------------------------------------------------------------------------------
# A split's clips (the records themselves, Clip and LabelSpace, are in records.py)


@dataclass
class SplitIndex(_OnLabelSpace):
    """The clips of one split and the label space shared by every split of the root.

    Args:
        root: the dataset root (absolute).
        split: one of :data:`SPLITS`.
        clips: clips in ``vid2genre.json`` order.
        label_space: the classes (display names: the csv order when the csv is present, else the
            sorted union of the labels of all splits of the root, so class indices agree between
            splits) and whether some clip of the root (any split) has more than one label.
        visible: from the split's ``visible.json``: id -> the labels of every object drawn in the
            clip's frames (its own labels first, then the silent objects'; equal tuples shared), for
            the ids it lists; None when the split has no ``visible.json``.
    """

    root: Path
    split: str
    clips: list[Clip]
    label_space: LabelSpace
    visible: dict[str, tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.clips)

    @cached_property
    def class_to_index(self) -> dict[str, int]:
        """Class display name -> its position in :attr:`classes`."""
        return {name: i for i, name in enumerate(self.classes)}

    def label_indices(self, clip: Clip) -> list[int]:
        """Positions in :attr:`classes` of ``clip``'s labels.

        Args:
            clip: a clip of this split.

        Returns:
            one index per label, in label order (empty for an unlabelled clip).

        Raises:
            LayoutError: a label that is not a class; the message names the split's
                ``vid2genre.json``, the clip id and the label.
        """
        where = f"{self.root / self.split / VID2GENRE_FILE}: id {clip.vid!r}"
        return list(self.label_space.indices(clip.labels, where))

    def visible_labels(self, clip: Clip) -> tuple[str, ...]:
        """The labels of every object drawn in ``clip``'s frames, sounding or silent.

        Args:
            clip: a clip of this split.

        Returns:
            its own labels and those ``visible.json`` lists for it; its own labels alone when the
            split has no ``visible.json`` or the file does not list it.
        """
        return clip.labels if self.visible is None else self.visible.get(clip.vid, clip.labels)


# ----------------------------------------------------------------------------------------------
# Readers


def _parse_class_labels(path: Path, sink: _Sink) -> list[ClassLabel] | None:
    """Read ``class_labels_indices.csv``; report each bad line; None when unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        sink.error(path, f"not UTF-8 text ({err.reason} at byte {err.start})")
        return None
    except OSError as err:
        sink.error(path, f"cannot be read: {err.strerror or err}")
        return None
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        header = next(reader, None)
        if header is None:
            sink.error(path, "empty file; expected the header 'index,mid,display_name'")
            return None
        if [h.strip() for h in header] != _CSV_HEADER:
            sink.error(path, f"line 1: expected the header 'index,mid,display_name', got {','.join(header)!r}")
            return None
        labels: list[ClassLabel] = []
        first_line: dict[tuple[str, str], int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != 3:
                sink.error(path, f"line {line}: expected 3 fields (index,mid,display_name), got {len(row)}; "
                                 "quote display names that contain commas")
                continue
            index_text, mid, name = (cell.strip() for cell in row)
            try:
                index = int(index_text)
            except ValueError:
                sink.error(path, f"line {line}: index {index_text!r} is not an integer")
                continue
            if not mid or not name:
                sink.error(path, f"line {line}: empty {'mid' if not mid else 'display_name'}")
                continue
            duplicate = False
            for column, value in (("index", index_text), ("mid", mid), ("display_name", name)):
                key = (column, str(index) if column == "index" else value)
                if key in first_line:
                    sink.error(path, f"line {line}: {column} {value!r} already on line {first_line[key]}")
                    duplicate = True
                else:
                    first_line[key] = line
            if not duplicate:
                labels.append(ClassLabel(index, mid, name))
    except csv.Error as err:
        sink.error(path, f"line {reader.line_num}: malformed csv ({err})")
        return None
    if not labels and not first_line:
        sink.error(path, "no class rows after the header")
        return None
    return labels


def read_class_labels(root: str | Path) -> list[ClassLabel] | None:
    """Read ``ROOT/class_labels_indices.csv`` (AudioSet format, display names may be quoted).

    Args:
        root: the dataset root.

    Returns:
        the classes in file order, or None when the csv is absent.

    Raises:
        LayoutError: the csv is malformed (bad header, wrong field count, non-integer index,
            empty or duplicate mid/display name); the message names the file and the line.
    """
    path = Path(root).expanduser() / CLASS_LABELS_FILE
    if not path.exists():
        return None
    return read_class_csv(path)


def read_class_csv(path: str | Path) -> list[ClassLabel]:
    """Read a class csv in the AudioSet format (``index,mid,display_name``) at any path.

    Args:
        path: the csv file.

    Returns:
        the classes in file order.

    Raises:
        LayoutError: the file cannot be read or is malformed (see :func:`read_class_labels`); the
            message names the file and the line.
    """
    return _parse_class_labels(Path(path).expanduser(), _Sink(strict=True)) or []


class _JsonObject(dict):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _read_json(path: Path, sink: _Sink) -> Any | None:
    """Parse a JSON file; report and return None when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f, object_pairs_hook=_object_pairs)
    except json.JSONDecodeError as err:
        sink.error(path, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}")
    except UnicodeDecodeError as err:
        sink.error(path, f"not UTF-8 text ({err.reason} at byte {err.start})")
    except OSError as err:
        sink.error(path, f"cannot be read: {err.strerror or err}")
    return None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def _top_level_object(path: Path, data: Any, sink: _Sink, expected: str) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        sink.error(path, f"expected a JSON object {expected}, got {_json_type(data)}")
        return None
    for key in getattr(data, "duplicates", ()):
        sink.error(path, f"id {key!r} appears more than once")
    return data


def _parse_vid2genre(path: Path, data: Any, sink: _Sink, known: dict[str, Any] | None = None
                     ) -> dict[str, tuple[str, ...]]:
    """Check the shape of a ``vid2genre.json`` (or ``visible.json``: ids must then be ``known``, those of
    the split's ``vid2genre.json``) document; return id -> raw labels."""
    obj = _top_level_object(path, data, sink, "{id: label or [label, ...]}")
    if obj is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for vid, value in obj.items():
        reason = _unsafe_vid_reason(vid)
        if reason is not None:
            sink.error(path, f"id {vid!r} {reason}")
            continue
        if known is not None and vid not in known:
            sink.error(path, f"id {vid!r} is not in {path.parent / VID2GENRE_FILE}")
            continue
        raw = [value] if isinstance(value, str) else value
        if not isinstance(raw, list):
            sink.error(path, f"id {vid!r}: expected a label or a list of labels, got {_json_type(value)}")
            continue
        bad = [label for label in raw if not isinstance(label, str) or not label]
        if bad:
            sink.error(path, f"id {vid!r}: labels must be non-empty strings, got {bad[0]!r}")
            continue
        out[vid] = tuple(dict.fromkeys(raw))
    return out


def _map_labels(
    path: Path,
    labels_by_vid: dict[str, tuple[str, ...]],
    class_labels: list[ClassLabel] | None,
    csv_path: Path,
    sink: _Sink,
) -> dict[str, tuple[str, ...]]:
    """Map mids to display names; report labels the csv does not know (they are dropped)."""
    if class_labels is None:
        return labels_by_vid
    names = {c.display_name for c in class_labels}
    by_mid = {c.mid: c.display_name for c in class_labels}
    out: dict[str, tuple[str, ...]] = {}
    for vid, labels in labels_by_vid.items():
        mapped: list[str] = []
        for label in labels:
            if label in names:
                mapped.append(label)
            elif label in by_mid:
                mapped.append(by_mid[label])
            else:
                sink.error(path, f"id {vid!r}: label {label!r} is neither a display_name nor a mid of {csv_path}")
        out[vid] = tuple(dict.fromkeys(mapped))
    return out


def _parse_boxes(path: Path, known: dict[str, Any], sink: _Sink) -> dict[str, tuple[Box, ...]]:
    """Read ``boxes.json``; check ids and box values; return id -> boxes (bad boxes dropped)."""
    if not path.exists():
        return {}
    data = _read_json(path, sink)
    obj = None if data is None else _top_level_object(path, data, sink, "{id: [[x1, y1, x2, y2], ...]}")
    if obj is None:
        return {}
    out: dict[str, tuple[Box, ...]] = {}
    for vid, value in obj.items():
        reason = _unsafe_vid_reason(vid)
        if reason is not None:
            sink.error(path, f"id {vid!r} {reason}")
            continue
        if vid not in known:
            sink.error(path, f"id {vid!r} is not in {path.parent / VID2GENRE_FILE}")
            continue
        if not isinstance(value, list):
            sink.error(path, f"id {vid!r}: expected a list of boxes [[x1, y1, x2, y2], ...], "
                             f"got {_json_type(value)}")
            continue
        if len(value) == 4 and all(_is_number(v) for v in value):
            sink.error(path, f"id {vid!r}: expected a list of boxes, got one bare box {value}; "
                             "write [[x1, y1, x2, y2]]")
            continue
        boxes: list[Box] = []
        for i, box in enumerate(value):
            problem = _box_problem(box)
            if problem is not None:
                sink.error(path, f"id {vid!r}, box {i} {box!r}: {problem}")
                continue
            boxes.append(tuple(float(v) for v in box))  # type: ignore[arg-type]
        out[vid] = tuple(boxes)
    return out


def _parse_visible(path: Path, known: dict[str, tuple[str, ...]], class_labels: list[ClassLabel] | None,
                   csv_path: Path, sink: _Sink) -> dict[str, tuple[str, ...]] | None:
    """Read ``visible.json``; return id -> its ``known`` (own) labels and the file's, or None when absent.

    Labels are checked and mapped through the class csv as ``vid2genre.json``'s are; equal tuples are
    shared, so a dataset of a few classes holds a few tuples, whatever its number of clips.
    """
    if not path.exists():
        return None
    data = _read_json(path, sink)
    if data is None:
        return {}
    raw = _parse_vid2genre(path, data, sink, known)
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    out: dict[str, tuple[str, ...]] = {}
    for vid, labels in _map_labels(path, raw, class_labels, csv_path, sink).items():
        seen = tuple(dict.fromkeys(known[vid] + labels))
        out[vid] = shared.setdefault(seen, seen)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box_problem(box: Any) -> str | None:
    """Why ``box`` is not a valid normalized ``[x1, y1, x2, y2]``, or None."""
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        return "not 4 numbers [x1, y1, x2, y2]"
    if not all(math.isfinite(v) for v in box):
        return "not finite"
    if not all(0.0 <= v <= 1.0 for v in box):
        return "outside [0, 1] (boxes are normalized by the frame width and height)"
    x1, y1, x2, y2 = box
    if x1 >= x2 or y1 >= y2:
        return "needs x1 < x2 and y1 < y2"
    return None


def _scan_media(folder: Path, extensions: tuple[str, ...], kind: str, sink: _Sink) -> dict[str, list[Path]]:
    """Id -> the media files of that id in ``folder``, preferred extension first."""
    found: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return found
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix not in extensions:
                sink.warning(entry.path, f"not a {kind} file ({' '.join(extensions)}); ignored", kind="other_file",
                             subject=name)
                continue
            if not entry.is_file():
                sink.warning(entry.path, "not a regular file (a folder or a broken link); ignored")
                continue
            found.setdefault(name[: -len(suffix)], []).append(Path(entry.path))
    rank = {ext: i for i, ext in enumerate(extensions)}
    for paths in found.values():
        paths.sort(key=lambda p: (rank[p.suffix.lower()], p.name))
    return found


@dataclass
class _RootInfo:
    root: Path
    csv_path: Path
    class_labels: list[ClassLabel] | None
    present: list[str]  # split folders that exist
    labels: dict[str, dict[str, tuple[str, ...]]]  # split -> id -> display names (readable splits only)
    raw_labels: dict[str, dict[str, tuple[str, ...]]]  # the same before mapping through the csv

    @property
    def classes(self) -> list[str]:
        if self.class_labels is not None:
            return [c.display_name for c in self.class_labels]
        return sorted({label for split in self.labels.values() for ls in split.values() for label in ls})

    @property
    def is_multilabel(self) -> bool:
        return any(len(ls) > 1 for split in self.labels.values() for ls in split.values())


def _absolute(root: str | Path) -> Path:
    return Path(root).expanduser().absolute()


def _read_root(root: Path, sink: _Sink, need: str | None) -> _RootInfo | None:
    """Read the csv and every split's ``vid2genre.json``.

    ``need`` is the split ``load_split`` was asked for: other splits without a ``vid2genre.json``
    are then skipped with a warning rather than reported. None (``validate``) reports them all.
    """
    if not root.exists():
        sink.error(root, "dataset root does not exist")
        return None
    if not root.is_dir():
        sink.error(root, "dataset root is not a folder")
        return None
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        sink.error(root, "no split folder: expected at least one of train/, val/, test/")
        return None
    if need is not None and need not in present:
        sink.error(root / need, f"split folder does not exist (present: {', '.join(present)})")
        return None
    csv_path = root / CLASS_LABELS_FILE
    class_labels = None
    if csv_path.exists():
        n_errors = sink.n_errors
        class_labels = _parse_class_labels(csv_path, sink)
        if sink.n_errors > n_errors:  # lenient mode: a broken csv maps nothing
            class_labels = None
    labels: dict[str, dict[str, tuple[str, ...]]] = {}
    raw_labels: dict[str, dict[str, tuple[str, ...]]] = {}
    for split in present:
        path = root / split / VID2GENRE_FILE
        if not path.is_file():
            if need is None or split == need:
                sink.error(path, "missing: every split folder needs a vid2genre.json {id: label or [labels]}")
            else:
                logger.warning("%s: missing; split %r ignored when collecting class names", path, split)
            continue
        data = _read_json(path, sink)
        if data is None:
            continue
        raw_labels[split] = _parse_vid2genre(path, data, sink)
        labels[split] = _map_labels(path, raw_labels[split], class_labels, csv_path, sink)
    return _RootInfo(root, csv_path, class_labels, present, labels, raw_labels)


def available_splits(root: str | Path) -> list[str]:
    """The split folders (``train``, ``val``, ``test``, in that order) present in a dataset root.

    Args:
        root: the dataset root.

    Returns:
        the names of the split folders that exist (possibly empty).

    Raises:
        LayoutError: ``root`` does not exist or is not a folder.
    """
    path = _absolute(root)
    if not path.is_dir():
        raise LayoutError(f"{path}: dataset root {'is not a folder' if path.exists() else 'does not exist'}")
    return [s for s in SPLITS if (path / s).is_dir()]


def load_split(root: str | Path, split: str) -> SplitIndex:
    """Read one split of a dataset root.

    The ``vid2genre.json`` of every split is read so the class list (and ``is_multilabel``) is the
    same whichever split is loaded. Media files are found by id in ``video/`` and ``audio/``
    (preferred extension first); a clip with neither is kept with ``video=None, audio=None`` and
    logged at debug level: the dataset decides what to do with it.

    Args:
        root: the dataset root.
        split: one of :data:`SPLITS`.

    Returns:
        the split's :class:`SplitIndex`, clips in ``vid2genre.json`` order, paths absolute.

    Raises:
        ValueError: ``split`` is not one of :data:`SPLITS`.
        LayoutError: naming the file, when the root, the split folder or its ``vid2genre.json`` is
            missing, a json file is invalid or has the wrong shape, an id is unsafe or repeated, a
            label is unknown to ``class_labels_indices.csv``, the csv is malformed, or
            ``boxes.json`` is malformed (bad box, unknown id), or ``visible.json`` is (not an object
            of label lists, unknown id, a label not a non-empty string or unknown to the csv).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    sink = _Sink(strict=True)
    info = _read_root(_absolute(root), sink, need=split)
    assert info is not None  # strict mode raised otherwise
    split_dir = info.root / split
    labels = info.labels[split]
    videos = _scan_media(split_dir / VIDEO_DIR, VIDEO_EXTENSIONS, "video", sink)
    audios = _scan_media(split_dir / AUDIO_DIR, AUDIO_EXTENSIONS, "audio", sink)
    boxes = _parse_boxes(split_dir / BOXES_FILE, labels, sink)
    visible = _parse_visible(split_dir / VISIBLE_FILE, labels, info.class_labels, info.csv_path, sink)
    clips: list[Clip] = []
    n_without_media = 0
    for vid, clip_labels in labels.items():
        video = videos[vid][0] if vid in videos else None
        audio = audios[vid][0] if vid in audios else None
        if video is None and audio is None:
            n_without_media += 1
            logger.debug("%s: id %r has neither video nor audio file", split_dir, vid)
        clips.append(Clip(vid, clip_labels, video, audio, boxes.get(vid, ())))
    if n_without_media:
        logger.debug("%s: %d of %d ids have no media file", split_dir, n_without_media, len(clips))
    index = SplitIndex(info.root, split, clips, LabelSpace(info.classes, info.is_multilabel), visible)
    logger.debug("loaded %s: %d clips, %d classes", split_dir, len(clips), len(index.classes))
    return index


# ----------------------------------------------------------------------------------------------
# Validation lives in _validate.py, which imports the helpers above; it is loaded on first use
# (PEP 562) so that either module can be imported first.


def __getattr__(name: str) -> Any:
    if name in ("ValidationReport", "validate"):
        from avcorr.data import _validate

        return getattr(_validate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
