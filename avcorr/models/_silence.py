"""Digital silence in log spectrograms: find its frames and keep it out of the input normalisation.

Short sounds reach the audio towers zero-padded to the window (a spoken digit of 0.4 s in a 3 s window),
and some datasets store such padding in their files. Every frame of exact zeros sits at the front-end's
floor (``log(eps)``, ``10 log10(amin)``), far below any recorded sound, so a batch normalisation over
the whole input gets bimodal statistics: the mean falls between silence and sound, the variance is
the gap between them, and the sound itself is squeezed into a small part of the normalised range.
:func:`masked_batch_norm` normalises with statistics of the other frames only and sets the silent
frames to the normalised mean (as SpecAugment's stripes are), with the same parameters and running
buffers as the ``nn.BatchNorm`` it is given; :class:`SilenceMaskedBatchNorm2d` is an ``nn.BatchNorm2d``
that does so, with the same state-dict keys (checkpoints load either way).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SilenceMaskedBatchNorm2d", "masked_batch_norm", "silent_frames"]


def silent_frames(logspec: torch.Tensor, floor: float, band_dim: int, tol: float) -> torch.Tensor:
    """bool mask, ``logspec``'s shape with ``band_dim`` of size 1: True where every band of a frame is
    within ``tol`` of ``floor`` (the log of the front-end's floor: digital silence)."""
    return logspec.amax(dim=band_dim, keepdim=True) <= floor + tol


def masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``bn(x)`` with the statistics taken over the entries where ``keep`` is True; the others come out
    at the normalised mean (``bn.bias``).

    Args:
        bn: the batch normalisation whose parameters, running buffers and momentum are used (its
            running statistics are updated in training mode, as ``bn`` itself would).
        x: float (B, C, ...) input, channels in dim 1.
        keep: bool, broadcastable to ``x`` with size 1 in dim 1 (the same frames for every channel).

    Returns:
        ``x``'s shape.
    """
    dims = [d for d in range(x.dim()) if d != 1]
    shape = [1, -1] + [1] * (x.dim() - 2)
    keep = keep.to(x.dtype)
    if bn.training or not bn.track_running_stats:
        n = (keep.expand_as(x[:, :1]).sum() * 1.0).clamp_min(1.0)
        mean = (x * keep).sum(dim=dims) / n
        var = (((x - mean.view(shape)) * keep) ** 2).sum(dim=dims) / n
        if bn.training and bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked += 1
                momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.lerp_(mean.detach().to(bn.running_mean.dtype), momentum)
                unbiased = var.detach() * (n / (n - 1).clamp_min(1.0))
                bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), momentum)
    else:
        mean, var = bn.running_mean, bn.running_var
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps) * keep
    return y * bn.weight.view(shape) + bn.bias.view(shape) if bn.affine else y


class SilenceMaskedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that leaves frames of digital silence out of its statistics (and its running
    buffers) and outputs them at the normalised mean (``bias``); the same keys as ``nn.BatchNorm2d``.

    Args:
        num_features: channels (dim 1 of the input).
        floor: the front-end's floor in its log units (``log(eps)``, or ``10 log10(amin)`` dB).
        band_dim: the frequency dimension of the (B, C, H, W) input (1 when the bands are the channels).
        tol: how far above ``floor`` a band may be and still count as silent (1 dB = 0.23 in natural log).
        kwargs: those of ``nn.BatchNorm2d``.
    """

    def __init__(self, num_features: int, floor: float, band_dim: int, tol: float, **kwargs):
        super().__init__(num_features, **kwargs)
        if band_dim not in (1, 2, 3):
            raise ValueError(f"band_dim must be 1, 2 or 3 of a (B, C, H, W) input, got {band_dim}")
        self.floor, self.band_dim, self.tol = float(floor), int(band_dim), float(tol)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        silent = silent_frames(x, self.floor, self.band_dim, self.tol).all(dim=1, keepdim=True)  # in every channel
        return masked_batch_norm(self, x, ~silent)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, floor={self.floor:g}, band_dim={self.band_dim}, tol={self.tol:g}"
