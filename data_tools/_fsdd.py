"""The Free Spoken Digit Dataset (FSDD) on disk: finding its recordings, its official split, and a
folder-per-class copy of it for tagging.

FSDD (https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0) is a folder of wav files
named ``{digit}_{speaker}_{index}.wav``: 8 kHz mono 16-bit, 0.14-2.3 s, 6 speakers x 10 digits x 50.
Its official split puts ``index`` 0-4 of every (digit, speaker) in TEST; here index 5-9 of the rest
is VAL and index 10 and above is TRAIN, so no recording is in two splits.

Example:
    >>> recordings, skipped, folder = scan_fsdd("free-spoken-digit-dataset")
    >>> make_fsdd_folder("free-spoken-digit-dataset", "/data/fsdd_folders")
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avcorr.data.writer import building_folder, progress_bar, write_json

logger = logging.getLogger(__name__)

__all__ = [
    "DIGIT_NAMES",
    "FSDD_SAMPLE_RATE",
    "FSDD_SOURCE",
    "SPLITS",
    "Recording",
    "copy_or_link",
    "make_fsdd_folder",
    "official_split",
    "read_recording",
    "recordings_folder",
    "scan_fsdd",
    "write_skipped",
]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""Class display names, by digit."""

SPLITS = ("train", "val", "test")
FSDD_SAMPLE_RATE = 8000
"""FSDD's sample rate; recordings in another format are skipped."""

TEST_INDICES = (0, 4)
VAL_INDICES = (5, 9)
"""Inclusive ranges of the recording index: official test, and the part of official train used as val."""

FSDD_SOURCE: dict[str, Any] = {
    "name": "Free Spoken Digit Dataset (FSDD)",
    "url": "https://github.com/Jakobovski/free-spoken-digit-dataset",
    "licence": "CC BY-SA 4.0",
    "split": f"index {TEST_INDICES[0]}-{TEST_INDICES[1]} of each (digit, speaker): test (official); "
             f"index {VAL_INDICES[0]}-{VAL_INDICES[1]}: val; the rest: train",
}

_NAME = re.compile(r"^([0-9])_([A-Za-z0-9-]+)_([0-9]+)\.wav$")
_FOLDER_GENERATOR = "data_tools.make_digits_family.folder"
_FOLDER_VERSION = 1


@dataclass(frozen=True)
class Recording:
    """One usable FSDD recording.

    Args:
        path: the wav file.
        digit: the spoken digit, 0-9.
        speaker: the speaker's name.
        index: the recording's index for this (digit, speaker).
        num_samples: its length in samples at :data:`FSDD_SAMPLE_RATE`.
    """

    path: Path
    digit: int
    speaker: str
    index: int
    num_samples: int

    @property
    def name(self) -> str:
        """The file name, e.g. ``7_theo_32.wav``."""
        return self.path.name

    @property
    def split(self) -> str:
        """``train``, ``val`` or ``test`` (see :func:`official_split`)."""
        return official_split(self.index)


def official_split(index: int) -> str:
    """The split of a recording from its index: 0-4 test (FSDD's official split), 5-9 val, else train."""
    if TEST_INDICES[0] <= index <= TEST_INDICES[1]:
        return "test"
    if VAL_INDICES[0] <= index <= VAL_INDICES[1]:
        return "val"
    return "train"


def recordings_folder(fsdd_dir: str | os.PathLike[str]) -> Path:
    """The folder holding the wavs: ``fsdd_dir`` itself, or its ``recordings/`` sub-folder.

    Raises:
        FileNotFoundError: ``fsdd_dir`` is not a folder.
    """
    folder = Path(fsdd_dir).expanduser().absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: FSDD folder {'is not a folder' if folder.exists() else 'does not exist'}")
    sub = folder / "recordings"
    if sub.is_dir() and not any(p.suffix.lower() == ".wav" for p in folder.iterdir()):
        return sub
    return folder


def _check_file(path: Path) -> tuple[Recording | None, str]:
    """A usable recording, or None and why not."""
    if not path.is_file():
        return None, "not a file"
    if path.suffix.lower() != ".wav":
        return None, "not a .wav file"
    match = _NAME.match(path.name)
    if match is None:
        return None, "name is not {digit}_{speaker}_{index}.wav"
    if path.stat().st_size == 0:
        return None, "empty file"
    try:
        with wave.open(str(path), "rb") as f:
            fmt = (f.getnchannels(), f.getsampwidth(), f.getframerate())
            frames = f.getnframes()
    except (wave.Error, EOFError, OSError) as err:
        return None, f"not a readable PCM wav ({err or type(err).__name__})"
    if fmt != (1, 2, FSDD_SAMPLE_RATE):
        return None, f"not {FSDD_SAMPLE_RATE} Hz mono 16-bit PCM ({fmt[2]} Hz, {fmt[0]} channel(s), {8 * fmt[1]}-bit)"
    if frames == 0:
        return None, "no samples"
    digit, speaker, index = match.groups()
    return Recording(path, int(digit), speaker, int(index), frames), ""


