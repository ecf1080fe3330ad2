"""The feed of training: items/s of the per-sample loader and the shard stream, per worker count, for the AVC,
localization and Sound of Pixels tasks.

In one run, on one dataset, the training batches as the trainer gets them, for each task asked
(``--task``; each with its config, default its quickstart on the embedded synthetic dataset):

``--task avc`` (the default; ``avenet.py``), training pairs:

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

``--task localization`` (``avolnet.py``; ``--config ezvsl.py`` for the contrastive localizer, the same
batches) and ``--task sop`` (``sop.py``: mixtures of N sources, Tf frames each), the task's own training
datasets (``build_dataset(split, train=True)``: AVC positives, mixtures) through the same DataLoader:

  * per-sample (``AVCPairDataset`` positives, ``SeparationDataset``), without and with
    ``data.device_transforms`` (uint8 frames; the decoded audio stays float32);
  * shards (``AVCShardStream`` positives, ``SeparationShardStream``), without and with
    ``data.device_transforms`` (uint8 frames and, from int16 shards, int16 audio);
  * the device's share, on this CPU: the task's ``device_transform`` of a batch of the last path.

Each figure is printed beside its ratio to the per-sample path of the same worker count, measured in the
same run (the device's share: to the per-sample path with 1 loading process). Shards made for ``sop``
keep frames over the whole clip (``--window 0``) at the config's audio rate.

Each loader runs an untimed warm-up epoch (workers started, readers opened, probes cached), then the
paths and worker counts are timed a whole epoch each, in interleaved rounds (best of ``--rounds``), so
a background load hits them alike. Printed: items/s, items/s per loading process (the main process
with 0 workers, else the workers), the ratio to raw decoding (avc) or to the per-sample path, and each
path / per-sample per worker count (the goal of issue 17 is >= 5x per core).

    python -m experiments.bench_feed [--task avc|localization|sop|all] [--root ROOT] [--shards OUT]
        [--config avenet.py] [--workers 0,1,2] [--rounds 2] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


@dataclass(frozen=True)
class Feed:
    """What the benchmark measures of one task.

    Attributes:
        config: the default config.
        task: the config's ``task``.
        unit: what one item of a batch is (``pairs``, ``mixtures``).
        per_clip: the config key of the training items drawn per clip and epoch.
        paths: the loaders timed (keys of :data:`PATHS`).
    """

    config: str
    task: str
    unit: str
    per_clip: str
    paths: tuple[str, ...]


# path -> (data.storage, data.device_transforms)
PATHS = {"files": ("files", False), "files_dev": ("files", True), "shards": ("shards", False),
         "shards_dev": ("shards", True), "shards_dev_f32": ("shards", True)}
FEEDS = {
    "avc": Feed("avenet.py", "avc", "pairs", "avc.train_pairs_per_clip",
                ("files", "shards", "shards_dev", "shards_dev_f32")),
    "localization": Feed("avolnet.py", "localization", "pairs", "localization.train_pairs_per_clip",
                         ("files", "files_dev", "shards", "shards_dev")),
    "sop": Feed("sop.py", "separation", "mixtures", "separation.train_mixtures_per_clip",
                ("files", "files_dev", "shards", "shards_dev")),
}


def _epoch(loader, epoch: int) -> Iterable[dict[str, Any]]:
    """The batches of one training epoch, as the trainer starts it (a stream or a resumable sampler)."""
    from torch.utils.data import IterableDataset

    from avcorr.engine.loader import stream_epoch

    if isinstance(loader.dataset, IterableDataset):
        return stream_epoch(loader, epoch, 0)
    loader.sampler.set_epoch(epoch)
    return loader


def _timed_epoch(loader, epoch: int, consume: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, float]:
    """``(items, seconds)`` of one whole epoch of ``loader`` (``consume`` called on each batch, timed too);
    an item is one entry of the batch's ``vid`` list (a pair, a mixture)."""
    t0 = time.perf_counter()
    n = 0
    for batch in _epoch(loader, epoch):
        if consume is not None:
            consume(batch)
        n += len(batch["vid"])
    return n, time.perf_counter() - t0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=[*FEEDS, "all"], default="avc", help="the task(s) whose training feed is measured")
    p.add_argument("--root", default="", help="dataset ROOT (default: the embedded synthetic dataset)")
    p.add_argument("--shards", default="", help="make_shards output of ROOT (default: made into a temporary folder)")
    p.add_argument("--config", default="", help="the training config whose data settings are used (default: the "
                   "task's quickstart: " + ", ".join(f"{k} {f.config}" for k, f in FEEDS.items()) + ")")
    p.add_argument("--split", default="train")
    p.add_argument("--workers", default="0,1,2", help="DataLoader worker counts, comma-separated")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pairs-per-clip", type=int, default=0,
                   help="training items (pairs, mixtures) per clip and epoch (0: the config's)")
    p.add_argument("--frames-per-clip", type=int, default=10, help="frames stored per clip in the made shards")
    p.add_argument("--shard-size", type=int, default=0, help="side of the stored frames (0: the config's image size)")
    p.add_argument("--clips-per-shard", type=int, default=0, help="0: enough shards for every worker count")
    p.add_argument("--raw-pairs", type=int, default=1000, help="avc: most pairs of the raw-decode list")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 items per clip, 200 raw pairs")
    p.add_argument("overrides", nargs="*", help="config overrides key=value (as avcorr.train takes them)")
    return p


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print its table(s).

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        Items/s, best of the rounds, by path and worker count: for one task ``{"files/<w>": ..., "shards/<w>":
        ..., "finish": ..., ...}`` (avc also ``"raw"``; the keys of :data:`FEEDS`' paths); for ``--task all`` the
        same prefixed by the task, ``{"avc/raw": ..., "localization/files/<w>": ..., "sop/finish": ...}``.
    """
    args = _parser().parse_args(argv)
    if args.task == "all" and (args.config or args.shards):
        raise SystemExit("--task all measures each task's own quickstart config on shards made for it: name one "
                         "task (--task avc|localization|sop) to give --config or --shards")
    import torch

    torch.set_num_threads(1)
    names = list(FEEDS) if args.task == "all" else [args.task]
    results = {}
    for i, name in enumerate(names):
        if i:
            print()
        results[name] = bench_task(name, args)
    if args.task != "all":
        return results[args.task]
    return {f"{name}/{key}": rate for name, best in results.items() for key, rate in best.items()}


@contextlib.contextmanager
def _shard_root(args: argparse.Namespace, name: str, index, options, workers: list[int]) -> Iterator[tuple[Path, str]]:
    """``(shard folder, a line saying what it is)``: ``--shards``, or shards of ``index`` made into a temporary
    folder (removed on leaving) with ``options`` (a :class:`~avcorr.data.shard_writer.ShardOptions`)."""
    if args.shards:
        yield Path(args.shards), f"shards: {args.shards}"
        return
    from data_tools.make_shards import shard_split

    root = Path(tempfile.mkdtemp(prefix=f"bench_feed_{name}_"))
    try:
        clips = sum(c.video is not None for c in index.clips)
        per_shard = args.clips_per_shard or max(2, min(32, clips // (2 * max(max(workers), 1))))
        t0 = time.perf_counter()
        summary = shard_split(index, root, options, clips_per_shard=per_shard, workers=min(2, os.cpu_count() or 1),
                              overwrite=True)
        yield root, (f"shards made in {time.perf_counter() - t0:.1f} s: {summary.clips} clips, {per_shard} a shard, "
                     f"{options.frames_per_clip} {options.format} frames of {options.size} px (window "
                     f"{options.window:g} s), audio {options.sample_rate} Hz {options.audio_dtype}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _audio(name: str, task) -> tuple[float, int]:
    """``(seconds, sample rate)`` of the audio of one training item (a source's, for sop)."""
    if name == "sop":
        return task.num_samples / task.cfg.data.audio.sample_rate, task.cfg.data.audio.sample_rate
    spec = task.frame_spec()
    return spec.clip_seconds, spec.sample_rate


def _labels(name: str, datasets: dict[str, Any]) -> dict[str, str]:
    """The short name of each path of ``name``: how the data travel (``per-sample``, ``shards, uint8 frames, int16
    audio (device)`` ...); the table's rows of the plain paths add the dataset's class."""
    pcm16 = getattr(datasets.get("shards_dev"), "pcm16", False) or name == "avc"  # avc's names of before
    labels = {"files": "per-sample", "files_dev": "per-sample, uint8 frames, float32 audio (device)",
              "shards": "shards",
              "shards_dev": f"shards, uint8 frames, {'int16' if pcm16 else 'float32'} audio (device)",
              "shards_dev_f32": "shards, uint8 frames, float32 audio (device)"}
    return {path: labels[path] for path in FEEDS[name].paths}


def bench_task(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Measure the training feed of one task (a key of :data:`FEEDS`) and print its table.

    Args:
        name: the task.
        args: the parsed command line (:func:`main`).

    Returns:
        items/s by ``<path>/<workers>``, ``finish`` (the device's share, on this CPU) and, for avc, ``raw``.
    """
    import torch

    from avcorr.config import load_config
    from avcorr.data.layout import load_split
    from avcorr.data.shard_writer import ShardOptions
    from avcorr.data.synthetic import ensure_default_dataset
    from avcorr.engine.loader import make_loader
    from avcorr.tasks import build_task

    load = os.getloadavg()[0]
    feed = FEEDS[name]
    workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    rounds = 1 if args.quick else max(1, args.rounds)
    asked = 2 if args.quick and not args.pairs_per_clip else args.pairs_per_clip
    config = args.config or feed.config
    root = args.root or str(ensure_default_dataset())
    overrides = [f"data.root={root}", "data.storage=files", *args.overrides]
    if asked:
        overrides.append(f"{feed.per_clip}={asked}")
    cfg = load_config(config, overrides)
    if cfg.task != feed.task:
        raise SystemExit(f"{config}: task {cfg.task!r}; --task {name} measures the {feed.task} task")
    d, bs = cfg.data, cfg.train.batch_size
    files_task = build_task(cfg)
    seconds, sr = _audio(name, files_task)
    index = load_split(root, args.split)
    options = ShardOptions(frames_per_clip=args.frames_per_clip, size=args.shard_size or d.image_size, sample_rate=sr,
                           window=0.0 if name == "sop" else seconds)  # sop: frames over the whole clip

    with _shard_root(args, name, index, options, workers) as (shard_root, made_line):
        tasks = {}
        for path in feed.paths:
            storage, device = PATHS[path]
            where = [f"data.root={shard_root}", "data.storage=shards"] if storage == "shards" else []
            tasks[path] = build_task(load_config(config, [*overrides, *where, f"data.device_transforms={device}"]))
        datasets = {path: task.build_dataset(args.split, True) for path, task in tasks.items()}
        if "shards_dev_f32" in datasets:
            datasets["shards_dev_f32"].pcm16 = False  # float32 audio between the processes, as without int16
        for path, ds in datasets.items():
            if len(ds) < bs:
                raise SystemExit(f"{name} {path}: an epoch holds {len(ds)} {feed.unit}, less than a batch of {bs}: "
                                 f"lower train.batch_size or raise --pairs-per-clip")
        loaders = {(path, w): make_loader(datasets[path], tasks[path], bs, train=True, num_workers=w, seed=0)
                   for w in workers for path in datasets}
        runs: dict[str, Callable[[], tuple[int, float]]] = {}
        record = None
        if name == "avc":
            record, runs["raw"] = _raw_decode(args, cfg, index, seconds, sr)
        for (path, w), loader in loaders.items():  # warm-up epochs; avc's first per-sample one draws the raw list
            _timed_epoch(loader, 0, record if path == "files" and w == workers[0] else None)
        dev = "shards_dev"
        sample = next(iter(_epoch(loaders[dev, workers[0]], 0)))

        def finish() -> tuple[int, float]:
            """The device's share of the device-transform path, on this CPU: a batch finished 20 times."""
            t0 = time.perf_counter()
            for _ in range(20):
                tasks[dev].device_transform(tasks[dev].to_device(sample, torch.device("cpu"), cfg.train.channels_last))
            return 20 * len(sample["vid"]), time.perf_counter() - t0

        runs["finish"] = finish
        best: dict[str, float] = {}
        for r in range(rounds):
            for (path, w), loader in loaders.items():
                runs[f"{path}/{w}"] = lambda loader=loader, r=r: _timed_epoch(loader, 1 + r)
            for key, fn in runs.items():
                n, s = fn()
                best[key] = max(best.get(key, 0.0), n / s)
        runs.clear()
        loaders.clear()  # stops the workers

    print(f"[{name}] machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; torch {torch.__version__}, 1 torch thread "
          "per process")
    files = datasets["files"]
    per_clip = functools.reduce(getattr, feed.per_clip.split("."), cfg)
    what = (f"{seconds:g} s of {sr} Hz audio" if name != "sop" else
            f"{cfg.separation.num_mix} sources of {cfg.separation.frames_per_clip} frames and {seconds:.3g} s of "
            f"{sr} Hz audio")
    print(f"dataset: {root} [{args.split}], {len(files.clips)} clips; config {cfg.name}: {d.image_size} px frames "
          f"(augment={d.augment}), {what}, batch {bs}, {per_clip} {feed.unit} per clip "
          f"({len(files)} an epoch)")
    print(made_line)
    print(f"best of {rounds} interleaved round(s); a loader's rate is one whole epoch after a warm-up epoch\n")
    _print_table(name, best, _labels(name, datasets), workers, datasets)
    return best


def _raw_decode(args: argparse.Namespace, cfg, index, seconds: float, sr: int
                ) -> tuple[Callable[[dict[str, Any]], None], Callable[[], tuple[int, float]]]:
    """avc's floor: ``(record, raw)``, ``record`` collecting the pairs of per-sample batches (up to
    ``--raw-pairs``) and ``raw`` decoding them again, one frame and one audio window each, with no transform."""
    from avcorr.data import decode

    plan: list[tuple[Path, float, Path, float]] = []
    clip_of = {c.vid: c for c in index.clips}
    most = min(args.raw_pairs, 200) if args.quick else args.raw_pairs

    def record(batch: dict[str, Any]) -> None:
        for vid, t, avid, at in zip(batch["vid"], batch["time"].tolist(), batch["audio_vid"],
                                    batch["audio_time"].tolist()):
            if len(plan) < most:
                a = clip_of[avid]
                plan.append((clip_of[vid].video, t, a.audio or a.video, at))

    def raw() -> tuple[int, float]:
        t0 = time.perf_counter()
        for video, t, audio, at in plan:
            decode.read_frames(video, [t], backend=cfg.data.video_backend or None)
            decode.read_audio(audio, at - seconds / 2, seconds, sr)
        return len(plan), time.perf_counter() - t0

    return record, raw


def _plural(w: int) -> str:
    return f"{w} worker{'s' if w != 1 else ''}"


def _print_table(name: str, best: dict[str, float], labels: dict[str, str], workers: list[int],
                 datasets: dict[str, Any]) -> None:
    """One row per path and worker count: items/s, per loading process, and the ratio to avc's raw decoding or
    to the per-sample path of the same worker count; then each path / per-sample per worker count."""
    unit = FEEDS[name].unit
    base = "raw" if name == "avc" else "per-sample"
    print(f"{'path':<50}{'workers':>8}{unit + '/s':>12}{'per process':>13}{'vs ' + base:>15}")

    def row(label: str, w: str, rate: float, per_process: float, ratio: float) -> None:
        print(f"{label:<50}{w:>8}{rate:>12.1f}{per_process:>13.1f}{ratio:>14.2f}x")

    if name == "avc":
        row("raw decode (open + 1 frame + window read)", "-", best["raw"], best["raw"], 1.0)
    for w in workers:
        for path, label in labels.items():
            rate = best[f"{path}/{w}"]
            if path in ("files", "shards"):
                label = f"{label} {type(datasets[path]).__name__} + DataLoader"
            row(label, str(w), rate, rate / max(w, 1), rate / best["raw" if name == "avc" else f"files/{w}"])
    one = 1 if 1 in workers else workers[0]  # the device's share against one loading process
    finish = best["finish"]
    row("device_transform of a batch, on this CPU", "-", finish, finish,
        finish / best["raw" if name == "avc" else f"files/{one}"])
    if name != "avc":
        print(f"(the device's share against the per-sample path with {_plural(one)})")
    print()
    compared = ["shards", "shards_dev"] if name == "avc" else [p for p in labels if p != "files"]
    for path in compared:
        print(f"{labels[path]} / per-sample: " + ", ".join(
            f"{_plural(w)} {best[f'{path}/{w}'] / best[f'files/{w}']:.2f}x" for w in workers))
    if name == "avc":
        how = "int16" if datasets["shards_dev"].pcm16 else "float32 (the shards do not store int16)"
        print(f"int16 / float32 audio (device transforms; the audio travels as {how}): " + ", ".join(
            f"{_plural(w)} {best[f'shards_dev/{w}'] / best[f'shards_dev_f32/{w}']:.2f}x" for w in workers))


if __name__ == "__main__":
    main()
