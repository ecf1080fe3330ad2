"""Write a layout dataset's audio as a folder-per-class tree (e.g. the synthetic dataset, for ast_folder.py).

Example:
    python -m data_tools.make_folder_dataset ~/.cache/avcorr/synthetic-v4 /data/syn_folders
    python -m avcorr.train --config ast_folder.py data.root=/data/syn_folders

The result is ``OUT/{train,val,test}/<class>/<vid>.wav``: the layout's own splits become the
folder dataset's explicit split sub-folders; a clip with several labels is in each of its class
folders (hard links where the file system allows, else copies).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.make_folder_dataset", description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, nargs="?", default=None,
                   help="dataset root in the seed layout (default: the embedded synthetic dataset, generated if needed)")
    p.add_argument("out", type=Path, help="folder to create (must not exist, or be empty)")
    p.add_argument("--copy", action="store_true", help="copy the files instead of hard-linking them")
    args = p.parse_args(argv)
    import logging

    from avcorr._cli import setup_logging
    from avcorr.data.tagging import layout_to_folders

    setup_logging()
    root = args.root
    if root is None:
        from avcorr.data.synthetic import ensure_default_dataset

        root = ensure_default_dataset()
    try:
        counts = layout_to_folders(root, args.out, link=not args.copy)
    except (FileExistsError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("data_tools.make_folder_dataset").info("wrote %s", args.out)
    for split, n in counts.items():
        print(f"{split}: {n} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
