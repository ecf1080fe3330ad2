"""A keyword-spotting set in the Speech Commands layout, as a speaker-disjoint folder-per-class dataset.

Reads the layout of Google's Speech Commands (and of the many sets made the same way, e.g. the
Lithuanian Speech Commands, https://github.com/kolesov93/lt_speech_commands)::

    SRC/<word>/<speaker>_nohash_<n>.wav      one folder per word; the file name starts with the speaker
    SRC/_background_noise_/...               folders starting with "_" are not words: ignored
    SRC/validation_list.txt, testing_list.txt  optional official split (paths relative to SRC)

and writes ``OUT/{train,val,test}/<word>/<file>`` (byte-identical copies, or hard links with
``--link``) for ``python -m avcorr.train --config panns_folder.py data.root=OUT``, plus
``OUT/skipped.csv`` and, last, ``OUT/meta.json``.

Split: the official lists when SRC has them; otherwise by SPEAKER, so no voice is heard in two splits
(a file whose name has no ``_nohash_`` is its own speaker). Speakers are ordered by the sha256 of
``"<seed>:<speaker>"``; the first ``round(S * test)`` go to test, the next ``round(S * val)`` to val
(at least one each when the fraction is not 0 and S >= 3), the rest to train. The result depends only
on the speaker names, the fractions and the seed.

``--sample-rate R`` and ``--snippet MIN MAX`` write derived recordings instead of copies (16-bit PCM
mono): resampled to R Hz, and/or cut to the loudest stretch of L seconds of each recording (L uniform
in [MIN, MAX], drawn from the sha256 of ``"<seed>:<split>/<word>/<file>"``; a recording shorter than L
is kept whole). Short utterances without their surrounding room sound, zero-padded by the loader,
as some spoken-digit sets are: a development copy for sounds in digital silence.

Kept: ``.wav`` files whose header parses (any PCM or float wav); the others are skipped, counted and
listed with their reason in ``skipped.csv``. OUT is built in a temporary folder renamed when
complete; an OUT that already holds this copy (same source, fractions and seed) is left untouched.

Example:
    python -m data_tools.make_speech_commands_folder lt_speech_commands/dataset /data/lt_commands --link
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avcorr.data.errors import DecodeError
from avcorr.data.wav import parse_wav, read_wav_frames
from avcorr.data.writer import building_folder, progress_bar, write_json, write_wav
from data_tools._fsdd import SPLITS, copy_or_link, write_skipped
from data_tools._recorded_family import is_complete

logger = logging.getLogger(__name__)

__all__ = ["Recording", "assign_speakers", "derived_recording", "make_speech_commands_folder", "scan_speech_commands",
           "snippet_seconds", "speaker_of"]

_GENERATOR = "data_tools.make_speech_commands_folder"
_VERSION = 1
_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}


@dataclass(frozen=True)
class Recording:
    """One usable recording.

    Args:
        path: the wav file.
        word: its class (the folder name).
        speaker: who speaks (see :func:`speaker_of`).
    """

    path: Path
    word: str
    speaker: str

    @property
    def rel(self) -> str:
        """``<word>/<file name>``, as the official lists write it."""
        return f"{self.word}/{self.path.name}"


def speaker_of(name: str) -> str:
    """The speaker of a file name: the part before ``_nohash_``, else the whole stem."""
    stem = Path(name).stem
    head, sep, _ = stem.partition("_nohash_")
    return head if sep and head else stem


def _wav_problem(path: Path) -> str:
    """Why ``path`` is not a usable wav ("" when it is)."""
    if path.suffix.lower() != ".wav":
        return "not a .wav file"
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            layout = parse_wav(f, str(path), size)
    except (OSError, ValueError, DecodeError) as err:
        return f"not a readable wav ({err})"
    if layout is None:
        return "not a wav the reader understands"
    return ""


def scan_speech_commands(src: str | os.PathLike[str]) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Find the usable recordings of ``SRC/<word>/*.wav``.

    Args:
        src: the folder holding one folder per word.

    Returns:
        ``(recordings sorted by (word, file name), [(path, reason) skipped])``.

    Raises:
        FileNotFoundError: ``src`` is not a folder, or holds no usable recording.
    """
    folder = Path(src).expanduser().absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: source folder {'is not a folder' if folder.exists() else 'does not exist'}")
    recordings: list[Recording] = []
    skipped: list[tuple[str, str]] = []
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if word_dir.name.startswith(("_", ".")):
            continue
        for path in sorted(p for p in word_dir.iterdir() if not p.name.startswith(".")):
            reason = "not a file" if not path.is_file() else _wav_problem(path)
            if reason:
                logger.warning("%s: skipped: %s", path, reason)
                skipped.append((str(path), reason))
            else:
                recordings.append(Recording(path, word_dir.name, speaker_of(path.name)))
    if not recordings:
        raise FileNotFoundError(f"{folder}: no recordings found (expected <word>/<speaker>_nohash_<n>.wav); "
                                f"{len(skipped)} entries skipped")
    return recordings, skipped


