"""Mixed precision on CUDA, shared by the trainer and the library's inference loops."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA where supported, else fp16; a no-op on CPU or when not ``enabled``."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()
