"""Tagging benchmarks: metric computation at AudioSet size, and tagger inference real-time factor.

1. Metrics over an N x C score matrix (default 20,000 x 527, AudioSet's evaluation size) with
   AudioSet-like sparse labels, measured in ONE run so the ratios hold on a noisy machine:
     * ``sklearn loop``  - per-class ``average_precision_score`` + ``roc_auc_score`` (what PANNs'
       and AST's evaluation code does, through ``average=None``);
     * ``sort floor``    - one ``torch.sort`` of the class-major (C, N) matrix: any exact method
       must order every class once, so this is the floor (the (N, C) ``dim=0`` sort is shown too);
     * ``avcorr``        - :func:`avcorr.metrics.tagging.tagging_metrics` (acc, mAP, AUC, both
       d-primes), from the (N, C) matrix, transposition included. Its one sort is numpy's
       vectorised (SIMD) sort of values, which is faster than ``torch.sort`` (shown too).
   Goal: >= 10x faster than the loop and within 1.5x of the floor; the largest difference to
   scikit-learn's per-class AP / AUC is printed as well.
2. Inference real-time factor (seconds of compute per second of audio; < 1 = faster than real
   time) of ``panns_cnn14`` (10 s at 32 kHz) and ``ast_base`` (10.24 s at 16 kHz) when they are
   registered, on the CPU and on CUDA when present.

    python experiments/bench_tagging.py                      # everything
    python experiments/bench_tagging.py --skip-models        # metrics only
    python experiments/bench_tagging.py --n 5000 --repeats 2 # smaller
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch


def make_data(n: int, c: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (n, c) sigmoid scores and bool (n, c) labels with AudioSet-like class frequencies."""
    rng = np.random.default_rng(seed)
    rates = np.clip(0.3 / np.arange(1, c + 1) ** 0.9, 5 / n, 0.3)  # a few frequent classes, a long tail
    y = rng.random((n, c)) < rates
    y[rng.integers(0, n, c), np.arange(c)] = True  # every class has a positive
    logits = (rng.standard_normal((n, c)) * 2 - 4 + 3.5 * y).astype(np.float32)
    return torch.sigmoid(torch.from_numpy(logits)), torch.from_numpy(y)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_metrics(n: int, c: int, repeats: int) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from avcorr.metrics.tagging import average_precision_and_auc, tagging_metrics

    scores, targets = make_data(n, c)
    s_np, y_np = scores.numpy(), targets.numpy()

    def sk_loop():
        return (average_precision_score(y_np, s_np, average=None), roc_auc_score(y_np, s_np, average=None))

    class_major = scores.t().contiguous()
    t_floor, _ = timed(lambda: torch.sort(class_major, dim=1, descending=True), repeats)
    t_floor_nc, _ = timed(lambda: torch.sort(scores, dim=0, descending=True), 1)
    cm_np = class_major.numpy()
    t_np_sort, _ = timed(lambda: np.sort(cm_np, axis=1), repeats)
    t_ours, _ = timed(lambda: tagging_metrics(scores, targets), repeats)
    t_apauc, (ap, auc) = timed(lambda: average_precision_and_auc(scores, targets), repeats)
    t_loop, (ref_ap, ref_auc) = timed(sk_loop, max(1, min(repeats, 2)))
    diff = max(float(np.nanmax(np.abs(ap.numpy() - ref_ap))), float(np.nanmax(np.abs(auc.numpy() - ref_auc))))
    return {"n": n, "c": c, "sklearn_loop_s": t_loop, "sort_floor_s": t_floor, "sort_dim0_s": t_floor_nc, "np_sort_s": t_np_sort,
            "avcorr_all_metrics_s": t_ours, "avcorr_ap_auc_s": t_apauc, "speedup_vs_loop": t_loop / t_ours,
            "ratio_to_floor": t_ours / t_floor, "max_abs_diff_vs_sklearn": diff}


def bench_rtf(name: str, device: torch.device, batch: int, repeats: int) -> dict | None:
    from avcorr.models import create_model, is_model

    if not is_model(name):
        return None
    model = create_model(name).to(device).eval()
    seconds = model.clip_samples / model.sample_rate
    x = torch.randn(batch, model.clip_samples, device=device) * 0.1

    def run():
        with torch.no_grad():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"model": name, "device": str(device), "batch": batch, "clip_s": round(seconds, 2),
            "s_per_batch": t, "rtf": t / (batch * seconds)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--c", type=int, default=527)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-models", action="store_true")
    p.add_argument("--batch", type=int, default=4, help="clips per inference batch")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    m = bench_metrics(args.n, args.c, args.repeats)
    print(f"\nmetrics over {m['n']} x {m['c']} (best of {args.repeats}):")
    print(f"  sklearn loop (AP + AUC per class)  {m['sklearn_loop_s']:8.3f} s")
    print(f"  one torch.sort, (C, N) dim 1       {m['sort_floor_s']:8.3f} s   (floor)")
    print(f"  one torch.sort, (N, C) dim 0       {m['sort_dim0_s']:8.3f} s")
    print(f"  one np.sort (values), (C, N)       {m['np_sort_s']:8.3f} s   (the sort avcorr does)")
    print(f"  avcorr AP + AUC                    {m['avcorr_ap_auc_s']:8.3f} s")
    print(f"  avcorr all metrics                 {m['avcorr_all_metrics_s']:8.3f} s   "
          f"{m['speedup_vs_loop']:.1f}x the loop, {m['ratio_to_floor']:.2f}x the floor")
    print(f"  max |avcorr - sklearn| per class   {m['max_abs_diff_vs_sklearn']:.2e}")
    results = {"metrics": m, "rtf": []}
    if not args.skip_models:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        print("\ninference real-time factor (compute s / audio s; median):")
        for dev in devices:
            for name in ("panns_cnn14", "ast_base"):
                r = bench_rtf(name, dev, args.batch, 3 if dev.type == "cpu" else 10)
                if r is None:
                    print(f"  {name}: not registered")
                    continue
                results["rtf"].append(r)
                print(f"  {name:<12} {r['device']:<5} batch {r['batch']} x {r['clip_s']} s: "
                      f"{r['s_per_batch']:.3f} s/batch, RTF {r['rtf']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
