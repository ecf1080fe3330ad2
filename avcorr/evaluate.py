"""``python -m avcorr.evaluate --checkpoint RUN/checkpoints/best.pt --split test [--retrieval]``

Rebuilds the model from the config stored in the checkpoint, evaluates it on a split and writes
``eval_<split>.json`` beside the checkpoint (``--out DIR``: into DIR), with ``eval_<split>_skipped.csv``
(id, path, reason) listing the clips that could not be read (header only when none was skipped); a
tagging checkpoint's per-class AP chart ``ap_per_class_<split>.png`` goes there too.

``--data ROOT`` evaluates on another data root, read as what it is whatever the run was trained from:
the output of ``python -m data_tools.make_shards`` (a folder with ``<split>/manifest.json``, or a URL)
as shards, a dataset folder in the layout as files; ``--storage files|shards`` says which instead (a
root that is not that is an error naming it).

``--retrieval`` also embeds every clip of the split (``--retrieval-frames`` frames and the audio
windows centred on them, pooled per clip) and reports, for each direction ``a2v``, ``v2a``,
``a2a``, ``v2v`` (query -> gallery; ``a`` audio, ``v`` visual): ``recall@1/5/10``,
``median_rank``, ``map@10``, ``ndcg@10`` and ``ndcg@30`` with binary class relevance, and
``ndcg_graded@10/30`` when the dataset root has an ``ontology.json`` (relevance ``D - tree
distance``, see :mod:`avcorr.data.ontology`). Cross-modal ``recall@k`` / ``median_rank`` are
instance level (the clip's own other modality is the hit); ``a2a`` / ``v2v`` exclude the query
from the gallery and count a same-label clip as the hit. ``retrieval/num_clips`` is N, and
``retrieval/chance_recall@10`` = 10 / N is the cross-modal ``recall@10`` of a random ranking.
With labels, ``a2v`` / ``v2a`` also report the class-level ``class_recall@k`` (a clip of the query's
class in the top k). See :mod:`avcorr.metrics.retrieval` for the exact definitions.
For a model that matches a sound to a frame's best cell (AVE-Net with ``visual_pool='cells'``, the
default of ``configs/avenet.py``) ``a2v`` and ``v2a`` score a clip's sound against the best cell of each
of the other clip's frames, those scores pooled over the frames (``--retrieval-pool``), as the model
was trained; ``--retrieval-cells off`` compares the pooled frame embeddings instead.
``retrieval/cross_modal_scoring`` says which: ``best_cell`` or ``pooled``.

Every number is printed beside the score that needs no learning, in a table: chance for AVC,
tagging and retrieval (``baseline/<metric>``, e.g. ``baseline/avc_acc``,
``baseline/a2v/class_recall@10``), the centre prior for localization (``center/<metric>``), the
mixture itself for separation (``baseline/nsdr`` = 0 dB). Those keys are in ``eval_<split>.json``
too, with ``at_chance`` (the main metric is not significantly above its baseline, see
:mod:`avcorr.metrics.chance`) and ``warnings`` (sentences, e.g. trivial separation masks).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from .inference.evaluation import (baseline_name, baseline_table, evaluate_checkpoint, output_dir, output_files,
                                   write_evaluation)

__all__ = ["baseline_name", "baseline_table", "evaluate_checkpoint", "main", "output_dir", "output_files",
           "write_evaluation"]


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser, add_common_args
    from .inference.retrieval import CELL_MODES

    p = ArgumentParser(prog="python -m avcorr.evaluate", description=__doc__.split("\n\n")[0])
    add_common_args(p, "checkpoint", "split", "data", "device", "batch_size", "workers", "no_progress", "out",
                    split={"help": "split to evaluate (default: test)"},
                    data={"help": "data ROOT: a dataset folder in the layout, or the output of data_tools.make_shards "
                                  "(a folder or URL) (default: the one in the checkpoint's config)"},
                    batch_size={"default": None, "help": "evaluation batch size (default: the config's)"},
                    workers={"default": None, "help": "data loader workers (default: the config's)"},
                    out={"default": None, "help": "folder for eval_<split>.json and the other files "
                                                  "(default: beside the checkpoint)"})
    p.add_argument("--storage", choices=("files", "shards"), default=None,
                   help="read --data (else the run's data root) as a dataset folder in the layout (files) or as the "
                        "output of data_tools.make_shards (shards); default: what the root is (a <split>/manifest.json "
                        "or a URL: shards), else as trained")
    p.add_argument("--retrieval", action="store_true",
                   help="also report retrieval metrics a2v/v2a/a2a/v2v (recall@k, median_rank, map@10, ndcg@k)")
    p.add_argument("--retrieval-frames", type=int, default=3, help="frames / audio windows pooled per clip (default 3)")
    p.add_argument("--retrieval-pool", choices=("mean", "max"), default="mean")
    p.add_argument("--retrieval-cells", choices=CELL_MODES, default="auto",
                   help="auto: a model trained on a frame's best cell is scored a2v/v2a by the best cell of each frame; "
                        "off: by the pooled frame embeddings (default auto)")
    args = p.parse_args(argv)
    from ._cli import error_exit, setup_logging

    setup_logging()
    try:
        result = evaluate_checkpoint(args.checkpoint, args.split, data_root=args.data, storage=args.storage,
                                     device=args.device,
                                     batch_size=args.batch_size, num_workers=args.workers,
                                     progress=not args.no_progress, retrieval=args.retrieval,
                                     retrieval_frames=args.retrieval_frames, retrieval_pool=args.retrieval_pool,
                                     retrieval_cells=args.retrieval_cells,
                                     out_dir=args.out)
    except (FileNotFoundError, ValueError) as e:
        return error_exit(e)
    written = write_evaluation(result, args.out if args.out is not None else output_dir(args.checkpoint))
    out, skipped_csv = written["json"], written["skipped"]
    shown = {k: v for k, v in result.items()
             if not k.startswith(("baseline/", "center/", "ceiling/")) and k not in ("warnings", "skipped_list")}
    width = max(len(k) for k in shown)
    for k, v in shown.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    table = baseline_table(result)
    if table:
        print("\nagainst the baselines (chance, the centre prior, the mixture itself) and the class-level ceiling:")
        print("\n".join(table))
    for sentence in result["warnings"]:
        print(f"WARNING: {sentence}")
    for row in result["skipped_list"]:
        print(f"skipped {row['id']} ({row['path'] or 'no file'}): {row['reason']}")
    n_skipped = len(result["skipped_list"])
    print(f"wrote {out}" + (f" and {skipped_csv} ({n_skipped} skipped clips)" if n_skipped else ""))
    if "retrieval" in written:
        print(f"wrote {written['retrieval']}")
    ckpt = Path(args.checkpoint)
    if args.out is None and ckpt.parent.name == "checkpoints" and (ckpt.parent.parent / "config.json").is_file():
        import json

        from .report import GalleryOptions, try_build_report

        run_dir = ckpt.parent.parent
        try:  # the gallery size the run was trained with (train.report_gallery; 0 = none)
            n = int(json.loads((run_dir / "config.json").read_text()).get("train", {}).get("report_gallery", 24))
        except (OSError, ValueError, TypeError, AttributeError):
            n = 24
        report = try_build_report(run_dir, gallery=GalleryOptions(n=n, device=args.device) if n > 0 else False)
        if report is not None:
            print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
