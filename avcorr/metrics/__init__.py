"""Metrics: pure functions over arrays / tensors (no model or data imports)."""

from .avc import avc_accuracy

__all__ = ["avc_accuracy"]
