"""AudioSet csv files: segment lists, the class list, and choosing classes by name or mid.

The formats, as Google distributes them::

    # Segments csv created Sun Mar  5 10:54:31 2017
    # num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882
    # YTID, start_seconds, end_seconds, positive_labels
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

    index,mid,display_name
    0,/m/09x0r,"Speech"
    193,/m/07y_7,"Violin, fiddle"

Lines starting with ``#`` are comments, fields are separated by ``", "``, and the label list (and
any display name with a comma) is quoted. Class choices given on the command line are split on
commas but matched greedily against the known display names first, so ``"Guitar,Violin, fiddle"``
means the two classes ``Guitar`` and ``Violin, fiddle``; mids (``/m/07y_7``) are accepted too.

Example:
    >>> classes = read_class_labels_csv("class_labels_indices.csv")
    >>> chosen = parse_class_list("Guitar,Violin, fiddle", classes)
    >>> [c.display_name for c in chosen]
    ['Guitar', 'Violin, fiddle']
    >>> rows = select_segments(read_segments("balanced_train_segments.csv"), chosen)
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from avcorr.data.layout import ClassLabel

logger = logging.getLogger(__name__)

__all__ = [
    "ClassLabel",
    "Segment",
    "SelectedSegment",
    "UnknownClassError",
    "format_segments_csv",
    "parse_class_list",
    "read_class_labels_csv",
    "read_genre_file",
    "read_segments",
    "resolve_class",
    "select_segments",
]

_MAX_LOGGED_BAD_ROWS = 20


@dataclass(frozen=True)
class Segment:
    """One row of an AudioSet segments csv.

    Args:
        ytid: the YouTube id as written in the file (not checked here: the downloader refuses
            unsafe ones).
        start: section start in seconds.
        end: section end in seconds.
        labels: the positive labels (mids), in file order.
        source: ``"file:line"`` the row comes from.
    """

    ytid: str
    start: float
    end: float
    labels: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class SelectedSegment:
    """A segment kept by :func:`select_segments` with the display names of its chosen classes.

    Args:
        segment: the row.
        labels: display names of the row's labels that were chosen, in the order of the choice.
    """

    segment: Segment
    labels: tuple[str, ...]


class UnknownClassError(ValueError):
    """A class name or mid given by the user is not in the class list."""


def _data_lines(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, text) of the non-comment, non-blank lines of a text file."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        for number, line in enumerate(f, start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                yield number, line


def _unquote(field: str) -> str | None:
    """``field`` without its surrounding double quotes; None when its quotes are unbalanced."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        field = field[1:-1]
    return None if '"' in field else field