def assign_speakers(speakers: Sequence[str], *, val: float, test: float, seed: int) -> dict[str, str]:
    """Give each speaker a split (see the module docstring).

    Args:
        speakers: speaker names (duplicates ignored).
        val: share of speakers in val, in [0, 1).
        test: share of speakers in test, in [0, 1).
        seed: changes the order.

    Returns:
        ``{speaker: "train" | "val" | "test"}``.

    Raises:
        ValueError: the fractions are out of range or leave no speaker for train.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val ({val}) and test ({test}) must be in [0, 1) and sum to less than 1")
    names = sorted(set(speakers), key=lambda s: (hashlib.sha256(f"{seed}:{s}".encode()).hexdigest(), s))
    n = len(names)
    n_test, n_val = round(n * test), round(n * val)
    if n >= 3:
        n_test = max(n_test, 1 if test > 0 else 0)
        n_val = max(n_val, 1 if val > 0 else 0)
    if n_test + n_val >= n:
        raise ValueError(f"{n} speaker(s) cannot be split into val {val} / test {test} with one left for train")
    split = {s: "test" for s in names[:n_test]}
    split.update({s: "val" for s in names[n_test:n_test + n_val]})
    split.update({s: "train" for s in names[n_test + n_val:]})
    return split


def _official_lists(folder: Path) -> dict[str, str] | None:
    """``{"<word>/<file>": split}`` from the official lists, or None when SRC has neither."""
    if not any((folder / name).is_file() for name in _LISTS.values()):
        return None
    out: dict[str, str] = {}
    for split, name in _LISTS.items():
        path = folder / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out[line.strip()] = split
    return out


def snippet_seconds(key: str, low: float, high: float, seed: int) -> float:
    """The snippet length of one recording: uniform in [low, high] from the sha256 of ``"<seed>:<key>"``."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return low + (high - low) * u


