"""``python -m avcorr.evaluate --checkpoint RUN/checkpoints/best.pt --split test [--retrieval]``

Rebuilds the model from the config stored in the checkpoint, evaluates it on a split and writes
``eval_<split>.json`` beside the checkpoint, with ``eval_<split>_skipped.csv`` (id, path, reason) listing
the clips that could not be read (header only when none was skipped).

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

Every number is printed beside the score that needs no learning, in a table: chance for AVC,
tagging and retrieval (``baseline/<metric>``, e.g. ``baseline/avc_acc``,
``baseline/a2v/class_recall@10``), the centre prior for localization (``center/<metric>``), the
mixture itself for separation (``baseline/nsdr`` = 0 dB). Those keys are in ``eval_<split>.json``
too, with ``at_chance`` (the main metric is not significantly above its baseline, see
:mod:`avcorr.metrics.chance`) and ``warnings`` (sentences, e.g. trivial separation masks).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

logger = logging.getLogger("avcorr.evaluate")


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", *, data_root: str | None = None,
                        device: str = "auto", batch_size: int | None = None, num_workers: int | None = None,
                        progress: bool = False, retrieval: bool = False, retrieval_frames: int = 3,
                        retrieval_pool: str = "mean") -> dict:
    """Evaluate a training checkpoint on ``split``.

    Args:
        checkpoint: a ``last.pt`` / ``best.pt`` written by ``avcorr.train``.
        split: split folder name under the dataset root.
        data_root: evaluate on another dataset root than the one trained on.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: evaluation batch size (default: the config's).
        num_workers: loader workers (default: the config's).
        progress: show a progress bar.
        retrieval: also compute the retrieval metrics of the four directions (see the module docstring).
        retrieval_frames: frames / audio windows pooled per clip for retrieval.
        retrieval_pool: ``"mean"`` or ``"max"`` pooling of those.

    Returns:
        The metrics dict with its baselines, plus ``split``, ``checkpoint``, ``epoch``, ``skipped_clips``,
        ``skipped_list`` (a row ``{id, path, reason}`` per skipped clip, those of ``retrieval`` included),
        ``at_chance`` (absent when the main metric has no baseline) and ``warnings`` (a list of sentences).
    """
    from .config import config_from_dict
    from .data.skipped import skipped_rows
    from .data.errors import SkipLog
    from .engine.checkpoint import load_checkpoint
    from .engine.distributed import resolve_device
    from .engine.trainer import evaluate_loader, make_loader
    from .tasks import build_task

    ckpt = load_checkpoint(checkpoint)
    cfg = config_from_dict(ckpt["config"])
    if data_root:
        cfg.data.root = str(data_root)
    cfg.model.checkpoint_path = ""  # the weights come from this checkpoint
    task = build_task(cfg)
    model = task.build_model()
    model.load_state_dict(ckpt["model"])
    dev = resolve_device(device)
    module = task.wrap(model).to(dev)
    dataset = task.build_dataset(split, train=False)
    skips = SkipLog(logger)
    skips.add(getattr(dataset, "init_skipped", ()))
    loader = make_loader(dataset, task, batch_size or cfg.train.eval_batch_size, train=False,
                         num_workers=cfg.data.num_workers if num_workers is None else num_workers)
    t0 = time.time()
    metrics = evaluate_loader(module, loader, task, dev, amp=cfg.train.amp, skips=skips, progress=progress, desc=split)
    skipped = list(skips.reasons.items())
    if retrieval:
        metrics.update(_retrieval_metrics(model, cfg, dev, split, frames=retrieval_frames, pool=retrieval_pool,
                                          batch_size=batch_size or cfg.train.eval_batch_size,
                                          num_workers=cfg.data.num_workers if num_workers is None else num_workers,
                                          progress=progress, skipped=skipped))
    result = {"split": split, "checkpoint": str(checkpoint), "epoch": ckpt.get("epoch"), "data_root": cfg.data.root,
              **metrics, "skipped_clips": len(skips), "seconds": round(time.time() - t0, 2),
              "skipped_list": skipped_rows(skipped, _clip_files(dataset, cfg.data.root, split))}
    test = task.chance_test(metrics)
    warnings = task.warnings(metrics)
    if test is not None:
        result["at_chance"] = test.at_chance
        if test.at_chance:
            warnings.insert(0, test.describe(split))
    result["warnings"] = warnings
    return result


def _clip_files(dataset, root: str, split: str) -> dict[str, str]:
    """``{vid: file}`` of the split's clips: the dataset's, and every clip of an audio-visual layout split
    (those skipped before loading too)."""
    from .data.skipped import clip_paths
    from .data.errors import LayoutError
    from .data.layout import VID2GENRE_FILE, load_split

    paths = clip_paths(getattr(dataset, "clips", ()))
    if root and (Path(root) / split / VID2GENRE_FILE).is_file():
        try:
            paths = {**clip_paths(load_split(root, split).clips), **paths}
        except (LayoutError, OSError):
            pass  # the dataset was built from it, so this only happens if it changed meanwhile
    return paths


def baseline_name(key: str) -> str:
    """What the baseline of metric ``key`` in an evaluation's results is, in two words."""
    if key.startswith("center/"):
        return "centre prior"
    return "the mixture" if key.endswith("nsdr") else "chance"


def baseline_table(result: dict) -> list[str]:
    """Lines of a table: every metric that has a baseline (``baseline/<key>`` or ``center/<key>``) beside it.

    Args:
        result: an evaluation's results (:func:`evaluate_checkpoint`).

    Returns:
        The header and one line per metric (model, baseline, difference, what the baseline is); empty
        when no metric has a baseline.
    """
    rows = []
    for key, value in result.items():
        if key.startswith(("baseline/", "center/", "ceiling/")) or isinstance(value, bool) \
                or not isinstance(value, (int, float)):
            continue
        for base_key in (f"baseline/{key}", f"center/{key}"):
            base = result.get(base_key)
            if isinstance(base, (int, float)) and not isinstance(base, bool):
                ceiling = result.get(f"ceiling/{key}")
                rows.append((key, float(value), float(base), baseline_name(base_key),
                             float(ceiling) if isinstance(ceiling, (int, float)) else None))
                break
    if not rows:
        return []
    width = max(8, *(len(r[0]) for r in rows))
    lines = [f"{'metric':<{width}}  {'model':>8}  {'baseline':>8}  {'diff':>8}  {'ceiling':>8}  baseline is"]
    lines += [f"{k:<{width}}  {v:8.4f}  {b:8.4f}  {round(v - b, 4) + 0.0:+8.4f}  "
              f"{'' if c is None else f'{c:.4f}':>8}  {name}" for k, v, b, name, c in rows]
    return lines


def _retrieval_metrics(model, cfg, device, split: str, *, frames: int, pool: str, batch_size: int, num_workers: int,
                       progress: bool, skipped: list | None = None) -> dict:
    """Embed the split's clips with ``model`` and compute the four retrieval directions.

    The clips the embedding pass skipped are appended to ``skipped`` as ``(vid, reason)``.
    """
    from .data.ontology import label_relevance, load_ontology
    from .metrics.retrieval import cross_modal_metrics
    from .retrieve import EmbeddingModel, embed_split

    if not all(callable(getattr(model, f, None)) for f in ("encode_audio", "encode_visual")):
        raise ValueError(f"--retrieval needs an audio-visual embedding model (encode_audio / encode_visual); "
                         f"{cfg.model.name!r} has none")
    em = EmbeddingModel(model, cfg, device, {"model": cfg.model.name})
    # clip batches hold F frames each: keep about as many frames per batch as a pair batch has
    emb = embed_split(em, cfg.data.root, split, frames=frames, pool=pool, batch_size=max(1, batch_size // frames),
                      num_workers=num_workers, progress=progress)
    if skipped is not None:
        skipped.extend(emb.skipped)
    n = len(emb.items)
    if n < 2:
        raise ValueError(f"retrieval needs at least 2 embedded clips, got {n}")
    ontology = load_ontology(cfg.data.root)
    graded = None
    if ontology is not None:
        graded = label_relevance(ontology, sorted({lab for ls in emb.labels for lab in ls}))[0]
    out = {"retrieval/num_clips": n, "retrieval/skipped_clips": len(emb.skipped),
           "retrieval/chance_recall@10": min(1.0, 10 / n)}
    out.update(cross_modal_metrics(emb.audio, emb.visual, emb.labels, label_relevance=graded))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser

    p = ArgumentParser(prog="python -m avcorr.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint written by avcorr.train")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--data", default=None, help="dataset ROOT (default: the one in the checkpoint's config)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--retrieval", action="store_true",
                   help="also report retrieval metrics a2v/v2a/a2a/v2v (recall@k, median_rank, map@10, ndcg@k)")
    p.add_argument("--retrieval-frames", type=int, default=3, help="frames / audio windows pooled per clip (default 3)")
    p.add_argument("--retrieval-pool", choices=("mean", "max"), default="mean")
    args = p.parse_args(argv)
    from ._cli import setup_logging

    from .engine.trainer import json_safe

    setup_logging()
    try:
        result = evaluate_checkpoint(args.checkpoint, args.split, data_root=args.data, device=args.device,
                                     batch_size=args.batch_size, num_workers=args.workers,
                                     progress=not args.no_progress, retrieval=args.retrieval,
                                     retrieval_frames=args.retrieval_frames, retrieval_pool=args.retrieval_pool)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .data.skipped import write_skipped_csv

    out = Path(args.checkpoint).with_name(f"eval_{args.split}.json")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    tmp.replace(out)
    skipped_csv = write_skipped_csv(out.with_name(f"eval_{args.split}_skipped.csv"), result["skipped_list"])
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
