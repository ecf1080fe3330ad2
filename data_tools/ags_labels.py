"""Turn the AGS label sheets (``AGS_label.xlsx``, ``New_label.xlsx``) into the layout's label files.

Example:
    python -m data_tools.ags_labels AGS_label.xlsx New_label.xlsx --out DATA --split train --audio-dir DATA/train/audio
    python -m data_tools.ags_labels AGS_label.xlsx --out DATA --splits train=0.8,val=0.1,test=0.1

What the seeds say about the sheets: ``AGS_label.xlsx`` is the annotation file (one audio slice per
row with its class; the slices are named like the PANNs metadata of the AGS experiments,
``<video>-<classID>-<n>.wav``, with columns ``slice_file_name``, ``classID``, ``class``,
``video_name``), and ``New_label.xlsx`` lists, for each newly added label, the audio names that
have it. Every sheet of every workbook is read and recognised by its header:

* **long** sheets (a name column and a class column): one clip per row, the class from ``class`` /
  ``label`` / ``display_name`` ... and, when present, its id from ``classID`` / ``class_id`` / ``mid``.
  A cell may list several labels separated by ``,`` ``;`` or ``|``.
* **wide** sheets (no class column): every column header is a label and the column's cells are the
  names of the audio files that have it (``New_label.xlsx``); a sheet with a single column takes
  the SHEET's name as the label.

Name columns: ``slice_file_name``, ``audio_name``, ``file_name``, ``filename``, ``name``, ``wav``,
``audio``, ``clip``, ``vid``, ``video_id``, ``YTID``, ``id`` (and the Chinese ``音频名称``, ``音频名``,
``文件名``, ``名称``); class columns: ``class``, ``label``, ``labels``, ``display_name``, ``category``,
``genre``, ``positive_labels`` (``类别``, ``标签``); override with ``--name-col`` / ``--label-col``.
A clip's id is its file name without the extension. A clip named in several rows or sheets has the
union of their labels (so added labels make it multi-label).

Writes ``OUT/class_labels_indices.csv`` (``index,mid,display_name``; the mid is the class id when the
sheet gives one, else the name) and ``OUT/<split>/vid2genre.json`` (a string for one label, a list
for several). ``--audio-dir`` keeps only clips with a file there; ``--splits`` divides the clips
deterministically by a hash of their id.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import re
import sys
from pathlib import Path
from typing import Sequence

from avcorr._atomic import atomic_open, write_json

logger = logging.getLogger("data_tools.ags_labels")

NAME_COLUMNS = ("slice_file_name", "audio_name", "file_name", "filename", "name", "wav", "audio", "clip", "vid",
                "video_id", "ytid", "id", "音频名称", "音频名", "文件名", "名称")
LABEL_COLUMNS = ("class", "label", "labels", "display_name", "category", "genre", "positive_labels", "类别", "标签")
CLASS_ID_COLUMNS = ("classid", "class_id", "label_id", "mid", "类别编号", "类别id")
_SPLIT_LABELS = re.compile(r"[,;|，；]")
_MEDIA_SUFFIX = re.compile(r"\.(wav|flac|mp3|ogg|m4a|mp4|mkv|webm|avi|mov)$", re.IGNORECASE)


def _norm(h: object) -> str:
    return re.sub(r"[\s_\-]+", "_", str(h).strip().lower())


def _find(columns: Sequence[object], wanted: Sequence[str], override: str | None) -> object | None:
    if override:
        for c in columns:
            if str(c).strip() == override or _norm(c) == _norm(override):
                return c
        return None
    normed = {_norm(c): c for c in columns}
    for w in wanted:
        if _norm(w) in normed:
            return normed[_norm(w)]
    return None


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:  # NaN: an empty cell
            return ""
        if v.is_integer():
            return str(int(v))
    return str(v).strip()


def clip_id(name: str) -> str:
    """The clip id of an audio name: the base name without a media extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return _MEDIA_SUFFIX.sub("", base)


