"""PANNs CNN14 inference on a CPU: eager against channels-last, folded BatchNorm and bf16, in one run.

Every setting runs the same 10-s clips (32 kHz) through the same weights, in interleaved rounds, so
the ratios against eager are measured at the same moment on a noisy machine; each row gives the
largest logit difference from eager. A last block times what users run: the library's
``Tagger.probabilities`` at ``precision="fp32"`` against ``"bf16"`` (interleaved rounds, the same
windows), with the largest probability difference and how often the top-5 classes of a window
agree (with random weights, as here, only the probability difference means much).

    python -m experiments.bench_panns_inference            # batch 2, 4 rounds
    python -m experiments.bench_panns_inference --quick    # batch 1, 2 rounds
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch

from avcorr._amp import cpu_has_bf16
from avcorr.inference.tagging import Tagger
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
    bf16 = cpu_has_bf16()
    if bf16:
        settings["bf16 autocast"] = (base, False, True)
        settings["fused BN + channels_last + bf16"] = (settings["fused BN + channels_last"][0], False, True)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()} ({cap}, bf16 instructions: {bf16}), torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, load average {load}; {args.model}, "
          f"batch {args.batch} x {base.clip_samples} samples")

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
        print(f"(no bf16 rows: this CPU ({cap}) has no bf16 instructions)")
    library(base, wave, args.rounds, args.batch)
    print(f"load average after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


def library(model: torch.nn.Module, wave: torch.Tensor, rounds: int, batch: int) -> None:
    """Time ``Tagger.probabilities`` at fp32 and bf16 on the same model and windows, interleaved.

    Args:
        model: the tagging model (eval mode, CPU).
        wave: (N, T) windows.
        rounds: timed rounds (after one warm-up each).
        batch: windows per forward pass.
    """
    classes = [str(i) for i in range(int(model.num_classes))]
    taggers = {p: Tagger(model, classes, True, torch.device("cpu"), precision=p) for p in ("fp32", "bf16")}
    times: dict[str, list[float]] = {p: [] for p in taggers}
    probs: dict[str, torch.Tensor] = {}
    for tagger in taggers.values():  # warm-up
        tagger.probabilities(wave, batch)
    for _ in range(rounds):
        for p, tagger in taggers.items():
            t0 = time.perf_counter()
            probs[p] = tagger.probabilities(wave, batch)
            times[p].append(time.perf_counter() - t0)
    fp32, bf16 = (statistics.median(times[p]) for p in ("fp32", "bf16"))
    n = wave.shape[0]
    top5 = {p: x.topk(min(5, x.shape[1]), dim=-1).indices.sort(dim=-1).values for p, x in probs.items()}
    agree = int((top5["fp32"] == top5["bf16"]).all(dim=-1).sum())
    print(f"library Tagger.probabilities: fp32 {1000 * fp32 / n:.0f} ms/clip, bf16 {1000 * bf16 / n:.0f} ms/clip, "
          f"bf16 {fp32 / bf16:.2f}x; max |prob diff| {float((probs['bf16'] - probs['fp32']).abs().max()):.2e}, "
          f"top-5 classes equal in {agree} of {n} windows")


if __name__ == "__main__":
    main()
