"""Spectrogram plumbing of Sound of Pixels: STFT / iSTFT and the log-frequency warp.

Sound of Pixels (Zhao et al., ECCV 2018) works on the STFT of ~6 s of 11025 Hz audio (65535
samples, ``n_fft`` 1022, hop 256, Hann window -> 512 x 256 magnitudes). Before the networks the
frequency axis is resampled to 256 log-spaced bins with ``grid_sample`` (the public code's
``warpgrid``); predicted masks are resampled back with the inverse grid. Separated waveforms are the
mixture magnitude times the un-warped mask, inverted with the MIXTURE's phase.

Everything here is batched torch code that runs on the model's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["SpectrogramSettings", "apply_masks", "stft", "istft", "unwarp", "warp", "warp_grid"]

# The public code's warp maps the output row y in [-1, 1] to the input row (21 ** ((y + 1) / 2) - 11) / 10:
# a log scale whose lowest output bin sits on the lowest input bin and highest on the highest.
_WARP_BASE = 21.0


@dataclass(frozen=True)
class SpectrogramSettings:
    """STFT and warp sizes.

    Args:
        n_fft: FFT size; ``n_fft // 2 + 1`` linear frequency bins (1022 -> 512).
        hop_length: hop in samples (256).
        win_length: Hann window length (default ``n_fft``).
        warp_bins: log-frequency bins seen by the networks (256); 0 = no warping.
    """

    n_fft: int = 1022
    hop_length: int = 256
    win_length: int | None = None
    warp_bins: int = 256

    @property
    def n_bins(self) -> int:
        """Linear frequency bins of the STFT."""
        return self.n_fft // 2 + 1

    @property
    def model_bins(self) -> int:
        """Frequency bins of the networks' input (``warp_bins``, or the linear bins when not warping)."""
        return self.warp_bins or self.n_bins

    def num_frames(self, num_samples: int) -> int:
        """STFT frames of a ``num_samples`` signal (centred frames): 65535 samples -> 256."""
        return 1 + num_samples // self.hop_length


def _window(settings: SpectrogramSettings, device: torch.device) -> torch.Tensor:
    return torch.hann_window(settings.win_length or settings.n_fft, device=device, dtype=torch.float32)


def stft(wave: torch.Tensor, settings: SpectrogramSettings) -> torch.Tensor:
    """Complex STFT (centred frames, zero padding at both ends).

    Args:
        wave: float (..., L) waveforms.
        settings: STFT sizes.

    Returns:
        complex64 (..., n_fft // 2 + 1, 1 + L // hop_length).
    """
    shape = wave.shape
    x = wave.reshape(-1, shape[-1]).float()
    spec = torch.stft(x, settings.n_fft, settings.hop_length, settings.win_length or settings.n_fft,
                      window=_window(settings, x.device), center=True, pad_mode="constant", return_complex=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, settings: SpectrogramSettings, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` (overlap-add with the same Hann window).

    Args:
        spec: complex (..., n_fft // 2 + 1, T).
        settings: STFT sizes.
        length: samples of the output.

    Returns:
        float32 (..., length).
    """
    shape = spec.shape
    x = spec.reshape(-1, *shape[-2:])
    wave = torch.istft(x, settings.n_fft, settings.hop_length, settings.win_length or settings.n_fft,
                       window=_window(settings, x.device), center=True, length=length)
    return wave.reshape(*shape[:-2], length)


def warp_grid(out_bins: int, frames: int, *, inverse: bool, device: torch.device | None = None) -> torch.Tensor:
    """The sampling grid of the log-frequency warp (the public code's ``warpgrid``).

    Args:
        out_bins: frequency rows of the output.
        frames: time columns (unchanged by the warp).
        inverse: False = linear -> log rows (``warp``); True = log -> linear rows (``unwarp``).
        device: where to build it.

    Returns:
        float32 (1, out_bins, frames, 2) grid for ``F.grid_sample(..., align_corners=True)``
        (x = time, y = frequency, both in [-1, 1]).
    """
    x = torch.linspace(-1.0, 1.0, frames, device=device)
    y = torch.linspace(-1.0, 1.0, out_bins, device=device, dtype=torch.float64)
    if inverse:
        gy = torch.log(y * (_WARP_BASE - 1) / 2 + (_WARP_BASE + 1) / 2) / math.log(_WARP_BASE) * 2 - 1
    else:
        gy = (torch.pow(torch.tensor(_WARP_BASE, dtype=torch.float64), (y + 1) / 2) - (_WARP_BASE + 1) / 2) \
            / ((_WARP_BASE - 1) / 2)
    gy = gy.clamp(-1.0, 1.0).float()
    return torch.stack(torch.broadcast_tensors(x[None, :], gy[:, None]), dim=-1).unsqueeze(0)


def _resample_rows(x: torch.Tensor, out_bins: int, inverse: bool) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, F, T) spectrogram, got shape {tuple(x.shape)}")
    b, _, _, t = x.shape
    grid = warp_grid(out_bins, t, inverse=inverse, device=x.device).expand(b, -1, -1, -1)
    # align_corners=True: the behaviour of grid_sample when the public code was written (PyTorch 0.4)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp(x: torch.Tensor, warp_bins: int) -> torch.Tensor:
    """Linear -> log frequency rows.

    Args:
        x: float (B, C, F, T) magnitudes or masks on linear frequency bins.
        warp_bins: output rows; 0 returns ``x`` unchanged.

    Returns:
        float32 (B, C, warp_bins, T).
    """
    return x if not warp_bins else _resample_rows(x, warp_bins, inverse=False)


def unwarp(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Log -> linear frequency rows (inverse of :func:`warp`).

    Args:
        x: float (B, C, warp_bins, T).
        n_bins: linear rows of the output (``n_fft // 2 + 1``).

    Returns:
        float32 (B, C, n_bins, T); ``x`` itself when it already has ``n_bins`` rows (no warping).
    """
    return x if x.shape[-2] == n_bins else _resample_rows(x, n_bins, inverse=True)


def apply_masks(masks: torch.Tensor, mix_spec: torch.Tensor, settings: SpectrogramSettings, length: int, *,
                threshold: float | None = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Separated waveforms from predicted masks: un-warp, (threshold), times |mixture|, iSTFT with its phase.

    Args:
        masks: float (B, N, model_bins, T) mask values in [0, 1] (probabilities), or ratio masks.
        mix_spec: complex (B, n_bins, T) STFT of the mixture.
        settings: STFT / warp sizes.
        length: samples of the output waveforms.
        threshold: binary masks are ``unwarped > threshold``; None keeps the (un-warped) values (ratio masks).

    Returns:
        (waves float32 (B, N, length), linear masks float32 (B, N, n_bins, T)).
    """
    lin = unwarp(masks.float(), settings.n_bins)
    if threshold is not None:
        lin = (lin > threshold).float()
    mag = mix_spec.abs().unsqueeze(1)
    phase = torch.angle(mix_spec).unsqueeze(1)
    spec = torch.polar(mag * lin, phase.expand_as(lin))
    return istft(spec, settings, length), lin
