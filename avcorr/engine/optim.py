"""Optimisers with per-prefix learning-rate multipliers, and step-wise schedules."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import OptimConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Parameter groups by ``cfg.lr_mult`` prefix (longest match wins); the rest at ``cfg.lr``."""
    groups: dict[float, list[nn.Parameter]] = {}
    prefixes = sorted(cfg.lr_mult, key=len, reverse=True)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = next((cfg.lr_mult[pre] for pre in prefixes if name.startswith(pre)), 1.0)
        groups.setdefault(mult, []).append(p)
    params = [{"params": ps, "lr": cfg.lr * m, "lr_mult": m} for m, ps in groups.items()]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"optim.name must be 'adam', 'adamw' or 'sgd', got {cfg.name!r}")


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    epochs: int, max_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then ``constant``, ``cosine`` (to 0 at the last step) or ``step`` decay.

    The last step is ``steps_per_epoch * epochs``, or ``max_steps`` when that comes first or when
    ``epochs`` is 0 (no epoch limit): a run stopped by ``train.max_steps`` still ends its cosine at 0.
    """
    total = steps_per_epoch * epochs if epochs > 0 else max_steps
    if max_steps > 0:
        total = min(total, max_steps)
    total = max(1, total)
    if cfg.schedule not in ("constant", "cosine", "step"):
        raise ValueError(f"optim.schedule must be 'constant', 'cosine' or 'step', got {cfg.schedule!r}")

    def factor(step: int) -> float:
        f = 1.0
        if cfg.warmup_steps and step < cfg.warmup_steps:
            f = (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            progress = min(1.0, max(0, step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
            f *= 0.5 * (1 + math.cos(math.pi * progress))
        elif cfg.schedule == "step":
            epoch = step // max(1, steps_per_epoch)
            f *= cfg.step_gamma ** sum(epoch >= e for e in cfg.step_epochs)
        return f

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
