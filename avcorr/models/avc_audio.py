"""The audio front-end of the correspondence models (AVE-Net, L3-Net, AVOL-Net / EZ-VSL).

:class:`LogSpectrogram` turns a waveform batch into the log (mel) spectrogram their audio towers
read, inside the model (batched, on the model's device). The tagging models' front-ends (PANNs,
AST) are in :mod:`avcorr.models.tagging_audio`; Sound of Pixels' STFT and warp in
:mod:`avcorr.models.sop_audio`.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

from ._silence import SilenceMaskedBatchNorm2d
from .tagging_audio import SpecAugment

__all__ = ["LogSpectrogram", "SpectrogramMasks", "input_norm"]


class LogSpectrogram(nn.Module):
    """Log power spectrogram of a waveform batch, cropped or zero-padded to a fixed frame count.

    Objects that Sound: 1 s at 48 kHz, 10 ms Hann window (480), hop 240, FFT 512 -> 257 x 200.
    With ``n_mels`` the power spectrum is first summed into that many mel bands (Slaney's mel scale
    and area normalisation, as librosa and the PANNs front-end), which spends the frequency
    resolution where sounds differ and keeps the input the same size whatever the sample rate.

    Args:
        n_fft: FFT size; without ``n_mels`` the output has ``n_fft // 2 + 1`` frequency bins.
        win_length: analysis window length in samples.
        hop_length: hop in samples.
        n_frames: output frames (crop or pad at the end); 0 keeps all.
        eps: added to the power before the log.
        n_mels: mel bands; 0 = the linear-frequency spectrogram (the paper).
        sample_rate: the waveforms' rate (needed by the mel bands).
        f_min: lowest mel band edge, Hz.
        f_max: highest mel band edge, Hz (default: half the sample rate).
    """

    def __init__(self, n_fft: int = 512, win_length: int = 480, hop_length: int = 240, n_frames: int = 200,
                 eps: float = 1e-10, n_mels: int = 0, sample_rate: int = 48000, f_min: float = 0.0,
                 f_max: float | None = None):
        super().__init__()
        if n_mels < 0:
            raise ValueError(f"n_mels must be >= 0, got {n_mels}")
        self.n_fft, self.n_frames, self.eps, self.n_mels = n_fft, n_frames, eps, n_mels
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=2.0, center=True, pad_mode="constant")
        self.mel = (torchaudio.transforms.MelScale(n_mels, sample_rate, f_min, f_max, n_fft // 2 + 1, norm="slaney",
                                                   mel_scale="slaney") if n_mels else None)

    @property
    def n_bins(self) -> int:
        return self.n_mels or self.n_fft // 2 + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Args:
            wave: float (B, T) mono waveforms.

        Returns:
            float (B, 1, n_bins, n_frames) log power spectrogram (``n_bins`` = ``n_mels`` or
            ``n_fft // 2 + 1``).
        """
        if wave.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        power = self.spectrogram(wave.float())
        if self.mel is not None:
            power = self.mel(power)
        if self.n_frames:
            t = power.shape[-1]
            power = power[..., : self.n_frames] if t >= self.n_frames else nn.functional.pad(power, (0, self.n_frames - t))
        return torch.log(power + self.eps).unsqueeze(1)


def input_norm(frontend: LogSpectrogram, mask_silence: bool = False) -> nn.BatchNorm2d:
    """The one-channel batch normalisation the correspondence models put after :class:`LogSpectrogram`;
    with ``mask_silence`` its statistics leave out frames of digital silence (every band within 1 dB of
    ``log(eps)``: zero padding of a short sound in the window, or of a clip shorter than ``n_frames``),
    which come out at the normalised mean (:class:`~avcorr.models._silence.SilenceMaskedBatchNorm2d`)."""
    if not mask_silence:
        return nn.BatchNorm2d(1)
    return SilenceMaskedBatchNorm2d(1, math.log(frontend.eps), band_dim=2, tol=0.1 * math.log(10.0))


class SpectrogramMasks(nn.Module):
    """SpecAugment for the correspondence models' (B, 1, bands, frames) normalised log-spectrogram, in
    training mode only: 2 time stripes of up to 6.4 % of the frames and 2 band stripes of up to 1/8 of
    the bands, set to 0 (the normalised mean), PANNs' proportions (64 of 1,000 frames, 8 of 64 bands).
    No parameters: a model's state dict is the same with or without it.

    Args:
        n_bands: bands of the input (mel bands or frequency bins).
        n_frames: frames of the input.
    """

    def __init__(self, n_bands: int, n_frames: int):
        super().__init__()
        self.masks = SpecAugment(time_drop_width=max(2, round(0.064 * n_frames)), time_stripes_num=2,
                                 freq_drop_width=max(2, n_bands // 8), freq_stripes_num=2, fill=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, bands, frames) -> the same, masked in training mode."""
        return self.masks(x.transpose(-1, -2)).transpose(-1, -2) if self.training else x
