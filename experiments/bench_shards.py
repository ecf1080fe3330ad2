"""Shards: clips/s to write them, and samples/s to read them against the per-sample decoders, in one run.

Measured on the same clips (the first ``--clips`` of the split):
  * write: ``data_tools.make_shards`` (``--workers`` processes decoding, this process writing), clips/s;
  * read, one process: ``iter_shard`` over the shards (JPEG or raw frames decoded, audio converted),
    all N frames of each sample, and one frame per sample (what a training pair uses);
  * per-sample, one process: the same frames and audio from the dataset's files with the readers the
    datasets use (open the video, decode the N frames, resize and crop them, read the audio) - what
    a loader without shards pays for the same sample;
  * training pairs, one process: one random frame of each shard sample and its 1 s window cut from the
    stored audio, against ``AVCPairDataset.__getitem__`` (one frame decoded + a 1 s window read, warm
    readers), both without and with the CPU training transform of the frame.
Read rounds alternate (best of ``--rounds``) so that a background load hits both alike.

    python -m experiments.bench_shards [--root ROOT] [--clips 160] [--frames-per-clip 10] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="", help="dataset ROOT (default: the embedded synthetic dataset)")
    p.add_argument("--split", default="train")
    p.add_argument("--clips", type=int, default=160)
    p.add_argument("--frames-per-clip", type=int, default=10)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--format", default="jpeg", choices=("jpeg", "raw"))
    p.add_argument("--clips-per-shard", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="decoding processes of the writer")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="", help="shard folder (default: a temporary folder, deleted)")
    args = p.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from avcorr.data import decode
    from avcorr.data.avc import AVCPairDataset
    from avcorr.data.layout import load_split
    from avcorr.data.shard_writer import ShardOptions
    from avcorr.data.shards import iter_shard, read_manifest
    from avcorr.data.synthetic import ensure_default_dataset
    from avcorr.data.transforms import frame_transform, resize_centre_crop
    from data_tools.make_shards import shard_split

    root = args.root or str(ensure_default_dataset())
    index = load_split(root, args.split)
    index.clips = [c for c in index.clips if c.video is not None][:args.clips]
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_shards_"))
    options = ShardOptions(frames_per_clip=args.frames_per_clip, size=args.size, format=args.format)
    try:
        t0 = time.perf_counter()
        summary = shard_split(index, out, options, clips_per_shard=args.clips_per_shard, workers=args.workers,
                              overwrite=True)
        write_s = time.perf_counter() - t0
        folder = out / args.split
        shards = [folder / e["name"] for e in read_manifest(folder)["shards"]]
        first = [s for path in shards for s in iter_shard(path)]
        clips = {c.vid: c for c in index.clips}
        plan = [(clips[s["vid"]], list(s["frame_times"])) for s in first]
        del first

        def read_shards() -> int:
            return sum(1 for path in shards for _ in iter_shard(path))

        rng = np.random.default_rng(0)
        train_transform = frame_transform(args.size, train=True)

        def shard_pairs(transform) -> int:
            """A training pair from each sample: one random frame decoded (and transformed), its 1 s window."""
            n = 0
            for path in shards:
                for s in iter_shard(path, frames=lambda meta: [int(rng.integers(meta["frames"]["count"]))]):
                    transform(s["frames"][0])
                    c = round((s["frame_times"][0] - s["audio_start"]) * s["sample_rate"])
                    torch.from_numpy(s["audio"][max(c - s["sample_rate"] // 2, 0):c + s["sample_rate"] // 2])
                    n += 1
            return n

        def per_sample() -> int:
            for clip, times in plan:
                with decode.VideoReader(clip.video) as reader:
                    frames = reader.get_frames(times).permute(0, 2, 3, 1).numpy()
                np.stack([resize_centre_crop(np.ascontiguousarray(f), args.size) for f in frames])
                decode.read_audio(clip.audio or clip.video, 0.0, None, options.sample_rate)
            return len(plan)

        pairs = AVCPairDataset(index, image_size=args.size, sample_rate=options.sample_rate, train=True)

        def avc_pairs(transform) -> int:
            pairs.transform = transform
            for i in range(len(plan)):
                pairs[i % len(pairs)]
            return len(plan)

        def identity(frame):
            return frame

        avc_pairs(identity)  # first pass: probes and opens every clip
        runs = {"shards": read_shards, "per_sample": per_sample,
                "shard_pairs": lambda: shard_pairs(identity), "avc_pairs": lambda: avc_pairs(identity),
                "shard_pairs_tf": lambda: shard_pairs(train_transform),
                "avc_pairs_tf": lambda: avc_pairs(train_transform)}
        best = dict.fromkeys(runs, 0.0)
        for _ in range(args.rounds):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                n = fn()
                best[name] = max(best[name], n / (time.perf_counter() - t0))
        size_mb = summary.bytes / 2**20
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
        print(f"dataset: {root} [{args.split}], {summary.clips} clips ({len(summary.skipped)} skipped); "
              f"{args.frames_per_clip} frames of {args.size} px ({args.format}), audio {options.sample_rate} Hz "
              f"{options.audio_dtype}")
        print(f"write: {summary.clips / write_s:.1f} clips/s with {args.workers} decoding processes "
              f"({len(shards)} shards, {size_mb:.1f} MiB, "
              f"{size_mb * 2**20 / max(summary.clips, 1) / 1024:.0f} KiB/clip)")
        print(f"read, 1 process: shards {best['shards']:.1f} samples/s; per-sample decode of the same frames and "
              f"audio {best['per_sample']:.1f} samples/s; ratio {best['shards'] / best['per_sample']:.1f}x")
        print(f"training pairs, 1 process, decode only: shards {best['shard_pairs']:.1f} pairs/s (1 random frame "
              f"decoded, its 1 s window cut from the stored audio); per-sample AVC pairs (1 frame decoded + 1 s "
              f"window read, warm readers) {best['avc_pairs']:.1f} pairs/s; ratio "
              f"{best['shard_pairs'] / best['avc_pairs']:.1f}x")
        print(f"training pairs, 1 process, with the CPU training transform: shards {best['shard_pairs_tf']:.1f} "
              f"pairs/s; per-sample {best['avc_pairs_tf']:.1f} pairs/s; ratio "
              f"{best['shard_pairs_tf'] / best['avc_pairs_tf']:.1f}x")
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
