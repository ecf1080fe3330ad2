"""Pictures of the words family: spoken words written as text on paper-like backgrounds.

Each word is drawn with one of the TrueType fonts bundled with matplotlib (:data:`FONTS`: DejaVu
Sans, Serif and Mono, STIX and Computer Modern faces, some bold or italic) through Pillow, at a
random size, case, stroke thickness, slant and rotation, in a dark ink, anti-aliased at 4x and
reduced; the picture is the word's tight ink rectangle. Class names are transliterated to ASCII for
drawing (:func:`drawable`), so every face can draw every word. The frame around it (paper, slow
drift, limited overlap with the silent words) is :mod:`data_tools._paper_layout`'s, as for the
digits family.

OpenCV's Hershey fonts were the first choice, but OpenCV 5 draws every ``FONT_HERSHEY_*`` id with one
built-in sans face (``FONT_ITALIC`` has no effect), which leaves one typeface; matplotlib (an avcorr
dependency) ships a dozen, the same files on every machine with the same matplotlib.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from data_tools._paper_layout import Placed, ink_colour, render_layout, trajectory

__all__ = ["FONTS", "drawable", "font_folder", "render_frames", "word_picture"]

logger = logging.getLogger(__name__)

FONTS = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSerif", "DejaVuSerif-Bold",
         "DejaVuSerif-Italic", "DejaVuSansMono", "DejaVuSansMono-Bold", "STIXGeneral", "STIXGeneralBol",
         "STIXGeneralItalic", "cmr10", "cmss10", "cmtt10", "cmti10", "cmb10")
"""The faces used: ``<name>.ttf`` in matplotlib's ``mpl-data/fonts/ttf``."""

_SUPERSAMPLE = 4
_DRIFT = 0.03  # fastest drift, frame sides per second (half the digits family's: wide words need room)
_MAX_WIDTH = 0.7  # of the frame side: a longer word is drawn smaller (and 0.5 of it for the height)
_SPECIAL = {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D",
            "œ": "oe", "Œ": "OE", "ı": "i", "_": " "}


def drawable(name: str) -> str:
    """The ASCII text drawn for class ``name``: accents dropped (ą->a, č->c, ė/ę->e, į->i, š->s, ų/ū->u,
    ž->z ...), underscores as spaces.

    Raises:
        ValueError: a character has no ASCII form, or nothing is left to draw.
    """
    text = "".join(_SPECIAL.get(c, c) for c in name)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    bad = sorted({c for c in text if not (c.isascii() and c.isprintable())})
    if bad:
        raise ValueError(f"class {name!r}: cannot be drawn with the Hershey fonts (ASCII only): "
                         f"no ASCII form for {', '.join(map(repr, bad))}")
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"class {name!r}: nothing to draw")
    return text


