"""Frame and waveform transforms used by the datasets, and their parts that run batched on the device
(:func:`device_frames`, :func:`device_audio`) with ``data.device_transforms``."""

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
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), brightness: float = 0.3, saturation: float = 0.3,
                 on_device: bool = False):
        self.size = int(image_size)
        self.random = bool(train and augment)
        self.scale, self.ratio = scale, ratio
        self.brightness, self.saturation = brightness, saturation
        self.on_device = bool(on_device)

    def __call__(self, frame: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Args:
            frame: uint8 RGB frame, (3, H, W) tensor (as the decoders return) or (H, W, 3) array; or
                a (N, 3, H, W) tensor of frames of one clip, which all get the SAME random crop,
                flip and jitter (as torchvision's v2 transforms treat a batch).

        Returns:
            float32 (3, S, S), or (N, 3, S, S) for N frames.
        """
        images, params = self._prepare(frame)
        out = torch.stack([self._apply(im, params) for im in images])
        return out if isinstance(frame, torch.Tensor) and frame.dim() == 4 else out[0]

    def fields(self, frame: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """The item's frame entries: ``{"image": float32 (3, S, S)}`` (this transform applied), or with
        ``on_device`` ``{"image": uint8 (3, S, S), "image_jitter": float32 (3,)}``: the frame after the
        geometric part (resize, crop) and the colour jitter and flip still to apply (brightness and
        saturation factors, flip 0 / 1; identity ``(1, 1, 0)`` without random augmentation), which
        :func:`device_frames` applies with the normalisation to a whole batch on its device.

        The random draws are the same, in the same order, as :meth:`__call__`'s: under the same torch
        seed both paths choose the same crop, flip and jitter.

        Args:
            frame: uint8 RGB frame, (3, H, W) tensor or (H, W, 3) array; or a (N, 3, H, W) tensor of the
                frames of one clip, which share one draw: ``image`` is then (N, 3, S, S) (float32, or uint8
                with one ``image_jitter`` (3,) for all N).
        """
        if not self.on_device:
            return {"image": self(frame)}
        images, params = self._prepare(frame)
        jitter = torch.tensor([1.0, 1.0, 0.0])
        if params is not None:
            jitter = torch.tensor([params["brightness"] if self.brightness > 0 else 1.0,
                                   params["saturation"] if self.saturation > 0 else 1.0, float(params["flip"])])
        out = torch.stack([self._geometry(im, params) for im in images])
        image = out if isinstance(frame, torch.Tensor) and frame.dim() == 4 else out[0]
        return {"image": image, "image_jitter": jitter}

    def _geometry(self, image: np.ndarray, params: dict | None) -> torch.Tensor:
        """The geometric part of :meth:`_apply` (the drawn crop resized, or the evaluation's centre square):
        uint8 (H, W, C) -> uint8 (3, S, S)."""
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        if params is not None:
            top, left, ch, cw = params["crop"]
            image = _resize(image[top:top + ch, left:left + cw], self.size, self.size)
        else:
            image = resize_centre_crop(image, self.size)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()

    def _prepare(self, frame: torch.Tensor | np.ndarray) -> tuple[list[np.ndarray], dict | None]:
        """The frame(s) as uint8 (H, W, C) arrays, and the random draws (None without random augmentation)."""
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
        return images, params

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


def frame_transform(image_size: int, train: bool, augment: bool = True, on_device: bool = False) -> FrameTransform:
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
        on_device: :meth:`FrameTransform.fields` leaves the colour jitter, the flip and the
            normalisation to :func:`device_frames` (uint8 frames travel to the device).
    """
    return FrameTransform(image_size, train=train, augment=augment, on_device=on_device)


def device_frames(images: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """The rest of :class:`FrameTransform` on a batch, on the batch's device: colour jitter, flip, normalisation.

    Brightness multiplies the pixels, saturation blends each pixel with its grey level (ITU-R 601
    weights), each clamped to [0, 255] as the CPU path saturates; the flip mirrors the width. The CPU
    path jitters before resizing and rounds to uint8 after each step, so the two agree to a few grey
    levels where nothing saturates (exactly without jitter). The memory format of ``images`` is kept
    (channels-last stays channels-last).

    Args:
        images: uint8 (B, 3, S, S) frames (:meth:`FrameTransform.fields`'s ``image``, collated).
        jitter: float (B, 3) brightness factor, saturation factor, flip (0 / 1); None = no jitter or flip.

    Returns:
        float32 (B, 3, S, S), ImageNet-normalised, on ``images``' device.
    """
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (B, 3, S, S) frames, got {images.dtype} {tuple(images.shape)}")
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    x = images.float()
    if jitter is not None:
        jitter = jitter.to(device=x.device, dtype=torch.float32)
        if jitter.shape != (x.shape[0], 3):
            raise ValueError(f"expected a (B, 3) jitter for {x.shape[0]} frames, got {tuple(jitter.shape)}")
        brightness, saturation = jitter[:, 0, None, None, None], jitter[:, 1, None, None, None]
        x = (x * brightness).clamp_(0, 255)
        grey = (x * torch.tensor(_GRAY_WEIGHTS, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = (x * saturation + grey * (1 - saturation)).clamp_(0, 255)
        x = torch.where(jitter[:, 2, None, None, None] > 0.5, x.flip(-1), x)
    x = x * _SCALE.to(x.device) + _SHIFT.to(x.device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


PCM16_SCALE = 32768.0  # int16 sample v stands for v / 32768 (the shards' and 16-bit PCM's convention)


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """A float waveform as 16-bit PCM: ``round(x * 32768)``, clipped to [-32768, 32767].

    Exact for audio that came from int16 (the shards' default ``audio_dtype``, 16-bit PCM files): every
    such sample is a multiple of 1/32768 in [-1, 1). Anything else is rounded to the nearest 1/32768
    of full scale (an error of at most 1/65536), and values at or above 1.0 are clipped to 32767/32768.

    Args:
        wave: float (..., T) in [-1, 1].

    Returns:
        int16 (..., T).
    """
    scaled = np.rint(np.asarray(wave, dtype=np.float32) * np.float32(PCM16_SCALE))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def device_audio(audio: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor:
    """16-bit PCM waveforms back to float32 on their device, times each one's gain (``data.device_transforms``).

    ``audio * (1 / 32768) * gain`` in float32, the operations the CPU path makes on the int16 it read,
    so the result equals it bit for bit.

    Args:
        audio: int16 (B, T) (:func:`to_pcm16`), or (B, N, T) (N waveforms per example); a float batch is
            returned as it is.
        gain: float (B,) (or (B, N)) gain of each waveform; None = 1.

    Returns:
        float32, ``audio``'s shape, on its device.
    """
    if audio.dtype != torch.int16:
        return audio
    x = audio.float().mul_(1.0 / PCM16_SCALE)
    if gain is not None:
        gain = gain.to(device=x.device, dtype=torch.float32)
        if gain.shape != x.shape[:-1]:
            raise ValueError(f"expected a {'(B,)' if x.dim() == 2 else '(B, N)'} gain, one per waveform of "
                             f"{tuple(x.shape)}, got {tuple(gain.shape)}")
        x.mul_(gain.unsqueeze(-1))
    return x


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Invert :func:`frame_transform`'s normalisation: float (..., 3, H, W) -> float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)
