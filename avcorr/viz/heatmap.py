"""Pictures of sound-localization maps: heatmap overlays with the peak marked, and contact sheets.

Everything takes arrays (frames as uint8 ``(H, W, 3)`` RGB, maps as float ``(h, w)`` of any
resolution, boxes as normalised ``[x1, y1, x2, y2]``) and returns arrays or writes files; nothing
imports models or data. OpenCV draws the overlays (fast enough for every frame of a video);
matplotlib lays out contact sheets.

Two scales: ``vrange=(lo, hi)`` maps the value ``lo`` to the bottom of the colour map and ``hi`` to
its top for every frame alike (an absolute scale: a map that is low everywhere stays dark, a map
twice as strong is brighter), while ``vrange=None`` stretches each map from its own minimum to its
maximum (a relative scale: the best cell of every frame looks hot, even where nothing sounds).
:func:`localization_frame` adds the colour bar that says which, and a caption (time, score).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._atomic import atomic_path, write_bytes

__all__ = ["colorize", "draw_boxes", "localization_frame", "overlay_heatmap", "peak_location", "save_contact_sheet",
           "save_png", "to_uint8_hwc", "value_range", "with_caption", "with_colorbar"]

Box = Sequence[float]
VRange = tuple[float, float]
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


def _as_numpy(heatmap) -> np.ndarray:
    return heatmap.detach().cpu().float().numpy() if hasattr(heatmap, "detach") else np.asarray(heatmap, np.float32)


def _check_vrange(vrange: VRange | None) -> VRange | None:
    if vrange is None:
        return None
    lo, hi = (float(v) for v in vrange)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"a value range needs finite lo < hi, got {vrange!r}")
    return lo, hi


def value_range(heatmaps: Sequence, *, percentile: float = 100.0) -> VRange:
    """One absolute scale for several maps (a whole clip, a batch): their joint minimum and maximum.

    Args:
        heatmaps: float (h, w) maps (or one (N, h, w) array).
        percentile: upper end as this percentile of all values (100 = the maximum; 99 ignores a
            few outlying cells); the lower end is the matching lower percentile.

    Returns:
        ``(lo, hi)`` with ``hi > lo`` (a constant set of maps gets ``(v - 0.5, v + 0.5)``).
    """
    values = np.concatenate([_as_numpy(m).ravel() for m in heatmaps]) if len(heatmaps) else np.zeros(0)
    values = values[np.isfinite(values)]
    if not values.size:
        raise ValueError("no finite map value to take a range from")
    lo, hi = (float(v) for v in np.percentile(values, [100.0 - percentile, percentile]))
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _resize_normalize(heatmap, height: int, width: int, vrange: VRange | None = None) -> np.ndarray:
    """float (h, w) map -> float32 (height, width) in [0, 1] (bilinear), then min-max per map (a flat map
    gives zeros) or, with ``vrange=(lo, hi)``, ``(m - lo) / (hi - lo)`` clipped to [0, 1]."""
    cv2 = _cv2()
    m = _as_numpy(heatmap)
    if m.ndim != 2:
        raise ValueError(f"expected an (h, w) heatmap, got shape {m.shape}")
    m = cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    vrange = _check_vrange(vrange)
    if vrange is not None:
        lo, hi = vrange
        return np.clip((m - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
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
                    boxes: Sequence[Box] = (), vrange: VRange | None = None) -> np.ndarray:
    """Blend a localization map over a frame, mark its peak and draw ground-truth boxes.

    Args:
        frame: the picture (see :func:`to_uint8_hwc`), shape (H, W, 3) or (3, H, W).
        heatmap: float (h, w) map, any resolution; it is resized to the frame.
        alpha: opacity of the colour map.
        mark_peak: draw a white cross in a dark ring at the maximum.
        boxes: normalised ``[x1, y1, x2, y2]`` boxes drawn in green.
        vrange: ``(lo, hi)``: the absolute scale of the colour map (values outside are clipped);
            None: each map min-max normalised on its own (relative scale).

    Returns:
        uint8 (H, W, 3) RGB image.
    """
    cv2 = _cv2()
    img = to_uint8_hwc(frame)
    h, w = img.shape[:2]
    m = _resize_normalize(heatmap, h, w, vrange)
    out = cv2.addWeighted(colorize(m), alpha, img, 1.0 - alpha, 0.0)
    if boxes:
        out = draw_boxes(out, boxes)
    if mark_peak:
        raw = cv2.resize(_as_numpy(heatmap).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        y, x = np.unravel_index(int(np.argmax(raw)), raw.shape)
        size = max(3, round(min(h, w) / 10))
        t = max(1, round(min(h, w) / 200))
        cv2.circle(out, (int(x), int(y)), size // 2 + t, (0, 0, 0), t + 1, cv2.LINE_AA)
        cv2.drawMarker(out, (int(x), int(y)), _PEAK_COLOUR, cv2.MARKER_CROSS, size, t, cv2.LINE_AA)
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _font_scale(height: int) -> float:
    """OpenCV font scale giving text about 1/20 of ``height`` tall (at least readable at 96 px)."""
    return max(0.3, height / 640)


def with_colorbar(image: np.ndarray, vrange: VRange | None, *, label: str | None = None) -> np.ndarray:
    """Append a vertical jet colour bar, with its values, on the right of an image.

    Args:
        image: uint8 (H, W, 3) RGB.
        vrange: ``(lo, hi)`` of an absolute scale (ticks at lo, the middle and hi), or None for a
            per-map relative scale (ticks ``min`` and ``max``).
        label: a word written at the bottom of the bar's panel (e.g. ``p(match)``), or None.

    Returns:
        uint8 (H, W + panel, 3): the image, then a black panel with the bar (top = high) and its ticks.
    """
    cv2 = _cv2()
    img = to_uint8_hwc(image)
    h = img.shape[0]
    vrange = _check_vrange(vrange)
    scale = _font_scale(h)
    thick = max(1, round(scale * 1.5))
    if vrange is None:
        ticks = [(1.0, "max"), (0.0, "min")]
    else:
        lo, hi = vrange
        ticks = [(1.0, _fmt(hi)), (0.5, _fmt((lo + hi) / 2)), (0.0, _fmt(lo))]
    texts = [t for _, t in ticks] + ([label] if label else [])
    text_w = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in texts)
    text_h = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][1]
    pad = max(2, h // 40)
    bar_w = max(6, h // 24)
    top, bottom = pad + text_h, h - pad - text_h - (2 * text_h + pad if label else 0)
    bottom = max(bottom, top + 2)
    panel = np.zeros((h, pad + bar_w + pad + text_w + pad, 3), np.uint8)
    grad = np.linspace(1.0, 0.0, bottom - top, dtype=np.float32)[:, None].repeat(bar_w, axis=1)
    panel[top:bottom, pad:pad + bar_w] = colorize(grad)
    for frac, text in ticks:
        y = int(round(bottom - 1 - frac * (bottom - 1 - top)))
        cv2.line(panel, (pad + bar_w, y), (pad + bar_w + pad // 2 + 1, y), (255, 255, 255), 1)
        cv2.putText(panel, text, (pad + bar_w + pad, min(h - 1, y + text_h // 2)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thick, cv2.LINE_AA)
    if label:
        cv2.putText(panel, label, (pad, h - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([img, panel], axis=1))


def with_caption(image: np.ndarray, text: str) -> np.ndarray:
    """Append a black band with one line of white text under an image (the text shrinks to fit).

    Args:
        image: uint8 (H, W, 3) RGB.
        text: the caption (ASCII; OpenCV's fonts have no other characters).

    Returns:
        uint8 (H + band, W, 3).
    """
    cv2 = _cv2()
    img = to_uint8_hwc(image)
    h, w = img.shape[:2]
    scale = _font_scale(h)
    thick = max(1, round(scale * 1.5))
    pad = max(2, h // 40)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    if tw > w - 2 * pad:
        scale *= (w - 2 * pad) / tw
        thick = max(1, round(scale * 1.5))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    band = np.zeros((th + base + 2 * pad, w, 3), np.uint8)
    cv2.putText(band, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([img, band], axis=0))


def localization_frame(frame, heatmap, *, vrange: VRange | None, time: float | None = None,
                       score: float | None = None, score_name: str = "score", alpha: float = 0.45,
                       boxes: Sequence[Box] = ()) -> np.ndarray:
    """One localization picture: the overlay, its colour bar, and a caption with time and score.

    Args:
        frame: the picture, (H, W, 3) or (3, H, W) (see :func:`to_uint8_hwc`).
        heatmap: float (h, w) map.
        vrange: absolute scale ``(lo, hi)``, or None for a per-frame min-max scale.
        time: the frame's time in seconds, or None.
        score: the clip's audio-visual correspondence score at this frame, or None.
        score_name: what the score is (e.g. ``p(match)``, ``max cos``).
        alpha: opacity of the colour map.
        boxes: normalised ground-truth boxes (green).

    Returns:
        uint8 (H + caption, W + colour bar, 3) RGB image; its size depends only on the frame's size
        (so the frames of a video stack into one stream).
    """
    img = overlay_heatmap(frame, heatmap, alpha=alpha, boxes=boxes, vrange=vrange)
    img = with_colorbar(img, vrange)
    parts = []
    if time is not None:
        parts.append(f"t {time:7.2f} s")
    if score is not None:
        parts.append(f"{score_name} {score:.3f}")
    if vrange is None:
        parts.append("scale: per frame")
    else:
        parts.append(f"scale {_fmt(vrange[0])}..{_fmt(vrange[1])}")
    return with_caption(img, "  |  ".join(parts))


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a uint8 (H, W, 3) RGB image as PNG atomically (temporary file, then rename)."""
    cv2 = _cv2()
    path = Path(path)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(to_uint8_hwc(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{path}: OpenCV could not encode the image")
    return write_bytes(path, buf.tobytes())


def _region_outline(region, height: int, width: int) -> np.ndarray:
    """bool (h, w) mask -> bool (height, width) mask of its border pixels (nearest resize, 1-px outline)."""
    cv2 = _cv2()
    r = cv2.resize(np.asarray(region, np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    k = max(1, round(min(height, width) / 150))
    return (r > 0) & ~(cv2.erode(r, np.ones((2 * k + 1, 2 * k + 1), np.uint8), borderValue=0) > 0)


def save_contact_sheet(path: str | os.PathLike, frames: Sequence, heatmaps: Sequence, *,
                       boxes: Sequence[Sequence[Box]] | None = None, titles: Sequence[str] | None = None,
                       columns: int = 4, alpha: float = 0.45, dpi: int = 150, vrange: VRange | None = None,
                       regions: Sequence | None = None, region_label: str = "pixels 'on'",
                       protocol: str | None = None) -> Path:
    """One PNG with, for every clip, its frame (with ground-truth boxes) and the heatmap overlay,
    a legend, a colour bar and a line stating the scoring protocol.

    Args:
        path: output PNG (written atomically).
        frames: N frames (see :func:`to_uint8_hwc`).
        heatmaps: N float (h, w) maps.
        boxes: N lists of normalised boxes (green), or None.
        titles: N captions (e.g. the clip id and its cIoU), or None.
        columns: clips per row (each clip takes two panels: frame, overlay).
        alpha: opacity of the colour map.
        dpi: resolution of the PNG.
        vrange: one absolute scale ``(lo, hi)`` for every overlay, or None: each map min-max
            normalised on its own (the colour bar then reads min..max).
        regions: N bool (h', w') masks, e.g. the pixels a cIoU protocol switches on, outlined in
            white on the overlay; or None.
        region_label: the legend's name for the outlined region.
        protocol: a line under the sheet, e.g. how the captions' numbers were computed.

    Returns:
        ``path``.
    """
    if len(frames) != len(heatmaps) or not len(frames):
        raise ValueError(f"need as many heatmaps as frames (got {len(frames)} frames, {len(heatmaps)} heatmaps)")
    if regions is not None and len(regions) != len(frames):
        raise ValueError(f"need one region per frame (got {len(regions)} for {len(frames)} frames)")
    try:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("contact sheets need matplotlib: pip install matplotlib") from e
    vrange = _check_vrange(vrange)
    n = len(frames)
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2 * cols * 2.0 + 0.8, rows * 2.25 + 0.9), layout="constrained")
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        b = list(boxes[i]) if boxes is not None else []
        img = to_uint8_hwc(frames[i])
        axes[r, 2 * c].imshow(draw_boxes(img, b) if b else img)
        over = overlay_heatmap(img, heatmaps[i], alpha=alpha, boxes=b, vrange=vrange)
        if regions is not None:
            over[_region_outline(regions[i], *over.shape[:2])] = 255
        axes[r, 2 * c + 1].imshow(over)
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=7, loc="left")
    norm = Normalize(*(vrange or (0.0, 1.0)))
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap="jet"), ax=axes, fraction=0.02, pad=0.01)
    if vrange is None:
        cbar.set_ticks([0.0, 1.0], labels=["min", "max"])
        cbar.set_label("map value, each map min..max", fontsize=7)
    else:
        cbar.set_label(f"map value, one scale {_fmt(vrange[0])}..{_fmt(vrange[1])}", fontsize=7)
    cbar.ax.tick_params(labelsize=6)
    handles = [Patch(facecolor="none", edgecolor="#00ff00", label="ground-truth box"),
               Line2D([], [], ls="none", marker="P", markersize=7, markerfacecolor="white", markeredgecolor="black",
                      label="map peak (cross)")]
    if regions is not None:
        handles.append(Patch(facecolor="none", edgecolor="white", label=region_label))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=7, frameon=True,
               facecolor="0.35", labelcolor="white")
    if protocol:
        fig.text(0.01, 0.0, protocol, fontsize=6, ha="left", va="bottom", wrap=True)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
