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

:func:`load_split` turns one split into a :class:`SplitIndex` (a list of :class:`Clip`) and raises
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
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from avcorr.data.errors import BadClipError, LayoutError

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_EXTENSIONS",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "ClassLabel",
    "Clip",
    "Problem",
    "SplitIndex",
    "ValidationReport",
    "available_splits",
    "check_vid",
    "load_split",
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
VIDEO_DIR = "video"
AUDIO_DIR = "audio"
DURATION_TOLERANCE_S = 1.0  # validate(decode=True) warns above this video/audio length difference

_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")
_CSV_HEADER = ["index", "mid", "display_name"]
# Folder names people use for a split that the layout calls something else.
_SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "dev": "val",
                  "eval": "test", "testing": "test"}

Box = tuple[float, float, float, float]


# ----------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class ClassLabel:
    """One row of ``class_labels_indices.csv``.

    Args:
        index: the csv's ``index`` column.
        mid: the machine id, e.g. ``"/m/07y_7"``.
        display_name: the human-readable name, e.g. ``"Violin, fiddle"``.
    """

    index: int
    mid: str
    display_name: str


@dataclass(frozen=True)
class Clip:
    """One clip of a split.

    Args:
        vid: the clip id (YouTube-like).
        labels: display names (mids mapped through the csv when present), without duplicates.
        video: absolute path of the video file, or None when there is none for this id.
        audio: absolute path of the audio file, or None when there is none for this id.
        boxes: boxes of the sounding object(s), each ``(x1, y1, x2, y2)`` normalized to [0, 1].
    """

    vid: str
    labels: tuple[str, ...]
    video: Path | None
    audio: Path | None
    boxes: tuple[Box, ...] = ()


@dataclass
class SplitIndex:
    """The clips of one split and the class list shared by every split of the root.

    Args:
        root: the dataset root (absolute).
        split: one of :data:`SPLITS`.
        clips: clips in ``vid2genre.json`` order.
        classes: class display names: the csv order when the csv is present, else the sorted union
            of the labels of all splits of the root, so class indices agree between splits.
        is_multilabel: True when some clip of the root (any split) has more than one label.
    """

    root: Path
    split: str
    clips: list[Clip]
    classes: list[str]
    is_multilabel: bool = False

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
        """
        lookup = self.class_to_index
        try:
            return [lookup[label] for label in clip.labels]
        except KeyError as err:
            raise LayoutError(
                f"{self.root / self.split / VID2GENRE_FILE}: id {clip.vid!r}: label {err.args[0]!r} "
                f"is not one of the {len(self.classes)} classes of this root"
            ) from None


@dataclass
class Problem:
    """One problem found by :func:`validate`.

    Args:
        path: the file (or folder) at fault.
        message: what is wrong, naming the clip id where there is one.
        severity: ``"error"`` (the data is wrong) or ``"warning"`` (suspicious but usable).
    """

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.path}: {self.message}"


@dataclass
class ValidationReport:
    """What :func:`validate` found in a dataset root.

    Args:
        root: the dataset root (absolute).
        counts: split -> class display name -> number of clips with that label (classes used by the
            root, in class order; a class missing from a split counts 0).
        n_clips: split -> number of ids in its ``vid2genre.json``.
        problems: every problem found, errors first.
        num_csv_classes: rows of ``class_labels_indices.csv``, None when it is absent or broken.
        has_ontology: whether ``ontology.json`` is present.
    """

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    n_clips: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    num_csv_classes: int | None = None
    has_ontology: bool = False

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems of severity ``"warning"``."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    def format(self, *, max_classes: int | None = 40, counts: bool = True, warnings: bool = True) -> str:
        """A human-readable report: the counts table, then one line per problem, then a summary.

        Args:
            max_classes: most class rows in the counts table (None: all of them).
            counts: include the header and the counts table.
            warnings: include warnings (errors are always listed).

        Returns:
            the report text, lines like ``ERROR /path/to/file: message``.
        """
        lines: list[str] = []
        if counts:
            lines += self._format_counts(max_classes)
        shown = [p for p in self.problems if warnings or p.severity == "error"]
        if shown:
            if lines:
                lines.append("")
            lines += [str(p) for p in shown]
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "OK" if self.ok else "FAILED"
        if lines:
            lines.append("")
        lines.append(f"{verdict}: {n_err} error(s), {n_warn} warning(s) in {self.root}")
        return "\n".join(lines)

    def _format_counts(self, max_classes: int | None) -> list[str]:
        csv_text = "absent" if self.num_csv_classes is None else f"{self.num_csv_classes} classes"
        lines = [
            f"dataset root: {self.root}",
            f"{CLASS_LABELS_FILE}: {csv_text}; {ONTOLOGY_FILE}: "
            f"{'present' if self.has_ontology else 'absent'}",
        ]
        splits = [s for s in SPLITS if s in self.n_clips]
        if not splits:
            lines.append("no split could be read")
            return lines
        lines.append("clips: " + ", ".join(f"{s} {self.n_clips[s]}" for s in splits))
        classes: list[str] = []
        for s in splits:
            classes += [c for c in self.counts.get(s, {}) if c not in classes]
        if not classes:
            return lines
        width = min(40, max(len("class"), *(len(c) for c in classes)))
        cols = [max(len(s), 6) for s in splits]
        lines.append("")
        lines.append(f"{'class':<{width}}  " + "  ".join(f"{s:>{w}}" for s, w in zip(splits, cols)))
        limit = len(classes) if max_classes is None else max_classes
        for name in classes[:limit]:
            shown = name if len(name) <= width else name[: width - 3] + "..."
            cells = "  ".join(f"{self.counts.get(s, {}).get(name, 0):>{w}}" for s, w in zip(splits, cols))
            lines.append(f"{shown:<{width}}  {cells}")
        if len(classes) > limit:
            lines.append(f"... and {len(classes) - limit} more classes")
        return lines


# ----------------------------------------------------------------------------------------------
# Problem collection: strict (raise at the first error) for load_split, lenient for validate


class _Sink:
    """Collects problems; in strict mode the first error raises :class:`LayoutError`."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.problems: list[Problem] = []
        self.n_errors = 0

    def error(self, path: str | Path, message: str) -> None:
        if self.strict:
            raise LayoutError(f"{path}: {message}")
        self.n_errors += 1
        self.problems.append(Problem(str(path), message, "error"))

    def warning(self, path: str | Path, message: str) -> None:
        if self.strict:
            logger.debug("%s: %s", path, message)
            return
        self.problems.append(Problem(str(path), message, "warning"))


