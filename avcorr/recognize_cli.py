"""``python -m avcorr.recognize FILE [FILE ...] --checkpoint CKPT [--top-k 5] [--json] [--precision bf16]``

The code of the command ``python -m avcorr.recognize`` (see :mod:`avcorr.recognize`): it tags audio
files with a tagging checkpoint through :func:`avcorr.inference.tagging.recognize`, which is also
the function ``avcorr.recognize``.

A file that cannot be read is skipped and named with the reason on stderr (with ``--json``, also as
``{"file": ..., "skipped": reason}`` on stdout); the others are still tagged, and the exit status is 1.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from .inference.tagging import Tagger, load_tagger, recognize, window_starts

__all__ = ["Tagger", "load_tagger", "main", "recognize", "window_starts"]

def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m avcorr.recognize", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="audio (or video) files to tag (a name starting with '-' may be written "
                                            "./-name.wav, or after --)")
    add_common_args(p, "checkpoint", checkpoint={"help": "a tagging checkpoint written by avcorr.train"})
    p.add_argument("--top-k", type=int, default=5, help="labels per file (default 5)")
    p.add_argument("--hop", type=float, default=None, help="seconds between windows of a long file (default: half a window)")
    p.add_argument("--pool", choices=("mean", "max"), default="mean", help="pooling of window probabilities (default mean)")
    add_common_args(p, "device", "precision")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    add_common_args(p, "vggish", "pca", "vggish_arch")
    args = p.parse_intermixed_args(argv)
    from ._cli import error_exit, setup_logging
    from .data.decode import probe_audio
    from .data.errors import BadClipError

    setup_logging(quiet=True)
    status, files = 0, []
    for f in args.files:  # the inputs first: a picture or a silent video is said before the model loads
        try:
            probe_audio(f)
            files.append(f)
        except BadClipError as e:
            print(f"error: skipped {f}: {e.reason}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": os.fspath(f), "skipped": e.reason}))
            status = 1
    if not files:
        return status
    try:
        tagger = load_tagger(args.checkpoint, args.device, args.precision)
    except (FileNotFoundError, ValueError) as e:
        return error_exit(e)
    skipped = len(args.files) - len(files)  # the inputs refused above
    for f in files:
        try:
            top = recognize(f, tagger, args.top_k, hop_seconds=args.hop, pool=args.pool, vggish=args.vggish,
                            pca=args.pca, vggish_arch=args.vggish_arch)
        except (BadClipError, ValueError) as e:
            print(f"error: skipped {f}: {e}", file=sys.stderr)
            if args.json:
                reason = e.reason if isinstance(e, BadClipError) else str(e)
                print(json.dumps({"file": os.fspath(f), "skipped": reason}))
            skipped += 1
            continue
        if args.json:
            print(json.dumps({"file": os.fspath(f), "labels": [{"label": lab, "prob": round(pr, 6)} for lab, pr in top]}))
        else:
            print(f)
            width = max(len(lab) for lab, _ in top)
            for lab, pr in top:
                print(f"  {lab:<{width}}  {pr:.4f}")
    if skipped:
        print(f"{skipped} of {len(args.files)} file(s) skipped", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