def read_sheets(paths: Sequence[str | Path], *, name_col: str | None = None, label_col: str | None = None,
                class_id_col: str | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Read every sheet of the workbooks.

    Returns:
        ``(labels, mids)``: clip id -> its labels (first-seen order), and label -> mid (class id).

    Raises:
        ValueError: a sheet whose layout cannot be recognised (names the file and the sheet).
    """
    import pandas as pd

    labels: dict[str, list[str]] = {}
    mids: dict[str, str] = {}

    def add(vid: str, label: str, where: str) -> None:
        if not vid or not label:
            return
        from avcorr.data.layout import check_vid

        check_vid(vid, where)
        ls = labels.setdefault(vid, [])
        if label not in ls:
            ls.append(label)

    for path in paths:
        path = Path(path)
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=object)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot be read as an xlsx workbook ({err})") from err
        for sheet, df in sheets.items():
            df = df.dropna(how="all").dropna(axis=1, how="all")
            where = f"{path} [{sheet}]"
            if df.empty:
                logger.warning("%s: empty sheet", where)
                continue
            cols = list(df.columns)
            ncol = _find(cols, NAME_COLUMNS, name_col)
            lcol = _find(cols, LABEL_COLUMNS, label_col)
            icol = _find(cols, CLASS_ID_COLUMNS, class_id_col)
            if ncol is not None and (lcol is not None or icol is not None):
                for row in df.itertuples(index=False):
                    rec = dict(zip(cols, row))
                    vid = clip_id(_cell(rec[ncol]))
                    names = [s.strip() for s in _SPLIT_LABELS.split(_cell(rec[lcol]))] if lcol is not None else []
                    ids = [s.strip() for s in _SPLIT_LABELS.split(_cell(rec[icol]))] if icol is not None else []
                    if not names:
                        names = ids
                    if ids and len(ids) != len(names):
                        raise ValueError(f"{where}: row for {vid!r} has {len(names)} labels but {len(ids)} class ids")
                    for k, lab in enumerate(n for n in names if n):
                        if ids:
                            old = mids.setdefault(lab, ids[k])
                            if old != ids[k]:
                                raise ValueError(f"{where}: label {lab!r} has class ids {old!r} and {ids[k]!r}")
                        add(vid, lab, where)
            elif lcol is None and len(cols) == 1:
                lab = str(sheet).strip()
                for v in df[cols[0]]:
                    add(clip_id(_cell(v)), lab, where)
                # a header that is itself an audio name (a sheet without a header row)
                if _MEDIA_SUFFIX.search(str(cols[0])):
                    add(clip_id(str(cols[0])), lab, where)
            elif lcol is None and ncol is None:
                for c in cols:
                    lab = str(c).strip()
                    if lab.lower().startswith("unnamed"):
                        raise ValueError(f"{where}: a column without a header; wide sheets need the label as header")
                    for v in df[c]:
                        add(clip_id(_cell(v)), lab, where)
            else:
                raise ValueError(f"{where}: cannot tell the layout of columns {cols}: expected a name column "
                                 f"({', '.join(NAME_COLUMNS[:6])} ...) with a class column ({', '.join(LABEL_COLUMNS[:5])} ...), "
                                 f"or one column per label; use --name-col / --label-col")
    return labels, mids


def _hash_unit(vid: str) -> float:
    return int.from_bytes(hashlib.blake2b(vid.encode(), digest_size=8).digest(), "big") / 2.0**64


def parse_splits(text: str) -> list[tuple[str, float]]:
    """``"train=0.8,val=0.1,test=0.1"`` -> ``[("train", 0.8), ...]`` (fractions must sum to 1)."""
    out = []
    for part in text.split(","):
        name, _, frac = part.partition("=")
        if name.strip() not in ("train", "val", "test"):
            raise ValueError(f"split names must be train, val or test, got {name!r}")
        out.append((name.strip(), float(frac)))
    if abs(sum(f for _, f in out) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {text!r}")
    return out


def write_layout(labels: dict[str, list[str]], mids: dict[str, str], out: str | Path, *,
                 split: str = "train", splits: Sequence[tuple[str, float]] | None = None) -> dict[str, int]:
    """Write ``class_labels_indices.csv`` and the split(s)' ``vid2genre.json``; returns clips per split."""
    out = Path(out)
    classes = sorted({lab for ls in labels.values() for lab in ls},
                     key=lambda c: (0, int(mids[c])) if mids.get(c, "").isdigit() else (1, c))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "class_labels_indices.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        for i, c in enumerate(classes):
            w.writerow([i, mids.get(c, c), c])
    assign: dict[str, dict[str, object]] = {}
    for vid in sorted(labels):
        if splits:
            u, acc, name = _hash_unit(vid), 0.0, splits[-1][0]
            for s, frac in splits:
                acc += frac
                if u < acc:
                    name = s
                    break
        else:
            name = split
        ls = labels[vid]
        assign.setdefault(name, {})[vid] = ls[0] if len(ls) == 1 else list(ls)
    for name, v2g in assign.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        write_json(out / name / "vid2genre.json", v2g, indent=1, ensure_ascii=False)
    return {k: len(v) for k, v in assign.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.ags_labels", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sheets", nargs="+", type=Path, help="xlsx workbooks (AGS_label.xlsx, New_label.xlsx ...)")
    p.add_argument("--out", required=True, type=Path, help="dataset root to write the label files into")
    p.add_argument("--split", default="train", help="split folder for all clips (default train)")
    p.add_argument("--splits", default=None, help="divide by id hash instead, e.g. train=0.8,val=0.1,test=0.1")
    p.add_argument("--audio-dir", type=Path, default=None, help="keep only clips with a media file in this folder")
    p.add_argument("--name-col", default=None)
    p.add_argument("--label-col", default=None)
    p.add_argument("--class-id-col", default=None)
    args = p.parse_args(argv)
    from avcorr.data.errors import LayoutError
    from avcorr.data.layout import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        labels, mids = read_sheets(args.sheets, name_col=args.name_col, label_col=args.label_col,
                                   class_id_col=args.class_id_col)
        if args.audio_dir is not None:
            have = {f.stem for f in args.audio_dir.iterdir()
                    if f.suffix.lower() in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS}
            missing = sorted(set(labels) - have)
            if missing:
                logger.warning("%d labelled clips have no file in %s (first: %s); left out", len(missing),
                               args.audio_dir, ", ".join(missing[:5]))
            labels = {k: v for k, v in labels.items() if k in have}
        if not labels:
            raise ValueError("no labelled clip found")
        counts = write_layout(labels, mids, args.out, split=args.split,
                              splits=parse_splits(args.splits) if args.splits else None)
    except (LayoutError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_multi = sum(len(v) > 1 for v in labels.values())
    print(f"wrote {args.out}: {len(labels)} clips ({n_multi} multi-label), "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
