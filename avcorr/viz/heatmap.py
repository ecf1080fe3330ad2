"""Pictures of sound-localization maps: heatmap overlays with the peak marked, and contact sheets.

Everything takes arrays (frames as uint8 ``(H, W, 3)`` RGB, maps as float ``(h, w)`` of any
resolution, boxes as normalised ``[x1, y1, x2, y2]``) and returns arrays or writes files; nothing
imports models or data. OpenCV draws the overlays (fast enough for every frame of a video);
matplotlib lays out contact sheets.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path, write_bytes

__all__ = ["colorize", "draw_boxes", "overlay_heatmap", "peak_location", "save_contact_sheet", "save_png",
           "to_uint8_hwc"]

Box = Sequence[float]
_BOX_COLOUR = (0, 255, 0)  # RGB green: ground truth
_PEAK_COLOUR = (255, 255, 255)


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("heatmap pictures need OpenCV: pip install opencv-python-headless") from e
    return cv2


def to_uint8_hwc(frame) -> np.ndarray:
    """A frame as a contiguous uint8 (H, W, 3) RGB array.

    Args:
        frame: uint8 or float-in-[0, 1] image, (H, W, 3) or (3, H, W), numpy or torch.
    """
    a = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if a.ndim != 3:
        raise ValueError(f"expected an (H, W, 3) or (3, H, W) frame, got shape {a.shape}")
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _resize_normalize(heatmap, height: int, width: int) -> np.ndarray:
    """float (h, w) map -> float32 (height, width) in [0, 1] (bilinear, min-max; a flat map gives zeros)."""
    cv2 = _cv2()
    m = heatmap.detach().cpu().float().numpy() if hasattr(heatmap, "detach") else np.asarray(heatmap, np.float32)
    if m.ndim != 2:
        raise ValueError(f"expected an (h, w) heatmap, got shape {m.shape}")
    m = cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def colorize(heatmap01: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8 (H, W, 3) RGB with the jet colour map (blue low, red high)."""
    cv2 = _cv2()
    u8 = np.clip(np.rint(np.asarray(heatmap01) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def peak_location(heatmap, height: int, width: int) -> tuple[int, int]:
    """``(x, y)`` pixel of the maximum of ``heatmap`` resized (bilinearly) to ``height x width``."""
    m = _resize_normalize(heatmap, height, width)
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(x), int(y)


def draw_boxes(image: np.ndarray, boxes: Sequence[Box], colour: tuple[int, int, int] = _BOX_COLOUR,
               thickness: int | None = None) -> np.ndarray:
    """Draw normalised ``[x1, y1, x2, y2]`` boxes on a copy of a uint8 (H, W, 3) image."""
    cv2 = _cv2()
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 160))
    for x1, y1, x2, y2 in boxes:
        p1 = (int(round(x1 * w)), int(round(y1 * h)))
        p2 = (min(w - 1, int(round(x2 * w))), min(h - 1, int(round(y2 * h))))
        cv2.rectangle(out, p1, p2, colour, t)
    return out


def overlay_heatmap(frame, heatmap, *, alpha: float = 0.45, mark_peak: bool = True,
                    boxes: Sequence[Box] = ()) -> np.ndarray:
    """Blend a localization map over a frame, mark its peak and draw ground-truth boxes.

    Args:
        frame: the picture (see :func:`to_uint8_hwc`), shape (H, W, 3) or (3, H, W).
        heatmap: float (h, w) map, any resolution; it is resized to the frame and min-max normalised.
        alpha: opacity of the colour map.
        mark_peak: draw a white cross in a dark ring at the maximum.
        boxes: normalised ``[x1, y1, x2, y2]`` boxes drawn in green.

    Returns:
        uint8 (H, W, 3) RGB image.
    """
    cv2 = _cv2()
    img = to_uint8_hwc(frame)
    h, w = img.shape[:2]
    m = _resize_normalize(heatmap, h, w)
    out = cv2.addWeighted(colorize(m), alpha, img, 1.0 - alpha, 0.0)
    if boxes:
        out = draw_boxes(out, boxes)
    if mark_peak:
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        size = max(3, round(min(h, w) / 10))
        t = max(1, round(min(h, w) / 200))
        cv2.circle(out, (int(x), int(y)), size // 2 + t, (0, 0, 0), t + 1, cv2.LINE_AA)
        cv2.drawMarker(out, (int(x), int(y)), _PEAK_COLOUR, cv2.MARKER_CROSS, size, t, cv2.LINE_AA)
    return out


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) RGB image as PNG atomically (temporary file, then rename)."""
    cv2 = _cv2()
    path = Path(path)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(to_uint8_hwc(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{path}: OpenCV could not encode the image")
    return write_bytes(path, buf.tobytes())


def save_contact_sheet(path: str | os.PathLike, frames: Sequence, heatmaps: Sequence, *,
                       boxes: Sequence[Sequence[Box]] | None = None, titles: Sequence[str] | None = None,
                       columns: int = 4, alpha: float = 0.45, dpi: int = 150) -> Path:
    """One PNG with, for every clip, its frame (with ground-truth boxes) and the heatmap overlay.

    Args:
        path: output PNG (written atomically).
        frames: N frames (see :func:`to_uint8_hwc`).
        heatmaps: N float (h, w) maps.
        boxes: N lists of normalised boxes (green), or None.
        titles: N captions (e.g. the clip id and its cIoU), or None.
        columns: clips per row (each clip takes two panels: frame, overlay).
        alpha: opacity of the colour map.
        dpi: resolution of the PNG.

    Returns:
        ``path``.
    """
    if len(frames) != len(heatmaps) or not len(frames):
        raise ValueError(f"need as many heatmaps as frames (got {len(frames)} frames, {len(heatmaps)} heatmaps)")
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("contact sheets need matplotlib: pip install matplotlib") from e
    n = len(frames)
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2 * cols * 2.0, rows * 2.25))
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        b = list(boxes[i]) if boxes is not None else []
        img = to_uint8_hwc(frames[i])
        axes[r, 2 * c].imshow(draw_boxes(img, b) if b else img)
        axes[r, 2 * c + 1].imshow(overlay_heatmap(img, heatmaps[i], alpha=alpha, boxes=b))
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=7, loc="left")
    fig.tight_layout(pad=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
