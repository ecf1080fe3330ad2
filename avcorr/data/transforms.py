"""Frame and waveform transforms used by the datasets."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_SCALE = torch.tensor([1.0 / (255.0 * s) for s in IMAGENET_STD]).view(3, 1, 1)
_SHIFT = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(3, 1, 1)
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as torchvision's rgb_to_grayscale


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize uint8 (H, W, 3): area averaging when shrinking (antialiased), bilinear when enlarging."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width < w and height < h
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _crop_params(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random resized crop, drawn as torchvision's RandomResizedCrop does."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1]))
        aspect = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)))
            left = int(torch.randint(0, width - w + 1, (1,)))
            return top, left, h, w
    in_ratio = width / height  # fallback: the largest centred crop within the ratio range
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def centre_crop_geometry(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where :func:`resize_centre_crop` puts a ``height x width`` frame: ``(new_h, new_w, top, left)``.

    The frame is resized to ``new_h x new_w`` (short side ``size``, aspect kept) and the
    ``size x size`` square at ``(top, left)`` of the resized frame is kept.
    """
    if height <= width:
        nh, nw = size, max(size, int(size * width / height))
    else:
        nh, nw = max(size, int(size * height / width)), size
    return nh, nw, (nh - size) // 2, (nw - size) // 2


def resize_centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The evaluation geometry of :func:`frame_transform`: short side to ``size``, then the centred square.

    Args:
        image: uint8 (H, W, C) frame.
        size: output side in pixels.

    Returns:
        uint8 (size, size, C), a view into the resized frame (area averaging when shrinking, bilinear
        when enlarging).
    """
    nh, nw, top, left = centre_crop_geometry(image.shape[0], image.shape[1], size)
    return _resize(image, nw, nh)[top:top + size, left:left + size]


class FrameTransform:
    """uint8 frame -> float (3, S, S), ImageNet-normalised; see :func:`frame_transform`.

    Works on uint8 HWC arrays with OpenCV and converts to float once, at the output size: about 5x
    faster than the equivalent torchvision ``v2`` pipeline on one core (see experiments/RESULTS.md),
    which matters because DataLoader workers share the CPU with the model.
    """

    def __init__(self, image_size: int, train: bool, augment: bool = True, *, scale: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), brightness: float = 0.3, saturation: float = 0.3):
        self.size = int(image_size)
        self.random = bool(train and augment)
        self.scale, self.ratio = scale, ratio
        self.brightness, self.saturation = brightness, saturation

    def __call__(self, frame: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Args:
            frame: uint8 RGB frame, (3, H, W) tensor (as the decoders return) or (H, W, 3) array; or
                a (N, 3, H, W) tensor of frames of one clip, which all get the SAME random crop,
                flip and jitter (as torchvision's v2 transforms treat a batch).

        Returns:
            float32 (3, S, S), or (N, 3, S, S) for N frames.
        """
        if isinstance(frame, torch.Tensor):
            if frame.dim() == 4 and frame.shape[1] in (1, 3):
                images = [f.permute(1, 2, 0).contiguous().numpy() for f in frame]
            elif frame.dim() == 3 and frame.shape[0] in (1, 3):
                images = [frame.permute(1, 2, 0).contiguous().numpy()]
            else:
                raise ValueError(f"expected a (3, H, W) or (N, 3, H, W) frame tensor, got shape {tuple(frame.shape)}")
        else:
            images = [np.ascontiguousarray(frame)]
        if images[0].dtype != np.uint8:
            raise ValueError(f"expected uint8 frames, got {images[0].dtype}")
        h, w = images[0].shape[:2]
        params = None
        if self.random:
            params = {
                "brightness": float(torch.empty(1).uniform_(1 - self.brightness, 1 + self.brightness)),
                "saturation": float(torch.empty(1).uniform_(1 - self.saturation, 1 + self.saturation)),
                "crop": _crop_params(h, w, self.scale, self.ratio),
                "flip": float(torch.rand(1)) < 0.5,
            }
        out = torch.stack([self._apply(im, params) for im in images])
        return out if isinstance(frame, torch.Tensor) and frame.dim() == 4 else out[0]

    def _apply(self, image: np.ndarray, params: dict | None) -> torch.Tensor:
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        s = self.size
        h, w = image.shape[:2]
        if params is not None:
            # per-pixel jitter commutes with resizing: apply it at the (usually smaller) source size
            if self.brightness > 0:
                image = cv2.convertScaleAbs(image, alpha=params["brightness"], beta=0)  # saturating multiply
            if self.saturation > 0:
                f = params["saturation"]
                gray = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                image = cv2.addWeighted(image, f, gray, 1 - f, 0)  # saturating blend with the grey image
            top, left, ch, cw = params["crop"]
            image = _resize(image[top:top + ch, left:left + cw], s, s)
            if params["flip"]:
                image = cv2.flip(image, 1)
        else:  # short side to S, centre crop
            image = resize_centre_crop(image, s)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous().float()
        return x.mul_(_SCALE).add_(_SHIFT)


def frame_transform(image_size: int, train: bool, augment: bool = True) -> FrameTransform:
    """uint8 (3, H, W) frame -> float (3, image_size, image_size), ImageNet-normalised.

    Training (with ``augment``) uses the usual augmentations of the AVC papers: brightness and
    saturation jitter (factors in [0.7, 1.3]), random resized crop (scale 0.7-1, aspect 3/4-4/3, drawn
    as torchvision draws it), horizontal flip. Evaluation resizes the short side and centre-crops.
    Shrinking averages pixel areas (antialiased), enlarging is bilinear. Random draws use torch's
    generator, so DataLoader workers are seeded as usual.

    Args:
        image_size: output side in pixels.
        train: training (random) or evaluation (deterministic) pipeline.
        augment: with ``train``, whether to apply the random augmentations.
    """
    return FrameTransform(image_size, train=train, augment=augment)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Invert :func:`frame_transform`'s normalisation: float (..., 3, H, W) -> float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)
