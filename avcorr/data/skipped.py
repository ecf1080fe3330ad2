"""The clips a command skipped, written beside its outputs as ``skipped.csv`` (columns id, path, reason).

Datasets and loaders report a skipped clip as ``(vid, reason)``; the commands that skip clips
(``retrieve index``, ``evaluate``, ``localize --grid``, ``tag`` over several files, the data tools)
turn those into rows naming the clip's file and write them next to what they produced, so a user
can see which clips are missing from a result and why without reading the log.

Example:
    >>> rows = skipped_rows([("abc", "/d/test/video/abc.mp4: no such file")], {"abc": "/d/test/video/abc.mp4"})
    >>> rows
    [{'id': 'abc', 'path': '/d/test/video/abc.mp4', 'reason': 'no such file'}]
    >>> write_skipped_csv("out/skipped.csv", rows)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._atomic import atomic_open

__all__ = ["SKIPPED_COLUMNS", "SKIPPED_FILE", "clip_paths", "skipped_beside", "skipped_rows", "write_skipped_csv"]

SKIPPED_FILE = "skipped.csv"
SKIPPED_COLUMNS = ("id", "path", "reason")


def skipped_beside(output: str | Path) -> Path:
    """Where the skipped list of a command that writes one file goes: ``<output stem>_skipped.csv`` beside it
    (a command that writes a folder uses ``<folder>/skipped.csv``)."""
    output = Path(output)
    return output.with_name(f"{output.stem}_skipped.csv")


def clip_paths(clips: Iterable[Any], *, audio_first: bool = False) -> dict[str, str]:
    """Id -> the main file of each clip: its video, else its audio file (``audio_first``: the other way round).

    Args:
        clips: objects with a ``vid`` and ``video`` / ``audio`` attributes (:class:`~avcorr.data.records.Clip`).
        audio_first: name the audio file where there is one (what a sound-only reader such as the
            tagging dataset decodes, :attr:`~avcorr.data.records.Clip.media`).

    Returns:
        ``{vid: path}`` (clips without any file are left out).
    """
    out: dict[str, str] = {}
    order = ("audio", "video") if audio_first else ("video", "audio")
    for clip in clips:
        for attr in order:
            path = getattr(clip, attr, None)
            if path:
                out[str(clip.vid)] = os.fspath(path)
                break
    return out


def skipped_rows(skipped: Iterable[tuple[str, str]], paths: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Rows ``{id, path, reason}`` of skipped clips, each id once (its first reason), in order.

    A reason that starts with the clip's path (how :class:`~avcorr.data.errors.BadClipError` words
    it) loses that prefix, since the path has its own column.

    Args:
        skipped: ``(vid, reason)`` pairs as the datasets report them.
        paths: ``{vid: file}`` (see :func:`clip_paths`); ids not in it get an empty path.

    Returns:
        the rows.
    """
    paths = paths or {}
    rows: dict[str, dict[str, str]] = {}
    for vid, reason in skipped:
        vid, reason = str(vid), str(reason)
        if vid in rows:
            continue
        path = paths.get(vid, "")
        if path and reason.startswith(f"{path}: "):
            reason = reason[len(path) + 2:]
        rows[vid] = {"id": vid, "path": path, "reason": reason}
    return list(rows.values())


def write_skipped_csv(path: str | Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """Write ``rows`` (see :func:`skipped_rows`) as a csv with the header ``id,path,reason``, atomically.

    The file is written even when there are no rows (a header only), so that it always describes
    the latest run.

    Args:
        path: the csv file (its folder is created).
        rows: mappings with the keys of :data:`SKIPPED_COLUMNS`.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SKIPPED_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