def _unsafe_vid_reason(vid: Any) -> str | None:
    """Why ``vid`` cannot name a file inside its folder, or None when it can."""
    if not isinstance(vid, str):
        return f"is a {type(vid).__name__}, not a string"
    if not vid:
        return "is empty"
    if "/" in vid or "\\" in vid:
        return "contains a path separator and would escape its folder"
    if any(ord(ch) < 32 or ch == "\x7f" for ch in vid):
        return "contains a control character (NUL, newline ...)"
    if vid.startswith("."):
        return "starts with '.' (hidden file, or a path escaping its folder)"
    if ".." in vid:
        return "contains '..' and could escape its folder"
    return None


def check_vid(vid: str, source: str | Path) -> str:
    """Check that a clip id can safely name a file inside its split folder.

    Ids are YouTube-like (letters, digits, ``_`` and ``-``; they may start with ``-``). Ids with
    other characters are accepted here (``validate`` warns about them); ids that would escape their
    folder are not.

    Args:
        vid: the clip id.
        source: the file the id comes from, named in the error.

    Returns:
        ``vid`` unchanged.

    Raises:
        LayoutError: the id is empty, contains '/', '\\', '..' or a control character (NUL ...), or
            starts with '.'; the message names ``source`` and the id.
    """
    reason = _unsafe_vid_reason(vid)
    if reason is not None:
        raise LayoutError(f"{source}: id {vid!r} {reason}")
    return vid


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
    return _parse_class_labels(path, _Sink(strict=True))


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


def _parse_vid2genre(path: Path, data: Any, sink: _Sink) -> dict[str, tuple[str, ...]]:
    """Check the shape of a ``vid2genre.json`` document; return id -> raw labels."""
    obj = _top_level_object(path, data, sink, "{id: label or [label, ...]}")
    if obj is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for vid, value in obj.items():
        reason = _unsafe_vid_reason(vid)
        if reason is not None:
            sink.error(path, f"id {vid!r} {reason}")
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
                sink.warning(entry.path, f"not a {kind} file ({' '.join(extensions)}); ignored")
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
            ``boxes.json`` is malformed (bad box, unknown id).
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
    index = SplitIndex(info.root, split, clips, info.classes, info.is_multilabel)
    logger.debug("loaded %s: %d clips, %d classes", split_dir, len(clips), len(index.classes))
    return index


