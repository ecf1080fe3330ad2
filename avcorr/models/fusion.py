"""Inference-time folding of BatchNorm into the convolution before it.

In eval mode a BatchNorm after a convolution is an affine map per channel, so it can be folded into
the convolution's weights and bias: one pass over memory less per layer, the same outputs up to
float rounding. PANNs' blocks (``conv1``/``bn1``, ``conv2``/``bn2``) and the VGG-style towers of
AVE-Net / AVOL-Net (``Conv2d`` then ``BatchNorm2d`` in a ``Sequential``) are folded; anything else is
left as it is. Only for inference: a folded model must not be trained (its BatchNorms are gone).
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fuse_conv_bn"]

logger = logging.getLogger(__name__)


def _fusable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
            and bn.running_mean is not None and conv.out_channels == bn.num_features)


def fuse_conv_bn(model: nn.Module) -> int:
    """Fold every BatchNorm2d that follows a Conv2d into it, in place (the BatchNorm becomes ``Identity``).

    Args:
        model: a model in eval mode.

    Returns:
        How many pairs were folded.

    Raises:
        ValueError: the model is in training mode.
    """
    if model.training:
        raise ValueError("fuse_conv_bn is for inference: call model.eval() first")
    fused = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (name_a, a), (name_b, b) in zip(children, children[1:]):
                if _fusable(a, b):
                    setattr(module, name_a, fuse_conv_bn_eval(a, b))
                    setattr(module, name_b, nn.Identity())
                    fused += 1
        else:
            i = 1
            while hasattr(module, f"conv{i}") and hasattr(module, f"bn{i}"):
                conv, bn = getattr(module, f"conv{i}"), getattr(module, f"bn{i}")
                if _fusable(conv, bn):
                    setattr(module, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(module, f"bn{i}", nn.Identity())
                    fused += 1
                i += 1
    logger.debug("folded %d BatchNorm layers into their convolutions", fused)
    return fused
