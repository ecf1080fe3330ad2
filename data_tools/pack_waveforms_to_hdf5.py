"""Pack waveforms into PANNs HDF5 files, and write PANNs training indexes.

Examples:
    # one pack per split, from any source avcorr reads (layout, folder per class, AST json)
    python -m data_tools.pack_waveforms_to_hdf5 pack --format layout --root DATA --split train --out hdf5s/train.h5
    python -m data_tools.pack_waveforms_to_hdf5 pack --format ast_json --root DATA --split datafiles/train.json \\
        --out hdf5s/train.h5 --sample-rate 32000 --clip-seconds 10
    # an index over one or more packs (PANNs' create_indexes / combine_full_indexes)
    python -m data_tools.pack_waveforms_to_hdf5 index hdf5s/unbal_part00.h5 hdf5s/unbal_part01.h5 --out indexes/full_train.h5
    # train on it
    python -m avcorr.train --config panns_cnn14_audioset.py data.root=. data.train_split=indexes/full_train.h5

A pack holds ``audio_name`` (fixed-length bytes), ``waveform`` int16 (N, clip_samples) - each clip
resampled to ``--sample-rate``, mono, cut or zero-padded at the end to ``--clip-seconds``, stored
as ``round-toward-zero(clip(x, -1, 1) * 32767)`` like the reference's ``float32_to_int16`` -,
``target`` bool (N, C) and the attribute ``sample_rate``; a ``class_labels_indices.csv`` naming
the target columns is written beside it. Clips that cannot be decoded are left out, logged and
counted (the reference leaves zero rows). An index holds ``audio_name``, ``target``,
``hdf5_path`` (the pack, relative to the index file's folder) and ``index_in_hdf5``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from avcorr._atomic import atomic_open, atomic_path

logger = logging.getLogger("data_tools.pack_waveforms_to_hdf5")


def float32_to_int16(x: np.ndarray) -> np.ndarray:
    """PANNs' conversion: clip to [-1, 1], scale by 32767, truncate toward zero."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_label_csv(path: Path, classes: Sequence[str], mids: Sequence[str] | None = None) -> None:
    """Write ``index,mid,display_name`` rows (mid defaults to the name) atomically."""
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        for i, name in enumerate(classes):
            w.writerow([i, mids[i] if mids else name, name])


def pack(source, out: str | Path, *, sample_rate: int = 32000, clip_seconds: float = 10.0,
         progress: bool = False) -> dict:
    """Write a PANNs waveform pack of the clips of ``source``.

    Args:
        source: an :class:`avcorr.data.records.Manifest` with file-based clips.
        out: the ``.h5`` to write (through a temporary file).
        sample_rate: rate of the stored waveforms.
        clip_seconds: stored length; longer clips are cut, shorter ones zero-padded at the end.
        progress: tqdm bar.

    Returns:
        ``{"clips": written, "skipped": [(vid, reason), ...], "skipped_csv": path}``: the skipped clips are
        also listed (id, path, reason) in ``<out stem>_skipped.csv`` beside ``out``.
    """
    import h5py
    from tqdm.auto import tqdm

    from avcorr.data import decode
    from avcorr.data.errors import BadClipError
    from avcorr.data.skipped import clip_paths, skipped_beside, skipped_rows, write_skipped_csv

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clip_samples = int(round(clip_seconds * sample_rate))
    clips = [c for c in source.clips if c.media is not None]
    skipped = list(source.skipped) + [(c.vid, "not a file-based clip") for c in source.clips if c.media is None]
    name_len = max([20] + [len(c.vid.encode()) for c in clips])
    n = 0
    with atomic_path(out, mkdir=False) as tmp:
        with h5py.File(tmp, "w") as hf:
            names = hf.create_dataset("audio_name", shape=(len(clips),), maxshape=(None,), dtype=f"S{name_len}")
            waves = hf.create_dataset("waveform", shape=(len(clips), clip_samples), maxshape=(None, clip_samples),
                                      dtype=np.int16)
            targets = hf.create_dataset("target", shape=(len(clips), len(source.classes)),
                                        maxshape=(None, len(source.classes)), dtype=bool)
            hf.attrs.create("sample_rate", data=sample_rate, dtype=np.int32)
            for c in tqdm(clips, desc=f"pack {out.name}", disable=not progress):
                try:
                    x = decode.read_audio(c.media, 0.0, clip_seconds, sample_rate).numpy()
                except BadClipError as e:
                    logger.warning("skipped clip %s: %s", c.vid, e)
                    skipped.append((c.vid, str(e)))
                    continue
                names[n] = c.vid.encode()
                waves[n] = float32_to_int16(x[:clip_samples])
                row = np.zeros(len(source.classes), dtype=bool)
                row[list(source.label_space.indices(c.labels))] = True
                targets[n] = row
                n += 1
            for ds in (names, waves, targets):
                ds.resize(n, axis=0)
    write_label_csv(out.with_name("class_labels_indices.csv"), source.classes)
    listed = write_skipped_csv(skipped_beside(out), skipped_rows(skipped, clip_paths(source.clips, audio_first=True)))
    return {"clips": n, "skipped": skipped, "skipped_csv": listed}


