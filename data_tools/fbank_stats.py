"""Mean and standard deviation of AST's Kaldi fbank over a training set, for its normalisation.

Example:
    python -m data_tools.fbank_stats --format folder --root DIR --split train
    # -> {"norm_mean": -6.63, "norm_std": 5.36, ...}; then train with them:
    python -m avcorr.train --config ast_folder.py data.root=DIR \\
        'model.kwargs={"norm_mean": -6.63, "norm_std": 5.36, ...the config's other kwargs...}'

The fbank is computed exactly as the model's front-end computes it (:class:`KaldiFbank`: 16 kHz,
``--n-mels`` bins, 25 ms / 10 ms frames, padded or cut to ``--n-frames``; the centre of longer
clips is used, as in evaluation) and the statistics are those of every value of every clip (padding
included, as AST's model sees it), accumulated exactly in float64. AST's own
``get_norm_stats.py`` averages per-batch means and standard deviations instead; on AudioSet both
give about -4.27 / 4.57 (avcorr's defaults).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

from avcorr._atomic import write_text


def fbank_stats(source, *, sample_rate: int = 16000, n_mels: int = 128, n_frames: int = 1024,
                batch_size: int = 16, num_workers: int = 0, progress: bool = False) -> dict:
    """Mean and std of the raw fbank values of ``source``'s clips.

    Args:
        source: an :class:`avcorr.data.records.Manifest`.
        sample_rate, n_mels, n_frames: the front-end's settings.
        batch_size: clips per fbank batch.
        num_workers: DataLoader workers decoding audio.
        progress: tqdm bar.

    Returns:
        ``{"norm_mean", "norm_std", "clips", "skipped_clips", "n_mels", "n_frames", "sample_rate"}``.
    """
    import torch
    from torch.utils.data import DataLoader

    from avcorr._progress import progress as progress_bar
    from avcorr.data.tagging import TaggingDataset, collate_tagging
    from avcorr.models.tagging_audio import KaldiFbank

    fb = KaldiFbank(sample_rate, n_mels, n_frames)
    ds = TaggingDataset(source, sample_rate=sample_rate, clip_samples=fb.min_samples_for_all_frames, train=False,
                        multilabel=True, eval_crop="center")
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_tagging)
    total, total_sq, count, clips, skipped = 0.0, 0.0, 0, 0, list(ds.init_skipped)
    with torch.no_grad():
        for batch in progress_bar(loader, desc="fbank stats", disable=not progress):
            skipped.extend(batch["skipped"])
            if batch["wave"].shape[0] == 0:
                continue
            x = fb.pad_or_crop(fb.fbank(batch["wave"])).double()
            total += float(x.sum())
            total_sq += float((x * x).sum())
            count += x.numel()
            clips += x.shape[0]
    if count == 0:
        raise ValueError(f"{source.name}: no clip could be read")
    mean = total / count
    var = max(0.0, total_sq / count - mean * mean) * count / max(1, count - 1)
    return {"norm_mean": mean, "norm_std": math.sqrt(var), "clips": clips, "skipped_clips": len(skipped),
            "n_mels": n_mels, "n_frames": n_frames, "sample_rate": sample_rate}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.fbank_stats", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=("layout", "folder", "hdf5", "ast_json"), default="layout")
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="train", help="split name, or the split's file for hdf5 / ast_json")
    p.add_argument("--label-csv", default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--n-mels", type=int, default=128)
    p.add_argument("--n-frames", type=int, default=1024)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from avcorr._cli import setup_logging
    from avcorr.data.errors import BadClipError, LayoutError
    from avcorr.data.tagging import open_source

    setup_logging(quiet=True)
    try:
        src = open_source(args.format, args.root, args.split, label_csv=args.label_csv, val_fraction=args.val_fraction)
        res = fbank_stats(src, n_mels=args.n_mels, n_frames=args.n_frames, num_workers=args.workers,
                          progress=not args.no_progress)
    except (LayoutError, BadClipError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(res, indent=1)
    if args.out is not None:
        write_text(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
