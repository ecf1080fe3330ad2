"""The feed of AVC training: pairs/s of raw decoding, the per-sample loader and the shard stream, per worker count.

In one run, on one dataset and config (default: the quickstart ``avenet.py`` on the embedded synthetic
dataset), the training pairs as the trainer gets them:

  * raw decode: for each pair of a fixed list (drawn by the per-sample dataset), open the clip's video
    and decode the frame, and read the audio window from its file; no transform, no DataLoader, one
    process - the decoders' floor;
  * per-sample: ``AVCPairDataset`` (the config's transforms: random crop, flip, jitter, normalise, gain
    jitter) through the trainer's DataLoader (``avcorr.engine.loader.make_loader``, persistent workers);
  * shards: ``AVCShardStream`` over shards of the same split (made into a temporary folder unless
    ``--shards`` names a make_shards output) through the same DataLoader;
  * shards, device transforms: the same with ``data.device_transforms=True``: the loader crops and
    resizes, and uint8 frames and int16 audio (the shards' samples, their gain apart) leave it; the
    frames' colour jitter, flip and normalisation and the audio's conversion to float32 are left to
    the training device (timed apart, here on the CPU, batched: the task's ``device_transform`` of a
    batch);
  * shards, device transforms, float32 audio: the same with the audio handed over as float32, as
    before int16 audio (what int16 saves between the processes).

Each loader runs an untimed warm-up epoch (workers started, readers opened, probes cached), then the
paths and worker counts are timed a whole epoch each, in interleaved rounds (best of ``--rounds``), so
a background load hits them alike. Printed: pairs/s, pairs/s per loading process (the main process
with 0 workers, else the workers), the ratio to raw decoding, and shards / per-sample per worker count
(the goal of issue 17 is >= 5x per core).

    python -m experiments.bench_feed [--root ROOT] [--shards OUT] [--config avenet.py] [--workers 0,1,2]
        [--rounds 2] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable


def _epoch(loader, epoch: int) -> Iterable[dict[str, Any]]:
    """The batches of one training epoch, as the trainer starts it (a stream or a resumable sampler)."""
    from torch.utils.data import IterableDataset

    from avcorr.engine.loader import stream_epoch

    if isinstance(loader.dataset, IterableDataset):
        return stream_epoch(loader, epoch, 0)
    loader.sampler.set_epoch(epoch)
    return loader


def _timed_epoch(loader, epoch: int, consume: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, float]:
    """``(pairs, seconds)`` of one whole epoch of ``loader`` (``consume`` called on each batch, timed too)."""
    t0 = time.perf_counter()
    n = 0
    for batch in _epoch(loader, epoch):
        if consume is not None:
            consume(batch)
        n += int(batch["label"].shape[0])
    return n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print its table.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        ``{"raw": pairs/s, "files/<w>": pairs/s, "shards/<w>": pairs/s, ...}`` (best of the rounds).
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="", help="dataset ROOT (default: the embedded synthetic dataset)")
    p.add_argument("--shards", default="", help="make_shards output of ROOT (default: made into a temporary folder)")
    p.add_argument("--config", default="avenet.py", help="the training config whose data settings are used")
    p.add_argument("--split", default="train")
    p.add_argument("--workers", default="0,1,2", help="DataLoader worker counts, comma-separated")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pairs-per-clip", type=int, default=0, help="training pairs per clip and epoch (0: the config's)")
    p.add_argument("--frames-per-clip", type=int, default=10, help="frames stored per clip in the made shards")
    p.add_argument("--shard-size", type=int, default=0, help="side of the stored frames (0: the config's image size)")
    p.add_argument("--clips-per-shard", type=int, default=0, help="0: enough shards for every worker count")
    p.add_argument("--raw-pairs", type=int, default=1000, help="most pairs of the raw-decode list")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 pairs per clip, 200 raw pairs")
    p.add_argument("overrides", nargs="*", help="config overrides key=value (as avcorr.train takes them)")
    args = p.parse_args(argv)
    workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    rounds = 1 if args.quick else max(1, args.rounds)
    ppc = 2 if args.quick and not args.pairs_per_clip else args.pairs_per_clip
    raw_pairs = min(args.raw_pairs, 200) if args.quick else args.raw_pairs

    import torch

    torch.set_num_threads(1)
    from avcorr.config import load_config
    from avcorr.data import decode
    from avcorr.data.layout import load_split
    from avcorr.data.shard_writer import ShardOptions
    from avcorr.data.synthetic import ensure_default_dataset
    from avcorr.engine.loader import make_loader
    from avcorr.tasks import build_task
    from data_tools.make_shards import shard_split

    root = args.root or str(ensure_default_dataset())
    overrides = [f"data.root={root}", "data.storage=files", *args.overrides]
    if ppc:
        overrides.append(f"avc.train_pairs_per_clip={ppc}")
    cfg = load_config(args.config, overrides)
    if cfg.task != "avc":
        raise SystemExit(f"{args.config}: task {cfg.task!r}; the feed benchmark measures the avc task")
    d, bs = cfg.data, cfg.train.batch_size
    files_task = build_task(cfg)
    spec = files_task.frame_spec()
    index = load_split(root, args.split)

    made = not args.shards
    shard_root = Path(args.shards) if args.shards else Path(tempfile.mkdtemp(prefix="bench_feed_"))
    try:
        if made:
            clips = sum(c.video is not None for c in index.clips)
            per_shard = args.clips_per_shard or max(1, min(32, clips // (2 * max(max(workers), 1))))
            options = ShardOptions(frames_per_clip=args.frames_per_clip, size=args.shard_size or d.image_size,
                                   sample_rate=spec.sample_rate, window=spec.clip_seconds)
            t0 = time.perf_counter()
            summary = shard_split(index, shard_root, options, clips_per_shard=per_shard, workers=min(2, os.cpu_count() or 1),
                                  overwrite=True)
            made_line = (f"shards made in {time.perf_counter() - t0:.1f} s: {summary.clips} clips, {per_shard} a shard, "
                         f"{args.frames_per_clip} {options.format} frames of {options.size} px, audio "
                         f"{options.sample_rate} Hz {options.audio_dtype}")
        else:
            made_line = f"shards: {shard_root}"
        shard_cfg = load_config(args.config, [*overrides, f"data.root={shard_root}", "data.storage=shards"])
        shard_task = build_task(shard_cfg)
        dev_task = build_task(load_config(args.config, [*overrides, f"data.root={shard_root}", "data.storage=shards",
                                                        "data.device_transforms=True"]))
        datasets = {"files": files_task.build_dataset(args.split, True),
                    "shards": shard_task.build_dataset(args.split, True),
                    "shards_dev": dev_task.build_dataset(args.split, True),
                    "shards_dev_f32": dev_task.build_dataset(args.split, True)}
        datasets["shards_dev_f32"].pcm16 = False  # float32 audio between the processes, as without int16
        tasks = {"files": files_task, "shards": shard_task, "shards_dev": dev_task, "shards_dev_f32": dev_task}
        loaders = {(path, w): make_loader(datasets[path], tasks[path], bs, train=True, num_workers=w, seed=0)
                   for w in workers for path in datasets}
        for path, ds in datasets.items():
            if len(ds) < bs:
                raise SystemExit(f"{path}: an epoch holds {len(ds)} pairs, less than a batch of {bs}: lower "
                                 f"train.batch_size or raise --pairs-per-clip")

        plan: list[tuple[Path, float, Path, float]] = []
        clip_of = {c.vid: c for c in index.clips}

        def record(batch: dict[str, Any]) -> None:
            for vid, t, avid, at in zip(batch["vid"], batch["time"].tolist(), batch["audio_vid"],
                                        batch["audio_time"].tolist()):
                if len(plan) < raw_pairs:
                    a = clip_of[avid]
                    plan.append((clip_of[vid].video, t, a.audio or a.video, at))

        for (path, w), loader in loaders.items():  # warm-up epochs; the first per-sample one draws the raw list
            _timed_epoch(loader, 0, record if path == "files" and not plan else None)
        seconds, sr = spec.clip_seconds, spec.sample_rate

        def raw() -> tuple[int, float]:
            t0 = time.perf_counter()
            for video, t, audio, at in plan:
                decode.read_frames(video, [t], backend=d.video_backend or None)
                decode.read_audio(audio, at - seconds / 2, seconds, sr)
            return len(plan), time.perf_counter() - t0

        sample = next(iter(_epoch(loaders["shards_dev", workers[0]], 0)))

        def finish() -> tuple[int, float]:
            """The device's share of the device-transform path, on this CPU: a batch finished 20 times."""
            t0 = time.perf_counter()
            for _ in range(20):
                dev_task.device_transform(dev_task.to_device(sample, torch.device("cpu"), cfg.train.channels_last))
            return 20 * bs, time.perf_counter() - t0

        best: dict[str, float] = {}
        for r in range(rounds):
            runs: dict[str, Callable[[], tuple[int, float]]] = {"raw": raw, "finish": finish}
            for (path, w), loader in loaders.items():
                runs[f"{path}/{w}"] = lambda loader=loader: _timed_epoch(loader, 1 + r)
            for name, fn in runs.items():
                n, s = fn()
                best[name] = max(best.get(name, 0.0), n / s)
        loaders.clear()  # stops the workers
    finally:
        if made:
            shutil.rmtree(shard_root, ignore_errors=True)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end; torch {torch.__version__}, 1 torch thread per process")
    print(f"dataset: {root} [{args.split}], {len(datasets['files'].clips)} clips; config {cfg.name}: "
          f"{d.image_size} px frames (augment={d.augment}), {seconds:g} s of {sr} Hz audio, batch {bs}, "
          f"{cfg.avc.train_pairs_per_clip} pairs per clip ({len(datasets['files'])} an epoch)")
    print(made_line)
    print(f"best of {rounds} interleaved round(s); a loader's rate is one whole epoch after a warm-up epoch\n")
    print(f"{'path':<44}{'workers':>8}{'pairs/s':>10}{'per process':>13}{'vs raw':>9}")
    print(f"{'raw decode (open + 1 frame + window read)':<44}{'-':>8}{best['raw']:>10.1f}{best['raw']:>13.1f}"
          f"{1.0:>8.2f}x")
    labels = {"files": "per-sample AVCPairDataset + DataLoader", "shards": "shards AVCShardStream + DataLoader",
              "shards_dev": "shards, uint8 frames, int16 audio (device)",
              "shards_dev_f32": "shards, uint8 frames, float32 audio (device)"}
    how = "int16" if datasets["shards_dev"].pcm16 else "float32 (the shards do not store int16)"
    for w in workers:
        for path, label in labels.items():
            rate = best[f"{path}/{w}"]
            print(f"{label:<44}{w:>8}{rate:>10.1f}{rate / max(w, 1):>13.1f}{rate / best['raw']:>8.2f}x")
    print(f"{'device_transform of a batch, on this CPU':<44}{'-':>8}{best['finish']:>10.1f}{best['finish']:>13.1f}"
          f"{best['finish'] / best['raw']:>8.2f}x")
    for path in ("shards", "shards_dev"):
        print(f"\n{labels[path].split(' AVC')[0]} / per-sample: " + ", ".join(
            f"{w} worker{'s' if w != 1 else ''} {best[f'{path}/{w}'] / best[f'files/{w}']:.2f}x" for w in workers))
    print(f"int16 / float32 audio (device transforms; the audio travels as {how}): " + ", ".join(
        f"{w} worker{'s' if w != 1 else ''} {best[f'shards_dev/{w}'] / best[f'shards_dev_f32/{w}']:.2f}x"
        for w in workers))
    return best


if __name__ == "__main__":
    main()
