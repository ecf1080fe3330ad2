"""Audio front-ends that run inside the model (batched, on the model's device)."""

from __future__ import annotations

import torch
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
        self.n_fft, self.win_length, self.hop_length, self.n_frames, self.eps = n_fft, win_length, hop_length, n_frames, eps
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

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
        spec = torch.stft(wave.float(), self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        if self.n_frames:
            t = power.shape[-1]
            power = power[..., : self.n_frames] if t >= self.n_frames else nn.functional.pad(power, (0, self.n_frames - t))
        return torch.log(power + self.eps).unsqueeze(1)
