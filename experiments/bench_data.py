"""AVC pairs/s from avcorr's data loader vs raw decoding of the same frames and audio.

In one run, on the same list of pairs (drawn once by the dataset):
  * raw torchcodec / raw decord: only ``read_frames`` + ``read_audio`` for each pair (no probing,
    no transforms) - the cost floor of the decoders;
  * dataset (in-process): ``AVCPairDataset.__getitem__`` - decode + probe + pair logic + transforms,
    on a first pass (every clip probed and opened) and a second pass (probes cached, readers kept
    open by the per-worker LRU), as in training where every clip is visited many times per epoch;
  * DataLoader with N workers, batched and collated, as training uses it: first epoch, and the
    second epoch of persistent workers (the steady state of a training run).
Ratios are against raw decoding with the default backend. Goal: in-process dataset >= 0.8x raw.

    python -m experiments.bench_data [--root ROOT] [--pairs 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="", help="dataset ROOT (default: the embedded synthetic dataset)")
    p.add_argument("--split", default="train")
    p.add_argument("--pairs", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--quick", action="store_true", help="100 pairs")
    args = p.parse_args()
    n = 100 if args.quick else args.pairs
    torch.set_num_threads(1)
    from torch.utils.data import DataLoader

    from avcorr.data import decode
    from avcorr.data.avc import AVCPairDataset, collate_pairs
    from avcorr.data.layout import load_split
    from avcorr.data.synthetic import ensure_default_dataset

    root = args.root or str(ensure_default_dataset())
    index = load_split(root, args.split)

    def dataset(backend: str | None = None) -> AVCPairDataset:
        return AVCPairDataset(index, image_size=args.image_size, train=True, video_backend=backend,
                              pairs_per_clip=max(1, -(-n // len(index.clips))))

    torch.manual_seed(0)
    ds = dataset()
    items = [ds[i] for i in range(n)]
    clips = {c.vid: c for c in ds.clips}
    plan = [(clips[it["vid"]].video, float(it["time"]), clips[it["audio_vid"]].audio or clips[it["audio_vid"]].video,
             float(it["audio_time"])) for it in items]

    def raw(backend: str) -> float:
        t0 = time.perf_counter()
        for video, t, audio, at in plan:
            decode.read_frames(video, [t], backend=backend)
            decode.read_audio(audio, at - 0.5, 1.0, 48000)
        return n / (time.perf_counter() - t0)

    def in_process(backend: str | None, passes: int = 1) -> float:
        """pairs/s of the last of ``passes`` passes (later passes reuse cached probes / open readers)."""
        d = dataset(backend)
        for _ in range(passes):
            torch.manual_seed(0)
            t0 = time.perf_counter()
            for i in range(n):
                d[i]
            rate = n / (time.perf_counter() - t0)
        return rate

    def loader(workers: int, epochs: int = 1) -> float:
        """pairs/s of the last of ``epochs`` epochs; workers persist across epochs, as in training."""
        d = dataset()
        dl = DataLoader(d, batch_size=32, num_workers=workers, collate_fn=collate_pairs, shuffle=True,
                        worker_init_fn=lambda _: torch.set_num_threads(1), persistent_workers=workers > 0)
        for _ in range(epochs):
            t0 = time.perf_counter()
            count = 0
            for batch in dl:
                count += batch["label"].shape[0]
            rate = count / (time.perf_counter() - t0)
        return rate

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s) in the main process; "
          f"torch {torch.__version__}; root {root}; {n} pairs; frames -> {args.image_size} px, audio 1 s @ 48 kHz")
    rows = [(f"raw decode, {decode.DEFAULT_VIDEO_BACKEND} (baseline)", raw(decode.DEFAULT_VIDEO_BACKEND))]
    other = [b for b in decode.VIDEO_BACKENDS if b != decode.DEFAULT_VIDEO_BACKEND]
    for b in other:
        rows.append((f"raw decode, {b}", raw(b)))
    rows.append((f"dataset in-process, {decode.DEFAULT_VIDEO_BACKEND}, first pass", in_process(None)))
    rows.append((f"dataset in-process, {decode.DEFAULT_VIDEO_BACKEND}, second pass", in_process(None, 2)))
    for b in other:
        rows.append((f"dataset in-process, {b}", in_process(b)))
    rows.append(("DataLoader, 0 workers, batch 32", loader(0)))
    if args.workers:
        rows.append((f"DataLoader, {args.workers} workers, batch 32", loader(args.workers)))
        rows.append((f"DataLoader, {args.workers} workers, 2nd epoch (persistent)", loader(args.workers, 2)))
    base = rows[0][1]
    print(f"{'path':50s} {'pairs/s':>9s} {'ratio':>7s}")
    for name, v in rows:
        print(f"{name:50s} {v:9.1f} {v / base:7.2f}x")


if __name__ == "__main__":
    main()