# ----------------------------------------------------------------------------------------------
# Validation


def validate(root: str | Path, *, decode: bool = False, progress: bool = False) -> ValidationReport:
    """Check a dataset root and report every problem found, not only the first.

    Errors: missing root/split files, invalid or mis-shaped json, unsafe or repeated ids, malformed
    csv, labels unknown to the csv, ids with neither video nor audio, empty (0-byte) media files,
    bad ``boxes.json`` entries (unknown id, not 4 numbers, outside [0, 1], x1 >= x2 or y1 >= y2),
    and with ``decode`` media that cannot be probed or last zero seconds.
    Warnings: ids with only one of video/audio, orphan media files (id not in ``vid2genre.json``),
    several files for one id, files with other extensions, ids that are not YouTube-like, clips
    without a label, labels used by a single clip, classes with fewer than 2 clips in a split, the
    same id in two splits (leakage), and with ``decode`` video/audio lengths differing by more than
    :data:`DURATION_TOLERANCE_S` or a clip with no audio at all.

    Args:
        root: the dataset root.
        decode: also probe every media file with :mod:`avcorr.data.decode` (slow).
        progress: show a tqdm bar while probing.

    Returns:
        the report; ``report.ok`` is False when there is any error.
    """
    root = _absolute(root)
    sink = _Sink(strict=False)
    report = ValidationReport(root=root)
    info = _read_root(root, sink, need=None)
    if info is not None:
        report.has_ontology = (root / ONTOLOGY_FILE).is_file()
        if info.class_labels is not None:
            report.num_csv_classes = len(info.class_labels)
        _check_root_folders(root, sink)
        clips = _check_splits(info, sink, report)
        _check_labels(info, sink, report)
        if decode:
            _check_decoding(clips, sink, progress)
    order = {"error": 0, "warning": 1}
    report.problems = sorted(sink.problems, key=lambda p: order.get(p.severity, 2))
    return report


def _check_root_folders(root: Path, sink: _Sink) -> None:
    for entry in sorted(root.iterdir()):
        alias = _SPLIT_ALIASES.get(entry.name.lower())
        if alias is not None and entry.is_dir():
            sink.warning(entry, f"not a split folder and ignored; did you mean {alias}/?")


