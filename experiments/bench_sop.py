"""Sound-of-Pixels training throughput (mixtures/s): the paper's sizes vs the CPU quickstart.

Each setting builds its model, loss and optimiser from a shipped config (``sop_paper.py``,
``sop.py``) and trains on one random batch of the config's shapes (N = 2 sources, the config's
window, frames and image size; STFT, warp and targets included, data loading excluded) for a few
steps after a warm-up step, in one process, so the ratio measured in the same run is meaningful on
a noisy machine. ``quickstart, eager`` shows what ``train.channels_last`` buys.

    python experiments/bench_sop.py                  # CPU (and CUDA when present)
    python experiments/bench_sop.py --quick          # fewer steps
"""

from __future__ import annotations

import argparse
import platform

import torch

from avcorr.config import load_config
from avcorr.engine.optim import build_optimizer
from avcorr.tasks import build_task

try:  # python -m experiments.bench_sop
    from ._timing import train_throughput
except ImportError:  # python experiments/bench_sop.py
    from _timing import train_throughput


def run(config: str, device: torch.device, batch: int, steps: int, *, overrides: tuple[str, ...] = ()) -> float:
    """Mixtures per second of ``steps`` training steps (after one warm-up step) on a random batch."""
    torch.manual_seed(0)
    cfg = load_config(config, list(overrides))
    task = build_task(cfg)
    model = task.build_model().to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    module = task.wrap(model).train()
    opt = build_optimizer(model, cfg.optim)
    d = cfg.data
    n_samples, s = task.num_samples, d.image_size
    batch_data = {
        "audios": 0.05 * torch.randn(batch, d.num_mix, n_samples, device=device),
        "lengths": torch.full((batch, d.num_mix), n_samples, device=device),
        "frames": torch.randn(batch, d.num_mix, 3, d.frames_per_clip, s, s, device=device),
    }
    return train_throughput(lambda: module(batch_data)["loss"], opt, device, batch, steps,
                            amp=cfg.train.amp and device.type == "cuda")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    for dev in devices:
        cpu = dev.type == "cpu"
        paper_steps, quick_steps = (1, 2) if args.quick else (2, 5)
        paper_batch = 2 if cpu else 20
        quick_batch = 16
        paper = run("sop_paper.py", dev, paper_batch, paper_steps)
        quick = run("sop.py", dev, quick_batch, quick_steps)
        eager = run("sop.py", dev, quick_batch, quick_steps, overrides=("train.channels_last=False",))
        print(f"{dev.type}: paper sizes (sop_paper.py, batch {paper_batch})   {paper:8.2f} mixtures/s")
        print(f"{dev.type}: quickstart (sop.py, batch {quick_batch})           {quick:8.2f} mixtures/s  "
              f"({quick / paper:.0f}x the paper sizes)")
        print(f"{dev.type}: quickstart without channels_last        {eager:8.2f} mixtures/s")


if __name__ == "__main__":
    main()
