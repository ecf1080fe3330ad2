"""Cross-modal retrieval from the command line: build a FAISS index of a split, then query it.

``python -m avcorr.retrieve index --checkpoint RUN/checkpoints/best.pt --data ROOT --split test --out IDX``
embeds every clip (F frames and the audio windows centred on them, pooled per clip) into an audio
and a visual index saved under IDX, with the clip ids, labels and the model they came from. For a
model that matches a sound to a frame's best cell (AVE-Net with ``visual_pool='cells'``, the default of
``configs/avenet.py``) it also indexes every cell of every frame, and cross-modal queries are scored by
the best cell of each frame, pooled over the frames (``--cells off``: pooled vectors only).

``python -m avcorr.retrieve query --index IDX --audio q.wav --k 10`` (or ``--video q.mp4``,
``--image q.jpg``; ``--target audio|visual``) prints the ranked clips with scores and labels;
``--json out.json`` writes them, ``--sheet out.png`` draws a contact sheet of the query and the top-k
hits (a frame for a visual item, a spectrogram thumbnail for an audio item).
The query is embedded with the checkpoint that built the index (``--checkpoint`` to give another
copy of it); a checkpoint of another model, dimension or weights is refused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from .inference.retrieval import (CELL_MODES, EmbeddingModel, build_index, contact_sheet, embed_query, embed_split,
                                  load_embedding_model, query_index)

__all__ = ["EmbeddingModel", "build_index", "contact_sheet", "embed_query", "embed_split", "load_embedding_model", "main",
           "query_index"]


# ----------------------------------------------------------------------------------------------
# command line


INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")  # = avcorr.retrieval.INDEX_KINDS (a test checks), without importing it
POOLINGS = ("mean", "max")  # = avcorr.retrieval.POOLINGS


def _parser() -> argparse.ArgumentParser:
    from ._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m avcorr.retrieve", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("index", help="embed a split and save (or extend) a FAISS index")
    add_common_args(pi, "checkpoint", "data", "split", "out", out={"required": True, "help": "index folder to write"})
    pi.add_argument("--append", action="store_true", help="add the clips to the index already in --out")
    pi.add_argument("--frames", type=int, default=3, help="frames / audio windows per clip (default 3)")
    pi.add_argument("--pool", choices=POOLINGS, default="mean", help="per-clip pooling (default mean)")
    pi.add_argument("--cells", choices=CELL_MODES, default="auto",
                    help="auto: for a model trained on a frame's best cell, also index every frame's cells and score "
                         "cross-modal queries by them; off: pooled vectors only (default auto)")
    pi.add_argument("--kind", choices=INDEX_KINDS, default="flat", help="FAISS index kind (default flat: exact)")
    pi.add_argument("--nlist", type=int, default=0, help="IVF cells (0 = 4 sqrt(N))")
    pi.add_argument("--nprobe", type=int, default=16, help="IVF cells scanned per query")
    pi.add_argument("--pq-m", type=int, default=16, help="IVF-PQ bytes per vector")
    pi.add_argument("--hnsw-m", type=int, default=32, help="HNSW neighbours per node")
    pi.add_argument("--ef-search", type=int, default=64, help="HNSW search beam")
    pi.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto", help="FAISS on the GPU")
    add_common_args(pi, "batch_size", "workers", "device", "no_progress")
    pq = sub.add_parser("query", help="search an index with an audio, video or image file")
    pq.add_argument("--index", required=True, help="index folder written by `index`")
    g = pq.add_mutually_exclusive_group(required=True)
    g.add_argument("--audio", help="audio query (wav, flac, mp3 ... or a video's audio track)")
    g.add_argument("--video", help="video query (its frames; --modality audio for its sound)")
    g.add_argument("--image", help="picture query (jpg, png ...)")
    pq.add_argument("--modality", choices=("visual", "audio"), default="visual", help="side of --video to query with")
    pq.add_argument("--target", choices=("audio", "visual"), default=None,
                    help="gallery to search (default: the other modality)")
    pq.add_argument("--k", type=int, default=10)
    pq.add_argument("--json", default=None, help="write the results to this JSON file")
    pq.add_argument("--sheet", default=None, help="draw the query and the top-k hits (frames, or spectrograms for audio) to this PNG")
    add_common_args(pq, "checkpoint", checkpoint={"required": False, "default": None,
                                                  "help": "the index's checkpoint, if it moved"})
    pq.add_argument("--nprobe", type=int, default=None)
    pq.add_argument("--ef-search", type=int, default=None)
    pq.add_argument("--cells", choices=CELL_MODES, default="auto",
                    help="auto: score a cross-modal query by the best cell when the index holds cells; off: by the "
                         "pooled vectors (default auto)")
    add_common_args(pq, "device")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._atomic import write_json
    from ._cli import error_exit, setup_logging
    from .data.errors import BadClipError, LayoutError
    from .retrieval import IndexConfig, IndexFormatError, IndexMismatchError

    setup_logging()
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it announces every import at INFO
    try:
        if args.command == "index":
            cfg = IndexConfig(kind=args.kind, nlist=args.nlist, nprobe=args.nprobe, pq_m=args.pq_m,
                              hnsw_m=args.hnsw_m, ef_search=args.ef_search,
                              use_gpu={"auto": None, "yes": True, "no": False}[args.gpu])
            index, emb = build_index(args.checkpoint, args.out, data_root=args.data, split=args.split,
                                     frames=args.frames, pool=args.pool, config=cfg, append=args.append,
                                     batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                                     progress=not args.no_progress, cells=args.cells)
            n_skipped = index.info["sources"][-1]["skipped"]
            listed = f", listed in {Path(args.out) / 'skipped.csv'}" if n_skipped else ""
            cells = " with every frame's cells" if index.info["embedding"].get("cells") else ""
            print(f"indexed {len(emb.items)} clips ({n_skipped} skipped{listed}); {len(index)} clips of "
                  f"{index.dim}-d embeddings{cells} in {args.out}")
            return 0
        result = query_index(args.index, audio=args.audio, video=args.video, image=args.image,
                             modality=args.modality, target=args.target, k=args.k, checkpoint=args.checkpoint,
                             device=args.device, nprobe=args.nprobe, ef_search=args.ef_search, cells=args.cells)
    except (FileNotFoundError, FileExistsError, IndexFormatError, IndexMismatchError, LayoutError, BadClipError,
            ValueError) as e:
        return error_exit(e)
    q = result["query"]
    scoring = " (scored by the best cell)" if result["scoring"] == "best_cell" else ""
    print(f"{q['modality']} query {q['file']} -> {q['target']} index {result['index']}{scoring}")
    print(f"{'rank':>4}  {'score':>7}  {'id':<16} labels")
    for h in result["hits"]:
        print(f"{h['rank']:>4}  {h['score']:>7.4f}  {h['id']:<16} {', '.join(h['labels'])}")
    if args.json:
        write_json(args.json, {k: v for k, v in result.items() if k != "preview"})
        print(f"wrote {args.json}")
    if args.sheet:
        contact_sheet(result, args.sheet)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