def font_folder() -> Path:
    """matplotlib's folder of TrueType fonts (found without importing matplotlib).

    Raises:
        ImportError: matplotlib is not installed.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise ImportError("the words family draws text with matplotlib's fonts: pip install matplotlib")
    return Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"


@lru_cache(maxsize=None)
def _cap_ratio(name: str) -> float:
    """Capital height of face ``name`` as a share of its em size."""
    top, bottom = _font(name, 200).getbbox("H")[1::2]
    return (bottom - top) / 200


@lru_cache(maxsize=256)
def _font(name: str, em: int) -> Any:
    try:
        from PIL import ImageFont
    except ImportError as err:
        raise ImportError("the words family draws text with Pillow: pip install pillow") from err
    path = font_folder() / f"{name}.ttf"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: font {name!r} of the words family is missing from matplotlib's fonts")
    return ImageFont.truetype(str(path), em)


def _draw(text: str, name: str, cap: float, stroke: float, shear: float, angle: float) -> np.ndarray:
    """The word's ink coverage, float32 (h, w) in [0, 1], cropped to the ink.

    ``cap`` is the capital height and ``stroke`` the extra stroke width (outline thickening), in
    output pixels; ``shear`` slants it (x += shear * height above the centre), then it turns by
    ``angle`` degrees counter-clockwise.
    """
    import cv2
    from PIL import Image, ImageDraw

    ss = _SUPERSAMPLE
    font = _font(name, max(4, int(round(cap * ss / _cap_ratio(name)))))
    width = int(round(stroke * ss))
    left, top, right, bottom = font.getbbox(text, stroke_width=width)
    pad = ss * 2
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, fill=255, font=font, stroke_width=width,
                                stroke_fill=255)
    ink = np.asarray(canvas)
    rows, cols = ink.shape
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    linear = np.array([[c, s], [-s, c]]) @ np.array([[1.0, -shear], [0.0, 1.0]])
    corners = np.array([[0, 0], [cols, 0], [0, rows], [cols, rows]], float) - [cols / 2, rows / 2]
    moved = corners @ linear.T
    out_w = int(math.ceil((np.ptp(moved[:, 0]) + 2) / ss)) * ss
    out_h = int(math.ceil((np.ptp(moved[:, 1]) + 2) / ss)) * ss
    shift = np.array([out_w / 2, out_h / 2]) - linear @ [cols / 2, rows / 2]
    warped = cv2.warpAffine(ink, np.hstack([linear, shift[:, None]]), (out_w, out_h), flags=cv2.INTER_LINEAR)
    small = cv2.resize(warped, (out_w // ss, out_h // ss), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    ys, xs = np.nonzero(small > 0.04)
    if len(ys) == 0:  # too faint to see: keep the whole (blank) picture rather than fail
        return small
    return small[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def word_picture(rng: np.random.Generator, text: str, text_height: Sequence[int],
                 size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw ``text`` with a random face, case, size, stroke, slant and rotation.

    Args:
        rng: the clip's generator.
        text: ASCII text (see :func:`drawable`).
        text_height: (min, max) capital height in pixels; a word wider than 0.7 of the frame (or
            taller than half of it) is drawn smaller.
        size: frame side, pixels.

    Returns:
        ``(alpha, style)``: float32 (h, w) ink coverage in [0, 1] (tight around the ink), and the
        drawing parameters (font, case, cap height, stroke, shear, angle).
    """
    name = FONTS[int(rng.integers(len(FONTS)))]
    case = ("lower", "title", "upper")[int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
    cased = {"lower": text.lower(), "title": text.title(), "upper": text.upper()}[case]
    cap = float(rng.integers(text_height[0], text_height[1] + 1))
    stroke = cap * rng.uniform(0.0, 0.06)
    shear = float(rng.uniform(-0.25, 0.25))
    angle = float(rng.uniform(-12, 12))
    strength = float(rng.uniform(0.85, 1.0))
    alpha = _draw(cased, name, cap, stroke, shear, angle)
    for _ in range(4):  # too wide (or tall, when turned): shrink until it fits
        excess = max(alpha.shape[1] / (_MAX_WIDTH * size), alpha.shape[0] / (0.5 * size))
        if excess <= 1:
            break
        cap, stroke = cap / excess, stroke / excess
        alpha = _draw(cased, name, cap, stroke, shear, angle)
    alpha = alpha[:size, :size] * strength
    style = {"font": name, "case": case, "cap_height": round(cap, 2), "stroke": round(stroke, 2),
             "shear": round(shear, 3), "angle": round(angle, 2)}
    return alpha, style


def render_frames(seed_key: Sequence[int], texts: Sequence[str], *, size: int, fps: float, duration: float,
                  text_height: Sequence[int], max_overlap: float, gap: int = 0, draw: Sequence[bool] | None = None,
                  tries: int = 60) -> tuple[np.ndarray, list[Placed | None], list[dict[str, Any]]]:
    """Render a clip's frames: word 0 sounds, the others are silent distractors.

    Args:
        seed_key: the clip's random key (e.g. ``(seed, split code, index)``).
        texts: K ASCII words; ``texts[0]`` sounds.
        size: frame side, pixels.
        fps: frame rate.
        duration: seconds.
        text_height: (min, max) capital height, pixels.
        max_overlap: the most a word's rectangle, grown by ``gap`` pixels, may overlap another's, as a
            share of the smaller one.
        gap: see ``max_overlap``.
        draw: per word, whether to paint it (default all); hiding one moves nothing else.
        tries: placement attempts per distractor.

    Returns:
        ``(frames, placed, styles)``: uint8 (T, size, size, 3) RGB; per word its
        :class:`~data_tools._paper_layout.Placed` or None (a distractor that found no room); the
        drawing parameters of word 0 and of each distractor's last attempt.
    """
    styles: list[dict[str, Any]] = [{} for _ in texts]

    def place(rng: np.random.Generator, k: int, times: np.ndarray, mid_time: float) -> Placed:
        alpha, styles[k] = word_picture(rng, texts[k], text_height, size)
        ink = ink_colour(rng)
        xy, mid = trajectory(rng, (alpha.shape[1], alpha.shape[0]), size, times, mid_time, _DRIFT)
        return Placed(xy, mid, alpha, ink)

    frames, placed = render_layout(seed_key, place, len(texts), size=size, fps=fps, duration=duration,
                                   max_overlap=max_overlap, gap=gap, draw=draw, tries=tries)
    return frames, placed, styles