def _check_splits(info: _RootInfo, sink: _Sink, report: ValidationReport) -> dict[str, list[Clip]]:
    """Media, ids, boxes and leakage, split by split; return the clips of every readable split."""
    clips_by_split: dict[str, list[Clip]] = {}
    first_split: dict[str, str] = {}
    for split in SPLITS:
        if split not in info.labels:
            continue
        labels = info.labels[split]
        split_dir = info.root / split
        json_path = split_dir / VID2GENRE_FILE
        report.n_clips[split] = len(labels)
        video_dir, audio_dir = split_dir / VIDEO_DIR, split_dir / AUDIO_DIR
        has_video, has_audio = video_dir.is_dir(), audio_dir.is_dir()
        if not has_video and not has_audio:
            sink.error(split_dir, "has neither a video/ nor an audio/ folder")
        elif not has_video:
            sink.warning(video_dir, "missing: the clips of this split have audio only")
        elif not has_audio:
            sink.warning(audio_dir, "missing: the clips of this split have video only")
        videos = _scan_media(video_dir, VIDEO_EXTENSIONS, "video", sink)
        audios = _scan_media(audio_dir, AUDIO_EXTENSIONS, "audio", sink)
        for kind, found in (("video", videos), ("audio", audios)):
            for vid, paths in found.items():
                if vid not in labels:
                    for path in paths:
                        sink.warning(path, f"orphan: id {vid!r} is not in {json_path}")
                if len(paths) > 1:
                    names = ", ".join(p.name for p in paths)
                    sink.warning(paths[0], f"several {kind} files for id {vid!r} ({names}); using {paths[0].name}")
                for path in paths:
                    if _file_size(path) == 0:
                        sink.error(path, "empty file (0 bytes)")
        boxes = _parse_boxes(split_dir / BOXES_FILE, labels, sink)
        clips: list[Clip] = []
        for vid, clip_labels in labels.items():
            if not _YOUTUBE_ID.fullmatch(vid):
                sink.warning(json_path, f"id {vid!r} is not YouTube-like (letters, digits, '_', '-')")
            if vid in first_split:
                sink.warning(json_path, f"id {vid!r} is also in {first_split[vid]}/ (leakage between splits)")
            else:
                first_split[vid] = split
            video = videos[vid][0] if vid in videos else None
            audio = audios[vid][0] if vid in audios else None
            if video is None and audio is None:
                if has_video or has_audio:
                    sink.error(json_path, f"id {vid!r} has neither a video file in {video_dir} "
                                          f"nor an audio file in {audio_dir}")
            elif video is None and has_video:
                sink.warning(json_path, f"id {vid!r} has an audio file but no video file in {video_dir}")
            elif audio is None and has_audio:
                sink.warning(json_path, f"id {vid!r} has a video file but no audio file in {audio_dir}")
            clips.append(Clip(vid, clip_labels, video, audio, boxes.get(vid, ())))
        clips_by_split[split] = clips
    return clips_by_split


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _check_labels(info: _RootInfo, sink: _Sink, report: ValidationReport) -> None:
    """Counts per split and class; unlabelled clips, one-clip labels, classes thin in a split."""
    per_split = {split: Counter(label for ls in labels.values() for label in ls)
                 for split, labels in info.labels.items()}
    total: Counter[str] = Counter()
    for counter in per_split.values():
        total.update(counter)
    used = [c for c in info.classes if total[c] > 0]
    if info.class_labels is None and any(label.startswith("/m/") for label in used):
        sink.warning(info.csv_path, "labels look like AudioSet mids but there is no csv to map them "
                                    "to display names")
    singletons: set[str] = set()
    for split in SPLITS:
        if split not in info.labels:
            continue
        json_path = info.root / split / VID2GENRE_FILE
        for vid, labels in info.labels[split].items():
            if not info.raw_labels[split][vid]:  # not when its labels are unknown (reported already)
                sink.warning(json_path, f"id {vid!r} has no label")
            for label in labels:
                if total[label] == 1:
                    singletons.add(label)
                    sink.warning(json_path, f"label {label!r} of id {vid!r} is used by no other clip (a typo?)")
    for split in SPLITS:
        if split not in info.labels:
            continue
        json_path = info.root / split / VID2GENRE_FILE
        counts = {c: per_split[split][c] for c in used}
        report.counts[split] = counts
        for name, n in counts.items():
            if n < 2 and name not in singletons:
                sink.warning(json_path, f"class {name!r} has {n} clip(s) in {split}")


def _check_decoding(clips_by_split: dict[str, list[Clip]], sink: _Sink, progress: bool) -> None:
    """Probe every media file of every clip; report undecodable, empty and mismatched media."""
    try:
        from avcorr.data import decode as media
    except ImportError as err:
        raise ImportError(f"validate(decode=True) needs avcorr.data.decode, which cannot be imported: {err}") \
            from err
    from tqdm import tqdm

    jobs = [(clip, kind, path) for clips in clips_by_split.values() for clip in clips
            for kind, path in (("video", clip.video), ("audio", clip.audio))
            if path is not None and _file_size(path) != 0]  # empty files are already reported
    durations: dict[int, dict[str, float]] = {}
    video_has_audio: dict[int, bool] = {}
    for clip, kind, path in tqdm(jobs, desc="probing media", unit="file", disable=not progress):
        try:
            probed = media.probe_video(path) if kind == "video" else media.probe_audio(path)
        except BadClipError as err:
            sink.error(path, f"cannot be decoded: {err.reason}")
            continue
        duration = getattr(probed, "duration", None)
        if duration is None or not math.isfinite(duration) or duration <= 0:
            sink.error(path, f"zero or unknown duration ({duration}); id {clip.vid!r}")
            continue
        durations.setdefault(id(clip), {})[kind] = float(duration)
        if kind == "video":
            video_has_audio[id(clip)] = bool(getattr(probed, "has_audio", True))
    for clips in clips_by_split.values():
        for clip in clips:
            found = durations.get(id(clip), {})
            if "video" in found and "audio" in found:
                gap = abs(found["video"] - found["audio"])
                if gap > DURATION_TOLERANCE_S:
                    sink.warning(clip.video, f"id {clip.vid!r}: video lasts {found['video']:.2f} s but "
                                             f"its audio file {found['audio']:.2f} s")
            if clip.audio is None and not video_has_audio.get(id(clip), True):
                sink.warning(clip.video, f"id {clip.vid!r} has no audio at all: no audio file and no "
                                         "audio track in the video")
