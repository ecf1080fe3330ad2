"""Frame and waveform transforms used by the datasets."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frame_transform(image_size: int, train: bool, augment: bool = True) -> v2.Compose:
    """uint8 (3, H, W) frame -> float (3, image_size, image_size), ImageNet-normalised.

    Training (with ``augment``) uses the usual augmentations of the AVC papers: random resized crop
    (scale 0.7-1), horizontal flip, brightness and saturation jitter. Evaluation resizes the short
    side and centre-crops.

    Args:
        image_size: output side in pixels.
        train: training (random) or evaluation (deterministic) pipeline.
        augment: with ``train``, whether to apply the random augmentations.
    """
    if train and augment:
        ops = [
            # per-pixel jitter commutes with resizing: apply it at the (usually smaller) source size
            v2.ColorJitter(brightness=0.3, saturation=0.3),
            v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    else:
        ops = [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose(ops + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Invert :func:`frame_transform`'s normalisation: float (..., 3, H, W) -> float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)
