"""Sound-of-Pixels spectrogram plumbing: STFT / iSTFT, the log-frequency warp and mask application."""

import math

import pytest
import torch

from avcorr.models.sop_audio import SpectrogramSettings, apply_masks, istft, stft, unwarp, warp, warp_grid

SR, L = 11025, 65535
PAPER = SpectrogramSettings()  # n_fft 1022, hop 256, 256 warped bins


def _snr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10((x ** 2).sum() / ((x - y) ** 2).sum()))


def _tones() -> torch.Tensor:
    """A known low-pitched chord (220, 330, 440 Hz) with a slow tremolo."""
    t = torch.arange(L) / SR
    x = sum(a * torch.sin(2 * math.pi * f * t) for a, f in ((0.3, 220.0), (0.2, 330.0), (0.1, 440.0)))
    return x * (1 + 0.3 * torch.sin(2 * math.pi * 1.5 * t))


def test_paper_geometry_and_exact_inverse():
    x = 0.1 * torch.randn(2, L, generator=torch.Generator().manual_seed(0))
    spec = stft(x, PAPER)
    assert spec.shape == (2, 512, 256) and spec.is_complex()
    assert PAPER.n_bins == 512 and PAPER.num_frames(L) == 256
    assert warp(spec.abs().unsqueeze(1), 256).shape == (2, 1, 256, 256)
    assert torch.allclose(istft(spec, PAPER, L), x, atol=1e-5)


def test_warp_grid_is_the_public_log_scale():
    g = warp_grid(256, 3, inverse=False)[0, :, 0, 1]
    assert g[0] == -1 and g[-1] == 1 and bool((g[1:] > g[:-1]).all())
    # log spacing: the low half of the output rows covers far less than half of the input bins
    assert float(g[127]) < -0.6
    inv = warp_grid(512, 3, inverse=True)[0, :, 0, 1]
    # the inverse grid maps each linear row back onto the warped row that sampled it
    y = torch.linspace(-1, 1, 256)
    fwd = (21 ** ((y + 1) / 2) - 11) / 10
    back = torch.log(fwd * 10 + 11) / math.log(21) * 2 - 1
    assert torch.allclose(back, y, atol=1e-5)
    assert inv[0] == -1 and inv[-1] == 1


def test_unwarp_of_a_constant_is_exact():
    ones = torch.ones(1, 2, 256, 256)
    assert torch.allclose(unwarp(ones, 512), torch.ones(1, 2, 512, 256))
    assert unwarp(torch.rand(1, 1, 512, 8), 512).shape == (1, 1, 512, 8)  # no warp: unchanged


def test_stft_warp_unwarp_istft_reconstructs_a_known_signal():
    x = _tones()
    spec = stft(x[None], PAPER)
    mag = spec.abs().unsqueeze(1)
    back = unwarp(warp(mag, 256), PAPER.n_bins)
    y = istft(torch.polar(back[:, 0], torch.angle(spec)), PAPER, L)[0]
    # below ~630 Hz the warp has more rows than the STFT has bins: the round trip loses little
    assert _snr(x, y) > 18.0
    # and the all-ones mask gives back the mixture itself
    waves, lin = apply_masks(torch.ones(1, 1, 256, 256), spec, PAPER, L)
    assert lin.shape == (1, 1, 512, 256)
    assert _snr(x, waves[0, 0]) > 80.0


def test_apply_masks_thresholds_binary_masks():
    x = _tones()[None]
    spec = stft(x, PAPER)
    waves, lin = apply_masks(torch.full((1, 2, 256, 256), 0.4), spec, PAPER, L)  # below 0.5: silence
    assert set(lin.unique().tolist()) == {0.0} and float(waves.abs().max()) == 0.0
    waves, lin = apply_masks(torch.full((1, 1, 256, 256), 0.4), spec, PAPER, L, threshold=None)  # ratio mask
    assert torch.allclose(waves[0, 0], 0.4 * x[0], atol=1e-4)


@pytest.mark.parametrize("length", [32767, 1000])
def test_other_window_lengths(length):
    s = SpectrogramSettings(warp_bins=128)
    x = torch.randn(length)
    spec = stft(x, s)
    assert spec.shape == (512, s.num_frames(length))
    assert torch.allclose(istft(spec, s, length), x, atol=1e-4)
