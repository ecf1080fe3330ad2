"""The words family: real recordings of spoken words paired with the word written as text, in the avcorr layout.

The same kind of dataset as the digits family (:mod:`data_tools.make_digits_family`), from any
speaker-disjoint folder-per-class speech set as written by ``python -m
data_tools.make_speech_commands_folder``::

    SRC/{train,val,test}/<word>/<file>.wav      the splits are read, never re-made

Each clip (default 2 s, 128x128 px, 12 fps) shows a light paper background with ONE sounding word
(the class name written in one of 16 typefaces, 13-21 px capitals, random case, stroke,
slant and rotation, drifting slowly) and 1-3 SILENT words of other classes that keep 3 px away
from it and from each other; its audio is one recording of that word, untouched, at a random offset
inside the clip (silence elsewhere), at the recording's own sample rate, in ``audio/<vid>.wav`` and
as the mp4's AAC track. ``boxes.json`` holds the sounding word's ink rectangle at the middle time;
``visible.json`` the classes of every word drawn (the sounding one first).
A silent word that finds no room in 60 tries is left out (``distractors_drawn`` in ``meta.json``;
about 10 % of them at the defaults, mostly the third of three).
Class names are the word folders (non-ASCII allowed: ``ačiū``, ``į_kairę``); the text drawn is
their ASCII transliteration (``aciu``, ``i kaire``; see :func:`data_tools._words_render.drawable`).

Clips: by default every usable recording of val and test once, and 400 training clips, each
training recording in at most ``max_uses`` (default 2) clips with different pictures and offsets.
Clip ``i`` of a split takes the ``i``-th recording of a fixed order (classes interleaved, each
class's recordings round-robin over speakers), wrapping around; its offset, distractors and
pictures depend only on ``(seed, split, i)``, so a clip does not change when the count does.

The recordings' licence is the source's (``--source-licence``, recorded in ``meta.json``); nothing
of them is shipped.

Example:
    python -m data_tools.make_speech_commands_folder lt_speech_commands/dataset data/ltcommands-folders --link
    python -m data_tools.make_words_family data/ltcommands-folders data/ltwords \\
        --source-name "Lithuanian Speech Commands" --source-url https://github.com/kolesov93/lt_speech_commands
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avcorr.data.errors import DecodeError
from avcorr.data.wav import parse_wav, read_wav_frames
from data_tools import _recorded_family as fam
from data_tools._recorded_family import SPLIT_CODES, SPLITS
from data_tools._words_render import FONTS, drawable, font_folder, render_frames
from data_tools.make_speech_commands_folder import scan_speech_commands

__all__ = ["FAMILY", "GENERATOR", "SCALES", "ClipPlan", "Recording", "make_words_family", "plan_split", "read_pcm16",
           "render_clip", "scan_source", "visible_labels"]

logger = logging.getLogger(__name__)

FAMILY = "words"
GENERATOR = "data_tools.make_words_family"
"""What ``meta.json`` names as its generator: this module's import name, however it is run (``python -m`` runs it
as ``__main__``)."""
VERSION = 1
"""Bumped whenever the built content changes for the same parameters."""

ALL = "all"
"""A clip count meaning every usable recording of the split once."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {"clips": (400, ALL, ALL), "size": 128, "text_height": (13, 21), "duration": 2.0, "fps": 12},
    "tiny": {"clips": (ALL, ALL, ALL), "size": 64, "text_height": (9, 13), "duration": 2.0, "fps": 12},
}
"""Preset parameters; explicit arguments override them."""


@dataclass(frozen=True)
class Recording:
    """One usable recording of the source.

    Args:
        path: the wav file.
        split: its split folder.
        word: its class (the folder name).
        speaker: who speaks (the file name's part before ``_nohash_``, else its stem).
        sample_rate: Hz.
        num_samples: its length in samples.
    """

    path: Path
    split: str
    word: str
    speaker: str
    sample_rate: int
    num_samples: int

    @property
    def name(self) -> str:
        """``<word>/<file name>`` inside its split folder."""
        return f"{self.word}/{self.path.name}"


