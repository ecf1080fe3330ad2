"""``python -m avcorr.evaluate --checkpoint RUN/checkpoints/best.pt --split test``

Rebuilds the model from the config stored in the checkpoint, evaluates it on a split and writes
``eval_<split>.json`` beside the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

logger = logging.getLogger("avcorr.evaluate")


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", *, data_root: str | None = None,
                        device: str = "auto", batch_size: int | None = None, num_workers: int | None = None,
                        progress: bool = False) -> dict:
    """Evaluate a training checkpoint on ``split``.

    Args:
        checkpoint: a ``last.pt`` / ``best.pt`` written by ``avcorr.train``.
        split: split folder name under the dataset root.
        data_root: evaluate on another dataset root than the one trained on.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: evaluation batch size (default: the config's).
        num_workers: loader workers (default: the config's).
        progress: show a progress bar.

    Returns:
        The metrics dict, plus ``split``, ``checkpoint``, ``epoch`` and ``skipped_clips``.
    """
    from .config import config_from_dict
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
    return {"split": split, "checkpoint": str(checkpoint), "epoch": ckpt.get("epoch"), "data_root": cfg.data.root,
            **metrics, "skipped_clips": len(skips), "seconds": round(time.time() - t0, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m avcorr.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint written by avcorr.train")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--data", default=None, help="dataset ROOT (default: the one in the checkpoint's config)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from ._cli import setup_logging

    setup_logging()
    try:
        result = evaluate_checkpoint(args.checkpoint, args.split, data_root=args.data, device=args.device,
                                     batch_size=args.batch_size, num_workers=args.workers,
                                     progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.checkpoint).with_name(f"eval_{args.split}.json")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
