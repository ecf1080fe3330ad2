"""Sound-localization metrics: cIoU, ``ciou@0.5`` and ``auc_ciou`` under the LVS / EZ-VSL protocol.

The protocol (Chen et al., "Localizing Visual Sounds the Hard Way", CVPR 2021, ``test.py`` and
``utils.py`` of hche11/Localizing-Visual-Sounds-the-Hard-Way; Mo & Morgado, EZ-VSL, ECCV 2022,
``test.py`` / ``utils.py`` of stoneMo/EZ-VSL), step by step, as implemented here:

1. **Resize.** The model's map (h, w) is resized bilinearly to the evaluation frame, 224 x 224
   (LVS: ``cv2.resize(..., INTER_LINEAR)``, pixel-centre aligned; here
   ``F.interpolate(mode="bilinear", align_corners=False)``, which gives the same values when
   upsampling). Frames are squashed to a square (no crop), so normalised boxes map directly.
2. **Min-max normalise** each map to [0, 1]; a constant map is left as it is (as LVS's
   ``normalize_img`` does), so nothing of it is "on" below.
3. **Binarise: the top half of the pixels is "on".** LVS's exact rule: sort the N = 224 * 224
   values, take ``t = sorted[int(N / 2)]`` (0-based; the median from above) and switch on the
   pixels with value **strictly greater** than ``t``. So at most ``N / 2 - 1`` pixels are on, and
   fewer when values tie at ``t`` (a map that is flat over most of the frame switches on only what
   rises above the flat part). EZ-VSL's code uses ``>= t`` instead (ties at ``t`` are on); the two
   agree on maps without ties, i.e. on every real-valued model output in practice.
   ``threshold=<float>`` switches on the pixels whose normalised value is ``>=`` that number
   instead (the fixed-threshold cIoU(tau) of Senocak et al., CVPR 2018); see :func:`binarize`.
4. **Ground truth** (VGG-SS convention of LVS's ``testset_gt``): every box ``[x1, y1, x2, y2]``
   in [0, 1] becomes the pixel block ``[int(224 * max(y1, 0)) : int(224 * max(y2, 0)),
   int(224 * max(x1, 0)) : int(224 * max(x2, 0))]``; the union of a clip's boxes is the binary
   ground-truth map.
5. **cIoU** = ``sum(pred * gt) / (sum(gt) + sum(pred * [gt == 0]))``.
6. ``ciou@0.5`` = fraction of clips with cIoU >= 0.5; ``auc_ciou`` = area (trapezoid rule) under
   the success curve ``s(t) = fraction of clips with cIoU >= t`` at the 21 thresholds
   ``t = 0.05 * i``, i = 0..20 (computed as ``0.05 * i`` in floating point, exactly as the
   reference code does, so ``0.05 * 3`` is slightly above 0.15).

Note on object size: with half of the frame "on", ``cIoU <= 2 * area(gt)`` whenever the box lies
inside the on region, so ``ciou@0.5`` can only be reached for sounding objects that cover at least
a quarter of the frame (true of most Flickr-SoundNet / VGG-SS objects). For datasets of small
objects, ``threshold=0.5`` (fixed) measures localisation instead of object size.

Everything here takes numpy arrays or torch tensors and returns plain numbers or arrays; nothing
imports models or data.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "AUC_THRESHOLDS",
    "EVAL_SIZE",
    "auc_ciou",
    "binarize",
    "box_map",
    "center_prior_map",
    "ciou",
    "ciou_at",
    "localization_cious",
    "localization_summary",
    "normalize_map",
    "resize_map",
]

EVAL_SIZE = 224
"""Side of the square evaluation frame (LVS / EZ-VSL evaluate at 224 x 224)."""

AUC_THRESHOLDS: tuple[float, ...] = tuple(0.05 * i for i in range(21))
"""The 21 cIoU thresholds of the success curve, ``0.05 * i`` as in the reference code."""

Threshold = Union[str, float]
Box = Sequence[float]


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def resize_map(heatmap, size: int | tuple[int, int] = EVAL_SIZE) -> torch.Tensor:
    """Bilinearly resize maps to ``size`` (pixel-centre aligned, like ``cv2.resize`` INTER_LINEAR).

    Args:
        heatmap: float (h, w) or (B, h, w) array or tensor.
        size: output side, or ``(height, width)``.

    Returns:
        float32 tensor (H, W) or (B, H, W), on the input's device.
    """
    m = _as_tensor(heatmap).float()
    if m.dim() not in (2, 3):
        raise ValueError(f"expected a (h, w) or (B, h, w) map, got shape {tuple(m.shape)}")
    squeeze = m.dim() == 2
    size = (size, size) if isinstance(size, int) else tuple(size)
    out = F.interpolate(m.reshape(-1, 1, *m.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    out = out[:, 0]
    return out[0] if squeeze else out


def normalize_map(heatmap) -> torch.Tensor:
    """Min-max normalise each map to [0, 1]; a constant map is returned unchanged (as LVS does).

    Args:
        heatmap: float (H, W) or (B, H, W).

    Returns:
        float32 tensor of the same shape.
    """
    m = _as_tensor(heatmap).float()
    flat = m.reshape(-1, m.shape[-2] * m.shape[-1]) if m.dim() == 3 else m.reshape(1, -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    rng = hi - lo
    out = torch.where(rng > 0, (flat - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)), flat)
    return out.reshape(m.shape)


def binarize(heatmap, threshold: Threshold = "median") -> torch.Tensor:
    """Which pixels of a normalised map are "on".

    Args:
        heatmap: float (H, W) or (B, H, W), already min-max normalised (:func:`normalize_map`).
        threshold: ``"median"`` (LVS: pixels strictly above ``sorted[int(N / 2)]``, i.e. the top
            half, fewer on ties) or a number: pixels whose value is ``>=`` it.

    Returns:
        bool tensor of the same shape.
    """
    m = _as_tensor(heatmap).float()
    if isinstance(threshold, str):
        if threshold != "median":
            raise ValueError(f"threshold must be 'median' or a number, got {threshold!r}")
        flat = m.reshape(-1, m.shape[-2] * m.shape[-1]) if m.dim() == 3 else m.reshape(1, -1)
        n = flat.shape[1]
        # sorted[int(n / 2)] (0-based) is the (int(n / 2) + 1)-th smallest value
        t = flat.kthvalue(int(n / 2) + 1, dim=1, keepdim=True).values
        return (flat > t).reshape(m.shape)
    return m >= float(threshold)


def box_map(boxes: Iterable[Box], size: int = EVAL_SIZE) -> np.ndarray:
    """Ground-truth map of the union of normalised boxes (VGG-SS convention of the LVS code).

    Args:
        boxes: ``[x1, y1, x2, y2]`` boxes in [0, 1] (x to the right, y down).
        size: side of the square map.

    Returns:
        float32 (size, size) array, 1 inside any box, else 0.
    """
    gt = np.zeros((size, size), dtype=np.float32)
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"a box is [x1, y1, x2, y2], got {box!r}")
        x1, y1, x2, y2 = (int(size * max(float(v), 0.0)) for v in box)
        gt[y1:y2, x1:x2] = 1.0
    return gt


def ciou(pred, gt) -> torch.Tensor:
    """Consensus IoU ``sum(pred * gt) / (sum(gt) + sum(pred * [gt == 0]))`` per map.

    Args:
        pred: bool or {0, 1} (H, W) or (B, H, W): the pixels that are on.
        gt: float (H, W) or (B, H, W) ground truth in [0, 1] (binary here; LVS's Flickr maps are
            soft consensus maps, which the formula accepts as they are).

    Returns:
        float64 tensor, scalar or (B,). NaN where ``gt`` is empty and nothing is on (no box).
    """
    p = _as_tensor(pred).double()
    g = _as_tensor(gt).double().to(p.device)
    if p.shape != g.shape:
        raise ValueError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} differ in shape")
    dims = (-2, -1)
    inter = (p * g).sum(dims)
    union = g.sum(dims) + (p * (g == 0)).sum(dims)
    return inter / union


def ciou_at(cious, threshold: float = 0.5) -> float:
    """Fraction of clips whose cIoU is at least ``threshold`` (``ciou@0.5`` for 0.5).

    Args:
        cious: (N,) per-clip cIoU values (no NaN).
    """
    c = np.asarray(cious, dtype=np.float64).reshape(-1)
    if c.size == 0:
        return float("nan")
    return float(np.mean(c >= threshold))


def auc_ciou(cious) -> float:
    """Area under the success curve over :data:`AUC_THRESHOLDS` (trapezoid rule), as LVS / EZ-VSL.

    Args:
        cious: (N,) per-clip cIoU values.
    """
    c = np.asarray(cious, dtype=np.float64).reshape(-1)
    if c.size == 0:
        return float("nan")
    x = np.asarray(AUC_THRESHOLDS)
    y = np.array([np.mean(c >= t) for t in AUC_THRESHOLDS])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def center_prior_map(size: int = EVAL_SIZE, sigma: float = 0.25) -> np.ndarray:
    """The centre-prior baseline: an isotropic Gaussian bump centred on the frame.

    Under the median rule any map that falls off with the distance to the centre switches on the
    central disc of half the frame's area, whatever ``sigma``; under a fixed threshold ``t`` the
    disc has radius ``sigma * sqrt(-2 ln t)`` frame sides.

    Args:
        size: side of the square map.
        sigma: standard deviation as a fraction of the side.

    Returns:
        float32 (size, size) in (0, 1], 1 at the centre.
    """
    c = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return np.exp(-(xx**2 + yy**2) / (2 * sigma**2)).astype(np.float32)


def localization_cious(heatmaps, boxes: Sequence[Sequence[Box]], *, threshold: Threshold = "median",
                       size: int = EVAL_SIZE) -> np.ndarray:
    """Per-clip cIoU of model maps against boxes, with the whole protocol (resize, normalise, binarise).

    Args:
        heatmaps: float (B, h, w) maps (any resolution; higher = more likely the source).
        boxes: B lists of normalised ``[x1, y1, x2, y2]`` boxes; clips without boxes get NaN.
        threshold: see :func:`binarize`.
        size: evaluation resolution (224 in LVS / EZ-VSL).

    Returns:
        float64 (B,) array of cIoU values (NaN for clips without boxes).
    """
    maps = _as_tensor(heatmaps)
    if maps.dim() == 2:
        maps = maps.unsqueeze(0)
    if maps.shape[0] != len(boxes):
        raise ValueError(f"{maps.shape[0]} maps but {len(boxes)} box lists")
    out = np.full(len(boxes), np.nan)
    keep = [i for i, b in enumerate(boxes) if len(b)]
    if not keep:
        return out
    pred = binarize(normalize_map(resize_map(maps[keep].detach().cpu(), size)), threshold)
    gt = torch.from_numpy(np.stack([box_map(boxes[i], size) for i in keep]))
    out[keep] = ciou(pred, gt).numpy()
    return out


def localization_summary(cious, prefix: str = "") -> dict[str, float]:
    """``ciou@0.5``, ``auc_ciou`` and the mean cIoU of the clips with boxes (NaN entries ignored).

    Args:
        cious: (N,) per-clip cIoU values, NaN for clips without boxes.
        prefix: put before every key (e.g. ``"center/"``).

    Returns:
        ``{prefix + "ciou@0.5", prefix + "auc_ciou", prefix + "ciou_mean"}``; NaN when no clip has boxes.
    """
    c = np.asarray(cious, dtype=np.float64).reshape(-1)
    c = c[~np.isnan(c)]
    mean = float(c.mean()) if c.size else math.nan
    return {f"{prefix}ciou@0.5": ciou_at(c, 0.5), f"{prefix}auc_ciou": auc_ciou(c), f"{prefix}ciou_mean": mean}
