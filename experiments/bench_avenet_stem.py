"""AVE-Net's compute per sample at the paper's sizes: the paper's stem against the cheaper one (``avenet_s2``).

FLOPs are counted (``torch.utils.flop_counter``: a forward pass, 2 FLOPs per multiply-add), then both
models run forward passes in interleaved rounds on the same batch, so the time ratio is measured on
the same noisy machine at the same moment. Channels-last is measured beside eager for each.

    python -m experiments.bench_avenet_stem             # CPU (CUDA too when present)
    python -m experiments.bench_avenet_stem --quick     # batch 2, 2 rounds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from avcorr.models import create_model


def gflops_per_sample(model: torch.nn.Module, audio: torch.Tensor, image: torch.Tensor) -> float:
    """Forward GFLOP per sample (batch of ``audio.shape[0]``)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(audio, image)
    return counter.get_total_flops() / audio.shape[0] / 1e9


def seconds_per_batch(model: torch.nn.Module, audio: torch.Tensor, image: torch.Tensor, device: torch.device) -> float:
    """Wall seconds of one no-grad forward pass."""
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(audio, image)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.rounds = 2, 2
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for device in devices:
        torch.manual_seed(0)
        audio = torch.randn(args.batch, 48000, device=device)
        image = torch.randn(args.batch, 3, 224, 224, device=device)
        models = {}
        for name in ("avenet", "avenet_s2"):
            m = create_model(name).to(device).eval()
            models[name] = m
            models[name + " channels_last"] = create_model(name).to(device).eval().to(memory_format=torch.channels_last)
        flops = {n: gflops_per_sample(models[n], audio, image) for n in ("avenet", "avenet_s2")}
        for m in models.values():  # warm-up
            seconds_per_batch(m, audio, image, device)
        times: dict[str, list[float]] = {n: [] for n in models}
        for _ in range(args.rounds):  # interleaved: every model once per round
            for n, m in models.items():
                img = image.contiguous(memory_format=torch.channels_last) if "channels_last" in n else image
                times[n].append(seconds_per_batch(m, audio, img, device))
        base = statistics.median(times["avenet"])
        print(f"\n{device.type}: batch {args.batch}, {args.rounds} interleaved rounds (median)")
        print(f"{'model':26s} {'GFLOP/sample':>12s} {'ms/sample':>10s} {'vs avenet':>9s}")
        for n, t in times.items():
            g = flops[n.split()[0]]
            med = statistics.median(t)
            print(f"{n:26s} {g:12.1f} {1000 * med / args.batch:10.1f} {base / med:8.2f}x")


if __name__ == "__main__":
    main()
