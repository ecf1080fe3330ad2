"""PANNs CNN14 inference on a CPU: eager against channels-last, folded BatchNorm and bf16, in one run.

Every setting runs the same 10-s clips (32 kHz) through the same weights, in interleaved rounds, so
the ratios against eager are measured at the same moment on a noisy machine. Outputs are checked
against eager (fp32 settings to 1e-3; bf16 is reported with its largest difference).

    python -m experiments.bench_panns_inference            # batch 2, 4 rounds
    python -m experiments.bench_panns_inference --quick    # batch 1, 2 rounds
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from avcorr.models import create_model
from avcorr.models.fusion import fuse_conv_bn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--model", default="panns_cnn14")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.rounds = 1, 2
    torch.manual_seed(0)
    base = create_model(args.model).eval()
    wave = torch.randn(args.batch, base.clip_samples) * 0.1
    fused = copy.deepcopy(base)
    fuse_conv_bn(fused)
    settings = {
        "eager": (base, False, False),
        "channels_last": (copy.deepcopy(base).to(memory_format=torch.channels_last), False, False),
        "fused BN": (fused, False, False),
        "fused BN + channels_last": (copy.deepcopy(fused).to(memory_format=torch.channels_last), False, False),
    }
    cap = torch.backends.cpu.get_cpu_capability()
    bf16 = "AMX" in cap.upper() or "AVX512" in cap.upper()
    if bf16:
        settings["fused BN + channels_last + bf16"] = (settings["fused BN + channels_last"][0], False, True)
    print(f"machine: {platform.processor() or platform.machine()} ({cap}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.model}, batch {args.batch} x {base.clip_samples} samples")

    def run(model, amp: bool) -> tuple[float, torch.Tensor]:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            t0 = time.perf_counter()
            out = model(wave)["logits"].float()
        return time.perf_counter() - t0, out

    reference = run(base, False)[1]
    for model, _, amp in settings.values():  # warm-up
        run(model, amp)
    times: dict[str, list[float]] = {name: [] for name in settings}
    diffs: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (model, _, amp) in settings.items():
            t, out = run(model, amp)
            times[name].append(t)
            diffs[name] = float((out - reference).abs().max())
    eager = statistics.median(times["eager"])
    print(f"{'setting':34s} {'ms/clip':>8s} {'vs eager':>9s} {'max |diff|':>11s}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:34s} {1000 * med / args.batch:8.0f} {eager / med:8.2f}x {diffs[name]:11.2e}")
    if not bf16:
        print(f"(no bf16 row: this CPU ({cap}) has no bf16 instructions)")


if __name__ == "__main__":
    main()
