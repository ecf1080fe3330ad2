"""Separation figures tell the truth: masks on a fixed 0..1 scale with a colour bar, the model's
log-frequency rows labelled in Hz at the right heights, pixel energy on an absolute scale."""

import numpy as np
import torch

from avcorr.inference.separation import model_rows_hz, plot_pixel_map, plot_separation
from avcorr.models.sop_audio import SpectrogramSettings
from avcorr.viz.spectrogram import frequency_ticks

SR = 8000
SETTINGS = SpectrogramSettings(n_fft=254, hop_length=64, warp_bins=64)


def _read_png(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_model_rows_follow_the_log_frequency_warp():
    hz = model_rows_hz(SETTINGS, SR)
    assert hz.shape == (64,) and np.all(np.diff(hz) > 0)
    assert hz[0] == np.float64(0.0) or abs(hz[0]) < 1e-6
    assert abs(hz[-1] - SR / 2) < 1e-3
    # log warp: the lower half of the rows covers far less than half of the frequencies
    assert hz[32] < SR / 2 / 4
    pos, labels = frequency_ticks(hz)
    assert labels == ["50", "100", "200", "500", "1k", "2k"] and np.all(np.diff(pos) > 0)
    at_1k = pos[labels.index("1k")]
    assert hz[int(np.floor(at_1k))] <= 1000 <= hz[int(np.ceil(at_1k))]
    assert at_1k > 64 * 1000 / (SR / 2) + 10  # far above where a linear axis would put it
    linear = model_rows_hz(SpectrogramSettings(n_fft=254, hop_length=64, warp_bins=0), SR)
    assert np.allclose(linear, np.linspace(0, SR / 2, 128))


def _yellow(img):  # the top of viridis (mask value 1)
    return int(((img[..., 0] > 200) & (img[..., 1] > 200) & (img[..., 2] < 80)).sum())


def _purple(img):  # the bottom of viridis (mask value 0)
    return int(((img[..., 0] > 50) & (img[..., 0] < 90) & (img[..., 1] < 20) & (img[..., 2] > 70)).sum())


def test_mask_panels_tell_all_pass_from_all_zero(tmp_path):
    t = torch.arange(SR // 2) / SR
    mix = 0.5 * torch.sin(2 * np.pi * 440 * t)
    sources = torch.stack([mix, mix * 0.1])
    frames = SETTINGS.num_frames(mix.numel())
    paths = {}
    for name, value in (("pass", 1.0), ("zero", 0.0)):
        masks = torch.full((2, SETTINGS.model_bins, frames), value)
        paths[name] = tmp_path / f"{name}.png"
        plot_separation(paths[name], mix, sources, masks, ["a", "b"], SETTINGS, SR, threshold=0.5)
    a, z = _read_png(paths["pass"]), _read_png(paths["zero"])
    assert a.shape == z.shape
    # both figures carry the mask colour bar (both ends of the scale), the panels differ by far
    assert _yellow(z) > 0 and _purple(a) > 0
    assert _yellow(a) > 10 * _yellow(z) and _purple(z) > 10 * _purple(a)


def _red(img):
    return int(((img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)).sum())


def test_pixel_energy_is_drawn_on_an_absolute_scale(tmp_path):
    frame = torch.zeros(3, 32, 32)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 8), torch.linspace(0, 1, 8), indexing="ij")
    flat = 50.0 * (1 + 0.01 * (xx - 0.5))  # +-1 % around half of the total
    ramp = 100.0 * xx
    plot_pixel_map(tmp_path / "flat.png", frame, flat, "flat", total=100.0)
    plot_pixel_map(tmp_path / "ramp.png", frame, ramp, "ramp", total=100.0)
    f, r = _read_png(tmp_path / "flat.png"), _read_png(tmp_path / "ramp.png")
    # a +-1 % wiggle is not stretched over the colour map: only the colour bar holds red
    assert _red(r) > 5 * max(_red(f), 1)