def derived_recording(path: Path, sample_rate: int | None, seconds: float | None) -> tuple[np.ndarray, int]:
    """A recording as mono float32, resampled to ``sample_rate`` (None: its own) and cut to its loudest
    ``seconds`` (None: whole; the window's energy summed over 10 ms hops).

    Returns:
        ((N,) float32 samples in [-1, 1], sample rate).
    """
    from math import gcd

    from scipy.signal import resample_poly

    with open(path, "rb") as f:
        layout = parse_wav(f, str(path), path.stat().st_size)
        if layout is None:
            raise DecodeError(f"{path}: not a wav the reader understands")
        audio = read_wav_frames(f, str(path), layout, 0, layout.available_frames).mean(axis=1)
    rate = layout.sample_rate
    if sample_rate and sample_rate != rate:
        g = gcd(int(sample_rate), int(rate))
        audio = resample_poly(audio, int(sample_rate) // g, int(rate) // g).astype(np.float32)
        rate = int(sample_rate)
    if seconds is not None:
        n = max(1, int(round(seconds * rate)))
        if audio.shape[0] > n:
            hop = max(1, rate // 100)
            energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
            starts = np.arange(0, audio.shape[0] - n + 1, hop)
            best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
            audio = audio[best:best + n]
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def _is_complete(out: Path, params: dict[str, Any]) -> bool:
    return is_complete(out, _GENERATOR, _VERSION, params)


def make_speech_commands_folder(src: str | os.PathLike[str], out: str | os.PathLike[str], *, val: float = 0.15,
                                test: float = 0.15, seed: int = 0, link: bool = False,
                                sample_rate: int | None = None, snippet: tuple[float, float] | None = None,
                                progress: bool = False) -> Path:
    """Write the speaker-disjoint folder-per-class copy of a Speech Commands-style set.

    Args:
        src: ``SRC`` with one folder per word.
        out: the folder to create (must not exist, or be empty, or already hold this copy).
        val: share of speakers in val (ignored when SRC has the official lists).
        test: share of speakers in test (likewise).
        seed: changes which speakers go where.
        link: hard-link the files instead of copying them (falls back to copying across devices).
        sample_rate: write each recording resampled to this rate (16-bit mono) instead of a copy.
        snippet: (min, max) seconds: write each recording cut to its loudest stretch of a length drawn
            in that range (see the module docstring) instead of a copy.
        progress: show a progress bar.

    Returns:
        ``out`` as an absolute Path.

    Raises:
        FileNotFoundError: no usable recording in ``src``.
        FileExistsError: ``out`` holds something else.
        ValueError: bad fractions, a split that would be empty, or a bad sample rate or snippet range.
    """
    folder = Path(src).expanduser().absolute()
    out = Path(out).expanduser().absolute()
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if snippet is not None and not 0 < snippet[0] <= snippet[1]:
        raise ValueError(f"snippet must be (min, max) seconds with 0 < min <= max, got {snippet}")
    params: dict[str, Any] = {"source": str(folder), "val": val, "test": test, "seed": seed}
    derive = sample_rate is not None or snippet is not None
    if derive:
        params.update(sample_rate=sample_rate, snippet=list(snippet) if snippet else None)
    if _is_complete(out, params):
        logger.info("%s already holds this folder dataset", out)
        return out
    recordings, skipped = scan_speech_commands(folder)
    official = _official_lists(folder)
    if official is not None:
        rule = "official validation_list.txt / testing_list.txt"
        split_of = {r.rel: official.get(r.rel, "train") for r in recordings}
    else:
        rule = f"by speaker: sha256 order with seed {seed}, val {val}, test {test}"
        by_speaker = assign_speakers([r.speaker for r in recordings], val=val, test=test, seed=seed)
        split_of = {r.rel: by_speaker[r.speaker] for r in recordings}
    counts = Counter(split_of.values())
    empty = [s for s in SPLITS if counts[s] == 0 and (s == "train" or official is None and {"val": val, "test": test}[s] > 0)]
    if empty:
        raise ValueError(f"{folder}: split(s) {', '.join(empty)} would be empty ({dict(counts)})")
    speakers = {s: len({r.speaker for r in recordings if split_of[r.rel] == s}) for s in SPLITS}
    with building_folder(out, exist_ok=lambda p: _is_complete(p, params)) as tmp:
        with progress_bar(len(recordings), progress, "folders", "file") as bar:
            for rec in recordings:
                dst = tmp / split_of[rec.rel] / rec.word / rec.path.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if derive:
                    key = f"{split_of[rec.rel]}/{rec.word}/{rec.path.name}"
                    seconds = snippet_seconds(key, snippet[0], snippet[1], seed) if snippet else None
                    audio, rate = derived_recording(rec.path, sample_rate, seconds)
                    write_wav(dst, audio, rate)
                else:
                    copy_or_link(rec.path, dst, link)
                bar.update(1)
        write_skipped(tmp / "skipped.csv", skipped)
        write_json(tmp / "meta.json", {
            "generator": _GENERATOR,
            "version": _VERSION,
            "params": params,
            "split_rule": rule,
            "layout": "OUT/{train,val,test}/<word>/<file name>, " + (
                "16-bit mono, resampled and/or cut to a snippet (params)" if derive else "byte-identical to the source"),
            "classes": sorted({r.word for r in recordings}),
            "splits": {s: counts[s] for s in SPLITS},
            "speakers": speakers,
            "skipped": len(skipped),
        })
    logger.info("wrote %s: %s", out, ", ".join(f"{s} {counts[s]} files / {speakers[s]} speakers" for s in SPLITS))
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line (``--help`` needs nothing but the standard library and numpy)."""
    p = argparse.ArgumentParser(prog="python -m data_tools.make_speech_commands_folder",
                                description="Speech Commands-style keyword set -> speaker-disjoint "
                                            "OUT/{train,val,test}/<word>/ for folder-per-class tagging.")
    p.add_argument("src", type=Path, help="folder with one sub-folder of wavs per word")
    p.add_argument("out", type=Path, help="folder to create")
    p.add_argument("--val", type=float, default=0.15, help="share of speakers in val (default 0.15)")
    p.add_argument("--test", type=float, default=0.15, help="share of speakers in test (default 0.15)")
    p.add_argument("--seed", type=int, default=0, help="changes which speakers go where (default 0)")
    p.add_argument("--link", action="store_true", help="hard-link instead of copying")
    p.add_argument("--sample-rate", type=int, default=None, metavar="R",
                   help="write the recordings resampled to R Hz (16-bit mono) instead of copies")
    p.add_argument("--snippet", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="write each recording cut to its loudest MIN..MAX seconds (a length drawn per file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        out = make_speech_commands_folder(args.src, args.out, val=args.val, test=args.test, seed=args.seed,
                                          link=args.link, sample_rate=args.sample_rate,
                                          snippet=tuple(args.snippet) if args.snippet else None,
                                          progress=not args.no_progress)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    print(f"{out}: " + ", ".join(f"{s} {meta['splits'][s]} files ({meta['speakers'][s]} speakers)" for s in SPLITS)
          + f"; {len(meta['classes'])} classes; {meta['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
