"""Problems found while reading a dataset in the vid2genre layout, and clip-id safety.

:class:`Problem` is one finding of :func:`avcorr.data.layout.validate`; ``_Sink`` collects them
(strict: the first error raises :class:`~avcorr.data.errors.LayoutError`, as ``load_split`` wants;
lenient: everything is kept, as ``validate`` wants). :func:`check_vid` refuses ids that would escape
their folder. Re-exported by :mod:`avcorr.data.layout`, where they are documented for users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avcorr.data.errors import LayoutError

logger = logging.getLogger("avcorr.data.layout")


@dataclass
class Problem:
    """One problem found by :func:`validate`.

    Args:
        path: the file (or folder) at fault.
        message: what is wrong, naming the clip id where there is one.
        severity: ``"error"`` (the data is wrong), ``"warning"`` (suspicious but usable) or
            ``"info"`` (a supported layout worth knowing about).
        kind: for problems that repeat per clip or label (a video without an audio file, a label
            used once ...): a key under which the report shows them as one line with a count;
            empty for problems always listed one by one.
        subject: the clip id, label or file name the summary line names for this occurrence.
    """

    path: str
    message: str
    severity: str = "error"
    kind: str = ""
    subject: str = ""

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.path}: {self.message}"


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

    def warning(self, path: str | Path, message: str, *, kind: str = "", subject: str = "") -> None:
        if self.strict:
            logger.debug("%s: %s", path, message)
            return
        self.problems.append(Problem(str(path), message, "warning", kind, subject))

    def info(self, path: str | Path, message: str, *, kind: str = "", subject: str = "") -> None:
        if not self.strict:
            self.problems.append(Problem(str(path), message, "info", kind, subject))


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
