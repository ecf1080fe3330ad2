"""Which reader a data root needs: clip files in the dataset layout (``"files"``) or make_shards' output (``"shards"``).

A root is read as shards when it is a URL (``https://``, ``s3://`` ...: only shards are read from URLs)
or a local folder with a split folder holding a shard manifest (``ROOT/<split>/manifest.json``,
written last by ``python -m data_tools.make_shards``); anything else (a dataset folder, a tagging
source, no root at all: the embedded dataset) is read as files. :func:`resolve_storage` checks a
storage that was asked for against what the root is; :func:`shard_splits` lists the splits of a shard
root, reading their manifests (over http too); :func:`require_files` stops the tools that read clip
files only (retrieval indexes, localization sheets) with a clear error when given shards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

from .layout import SPLITS, VID2GENRE_FILE
from .shards import MANIFEST_FILE, ShardError, read_manifest

__all__ = ["STORAGES", "detect_storage", "is_url", "require_files", "resolve_storage", "shard_splits"]

Storage = Literal["files", "shards"]
STORAGES: tuple[str, ...] = ("files", "shards")


def is_url(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a URL (``scheme://...``) rather than a local path."""
    return "://" in os.fspath(root)


def detect_storage(root: str | os.PathLike | None) -> Storage:
    """``"shards"`` for a URL or a local folder with a ``<split>/manifest.json`` of make_shards, else ``"files"``.

    Args:
        root: a data root (``data.root``); empty or None = the embedded synthetic dataset (files).
    """
    if not root:
        return "files"
    if is_url(root):
        return "shards"
    path = Path(root).expanduser()
    return "shards" if any((path / s / MANIFEST_FILE).is_file() for s in SPLITS) else "files"


def resolve_storage(root: str | os.PathLike | None, storage: str | None = None, split: str = "test") -> Storage:
    """The storage to read ``root`` with: ``storage`` when given (checked against the root), else :func:`detect_storage`.

    Args:
        root: a data root; empty or None = the embedded synthetic dataset.
        storage: ``"files"``, ``"shards"`` or None (detect).
        split: the split that will be read (named in the errors).

    Returns:
        ``"files"`` or ``"shards"``.

    Raises:
        ValueError: an unknown ``storage``, or one that does not fit the root (shards asked of a dataset
            folder, files asked of make_shards' output or of a URL), naming the path and what was expected.
    """
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    found = detect_storage(root)
    if storage is None or storage == found:
        return found
    if storage == "shards":
        if not root:
            raise ValueError("storage 'shards' needs a data root: the output folder of python -m data_tools.make_shards")
        where = Path(root) / split
        what = "a dataset folder in the layout" if (where / VID2GENRE_FILE).is_file() else "no shard manifest"
        raise ValueError(f"{root}: storage 'shards' expects the output of python -m data_tools.make_shards "
                         f"({where / MANIFEST_FILE}); found {what}")
    if is_url(root):
        raise ValueError(f"{root}: storage 'files' reads a local dataset folder in the layout; a URL is read as "
                         "shards (storage 'shards')")
    raise ValueError(f"{root}: storage 'files' expects a dataset folder in the layout ({Path(root) / split / VID2GENRE_FILE}); "
                     f"this folder holds shards of python -m data_tools.make_shards (<split>/{MANIFEST_FILE}): "
                     "read it with storage 'shards'")


def require_files(root: str | os.PathLike | None, what: str) -> None:
    """Stop a reader of clip files that was given shards.

    Args:
        root: the data root it would read.
        what: who reads (``"retrieval"``, ``"localize --grid"`` ...), for the message.

    Raises:
        ValueError: ``root`` holds shards (see :func:`detect_storage`); the message says to pass a dataset folder.
    """
    if detect_storage(root) == "shards":
        raise ValueError(f"{root}: holds shards of python -m data_tools.make_shards (<split>/{MANIFEST_FILE}), and "
                         f"{what} reads clip files: pass --data ROOT, a dataset folder in the layout (the one the "
                         "shards were made from)")


def shard_splits(root: str | os.PathLike, splits: Sequence[str] = SPLITS) -> list[str]:
    """The splits of a shard root that have a readable manifest (``splits`` asked, in that order).

    Args:
        root: make_shards' output folder, a local path or a URL (the manifests are read over http or fsspec).
        splits: the splits to look for (default ``train``, ``val``, ``test``).

    Returns:
        the split names; empty when none has a manifest (or none can be read).
    """
    base = os.fspath(root).rstrip("/")
    found = []
    for split in splits:
        try:
            read_manifest(f"{base}/{split}")
        except (ShardError, OSError):
            continue
        found.append(split)
    return found
