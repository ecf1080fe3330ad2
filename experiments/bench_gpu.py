"""AVE-Net and AVOL-Net training at paper sizes on a GPU, fed from shards: samples/s, the GPU's busy
fraction and its peak memory.

Each model trains ``--steps`` steps (after ``--warmup`` untimed ones) exactly as ``avcorr.train`` does a
step (the task's loader over the shards with its workers, ``to_device`` + ``device_transform``, bf16
autocast, backward, optimiser step), from its paper config (``avenet_paper.py``, ``avolnet_paper.py``)
with ``data.storage=shards`` and ``data.device_transforms=true``. Reported per model:

* ``samples/s``: items trained per wall-clock second, the loader's waits included;
* ``busy``: the share of that wall time the device spent on the steps' work (CUDA events around
  each step's transfer, forward, backward and update; on a CPU the same span by the clock): below 1
  the loader starves the device (the issue's goal is >= 0.9);
* ``compute-only samples/s``: the same steps on one batch held on the device (no loader), the rate the
  loader would have to match;
* ``peak memory``: ``torch.cuda.max_memory_allocated`` (GiB).

    python -m experiments.bench_gpu --shards SHARDS                    # one GPU
    torchrun --nproc_per_node 4 -m experiments.bench_gpu --shards SHARDS    # several: rank 0 prints the sums

SHARDS: ``python -m data_tools.make_shards ROOT SHARDS --frames-per-clip 10 --size 256 --sample-rate
48000`` (224 px crops and 1 s of 48 kHz audio, the papers' inputs). Without CUDA it says so and exits
0 unless ``--device cpu`` asks for the same measurement on the CPU (a smoke test; figures there say
nothing about a GPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import torch

MODELS = {"avenet": "avenet_paper.py", "avolnet": "avolnet_paper.py"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", required=True, help="make_shards output (a local folder or an fsspec URL)")
    p.add_argument("--models", default="avenet,avolnet", help="comma-separated: avenet, avolnet")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--batch", type=int, default=64, help="per process")
    p.add_argument("--workers", type=int, default=8, help="loader workers per process")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("extra", nargs="*", help="key=value config overrides for both models (e.g. model.width=0.125)")
    return p


def _setup(device: str) -> tuple[torch.device, int, int]:
    """The device of this process and its (rank, world size); joins the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
    return dev, rank, world


class _Span:
    """Seconds of device work between ``start()`` and ``stop()``: CUDA events on a GPU, the clock on a CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.events: list[tuple[Any, Any]] = []
        self.seconds = 0.0

    def start(self) -> None:
        if self.cuda:
            self.events.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self.events[-1][0].record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            self.events[-1][1].record()
        else:
            self.seconds += time.perf_counter() - self._t0

    def total(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return sum(a.elapsed_time(b) for a, b in self.events) / 1000.0
        return self.seconds


def bench_model(name: str, args: argparse.Namespace, device: torch.device, rank: int, world: int) -> dict[str, float]:
    """Train ``name`` for the timed steps from shards, then on one held batch; this process's figures."""
    from avcorr.config import load_config
    from avcorr.engine.loader import make_loader, stream_epoch
    from avcorr.engine.optim import build_optimizer
    from avcorr.tasks import build_task
    from avcorr._amp import autocast

    cfg = load_config(MODELS[name], [f"data.root={args.shards}", "data.storage=shards", "data.device_transforms=true",
                                     f"train.batch_size={args.batch}", f"data.num_workers={args.workers}",
                                     "train.amp=true", "train.channels_last=true", *args.extra])
    task = build_task(cfg)
    model = task.build_model().to(device).to(memory_format=torch.channels_last)
    module = task.wrap(model).to(device).train()
    step_module = module
    if world > 1:
        step_module = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)
    opt = build_optimizer(model, cfg.optim)
    loader = make_loader(task.build_dataset(cfg.data.train_split, train=True), task, args.batch, train=True,
                         num_workers=args.workers, seed=0, distributed=world > 1, rank=rank)

    def step(batch: dict[str, Any], span: _Span | None, moved: bool = False) -> int:
        if span:
            span.start()
        if not moved:
            batch = task.device_transform(task.to_device(batch, device, True))
        with autocast(device, True):
            loss = step_module(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if span:
            span.stop()
        return task.batch_size(batch)

    def batches():  # epoch after epoch, as the trainer draws them
        epoch = 0
        while True:
            yield from stream_epoch(loader, epoch, 0)
            epoch += 1

    feed = batches()
    for _ in range(args.warmup):
        step(next(feed), None)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    span, items = _Span(device), 0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        items += step(next(feed), span)
    busy = span.total()
    wall = time.perf_counter() - t0
    held = task.device_transform(task.to_device(next(feed), device, True))
    held_span = _Span(device)
    t1 = time.perf_counter()
    for _ in range(args.steps):
        step(held, held_span, moved=True)
    held_span.total()
    held_wall = time.perf_counter() - t1
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else float("nan")
    return {"samples_per_s": items / wall, "busy": busy / wall, "compute_samples_per_s": items / held_wall,
            "peak_gib": peak}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print (rank 0) and return each model's figures: rates summed over processes, busy and memory averaged."""
    args = _parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here: skipped (--device cpu runs the same measurement on the CPU)")
        return {}
    device, rank, world = _setup(args.device)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"bench_gpu: unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    results: dict[str, dict[str, float]] = {}
    for name in names:
        r = bench_model(name, args, device, rank, world)
        if world > 1:
            t = torch.tensor([r["samples_per_s"], r["busy"], r["compute_samples_per_s"], r["peak_gib"]],
                             dtype=torch.float64, device=device)
            torch.distributed.all_reduce(t)
            r = {"samples_per_s": float(t[0]), "busy": float(t[1]) / world, "compute_samples_per_s": float(t[2]),
                 "peak_gib": float(t[3]) / world}
        results[name] = r
    if rank == 0:
        print(f"device: {card} x {world} process(es), torch {torch.__version__}, batch {args.batch} per process, "
              f"{args.workers} loader workers each, {args.steps} timed steps, bf16 autocast, channels_last")
        print(f"{'model':10s} {'samples/s':>10s} {'busy':>6s} {'compute-only samples/s':>23s} {'peak GiB':>9s}")
        for name, r in results.items():
            print(f"{name:10s} {r['samples_per_s']:10.1f} {r['busy']:6.2f} {r['compute_samples_per_s']:23.1f} "
                  f"{r['peak_gib']:9.2f}")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return results


if __name__ == "__main__":
    main()
