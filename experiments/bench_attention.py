"""AudioSet attention heads: training and inference throughput at the paper's sizes.

Each head (``audioset_*``, 1024 hidden units, 527 classes) trains on batches of 500 clips of
10 x 128 uint8 embeddings (the recipe of ``configs/audioset_attention.py``) with Adam and binary
cross-entropy; the loop is the model's forward + backward + step, data in memory (the pack reader
is not what is measured). Ratios are against average pooling measured in the same run. The
iteration rate gives the time of the recipe's 50,000 iterations on this machine.

    python experiments/bench_attention.py                 # all five heads, 20 timed iterations each
    python experiments/bench_attention.py --steps 50 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

HEADS = ("avg_pool", "max_pool", "single_attention", "multi_attention", "feature_attention")


def bench(name: str, steps: int, batch: int, device: torch.device) -> tuple[float, float]:
    """(training iterations/s, inference clips/s) of ``audioset_<name>``."""
    from avcorr.models import create_model

    torch.manual_seed(0)
    model = create_model(f"audioset_{name}", num_classes=527).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randint(0, 256, (batch, 10, 128), dtype=torch.uint8, device=device)
    y = (torch.rand(batch, 527, device=device) < 0.01).float()

    def step() -> None:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)["logits"], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    train_rate = steps / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync()
    infer_rate = steps * batch / (time.perf_counter() - t0)
    return train_rate, infer_rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}, "
          f"device {device}; batch {args.batch} x 10 x 128, 527 classes")
    base = None
    for name in (["avg_pool"] + [h for h in args.heads if h != "avg_pool"]):
        tr, inf = bench(name, args.steps, args.batch, device)
        base = base or (tr, inf)
        print(f"{name:>18}: train {tr:6.2f} it/s ({tr * args.batch:7.0f} clips/s, {tr / base[0]:.2f}x avg_pool; "
              f"50k iterations in {50_000 / tr / 3600:5.2f} h) | inference {inf:8.0f} clips/s ({inf / base[1]:.2f}x)",
              flush=True)


if __name__ == "__main__":
    main()
