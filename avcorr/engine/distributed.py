"""Process-group helpers for ``torchrun`` (DDP on NCCL with CUDA, gloo on CPU)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by torchrun.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` for a single process.
    """
    if env_world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Mean of a Python float over all processes (the value itself when not distributed)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).item()


def any_process(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true in any process (``flag`` itself when not distributed)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_gather_objects(obj: object) -> list:
    """``obj`` of every process, by rank (``[obj]`` when not distributed); every process must call it."""
    if not dist.is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy process ``src``'s buffers of ``module`` (e.g. BatchNorm running statistics) into every process's
    (nothing when not distributed); every process must call it."""
    if not dist.is_initialized():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src)


def cleanup(wait_for_all: bool = False) -> None:
    """Leave the process group. With ``wait_for_all`` (a run that ended normally on every rank) the ranks
    meet at a barrier first, so that none tears its group down while another still uses it (gloo ranks
    that left alone were seen to abort at exit, rarely)."""
    if dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` -> this process's CUDA device when present (LOCAL_RANK under torchrun), else CPU."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={spec!r} but CUDA is not available on this machine")
    return dev
