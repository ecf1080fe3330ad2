"""Tagging timelines: the last partial second at its real width, the threshold marked, a waveform strip."""

import numpy as np
import pytest

from avcorr.viz.timeline import envelope, plot_timeline, second_edges, threshold_colormap


def _read_png(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def _pale_columns(img):
    """Columns holding pixels of the top of magma (probability 1: pale yellow)."""
    pale = (img[..., 0] > 230) & (img[..., 1] > 230) & (img[..., 2] > 150) & (img[..., 2] < 215)
    return np.flatnonzero(pale.any(axis=0))


def _runs(cols):
    """Lengths of the runs of consecutive column indices."""
    if not cols.size:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1)
    return list(np.diff(np.r_[0, breaks + 1, cols.size]))


def test_second_edges_give_the_last_partial_second_its_length():
    assert np.allclose(second_edges(4, 3.25), [0, 1, 2, 3, 3.25])
    assert np.allclose(second_edges(3, 3.0), [0, 1, 2, 3])
    assert np.allclose(second_edges(3, 5.0), [0, 1, 2, 3])  # never longer than a second
    assert second_edges(0, 0.0).tolist() == [0.0]


def test_partial_last_second_is_drawn_with_its_real_width(tmp_path):
    probs = np.zeros((6, 2), np.float32)
    probs[0, 0] = probs[5, 0] = 1.0  # first (whole) and last (a quarter) second are at the top of the scale
    path = plot_timeline(tmp_path / "t.png", probs, ["a", "b"], 5.25, threshold=0.5)
    runs = _runs(_pale_columns(_read_png(path)))
    assert len(runs) == 3  # the first cell, the last cell, the top of the colour bar
    first, last = runs[0], runs[1]
    assert last / first == pytest.approx(0.25, abs=0.06)


def test_cells_below_the_threshold_are_grey_and_the_colour_bar_marks_it(tmp_path):
    cmap = threshold_colormap(0.3)
    lo, hi = np.array(cmap(0.2)[:3]), np.array(cmap(0.6)[:3])
    assert np.allclose(lo, lo[0]) and not np.allclose(hi, hi[0])  # grey below, coloured above
    probs = np.full((4, 1), 0.2, np.float32)
    grey = _read_png(plot_timeline(tmp_path / "g.png", probs, ["a"], 4.0, threshold=0.3))
    colour = _read_png(plot_timeline(tmp_path / "c.png", probs, ["a"], 4.0, threshold=0.1))
    purple = lambda img: int(((img[..., 2] - img[..., 1]) > 40).sum())  # noqa: E731 - magma's low-middle hues
    cyan = lambda img: int(((img[..., 0] < 60) & (img[..., 1] > 200) & (img[..., 2] > 200)).sum())  # noqa: E731
    assert purple(colour) > 3 * max(purple(grey), 1)
    assert cyan(grey) > 0 and cyan(colour) > 0  # the threshold line on the colour bar
    plain = _read_png(plot_timeline(tmp_path / "p.png", probs, ["a"], 4.0))
    assert cyan(plain) == 0


def test_waveform_strip_is_aligned_with_the_seconds(tmp_path):
    sr = 1000
    wave = np.zeros(4 * sr, np.float32)
    wave[2 * sr:3 * sr] = np.sin(np.arange(sr) * 0.3)  # sound only in second 2
    env = envelope(wave, sr, 20)
    assert env.shape == (80, 2) and env[:40].max() == 0 and env[40:60].max() > 0.9
    assert envelope(wave[:1010], sr, 20).shape == (21, 2)  # a partial block is kept
    probs = np.zeros((4, 1), np.float32)
    probs[2, 0] = 1.0
    with_strip = _read_png(plot_timeline(tmp_path / "w.png", probs, ["a"], 4.0, wave_envelope=env,
                                         envelope_rate=20))
    without = _read_png(plot_timeline(tmp_path / "n.png", probs, ["a"], 4.0))
    assert with_strip.shape[0] > without.shape[0]
    dark = (np.abs(with_strip - 64) < 8).all(axis=-1)  # the strip's fill colour (0.25 grey)
    strip_cols = np.flatnonzero(dark.sum(axis=0) > 3)
    heat_cols = _pale_columns(with_strip)
    heat_cols = heat_cols[heat_cols < strip_cols.max() + 20]  # not the colour bar
    assert strip_cols.size and heat_cols.size
    # the loud second of the waveform sits above the second tagged 1.0
    assert abs(np.median(strip_cols) - np.median(heat_cols)) < 0.05 * with_strip.shape[1]