def read_segments(path: str | Path) -> list[Segment]:
    """Read an AudioSet segments csv (``YTID, start_seconds, end_seconds, "label,label"``).

    Comment lines (``#``) and an uncommented ``YTID, ...`` header are skipped. A malformed row (wrong
    field count, a time that is not a number, ``end <= start``, no label) is skipped and logged
    with its line number; the number skipped is logged at the end.

    Args:
        path: the csv file.

    Returns:
        the rows in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file has no valid row at all (naming the file and the first problem).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: segments csv not found")
    rows: list[Segment] = []
    problems: list[str] = []
    for number, line in _data_lines(path):
        # Split by hand (the label list is the only quoted field and holds the only extra commas): an
        # unbalanced quote then spoils one row, not the rest of the file as with a csv reader.
        raw = [f.strip() for f in line.rstrip("\r\n").split(",", 3)]
        if not rows and raw[0].strip('"').upper() == "YTID":  # an uncommented header line
            continue
        fields = [_unquote(f) for f in raw]
        where = f"{path}:{number}"
        if len(fields) != 4:
            problems.append(f"{where}: expected 4 fields (YTID, start_seconds, end_seconds, \"labels\"), "
                            f"got {len(fields)}")
            continue
        if None in fields:
            problems.append(f"{where}: unbalanced double quote")
            continue
        ytid, start_text, end_text, label_text = fields
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            problems.append(f"{where}: start/end {start_text!r}, {end_text!r} are not numbers")
            continue
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            problems.append(f"{where}: bad section [{start_text}, {end_text}] (need 0 <= start < end)")
            continue
        labels = tuple(dict.fromkeys(label.strip() for label in label_text.split(",") if label.strip()))
        if not ytid or not labels:
            problems.append(f"{where}: empty {'YTID' if not ytid else 'label list'}")
            continue
        rows.append(Segment(ytid, start, end, labels, where))
    for message in problems[:_MAX_LOGGED_BAD_ROWS]:
        logger.warning("skipped row: %s", message)
    if len(problems) > _MAX_LOGGED_BAD_ROWS:
        logger.warning("... and %d more malformed rows", len(problems) - _MAX_LOGGED_BAD_ROWS)
    if not rows:
        first = problems[0] if problems else f"{path}: no data row"
        raise ValueError(f"{path}: no valid segment row; {first}")
    if problems:
        logger.warning("%s: %d valid rows, %d malformed rows skipped", path, len(rows), len(problems))
    return rows


def read_class_labels_csv(path: str | Path) -> list[ClassLabel]:
    """Read an AudioSet ``class_labels_indices.csv`` (``index,mid,display_name``, names may be quoted).

    Args:
        path: the csv file (any name).

    Returns:
        the classes in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad header, a row without 3 fields, a non-integer index, an empty or repeated
            mid/display name; the message names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class list csv not found")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    header = [h.strip() for h in next(reader, [])]
    if header != ["index", "mid", "display_name"]:
        raise ValueError(f"{path}: line 1: expected the header 'index,mid,display_name', got {','.join(header)!r}")
    classes: list[ClassLabel] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 3:
            raise ValueError(f"{path}: line {line}: expected 3 fields (index,mid,display_name), got {len(row)}; "
                             "display names with commas must be quoted")
        index_text, mid, name = (cell.strip() for cell in row)
        try:
            index = int(index_text)
        except ValueError:
            raise ValueError(f"{path}: line {line}: index {index_text!r} is not an integer") from None
        if not mid or not name:
            raise ValueError(f"{path}: line {line}: empty {'mid' if not mid else 'display_name'}")
        for key in (f"mid {mid!r}", f"display_name {name!r}"):
            if key in seen:
                raise ValueError(f"{path}: line {line}: {key} already on line {seen[key]}")
            seen[key] = line
        classes.append(ClassLabel(index, mid, name))
    if not classes:
        raise ValueError(f"{path}: no class rows after the header")
    return classes


def _normalize(name: str) -> str:
    """Case-folded name with one ", " between comma-separated parts and single spaces."""
    name = re.sub(r"\s*,\s*", ", ", name.strip())
    return re.sub(r"\s+", " ", name).casefold()