def make_index(packs: Sequence[str | Path], out: str | Path) -> int:
    """Write a PANNs index over ``packs`` (every row of each, in order); returns the row count.

    Raises:
        ValueError: a pack without ``waveform``, or packs with different class counts.
    """
    import h5py

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names, targets, paths, rows = [], [], [], []
    n_cls = None
    for p in packs:
        p = Path(p)
        with h5py.File(p, "r") as f:
            if "waveform" not in f or "target" not in f or "audio_name" not in f:
                raise ValueError(f"{p}: not a PANNs waveform pack")
            t = np.asarray(f["target"][:], dtype=bool)
            if n_cls is not None and t.shape[1] != n_cls:
                raise ValueError(f"{p}: {t.shape[1]} classes, earlier packs have {n_cls}")
            n_cls = t.shape[1]
            names.append(np.asarray(f["audio_name"][:]))
            targets.append(t)
            rel = os.path.relpath(p.absolute(), out.absolute().parent)
            paths.extend([rel.encode()] * t.shape[0])
            rows.append(np.arange(t.shape[0], dtype=np.int32))
    if n_cls is None:
        raise ValueError("no pack given")
    all_names = np.concatenate(names) if names else np.zeros(0, "S20")
    with atomic_path(out, mkdir=False) as tmp, h5py.File(tmp, "w") as hw:
        hw.create_dataset("audio_name", data=all_names.astype(f"S{max(20, all_names.dtype.itemsize)}"))
        hw.create_dataset("target", data=np.concatenate(targets), dtype=bool)
        hw.create_dataset("hdf5_path", data=np.array(paths, dtype=f"S{max([200] + [len(x) for x in paths])}"))
        hw.create_dataset("index_in_hdf5", data=np.concatenate(rows), dtype=np.int32)
    return int(sum(len(r) for r in rows))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.pack_waveforms_to_hdf5", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="pack the clips of one split into a waveform hdf5")
    pk.add_argument("--format", choices=("layout", "folder", "ast_json"), default="layout")
    pk.add_argument("--root", required=True, help="dataset root (ast_json: folder the --split file is relative to)")
    pk.add_argument("--split", default="train", help="split name (layout, folder) or datafile (ast_json)")
    pk.add_argument("--label-csv", default=None, help="ast_json: the class_labels_indices.csv")
    pk.add_argument("--val-fraction", type=float, default=0.1, help="folder without split sub-folders")
    pk.add_argument("--out", required=True, type=Path)
    pk.add_argument("--sample-rate", type=int, default=32000, help="stored rate (default 32000, PANNs)")
    pk.add_argument("--clip-seconds", type=float, default=10.0, help="stored length (default 10)")
    pk.add_argument("--no-progress", action="store_true")
    ix = sub.add_parser("index", help="write a training index over packs")
    ix.add_argument("packs", nargs="+", type=Path)
    ix.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    from avcorr._cli import setup_logging
    from avcorr.data.errors import LayoutError

    setup_logging()
    try:
        if args.cmd == "pack":
            from avcorr.data.tagging import open_source

            src = open_source(args.format, args.root, args.split, label_csv=args.label_csv,
                              val_fraction=args.val_fraction)
            res = pack(src, args.out, sample_rate=args.sample_rate, clip_seconds=args.clip_seconds,
                       progress=not args.no_progress)
            print(f"wrote {args.out}: {res['clips']} clips, {len(src.classes)} classes, {len(res['skipped'])} skipped"
                  + (f" (listed in {res['skipped_csv']})" if res["skipped"] else ""))
        else:
            n = make_index(args.packs, args.out)
            print(f"wrote {args.out}: {n} rows from {len(args.packs)} pack(s)")
    except (LayoutError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
