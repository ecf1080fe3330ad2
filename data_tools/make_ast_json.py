"""Write AST datafiles (``{"data": [{"wav": path, "labels": "mid1,mid2"}]}``) and their class csv.

Examples:
    python -m data_tools.make_ast_json --format layout --root DATA --split train --out datafiles/train.json
    python -m data_tools.make_ast_json --format folder --root DIR --split val --out datafiles/val.json
    python -m avcorr.train --config ast_ags.py tagging.format=ast_json data.root=. \\
        data.train_split=datafiles/train.json data.val_split=datafiles/val.json \\
        tagging.label_csv=datafiles/class_labels_indices.csv

``labels`` are the classes' mids: those of the layout's ``class_labels_indices.csv`` when it has
one, else the class names (folder names) with commas replaced by ``_`` (AST splits ``labels`` on
commas). The csv (``index,mid,display_name``) is written beside the json unless ``--label-csv``
names another file. ``wav`` paths are absolute unless ``--relative`` (then relative to the json's
folder, which avcorr resolves; the AST reference code needs absolute paths or its working folder).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from avcorr._atomic import write_json


def class_mids(fmt: str, root: str | Path, classes: Sequence[str]) -> list[str]:
    """The mid of each class: from ``ROOT/class_labels_indices.csv`` for the layout, else from the name."""
    if fmt == "layout":
        from avcorr.data.layout import read_class_labels

        labels = read_class_labels(root)
        if labels is not None:
            by_name = {c.display_name: c.mid for c in labels}
            return [by_name[c] for c in classes]
    mids = [c.replace(",", "_").strip() for c in classes]
    if len(set(mids)) != len(mids):
        raise ValueError(f"class names collide once commas are replaced: {classes}")
    return mids


def make_ast_json(source, mids: Sequence[str], out: str | Path, *, relative: bool = False) -> int:
    """Write the datafile of ``source``'s clips (atomically); returns the number of entries."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    data = []
    for c in source.clips:
        if c.media is None:
            continue
        wav = os.path.relpath(c.media, out.parent) if relative else str(c.media.absolute())
        data.append({"wav": wav, "labels": ",".join(mids[i] for i in source.label_space.indices(c.labels))})
    write_json(out, {"data": data}, indent=1)
    return len(data)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.make_ast_json", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=("layout", "folder"), default="layout")
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--val-fraction", type=float, default=0.1, help="folder without split sub-folders")
    p.add_argument("--out", required=True, type=Path, help="the json to write")
    p.add_argument("--label-csv", type=Path, default=None, help="where to write the class csv (default: beside the json)")
    p.add_argument("--relative", action="store_true", help="wav paths relative to the json's folder")
    args = p.parse_args(argv)
    from avcorr.data.errors import LayoutError
    from avcorr.data.tagging import open_source
    from data_tools.pack_waveforms_to_hdf5 import write_label_csv

    try:
        src = open_source(args.format, args.root, args.split, val_fraction=args.val_fraction)
        mids = class_mids(args.format, args.root, src.classes)
        n = make_ast_json(src, mids, args.out, relative=args.relative)
        csv_path = args.label_csv or args.out.with_name("class_labels_indices.csv")
        write_label_csv(Path(csv_path), src.classes, mids)
    except (LayoutError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from avcorr.data.skipped import clip_paths, skipped_beside, skipped_rows, write_skipped_csv

    listed = write_skipped_csv(skipped_beside(args.out), skipped_rows(src.skipped, clip_paths(src.clips, audio_first=True)))
    print(f"wrote {args.out}: {n} entries; classes in {csv_path}")
    for vid, reason in src.skipped:
        print(f"skipped {vid}: {reason}", file=sys.stderr)
    if src.skipped:
        print(f"{len(src.skipped)} clip(s) skipped, listed in {listed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
