"""Localization pictures tell the truth: an absolute scale keeps a weak map dark, every picture has a
colour bar spanning its scale, captions are burned in, contact sheets carry a legend and the protocol."""

import numpy as np
import pytest

from avcorr.viz import (colorize, localization_frame, overlay_heatmap, save_contact_sheet, value_range,
                        with_caption, with_colorbar)

GREY = np.full((64, 64, 3), 128, np.uint8)


def _luma(img):
    return (img.astype(np.float64) @ [0.299, 0.587, 0.114]).mean()


def _read_png(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_absolute_scale_keeps_a_weak_map_dark_and_a_stronger_map_brighter():
    rng = np.random.default_rng(0)
    flat_low = 0.05 + 0.0005 * rng.standard_normal((8, 8))  # +-1 % wiggle on a weak map
    relative = overlay_heatmap(GREY, flat_low, alpha=1.0, mark_peak=False)
    absolute = overlay_heatmap(GREY, flat_low, alpha=1.0, mark_peak=False, vrange=(0.0, 1.0))
    # per frame min-max: the wiggle fills the whole colour map (red hotspots appear)
    assert (relative[..., 0] > 200).any()
    # absolute: everything is the bottom of the colour map (dark blue), no red anywhere
    assert (absolute[..., 0] < 30).all() and _luma(absolute) < 40
    weak = overlay_heatmap(GREY, np.full((8, 8), 0.2), alpha=1.0, mark_peak=False, vrange=(0.0, 1.0))
    strong = overlay_heatmap(GREY, np.full((8, 8), 0.4), alpha=1.0, mark_peak=False, vrange=(0.0, 1.0))
    assert _luma(strong) > _luma(weak) + 20
    # the same maps on a per-frame scale cannot be told apart
    assert np.array_equal(overlay_heatmap(GREY, np.full((8, 8), 0.2), alpha=1.0, mark_peak=False),
                          overlay_heatmap(GREY, np.full((8, 8), 0.4), alpha=1.0, mark_peak=False))
    with pytest.raises(ValueError, match="lo < hi"):
        overlay_heatmap(GREY, flat_low, vrange=(1.0, 1.0))


def test_value_range_spans_all_maps():
    maps = [np.zeros((4, 4)), np.full((4, 4), 3.0)]
    assert value_range(maps) == (0.0, 3.0)
    assert value_range([np.full((2, 2), 1.0)]) == (0.5, 1.5)  # constant: a non-empty range around it
    m = np.zeros((10, 10))
    m[0, 0] = 100.0
    assert value_range([m], percentile=98.0)[1] < 100.0  # an outlying cell can be left out


def test_colour_bar_spans_the_scale_and_shows_its_numbers():
    img = np.zeros((120, 80, 3), np.uint8)
    out = with_colorbar(img, (0.0, 1.0))
    assert out.shape[0] == 120 and out.shape[1] > 80
    assert np.array_equal(out[:, :80], img)
    panel = out[:, 80:]
    # the bar: one column whose colours run from the top of the colour map (red) to its bottom (blue)
    reds = np.argwhere((panel[..., 0] > 100) & (panel[..., 2] < 30))
    blues = np.argwhere((panel[..., 2] > 100) & (panel[..., 0] < 30))
    assert len(reds) and len(blues) and reds[:, 0].mean() < blues[:, 0].mean()  # high values at the top
    top_colour, bottom_colour = colorize(np.array([[1.0]]))[0, 0], colorize(np.array([[0.0]]))[0, 0]
    assert (panel == top_colour).all(axis=-1).any() and (panel == bottom_colour).all(axis=-1).any()
    # the tick labels are drawn: another range writes other numbers, a relative scale other words
    other = with_colorbar(img, (0.0, 7.5))
    relative = with_colorbar(img, None)
    assert not np.array_equal(other, out)
    assert relative.shape != out.shape or not np.array_equal(relative, out)


def test_caption_is_burned_in_under_the_picture():
    img = np.zeros((96, 128, 3), np.uint8)
    a = with_caption(img, "t 1.00 s | p(match) 0.870")
    b = with_caption(img, "t 2.00 s | p(match) 0.120")
    assert a.shape == b.shape and a.shape[0] > 96 and a.shape[1] == 128
    band_a, band_b = a[96:], b[96:]
    assert (band_a > 200).any() and not np.array_equal(band_a, band_b)
    assert np.array_equal(a[:96], img)
    long = with_caption(img, "x" * 200)  # shrinks to fit the width rather than running off it
    assert long.shape[1] == 128 and (long[96:, -10:] < 50).all()


def test_localization_frame_has_a_constant_size_and_carries_time_and_score():
    frame = np.full((48, 64, 3), 90, np.uint8)
    m = np.random.default_rng(1).random((6, 6))
    a = localization_frame(frame, m, vrange=(0.0, 1.0), time=0.5, score=0.9, score_name="p(match)")
    b = localization_frame(frame, m, vrange=(0.0, 1.0), time=12.25, score=0.1, score_name="p(match)")
    assert a.shape == b.shape and a.shape[0] > 48 and a.shape[1] > 64
    assert np.array_equal(a[:48, :64], b[:48, :64])  # the overlay itself is the same
    assert not np.array_equal(a[48:], b[48:])  # the caption differs


def test_contact_sheet_has_colour_bar_legend_and_protocol(tmp_path):
    frames = [np.full((32, 32, 3), 128, np.uint8)] * 2
    maps = [np.zeros((4, 4))] * 2  # nothing sounds: overlays stay at the bottom of the scale
    boxes = [[[0.1, 0.1, 0.6, 0.6]]] * 2
    regions = [np.eye(4, dtype=bool)] * 2
    plain = save_contact_sheet(tmp_path / "a.png", frames, maps, boxes=boxes, vrange=(0.0, 1.0), dpi=60)
    full = save_contact_sheet(tmp_path / "b.png", frames, maps, boxes=boxes, vrange=(0.0, 1.0), dpi=60,
                              regions=regions, protocol="cIoU(0.5): fixed threshold 0.5")
    a, b = _read_png(plain), _read_png(full)
    # the colour bar reaches the top of the colour map although every map is at its bottom
    assert ((a[..., 0] > 100) & (a[..., 1] < 30) & (a[..., 2] < 30)).any()
    # the legend names the ground-truth box (a green patch) and the protocol line changes the sheet
    assert ((a[..., 1] > 200) & (a[..., 0] < 60) & (a[..., 2] < 60)).any()
    assert a.shape == b.shape and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="one region per frame"):
        save_contact_sheet(tmp_path / "c.png", frames, maps, regions=regions[:1])
