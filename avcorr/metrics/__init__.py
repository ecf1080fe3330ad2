"""Metrics: pure functions over arrays / tensors (no other part of avcorr is imported; rules in :mod:`avcorr`).

``avc_accuracy`` is imported on first use, so that :mod:`avcorr.metrics.names` (what a logged value is)
serves light tools (``evaluate --help``, the run report) without loading torch.
"""

from typing import Any

__all__ = ["avc_accuracy"]


def __getattr__(name: str) -> Any:
    if name == "avc_accuracy":
        from .avc import avc_accuracy

        return avc_accuracy
    raise AttributeError(f"module 'avcorr.metrics' has no attribute {name!r}")