@dataclass(frozen=True)
class ClipPlan:
    """What one clip is made of (everything but the picture geometry, which ``render_clip`` draws).

    Args:
        split, index, vid: where the clip is.
        word: its class.
        recording: ``<word>/<file name>`` of its audio in the split folder; ``speaker`` its speaker.
        sample_rate: the recording's (and the clip's) sample rate.
        offset: first sample of the recording in the clip.
        num_samples: the recording's length in samples.
        use: 0 for the recording's first clip, 1 for its second ...
        distractors: the silent words (class names).
    """

    split: str
    index: int
    vid: str
    word: str
    recording: str
    speaker: str
    sample_rate: int
    offset: int
    num_samples: int
    use: int
    distractors: tuple[str, ...]

    @classmethod
    def from_meta(cls, split: str, vid: str, entry: dict[str, Any]) -> "ClipPlan":
        """The plan of clip ``vid`` from its entry in ``meta.json``'s ``clips[split]`` (to re-render it)."""
        return fam.plan_from_meta(cls, split, vid, entry, "distractors")


def _wav_layout(path: Path) -> tuple[Any, str]:
    """The wav's layout, or None and why it cannot be used."""
    try:
        with open(path, "rb") as f:
            layout = parse_wav(f, str(path), path.stat().st_size)
    except (OSError, ValueError, DecodeError) as err:
        return None, f"not a readable wav ({getattr(err, 'reason', err)})"
    if layout is None:
        return None, "not a wav the reader understands"
    if layout.num_channels != 1:
        return None, f"not mono ({layout.num_channels} channels)"
    if layout.num_frames == 0:
        return None, "no samples"
    if layout.available_frames < layout.num_frames:
        return None, f"truncated ({layout.available_frames} of {layout.num_frames} samples)"
    return layout, ""


