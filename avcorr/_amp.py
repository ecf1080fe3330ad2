"""Mixed precision, shared by the trainer and the library's inference loops.

:func:`autocast` is the trainer's (and evaluation's) CUDA mixed precision. :func:`inference_autocast`
is the ``precision`` option of tagging inference (``fp32`` / ``bf16``), on the CPU as on CUDA;
:func:`check_precision` validates that option and warns, once per process and device kind, when
bf16 was asked for on hardware that only emulates it (then it is slower than fp32, not faster).
"""

from __future__ import annotations

import contextlib
import logging
import platform

import torch

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")
_warned: set[str] = set()  # device kinds already warned about (one warning per process)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA where supported, else fp16; a no-op on CPU or when not ``enabled``."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86: AVX512-BF16 or AMX; Arm: the BF16 extension).

    Without it torch still runs bf16 autocast, converting in software, and slower than fp32.
    """
    if platform.machine().lower() in ("arm64", "aarch64"):
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # on Arm: cpuinfo's BF16 flag
        except (AttributeError, RuntimeError):
            return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [c for c in checks if callable(c)]
    if checks:
        return any(bool(c()) for c in checks)
    capability = torch.backends.cpu.get_cpu_capability().upper()  # older torch: "AMX" implies bf16
    return "AMX" in capability or "BF16" in capability


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` (CPU or CUDA) runs bfloat16 in hardware (CUDA: compute capability 8.0 and up)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_bf16()


def validate_precision(precision: str) -> str:
    """``precision`` itself when it is one of :data:`PRECISIONS`.

    Raises:
        ValueError: any other value.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_precision(precision: str, device: torch.device) -> None:
    """Validate a tagging ``precision`` for ``device``; warn once when bf16 would be emulated.

    The choice made here: bf16 on hardware without bf16 instructions is allowed (the outputs are
    the same as on a machine with them) but logged as a warning, once per process and device kind,
    because it runs slower than fp32 there.

    Raises:
        ValueError: ``precision`` not in :data:`PRECISIONS`, or bf16 on a device that is neither CPU nor CUDA.
    """
    if validate_precision(precision) == "fp32":
        return
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision 'bf16' runs on the CPU or CUDA, not on {device.type}")
    if device.type not in _warned and not bf16_is_native(device):
        _warned.add(device.type)
        what = (f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no bf16 instructions (AVX512-BF16, AMX)"
                if device.type == "cpu" else "this GPU has no bf16 units (compute capability below 8.0)")
        logger.warning("precision bf16: %s, so bf16 is emulated and slower than fp32; use fp32 here", what)


def inference_autocast(device: torch.device, precision: str):
    """The context a tagging forward pass runs in: bf16 autocast for ``"bf16"``, nothing for ``"fp32"``.

    Args:
        device: where the model runs (CPU or CUDA for bf16).
        precision: ``"fp32"`` or ``"bf16"`` (checked by :func:`check_precision` beforehand).

    Raises:
        ValueError: an unknown ``precision``.
    """
    if validate_precision(precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