def scan_fsdd(fsdd_dir: str | os.PathLike[str]) -> tuple[list[Recording], list[tuple[str, str]], Path]:
    """Find FSDD's usable recordings; every other entry of the folder is skipped with a reason.

    Hidden entries (names starting with ``.``) are ignored.

    Args:
        fsdd_dir: the folder of wavs, or its parent holding ``recordings/``.

    Returns:
        ``(recordings sorted by (digit, speaker, index), [(path, reason) skipped], the folder read)``.

    Raises:
        FileNotFoundError: the folder does not exist, or holds no usable recording.
    """
    folder = recordings_folder(fsdd_dir)
    recordings, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        rec, reason = _check_file(path)
        if rec is None:
            logger.warning("%s: skipped: %s", path, reason)
            skipped.append((str(path), reason))
        else:
            recordings.append(rec)
    if not recordings:
        raise FileNotFoundError(f"{folder}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav, "
                                f"{FSDD_SAMPLE_RATE} Hz mono 16-bit) found; {len(skipped)} entries skipped")
    recordings.sort(key=lambda r: (r.digit, r.speaker, r.index))
    return recordings, skipped, folder


def read_recording(path: str | os.PathLike[str]) -> np.ndarray:
    """The int16 samples of a mono 16-bit wav, shape (N,)."""
    with wave.open(str(path), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").copy()


def write_skipped(path: Path, skipped: Sequence[tuple[str, str]]) -> None:
    """Write ``(path, reason)`` pairs as ``id,path,reason`` rows (the id is the file's stem), atomically."""
    from avcorr.data.skipped import write_skipped_csv

    write_skipped_csv(path, [{"id": Path(p).stem, "path": str(p), "reason": r} for p, r in skipped])


def _is_fsdd_folder(out: Path) -> bool:
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("generator") == _FOLDER_GENERATOR
            and meta.get("version") == _FOLDER_VERSION)


def make_fsdd_folder(fsdd_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, link: bool = False,
                     progress: bool = False) -> Path:
    """Copy every usable FSDD recording into a folder-per-class tree for tagging.

    Writes ``OUT/{train,val,test}/<digit name>/<file name>.wav`` (split by :func:`official_split`),
    byte for byte, plus ``OUT/skipped.csv`` and, last, ``OUT/meta.json``. Built in a temporary folder
    renamed when complete; an ``out`` that already holds a complete copy is returned untouched.
    ``python -m avcorr.train --config ast_folder.py data.root=OUT`` reads it.

    Args:
        fsdd_dir: the folder of wavs, or its parent holding ``recordings/``.
        out: the folder to create (must not exist, or be empty, or already hold this copy).
        link: hard-link the files instead of copying them (falls back to copying across devices).
        progress: show a progress bar.

    Returns:
        ``out`` as an absolute Path.

    Raises:
        FileNotFoundError: no usable recording in ``fsdd_dir``.
        FileExistsError: ``out`` holds something else.
    """
    out = Path(out).expanduser().absolute()
    if _is_fsdd_folder(out):
        logger.info("%s already holds the FSDD folder dataset", out)
        return out
    recordings, skipped, folder = scan_fsdd(fsdd_dir)
    counts = {split: 0 for split in SPLITS}
    with building_folder(out, exist_ok=_is_fsdd_folder) as tmp:
        with progress_bar(len(recordings), progress, "FSDD folders", "file") as bar:
            for rec in recordings:
                dst = tmp / rec.split / DIGIT_NAMES[rec.digit] / rec.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                copy_or_link(rec.path, dst, link)
                counts[rec.split] += 1
                bar.update(1)
        write_skipped(tmp / "skipped.csv", skipped)
        write_json(tmp / "meta.json", {
            "generator": _FOLDER_GENERATOR,
            "version": _FOLDER_VERSION,
            "source": {**FSDD_SOURCE, "path": str(folder)},
            "layout": "OUT/{train,val,test}/<digit name>/<FSDD file name>, byte-identical to the source",
            "splits": counts,
            "skipped": len(skipped),
        })
    logger.info("wrote %s: %s", out, ", ".join(f"{s} {n}" for s, n in counts.items()))
    return out


def copy_or_link(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:  # another device, or no hard links on this file system
            pass
    shutil.copyfile(src, dst)
