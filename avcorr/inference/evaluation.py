"""Evaluating a training checkpoint on a split: :func:`evaluate_checkpoint` (the library of
``python -m avcorr.evaluate``; that module's docstring lists the metrics), :func:`write_evaluation`
(the files, see :func:`output_files`) and :func:`baseline_table`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..metrics.names import baseline_name, baseline_rows

logger = logging.getLogger(__name__)


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", *, data_root: str | None = None,
                        storage: str | None = None, device: str = "auto", batch_size: int | None = None, num_workers: int | None = None,
                        progress: bool = False, retrieval: bool = False, retrieval_frames: int = 3,
                        retrieval_pool: str = "mean", retrieval_cells: str = "auto",
                        out_dir: str | Path | None = None) -> dict:
    """Evaluate a training checkpoint on ``split``.

    Args:
        checkpoint: a ``last.pt`` / ``best.pt`` written by ``avcorr.train``.
        split: split folder name under the dataset root.
        data_root: evaluate on another data root than the one trained on: a dataset folder in the layout, or
            the output of make_shards (a folder or URL with ``<split>/manifest.json``), whichever storage the
            run was trained from (see :func:`avcorr.data.storage.resolve_storage`).
        storage: read the data root as ``"files"`` or ``"shards"`` (an error when it is not that); None: as
            detected when ``data_root`` is given, else as trained.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: evaluation batch size (default: the config's).
        num_workers: loader workers (default: the config's).
        progress: show a progress bar.
        retrieval: also compute the retrieval metrics of the four directions (see the module docstring).
        retrieval_frames: frames / audio windows pooled per clip for retrieval.
        retrieval_pool: ``"mean"`` or ``"max"`` pooling of those.
        retrieval_cells: ``"auto"``: for a model trained on a frame's best cell (AVE-Net with
            ``visual_pool="cells"``) ``a2v`` and ``v2a`` score a sound against each frame's best cell, those
            scores pooled over the frames by ``retrieval_pool``; ``"off"``: against the pooled frame
            embeddings. ``retrieval/cross_modal_scoring`` records which (``"best_cell"`` or ``"pooled"``).
        out_dir: where the pictures of the evaluation go (a tagging run's ``ap_per_class_<split>.png``;
            default: :func:`output_dir` of the checkpoint): after the metrics, a separate step writes
            them (the task's ``write_pictures``).

    Returns:
        The metrics dict with its baselines, plus ``split``, ``checkpoint``, ``epoch``, ``data_root``,
        ``storage`` (how the data root was read: ``"files"`` or ``"shards"``), ``skipped_clips``,
        ``skipped_list`` (a row ``{id, path, reason}`` per skipped clip, those of ``retrieval`` included),
        ``at_chance`` (absent when the main metric has no baseline) and ``warnings`` (a list of sentences).
    """
    from ..data.skipped import skipped_rows
    from ..data.errors import SkipLog
    from ..data.storage import require_files
    from ..engine.evaluation import evaluation_pass
    from ..engine.loader import make_loader
    from ..runs import load_run

    run = load_run(checkpoint, device, data_root=data_root, storage=storage, split=split)
    cfg, task, model, dev = run.cfg, run.task, run.model, run.device
    if retrieval:
        run.require("embedding")
        require_files(cfg.data.root if cfg.data.storage == "shards" else None, "--retrieval")
    module = task.wrap(model).to(dev)
    dataset = task.build_dataset(split, train=False)
    skips = SkipLog(logger)
    skips.add(getattr(dataset, "init_skipped", ()))
    loader = make_loader(dataset, task, batch_size or cfg.train.eval_batch_size, train=False,
                         num_workers=cfg.data.num_workers if num_workers is None else num_workers)
    t0 = time.time()
    evaluator = evaluation_pass(module, loader, task, dev, amp=cfg.train.amp, skips=skips, progress=progress, desc=split)
    metrics = evaluator.compute()
    # the pictures: a step of their own, after the metrics
    task.write_pictures(evaluator.pictures(), Path(out_dir) if out_dir is not None else output_dir(checkpoint), split)
    skipped = list(skips.reasons.items())
    if retrieval:
        metrics.update(_retrieval_metrics(model, cfg, dev, split, frames=retrieval_frames, pool=retrieval_pool,
                                          cells=retrieval_cells, batch_size=batch_size or cfg.train.eval_batch_size,
                                          num_workers=cfg.data.num_workers if num_workers is None else num_workers,
                                          progress=progress, skipped=skipped))
    result = {"split": split, "checkpoint": str(checkpoint), "epoch": run.epoch, "data_root": cfg.data.root,
              "storage": cfg.data.storage, **metrics, "skipped_clips": len(skips),
              "seconds": round(time.time() - t0, 2),
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
    from ..data.skipped import clip_paths
    from ..data.errors import LayoutError
    from ..data.layout import VID2GENRE_FILE, load_split
    from ..data.tagging import TaggingDataset

    # a tagging dataset reads each clip's sound: its audio file, else its video's track
    paths = clip_paths(getattr(dataset, "clips", ()), audio_first=isinstance(dataset, TaggingDataset))
    if root and (Path(root) / split / VID2GENRE_FILE).is_file():
        try:
            paths = {**clip_paths(load_split(root, split).clips), **paths}
        except (LayoutError, OSError):
            pass  # the dataset was built from it, so this only happens if it changed meanwhile
    return paths


def baseline_table(result: dict) -> list[str]:
    """Lines of a table: every metric that has a baseline (``baseline/<key>`` or ``center/<key>``) beside it.

    Args:
        result: an evaluation's results (:func:`evaluate_checkpoint`).

    Returns:
        The header and one line per metric (model, baseline, difference, what the baseline is); empty
        when no metric has a baseline.
    """
    rows = baseline_rows(result)
    if not rows:
        return []
    width = max(8, *(len(r[0]) for r in rows))
    lines = [f"{'metric':<{width}}  {'model':>8}  {'baseline':>8}  {'diff':>8}  {'ceiling':>8}  baseline is"]
    lines += [f"{k:<{width}}  {v:8.4f}  {b:8.4f}  {round(v - b, 4) + 0.0:+8.4f}  "
              f"{'' if c is None else f'{c:.4f}':>8}  {name}" for k, v, b, name, c in rows]
    return lines


def _retrieval_metrics(model, cfg, device, split: str, *, frames: int, pool: str, batch_size: int, num_workers: int,
                       progress: bool, skipped: list | None = None, cells: str = "auto") -> dict:
    """Embed the split's clips with ``model`` and compute the four retrieval directions.

    The clips the embedding pass skipped are appended to ``skipped`` as ``(vid, reason)``. With
    ``cells="auto"`` and a model that scores by the best cell, ``a2v`` / ``v2a`` rank by the frames' cells.
    """
    from ..data.layout import load_split
    from ..data.ontology import label_relevance, load_ontology
    from ..metrics.retrieval import class_level_ceiling, cross_modal_metrics
    from .retrieval import EmbeddingModel, embed_split, use_cells

    by_cells = use_cells(model, cells)
    em = EmbeddingModel(model, cfg, device, {"model": cfg.model.name})
    # clip batches hold F frames each: keep about as many frames per batch as a pair batch has
    emb = embed_split(em, cfg.data.root, split, frames=frames, pool=pool, batch_size=max(1, batch_size // frames),
                      num_workers=num_workers, progress=progress, cells=by_cells)
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
           "retrieval/chance_recall@10": min(1.0, 10 / n),
           "retrieval/cross_modal_scoring": "best_cell" if by_cells else "pooled"}
    out.update(cross_modal_metrics(emb.audio, emb.visual, emb.labels, label_relevance=graded,
                                   visual_sets=emb.visual_cells, set_pool=pool))
    index = load_split(cfg.data.root, split)
    if index.visible is not None and any(emb.labels):  # silent objects drawn: what a class-level model can reach
        visible = {c.vid: index.visible_labels(c) for c in index.clips}
        out.update(class_level_ceiling(emb.labels, [visible.get(it["id"], it["labels"]) for it in emb.items],
                                       label_relevance=graded))
    return out


RETRIEVAL_PREFIXES = ("retrieval/", "a2v/", "v2a/", "a2a/", "v2v/", "baseline/a2v/", "baseline/v2a/", "baseline/a2a/",
                      "baseline/v2v/", "ceiling/a2v/", "ceiling/v2a/", "ceiling/a2a/", "ceiling/v2v/")


def output_dir(checkpoint: str | Path) -> Path:
    """Where the files describing a checkpoint go: the checkpoint's own folder (``RUN/checkpoints/``)."""
    return Path(checkpoint).parent


def output_files(out_dir: str | Path, split: str) -> dict[str, Path]:
    """The files :func:`write_evaluation` writes for ``split`` into ``out_dir``.

    Returns:
        ``{"json": eval_<split>.json, "skipped": eval_<split>_skipped.csv,
        "retrieval": eval_<split>_retrieval.json}``.
    """
    out = Path(out_dir)
    return {"json": out / f"eval_{split}.json", "skipped": out / f"eval_{split}_skipped.csv",
            "retrieval": out / f"eval_{split}_retrieval.json"}


def write_evaluation(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write an evaluation's results (atomically): ``eval_<split>.json`` (everything), ``eval_<split>_skipped.csv``
    and, when it holds retrieval metrics, ``eval_<split>_retrieval.json`` (those alone, so that a later
    evaluation without ``--retrieval`` that rewrites ``eval_<split>.json`` does not lose them).

    Args:
        result: from :func:`evaluate_checkpoint`.
        out_dir: the folder (created).

    Returns:
        The paths written, keyed as :func:`output_files`.
    """
    from .._atomic import write_json
    from ..data.skipped import write_skipped_csv
    from ..engine.trainer import json_safe

    files = output_files(out_dir, result["split"])
    written = {"json": write_json(files["json"], json_safe(result), allow_nan=False)}
    written["skipped"] = write_skipped_csv(files["skipped"], result["skipped_list"])
    part = {k: v for k, v in result.items() if k.startswith(RETRIEVAL_PREFIXES)}
    if part:
        keep = ("split", "checkpoint", "epoch", "data_root")
        written["retrieval"] = write_json(files["retrieval"], json_safe({**{k: result[k] for k in keep}, **part}),
                                          allow_nan=False)
    return written
