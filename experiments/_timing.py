"""Training-throughput timing shared by ``bench_train.py`` and ``bench_sop.py``."""

from __future__ import annotations

import time
from typing import Callable

import torch


def train_throughput(loss_fn: Callable[[], torch.Tensor], opt: torch.optim.Optimizer, device: torch.device,
                     batch: int, steps: int, *, warmup: int = 1, amp: bool = False) -> float:
    """Items per second of ``steps`` optimiser steps, timed after ``warmup`` untimed ones.

    A step is ``loss_fn()`` (under bf16 autocast when ``amp``), ``zero_grad``, ``backward`` and
    ``opt.step()``; on CUDA the device is synchronised before and after the timed steps.

    Args:
        loss_fn: the forward pass on a fixed batch; returns the scalar loss.
        opt: the optimiser of the model ``loss_fn`` runs.
        device: where the model runs.
        batch: items in the batch (the rate is ``batch * steps / seconds``).
        steps: timed steps.
        warmup: untimed steps first (allocations, autotuning, compilation).
        amp: bf16 autocast of the forward pass.
    """

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)