def scan_source(src: str | os.PathLike[str]) -> tuple[list[Recording], list[tuple[str, str]], list[str]]:
    """Find the usable recordings of ``SRC/{train,val,test}/<word>/*.wav``.

    Entries that are not usable mono wavs are skipped with a logged reason; folders starting with
    ``_`` or ``.`` are not words.

    Args:
        src: the folder-per-class speech set.

    Returns:
        ``(recordings sorted by (split, word, file name), [(path, reason) skipped], sorted class names)``.

    Raises:
        FileNotFoundError: ``src`` or one of its split folders is missing, or a split holds no recording.
    """
    folder = Path(src).expanduser().absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: source folder {'is not a folder' if folder.exists() else 'does not exist'}")
    missing = [s for s in SPLITS if not (folder / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"{folder}: no {', '.join(missing)} folder; expected SRC/{{train,val,test}}/<word>/"
                                "<file>.wav with speaker-disjoint splits, as written by "
                                "python -m data_tools.make_speech_commands_folder")
    recordings: list[Recording] = []
    skipped: list[tuple[str, str]] = []
    for split in SPLITS:
        found, bad = scan_speech_commands(folder / split)
        skipped += bad
        for rec in found:
            layout, reason = _wav_layout(rec.path)
            if layout is None:
                logger.warning("%s: skipped: %s", rec.path, reason)
                skipped.append((str(rec.path), reason))
            else:
                recordings.append(Recording(rec.path, split, rec.word, rec.speaker, layout.sample_rate,
                                            layout.num_frames))
    shared = {r.speaker for r in recordings if r.split == "train"} & {r.speaker for r in recordings
                                                                       if r.split != "train"}
    if shared:
        logger.warning("%s: %d speaker(s) in train and in val/test (e.g. %s): the splits are not speaker-disjoint",
                       folder, len(shared), sorted(shared)[0])
    return recordings, skipped, sorted({r.word for r in recordings})


def read_pcm16(path: str | os.PathLike[str]) -> np.ndarray:
    """The samples of a mono wav as int16 (N,): exact for 16-bit PCM, rounded from other formats.

    Raises:
        DecodeError: the file is not a readable mono wav.
    """
    path = Path(path)
    layout, reason = _wav_layout(path)
    if layout is None:
        raise DecodeError(str(path), reason)
    with open(path, "rb") as f:
        data = read_wav_frames(f, str(path), layout, 0, layout.num_frames)[:, 0].astype(np.float64)
    scale = 32768.0 if (layout.fmt, layout.bits) == (1, 16) else 32767.0
    return np.clip(np.rint(data * scale), -32768, 32767).astype(np.int16)


def plan_split(recordings: Sequence[Recording], classes: Sequence[str], split: str, count: int | str, *, seed: int,
               duration: float, distractors: Sequence[int], max_uses: int) -> list[ClipPlan]:
    """Choose the recording, offset and silent words of every clip of one split.

    Args:
        recordings: usable recordings (any split); those of ``split`` longer than ``duration`` are
            not used.
        classes: every class name, in index order (the silent words are drawn from them).
        split: ``train``, ``val`` or ``test``.
        count: clips, or ``"all"`` for one per recording; at most ``max_uses`` per recording.
        seed: dataset seed.
        duration: clip length, seconds.
        distractors: (min, max) silent words per clip.
        max_uses: the most clips one recording may be in.

    Returns:
        The plans in index order.

    Raises:
        ValueError: the split has no recording short enough.
    """
    code = SPLIT_CODES[split]
    pools = []
    for ci, word in enumerate(classes):
        own = [r for r in recordings
               if r.split == split and r.word == word and r.num_samples <= round(duration * r.sample_rate)]
        if own:
            pools.append(fam.speaker_round_robin(own, (seed, code, ci), ci))
    order = [pool[r] for r in range(max(map(len, pools), default=0)) for pool in pools if r < len(pool)]
    if not order:
        raise ValueError(f"no usable recording for the {split} split (at most {duration} s)")
    asked = len(order) if count == ALL else int(count)
    total = min(asked, max_uses * len(order))
    if total < asked:
        logger.warning("%s: %d clips asked, %d recordings used at most %d times each give %d",
                       split, asked, len(order), max_uses, total)
    plans = []
    for index in range(total):
        rec = order[index % len(order)]
        rng = np.random.default_rng([seed, code, index, 0])
        clip_samples = round(duration * rec.sample_rate)
        offset = int(rng.integers(0, clip_samples - rec.num_samples + 1))
        k = int(rng.integers(distractors[0], distractors[1] + 1))
        silent = tuple(str(w) for w in rng.choice([w for w in classes if w != rec.word], size=k, replace=False))
        plans.append(ClipPlan(split, index, fam.clip_id(FAMILY, seed, split, index), rec.word, rec.name, rec.speaker,
                              rec.sample_rate, offset, rec.num_samples, index // len(order), silent))
    return plans


def render_clip(plan: ClipPlan, params: dict[str, Any], *,
                draw_sounding: bool = True) -> tuple[np.ndarray, list[Any], list[dict[str, Any]]]:
    """The clip's frames.

    Args:
        plan: the clip.
        params: the dataset parameters (``seed``, ``size``, ``fps``, ``duration``, ``text_height``,
            ``max_overlap``, ``gap``).
        draw_sounding: False paints everything but the sounding word (the others at the same places).

    Returns:
        ``(frames, placed, styles)``: uint8 (T, H, W, 3); per word (sounding first) its
        :class:`~data_tools._paper_layout.Placed` or None where a distractor found no room; the
        drawing parameters per word.
    """
    texts = [drawable(plan.word), *map(drawable, plan.distractors)]
    draw = [draw_sounding] + [True] * (len(texts) - 1)
    return render_frames((params["seed"], SPLIT_CODES[plan.split], plan.index), texts, size=params["size"],
                         fps=params["fps"], duration=params["duration"], text_height=params["text_height"],
                         max_overlap=params["max_overlap"], gap=params["gap"], draw=draw)


def _write_clip(task: tuple[str, ClipPlan, str, dict[str, Any]]) -> tuple[ClipPlan, dict[str, Any]]:
    """Pool worker: write one clip's wav and mp4; return its plan and its meta entry."""
    root, plan, rec_path, params = task
    frames, placed, styles = render_clip(plan, params)
    entry = fam.write_clip(root, plan, rec_path, read_pcm16(rec_path), plan.sample_rate, frames, placed, params,
                           "distractors")
    entry["style"] = styles[0]
    return plan, entry


def _validate(source: Path, seed: int, clips: Sequence[int | str], duration: float, fps: float, size: int,
              text_height: Sequence[int], distractors: Sequence[int], max_overlap: float, gap: int,
              max_uses: int) -> dict[str, Any]:
    fam.check_clip_params(seed, duration, fps, size, max_overlap, 32)
    if len(clips) != 3 or any(c != ALL and (isinstance(c, str) or int(c) < 1) for c in clips):
        raise ValueError(f"clips must be three counts >= 1 or {ALL!r} (train, val, test), got {tuple(clips)}")
    if not 4 <= text_height[0] <= text_height[1] <= size // 4:
        raise ValueError(f"text_height must be (min, max) with 4 <= min <= max <= size / 4, got {tuple(text_height)}")
    if not 0 <= distractors[0] <= distractors[1]:
        raise ValueError(f"distractors must be (min, max) with 0 <= min <= max, got {tuple(distractors)}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    if max_uses < 1:
        raise ValueError(f"max_uses must be >= 1, got {max_uses}")
    return {"source": str(source), "seed": int(seed), "clips": [c if c == ALL else int(c) for c in clips],
            "max_uses": int(max_uses), "duration": float(duration),
            "fps": int(fps) if float(fps).is_integer() else float(fps), "size": int(size),
            "text_height": [int(t) for t in text_height], "distractors": [int(d) for d in distractors],
            "max_overlap": float(max_overlap), "gap": int(gap), "fonts": list(FONTS)}


def _check_classes(classes: Sequence[str], distractors: Sequence[int]) -> dict[str, str]:
    """``{class: text drawn}``; raises ValueError when two classes would look the same or too few classes."""
    if len(classes) < distractors[1] + 1:
        raise ValueError(f"{len(classes)} class(es) cannot give {distractors[1]} silent words of other classes")
    drawn = {c: drawable(c) for c in classes}
    seen: dict[str, str] = {}
    for c, text in drawn.items():
        if text.lower() in seen:
            raise ValueError(f"classes {seen[text.lower()]!r} and {c!r} would both be drawn as {text!r}")
        seen[text.lower()] = c
    return drawn


def make_words_family(src: str | os.PathLike[str], root: str | os.PathLike[str], *, scale: str = "full",
                      clips: Sequence[int | str] | None = None, max_uses: int = 2, seed: int = 0,
                      duration: float | None = None, fps: float | None = None, size: int | None = None,
                      text_height: Sequence[int] | None = None, distractors: Sequence[int] = (1, 3),
                      max_overlap: float = 0.0, gap: int = 3, source: dict[str, str] | None = None,
                      workers: int | None = None, progress: bool = False) -> Path:
    """Build the words family into ``root`` (see the module docstring).

    Source entries that are not usable mono wavs, and recordings longer than a clip, are skipped,
    logged and listed in ``ROOT/skipped.csv``. The dataset is built in a temporary folder renamed
    when complete (``meta.json`` last); a ``root`` that already holds it with the same parameters
    is returned untouched; a killed build leaves only a hidden temporary folder and starts afresh.

    Args:
        src: ``SRC/{train,val,test}/<word>/*.wav``.
        root: the folder to create (must not exist, or be empty, or hold this dataset).
        scale: ``full`` or ``tiny``: presets of :data:`SCALES` for the arguments left None.
        clips: clips in (train, val, test), each a count or ``"all"`` (one per recording).
        max_uses: the most clips one recording may be in (a larger count is cut, with a warning).
        seed: dataset seed (>= 0).
        duration: clip length, seconds.
        fps: frame rate.
        size: frame side, pixels (even).
        text_height: (min, max) capital height of the words, pixels.
        distractors: (min, max) silent words per clip.
        max_overlap: the most a word's rectangle, grown by ``gap`` pixels, may overlap another's, as a
            share of the smaller one.
        gap: pixels kept free around a word (see ``max_overlap``).
        source: ``name``, ``url`` and ``licence`` of the recordings, for ``meta.json``.
        workers: processes (default ``min(2, cores)``).
        progress: show a progress bar.

    Returns:
        ``root`` as an absolute Path.

    Raises:
        ValueError: a parameter out of range, a split without usable recordings, two classes drawn alike.
        FileNotFoundError: ``src`` or a split folder is missing or empty.
        FileExistsError: ``root`` holds something else (another dataset, other parameters).
        ImportError: Pillow or matplotlib (its fonts) is missing.
        RuntimeError: ffmpeg is missing or fails.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    preset = SCALES[scale]
    given = {"clips": clips, "duration": duration, "fps": fps, "size": size, "text_height": text_height}
    chosen = {k: preset[k] if v is None else v for k, v in given.items()}
    folder = Path(src).expanduser().absolute()
    params = _validate(folder, seed, chosen["clips"], chosen["duration"], chosen["fps"], chosen["size"],
                       chosen["text_height"], distractors, max_overlap, gap, max_uses)
    root = Path(root).expanduser().absolute()
    if fam.root_is_ready(root, GENERATOR, VERSION, params, FAMILY, visible_labels):
        return root
    started = time.perf_counter()
    recordings, skipped, classes = scan_source(folder)
    drawn = _check_classes(classes, params["distractors"])
    fam.skip_long(recordings, params["duration"], lambda r: r.sample_rate, skipped)
    plans = [p for split, n in zip(SPLITS, params["clips"])
             for p in plan_split(recordings, classes, split, n, seed=seed, duration=params["duration"],
                                 distractors=params["distractors"], max_uses=max_uses)]
    if len({p.vid for p in plans}) != len(plans):  # 66-bit hashes: never expected
        raise RuntimeError(f"clip id collision for seed {seed}; choose another seed")
    for split in SPLITS:
        absent = sorted(set(classes) - {p.word for p in plans if p.split == split})
        if absent:
            logger.info("%s: no clip of %d class(es): %s", split, len(absent), ", ".join(absent))
    paths = {(r.split, r.name): str(r.path) for r in recordings}
    tasks = [(p, paths[p.split, p.recording], params) for p in plans]
    fam.build_family(root, _write_clip, tasks, generator=GENERATOR, version=VERSION, params=params,
                     label=lambda e: e["word"], classes=[(f"/{FAMILY}/{i}", c) for i, c in enumerate(classes)],
                     skipped=skipped,
                     meta=lambda clips: _meta(params, scale, source or {}, recordings, skipped, drawn, clips),
                     visible=visible_labels, workers=workers, progress=progress, desc="words family")
    logger.info("wrote the words family to %s in %.1f s", root, time.perf_counter() - started)
    return root


def visible_labels(meta: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """The classes of the words drawn in every clip (``visible.json``), from a built family's ``meta.json``.

    Args:
        meta: the ``meta.json`` object.

    Returns:
        ``{split: {vid: [sounding word, silent words drawn ...]}}``.

    Raises:
        ValueError: an entry lacks ``distractors_drawn``.
    """
    return fam.visible_from_meta(meta, lambda e: e["word"], lambda e: e["distractors"])


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _meta(params: dict[str, Any], scale: str, source: dict[str, str], recordings: Sequence[Recording],
          skipped: Sequence[tuple[str, str]], drawn: dict[str, str],
          clips: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from PIL import features

    folder = Path(params["source"])
    name = source.get("name") or folder.name
    licence = source.get("licence") or "not recorded here: see the source's own terms"
    try:
        folder_meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        origin = {k: folder_meta.get(k) for k in ("generator", "params", "split_rule", "speakers")}
    except (OSError, ValueError, AttributeError):
        origin = None
    used = {(s, e["recording"]) for s, c in clips.items() for e in c.values()}
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "family": FAMILY,
        "scale": scale,
        "params": params,
        "sources": {
            "recordings": {"name": name, "url": source.get("url"), "licence": licence, "path": str(folder),
                           "made_by": origin, "usable": len(recordings), "used": len(used), "skipped": len(skipped),
                           "speakers": {s: len({r.speaker for r in recordings if r.split == s}) for s in SPLITS}},
            "pictures": {"what": "each class name written as text (ASCII transliteration), drawn here",
                         "fonts": list(FONTS), "font_folder": str(font_folder()),
                         "matplotlib": _version("matplotlib"), "pillow": _version("pillow"),
                         "freetype": features.version("freetype2")},
        },
        "licence": f"clips contain recordings of {name}: their licence is the source's ({licence}); "
                   "the pictures are text drawn with matplotlib's bundled fonts (DejaVu, STIX, BaKoMa Computer "
                   "Modern), under their own free licences",
        "classes": list(drawn),
        "drawn_as": drawn,
        "splits": {s: len(c) for s, c in clips.items()},
        "video": {"codec": "h264", "pix_fmt": "yuv420p", "audio_codec": "aac"},
        "audio": {"format": "wav", "encoding": "pcm_s16le", "channels": 1,
                  "sample_rates": sorted({e["sample_rate"] for c in clips.values() for e in c.values()})},
        "boxes": "the sounding word's ink rectangle at duration / 2, normalised [x1, y1, x2, y2]",
        "clips": clips,
    }


def _counts(text: str) -> tuple[int | str, ...]:
    parts = text.split(",")
    try:
        values = tuple(ALL if v.strip() == ALL else int(v) for v in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST, each an integer or {ALL!r}, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="python -m data_tools.make_words_family",
                                description="Build the words family (real spoken words + the word drawn as text) "
                                            "from SRC/{train,val,test}/<word>/*.wav.")
    p.add_argument("src", type=Path, help="speaker-disjoint folder-per-class speech set "
                                          "(python -m data_tools.make_speech_commands_folder)")
    p.add_argument("root", type=Path, help="audio-visual dataset to create")
    p.add_argument("--scale", choices=sorted(SCALES), default="full", help="preset sizes (default full)")
    p.add_argument("--clips", type=_counts, metavar="TRAIN,VAL,TEST",
                   help=f"clips per split, each a count or '{ALL}' (default 400,{ALL},{ALL}; tiny {ALL},{ALL},{ALL})")
    p.add_argument("--max-uses", type=int, default=2, metavar="K",
                   help="the most clips one recording may be in (default 2)")
    p.add_argument("--text-height", type=lambda t: fam.int_list(t, 2), metavar="MIN,MAX",
                   help="capital height of the words, px (default 13,21; tiny 9,13)")
    p.add_argument("--source-name", help="the recordings' source, for meta.json (default: SRC's folder name)")
    p.add_argument("--source-url", help="where the source comes from, for meta.json")
    p.add_argument("--source-licence", help="the source's licence, for meta.json")
    fam.add_clip_args(p, "words", "default 128; tiny 64")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from avcorr._cli import setup_logging

    setup_logging()
    source = {"name": args.source_name, "url": args.source_url, "licence": args.source_licence}
    try:
        started = time.perf_counter()
        root = make_words_family(args.src, args.root, scale=args.scale, clips=args.clips, max_uses=args.max_uses,
                                 seed=args.seed, duration=args.duration, fps=args.fps, size=args.size,
                                 text_height=args.text_height, distractors=args.distractors,
                                 source={k: v for k, v in source.items() if v}, workers=args.workers,
                                 progress=not args.no_progress)
    except fam.BUILD_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fam.print_built(root, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
