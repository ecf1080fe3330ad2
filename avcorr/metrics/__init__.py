"""Metrics: pure functions over arrays / tensors (no other part of avcorr is imported; rules in :mod:`avcorr`)."""

from .avc import avc_accuracy

__all__ = ["avc_accuracy"]