class _ClassIndex:
    """Look-up of classes by mid, exact display name, or normalized display name."""

    def __init__(self, classes: Sequence[ClassLabel]):
        self.classes = list(classes)
        self.by_mid = {c.mid: c for c in classes}
        self.by_name = {c.display_name: c for c in classes}
        self.by_norm: dict[str, list[ClassLabel]] = {}
        for c in classes:
            self.by_norm.setdefault(_normalize(c.display_name), []).append(c)

    def find(self, text: str) -> ClassLabel | None:
        text = text.strip()
        if not text:
            return None
        if text in self.by_mid:
            return self.by_mid[text]
        if text in self.by_name:
            return self.by_name[text]
        found = self.by_norm.get(_normalize(text), [])
        return found[0] if len(found) == 1 else None

    def unknown(self, text: str, source: str) -> UnknownClassError:
        names = [c.display_name for c in self.classes]
        close = difflib.get_close_matches(text.strip(), names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return UnknownClassError(f"{source}: {text.strip()!r} is neither a display_name nor a mid of the "
                                 f"class list ({len(names)} classes){hint}")


def resolve_class(text: str, classes: Sequence[ClassLabel], source: str = "class") -> ClassLabel:
    """The class named by ``text``: a mid, a display name (exact, else case- and space-insensitive).

    Args:
        text: one class, e.g. ``"Violin, fiddle"``, ``"violin,fiddle"`` or ``"/m/07y_7"``.
        classes: the class list.
        source: what ``text`` comes from, named in the error.

    Raises:
        UnknownClassError: nothing matches (close names are suggested).
    """
    index = _ClassIndex(classes)
    found = index.find(text)
    if found is None:
        raise index.unknown(text, source)
    return found


def parse_class_list(text: str, classes: Sequence[ClassLabel], source: str = "--classes") -> list[ClassLabel]:
    """Split a comma-separated class list, preferring the longest known display name at each point.

    ``"Guitar,Violin, fiddle"`` gives ``Guitar`` and ``Violin, fiddle``: at each position the longest
    run of comma-separated pieces that is a known display name (or a mid) wins.

    Args:
        text: the list as typed.
        classes: the class list.
        source: named in the error.

    Returns:
        the classes in the order given, without repeats.

    Raises:
        UnknownClassError: a piece matches no class.
    """
    index = _ClassIndex(classes)
    pieces = text.split(",")
    chosen: list[ClassLabel] = []
    i = 0
    while i < len(pieces):
        if not pieces[i].strip():
            i += 1
            continue
        for j in range(len(pieces), i, -1):
            found = index.find(",".join(pieces[i:j]))
            if found is not None:
                if found not in chosen:
                    chosen.append(found)
                i = j
                break
        else:
            raise index.unknown(pieces[i], source)
    return chosen


def read_genre_file(path: str | Path, classes: Sequence[ClassLabel]) -> list[ClassLabel]:
    """Read a class selection file: one class (display name or mid) per line.

    Blank lines and ``#`` comments are ignored. A line that is not one class as a whole is read as a
    comma-separated list (see :func:`parse_class_list`).

    Args:
        path: the text file.
        classes: the class list.

    Returns:
        the classes in file order, without repeats.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnknownClassError: a line matches no class (naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class selection file not found")
    index = _ClassIndex(classes)
    chosen: list[ClassLabel] = []
    for number, line in _data_lines(path):
        source = f"{path}:{number}"
        found = index.find(line)
        for c in [found] if found is not None else parse_class_list(line, classes, source):
            if c not in chosen:
                chosen.append(c)
    if not chosen:
        raise UnknownClassError(f"{path}: no class in the file")
    return chosen


def select_segments(
    segments: Sequence[Segment],
    chosen: Sequence[ClassLabel],
    *,
    max_per_class: int | None = None,
) -> list[SelectedSegment]:
    """The rows having at least one chosen class, with the display names of their chosen classes.

    A YouTube id listed twice keeps its first row. With ``max_per_class``, rows are taken in file
    order while at least one of their chosen classes has fewer than ``max_per_class`` rows.

    Args:
        segments: rows from :func:`read_segments` (possibly of several files).
        chosen: the chosen classes; label order in the result follows this order.
        max_per_class: cap on rows per class, None for no cap.

    Returns:
        the selected rows in input order.
    """
    order = {c.mid: i for i, c in enumerate(chosen)}
    names = {c.mid: c.display_name for c in chosen}
    counts = dict.fromkeys(order, 0)
    seen: set[str] = set()
    duplicates = 0
    out: list[SelectedSegment] = []
    for seg in segments:
        mids = sorted({m for m in seg.labels if m in order}, key=order.__getitem__)
        if not mids:
            continue
        if seg.ytid in seen:
            duplicates += 1
            continue
        if max_per_class is not None and all(counts[m] >= max_per_class for m in mids):
            continue
        seen.add(seg.ytid)
        for m in mids:
            counts[m] += 1
        out.append(SelectedSegment(seg, tuple(names[m] for m in mids)))
    if duplicates:
        logger.warning("%d rows repeat an id already selected; the first row of each id is kept", duplicates)
    return out


def format_segments_csv(segments: Iterable[Segment]) -> str:
    """Rows in the AudioSet segments csv format (comment header, quoted label lists).

    Args:
        segments: the rows.

    Returns:
        the file's text.
    """
    lines = ["# YTID, start_seconds, end_seconds, positive_labels"]
    for seg in segments:
        lines.append(f'{seg.ytid}, {seg.start:.3f}, {seg.end:.3f}, "{",".join(seg.labels)}"')
    return "\n".join(lines) + "\n"

