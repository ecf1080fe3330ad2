"""Atomic file writes: a temporary name in the destination folder, renamed over the file on success.

A reader never sees a half-written file, and a write that fails (a full disk, Ctrl-C, an exception
in the caller's code) leaves neither a partial file nor its temporary behind. Every avcorr module
(and ``data_tools``) writes through :func:`atomic_path` or the small helpers built on it, and an
output finished under a name of its own (a download's ``.part`` file, a folder built by
``tempfile.mkdtemp``) reaches its final name through :func:`move_into_place`; a test checks that
``os.replace`` and ``os.rename`` appear nowhere else.

The temporary is ``.<name>.tmp<pid>`` beside the destination: hidden, on the same file system (so
the rename is atomic), and owned by this process (see :func:`stale_temporaries`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_open", "atomic_path", "move_into_place", "stale_temporaries", "temp_path", "write_bytes",
           "write_json", "write_text"]

_TMP = re.compile(r"^\..+\.tmp(\d+)$")  # what temp_path names


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_path` writes ``path`` under: ``.<name>.tmp<pid>`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on failure removed.

    The caller may write a file or make a folder under the temporary path (a folder replaces an
    empty folder or a file at ``path``; ``os.replace`` refuses to replace a non-empty folder).
    Writers that pick a format from the file's extension must be told the format (the temporary
    name ends in ``.tmp<pid>``).

    Args:
        path: the destination.
        mkdir: create the destination's folder first.

    Yields:
        The temporary path (nothing exists there yet).
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    _remove(tmp)  # left by an earlier process with the same pid
    try:
        yield tmp
        move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode, **kwargs)`` on the temporary of :func:`atomic_path`; renamed when the block ends.

    Text modes default to UTF-8.
    """
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path`` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return ``path`` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Write ``obj`` as JSON (with a final newline) to ``path`` atomically; return ``path`` as a Path.

    Args:
        path: the destination.
        obj: JSON-serialisable data (``json.dumps`` raises before anything is written when it is not).
        indent: as ``json.dumps``.
        **kwargs: more ``json.dumps`` arguments (``allow_nan=False``, ``sort_keys=True`` ...).
    """
    return write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a finished file or folder ``src`` to ``dst`` in one step (``os.replace``).

    For outputs made complete under a name of their own rather than by :func:`atomic_path`: a
    download checked in a staging folder, a dataset folder built under a ``tempfile.mkdtemp`` name.
    ``src`` and ``dst`` must be on the same file system (a rename, never a copy). A file replaces a
    file at ``dst``; a folder replaces only an empty folder (OSError otherwise, ``src`` kept).

    Args:
        src: the finished file or folder.
        dst: its final name.

    Returns:
        ``dst`` as a Path.
    """
    os.replace(src, dst)
    return Path(dst)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """The temporaries of :func:`atomic_path` in ``folder`` whose process is gone (a killed write).

    Args:
        folder: a folder (missing is fine).

    Returns:
        Their paths (files or folders), sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            found.append(p)
    return sorted(found)
