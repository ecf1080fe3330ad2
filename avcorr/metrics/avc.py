"""Audio-visual correspondence metrics."""

from __future__ import annotations

import torch


def avc_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of pairs whose predicted correspondence matches the label.

    Args:
        logits: (N, 2) scores, column 1 = "audio and frame correspond".
        labels: (N,) integers in {0, 1}.
    """
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree")
    if labels.numel() == 0:
        raise ValueError("avc_accuracy of an empty set")
    return (logits.argmax(-1) == labels).float().mean().item()
