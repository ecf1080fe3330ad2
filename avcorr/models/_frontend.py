"""Audio front-ends that run inside the model (batched, on the model's device)."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn


class LogSpectrogram(nn.Module):
    """Log power spectrogram of a waveform batch, cropped or zero-padded to a fixed frame count.

    Objects that Sound: 1 s at 48 kHz, 10 ms Hann window (480), hop 240, FFT 512 -> 257 x 200.

    Args:
        n_fft: FFT size; the output has ``n_fft // 2 + 1`` frequency bins.
        win_length: analysis window length in samples.
        hop_length: hop in samples.
        n_frames: output frames (crop or pad at the end); 0 keeps all.
        eps: added to the power before the log.
    """

    def __init__(self, n_fft: int = 512, win_length: int = 480, hop_length: int = 240, n_frames: int = 200,
                 eps: float = 1e-10):
        super().__init__()
        self.n_fft, self.n_frames, self.eps = n_fft, n_frames, eps
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=2.0, center=True, pad_mode="constant")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Args:
            wave: float (B, T) mono waveforms.

        Returns:
            float (B, 1, n_fft // 2 + 1, n_frames) log power spectrogram.
        """
        if wave.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        power = self.spectrogram(wave.float())
        if self.n_frames:
            t = power.shape[-1]
            power = power[..., : self.n_frames] if t >= self.n_frames else nn.functional.pad(power, (0, self.n_frames - t))
        return torch.log(power + self.eps).unsqueeze(1)
