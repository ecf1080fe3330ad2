"""AVE-Net training throughput (samples/s) at the paper's input sizes: eager vs faster settings.

Each setting trains the same model on the same random batch (224 px frames, 1 s of 48 kHz audio ->
257 x 200 log-spectrogram) for a few steps after warm-up, in one process, so the ratios against the
eager baseline measured in the same run are meaningful on a noisy machine.

    python experiments/bench_train.py                 # CPU (and CUDA when present)
    python experiments/bench_train.py --quick         # smaller batch / fewer steps
    python experiments/bench_train.py --width 0.25 --image-size 112 --hop 480 --frames 100   # quickstart sizes
    python experiments/bench_train.py --visual-pool cells   # the best-cell model (configs/avenet.py's default)
"""

from __future__ import annotations

import argparse
import copy
import platform

import torch
import torch.nn.functional as F

from avcorr.models import create_model

try:  # python -m experiments.bench_train
    from ._timing import train_throughput
except ImportError:  # python experiments/bench_train.py
    from _timing import train_throughput


def run(device: torch.device, batch: int, steps: int, warmup: int, *, width: float, image_size: int, hop: int,
        frames: int, channels_last: bool = False, compile: bool = False, amp: bool = False,
        visual_pool: str = "max") -> float:
    """Samples per second of AVE-Net training steps on one random batch at the given sizes and settings
    (``visual_pool``: ``"max"``, the paper's pooled frame, or ``"cells"``, the best-cell model)."""
    torch.manual_seed(0)
    model = create_model("avenet", width=width, hop_length=hop, n_frames=frames, visual_pool=visual_pool).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_model = torch.compile(model) if compile else model
    audio = torch.randn(batch, 48000, device=device)
    image = torch.randn(batch, 3, image_size, image_size, device=device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    label = torch.randint(0, 2, (batch,), device=device)
    return train_throughput(lambda: F.cross_entropy(step_model(audio, image)["logits"].float(), label), opt, device,
                            batch, steps, warmup=warmup, amp=amp)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print (and return, by setting name) the samples/s of each setting; ratios against the first."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--hop", type=int, default=240)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile settings")
    p.add_argument("--visual-pool", choices=("max", "cells", "both"), default="max",
                   help="the paper's pooled frame, the best-cell model, or both (their ratio in the same run)")
    args = p.parse_args(argv)
    sizes = dict(width=args.width, image_size=args.image_size, hop=args.hop, frames=args.frames)
    pools = ("max", "cells") if args.visual_pool == "both" else (args.visual_pool,)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, cuda {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print(f"sizes: {sizes}")
    results: dict[str, float] = {}
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for dev in devices:
        if dev.type == "cpu":
            batch, steps, warmup = (4, 2, 1) if args.quick else (8, 4, 1)
            settings = {"eager": {}, "channels_last": {"channels_last": True}}
            if not args.no_compile:
                settings["compile"] = {"compile": True}
        else:
            batch, steps, warmup = (32, 10, 3) if args.quick else (64, 30, 5)
            settings = {"eager fp32": {}, "amp bf16": {"amp": True},
                        "amp bf16 + channels_last": {"amp": True, "channels_last": True}}
            if not args.no_compile:
                settings["amp bf16 + channels_last + compile"] = {"amp": True, "channels_last": True, "compile": True}
        base = None
        print(f"\n{dev.type}: batch {batch}, {steps} timed steps")
        print(f"{'setting':40s} {'samples/s':>10s} {'ratio':>7s}")
        for pool in pools:
            for name, kw in settings.items():
                label = name if pool == "max" else f"cells, {name}"
                try:
                    sps = run(dev, batch, steps, warmup, **copy.deepcopy(sizes), **kw, visual_pool=pool)
                except Exception as e:  # a setting unsupported on this machine is reported, not fatal
                    print(f"{label:40s} {'failed':>10s}  ({type(e).__name__}: {str(e)[:80]})")
                    continue
                base = base or sps
                results[f"{dev.type}/{label}"] = sps
                print(f"{label:40s} {sps:10.2f} {sps / base:7.2f}x")
    return results


if __name__ == "__main__":
    main()
