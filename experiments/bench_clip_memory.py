"""Memory held per :class:`~avcorr.data.records.Clip`, as the AST-json and folder-per-class readers build them.

An AudioSet AST datafile lists about 2 M clips; each process (and each DataLoader worker that gets a
copy of the dataset) holds every clip record, so a few hundred bytes per clip are a few hundred MB.
This measures, with ``tracemalloc``, the memory that ``n`` clips own (what is freed when they are dropped):

* ``ast_json``: :func:`avcorr.data.tagging.ast_json_source` on a generated datafile (absolute ``wav``
  paths ``/data/audioset/audio/<11-char id>.wav``, one or two labels each): the clips, their list and
  the (small) label space of the Manifest it returns.
* ``folder``: :func:`avcorr.data.tagging.folder_source` on a generated ``train/<class>/<id>.wav`` tree
  of ``n`` tiny files in a temporary folder (10 classes; 100k files take about 8 s to make and read).
  The reader's per-process digest cache keeps each file's path string, which the clip shares: that
  string (about 95 B here) is not counted, before or after.

    python experiments/bench_clip_memory.py            # 100k clips each
    python experiments/bench_clip_memory.py --n 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

from avcorr.data.tagging import ast_json_source, folder_source

NUM_CLASSES = 10


def _ids(n: int) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
    codes = np.random.default_rng(0).integers(0, len(alphabet), (n, 11))
    return ["".join(row) for row in alphabet[codes]]


def _owned(build: Callable[[], Any], check: Callable[[Any], None]) -> int:
    """The bytes that the object ``build()`` returns owns: what tracemalloc sees freed when it is dropped.

    Counting what is freed, rather than what was allocated, leaves out the caches that building
    grows once per process (pathlib's interned names, free lists), which made the allocated count
    vary by 20% from one run to the next.
    """
    gc.collect()
    tracemalloc.start()
    try:
        out = build()
        check(out)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        del out
        gc.collect()
        return held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def _check(clips: list[Any], n: int) -> None:
    assert len(clips) == n and all(c.media is not None for c in clips[:10])


def ast_json_bytes(n: int) -> float:
    """Bytes retained per clip by an ``n``-entry AST datafile read with ``ast_json_source``."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "class_labels_indices.csv"
        csv.write_text("index,mid,display_name\n" + "".join(f"{i},/m/c{i},Class {i}\n" for i in range(NUM_CLASSES)))
        data = [{"wav": f"/data/audioset/audio/{vid}.wav",
                 "labels": f"/m/c{k % NUM_CLASSES}" + (f",/m/c{(k + 3) % NUM_CLASSES}" if k % 3 == 0 else "")}
                for k, vid in enumerate(_ids(n))]
        datafile = Path(tmp) / "train.json"
        datafile.write_text(json.dumps({"data": data}))
        del data
        size = _owned(lambda: ast_json_source(datafile, label_csv=csv), lambda m: _check(m.clips, n))
    return size / n


def folder_bytes(n: int) -> float:
    """Bytes owned per clip by an ``n``-file folder-per-class tree read with ``folder_source``."""
    with tempfile.TemporaryDirectory() as tmp:
        classes = [Path(tmp, "train", f"Class {i}") for i in range(NUM_CLASSES)]
        for folder in classes:
            folder.mkdir(parents=True)
        for k, vid in enumerate(_ids(n)):  # 8 distinct bytes each: no two files are copies of each other
            (classes[k % NUM_CLASSES] / f"{vid}.wav").write_bytes(k.to_bytes(8, "little"))
        size = _owned(lambda: folder_source(tmp, "train"), lambda m: _check(m.clips, n))
    return size / n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="clips per reader (default 100000)")
    args = p.parse_args(argv)
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {args.n} clips per reader")
    print(f"ast_json: {ast_json_bytes(args.n):7.1f} B a clip")
    print(f"folder:   {folder_bytes(args.n):7.1f} B a clip")


if __name__ == "__main__":
    main()
