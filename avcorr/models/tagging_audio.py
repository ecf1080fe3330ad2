"""Front-ends of the audio tagging models (PANNs, AST), computed inside the model (batched, on its device).

* :class:`PannsLogMel` - the log-mel spectrogram of PANNs (Kong et al., 2020) as torchlibrosa computes
  it: periodic Hann window, centred frames with reflect padding, power spectrum, Slaney mel filters
  (librosa's ``filters.mel``), ``10 * log10(max(x, amin))`` with ``ref = 1.0`` and no ``top_db``.
* :class:`KaldiFbank` - the front-end of AST (Gong et al., 2021): Kaldi log mel filterbank energies as
  ``torchaudio.compliance.kaldi.fbank`` computes them (``htk_compat=True, use_energy=False,
  window_type='hanning', dither=0, frame_shift=10``) after removing the clip mean, zero-padded or
  cropped to a fixed frame count and normalised as ``(x - mean) / (2 * std)``. It is a batched
  re-implementation of the same arithmetic (kaldi.fbank takes one clip at a time); the tests check
  that both agree.
* :class:`SpecAugment` - time and frequency stripes set to a fill value, drawn as PANNs' torchlibrosa
  ``DropStripes`` does (width uniform in ``[0, drop_width)``, start uniform over the valid positions).
* :func:`sample_mixup_lambda` / :func:`do_mixup` - PANNs' mixup: consecutive pairs ``(0, 1), (2, 3), ...``
  mixed with coefficients ``(lam, 1 - lam)``, which halves the batch.

Both spectrogram front-ends run in float32 with autocast disabled (the log of bf16 power loses most
of its precision) and keep their constants in non-persistent buffers: nothing of them is saved in a
state dict, and loading a checkpoint never overrides them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AST_NORM_MEAN",
    "AST_NORM_STD",
    "KaldiFbank",
    "PannsLogMel",
    "SpecAugment",
    "do_mixup",
    "sample_mixup_lambda",
    "slaney_mel_filterbank",
    "torchlibrosa_stft_weights",
]

AST_NORM_MEAN = -4.2677393  # AudioSet fbank statistics used by AST
AST_NORM_STD = 4.5689974


def _no_autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, enabled=False)


# ------------------------------------------------------------------------------------------------
# PANNs log-mel


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular mel filters on the Slaney scale with Slaney area normalisation (librosa's default).

    Computed in float64, as librosa does, then returned as float32.

    Args:
        sample_rate: sampling rate in Hz.
        n_fft: FFT size; the filters cover ``n_fft // 2 + 1`` bins from 0 to ``sample_rate / 2``.
        n_mels: number of filters.
        f_min, f_max: lowest and highest edge frequency in Hz.

    Returns:
        float32 (n_fft // 2 + 1, n_mels) matrix; ``power (..., n_freqs) @ W`` gives mel energies.
    """
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"mel filterbank needs 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}, {sample_rate}")
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel_slaney(f_min), _hz_to_mel_slaney(f_max), n_mels + 2)
    hz_pts = _mel_to_hz_slaney(mel_pts)
    width = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return torch.from_numpy(weights.T.copy()).float()


def torchlibrosa_stft_weights(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The STFT convolution kernels torchlibrosa stores (``stft.conv_real.weight`` / ``conv_imag.weight``).

    Args:
        n_fft: FFT size (= window length in PANNs).

    Returns:
        float32 ``(real, imag)``, each (n_fft // 2 + 1, 1, n_fft): the periodic Hann window times
        ``cos`` / ``-sin`` of ``2 pi k n / n_fft``.
    """
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
    angle = 2 * np.pi * np.outer(k, n) / n_fft
    real = (np.cos(angle) * window)[:, None, :]
    imag = (-np.sin(angle) * window)[:, None, :]
    return torch.from_numpy(real).float(), torch.from_numpy(imag).float()


class PannsLogMel(nn.Module):
    """PANNs log-mel spectrogram (torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``).

    Defaults are those of the 32 kHz PANNs; ``CNN14_16k`` uses ``sample_rate=16000, n_fft=512,
    hop_length=160, f_max=8000``.

    Args:
        sample_rate: input rate in Hz.
        n_fft: FFT size and window length.
        hop_length: hop in samples.
        n_mels: mel bins.
        f_min, f_max: mel filter range in Hz.
        amin: floor of the mel power before the log.
        ref: reference power of 0 dB.
        top_db: None (PANNs: no clamp), or clamp each clip's log-mel to at least its maximum minus
            ``top_db`` dB, as librosa's ``power_to_db`` does by default (80). Digital silence (zero
            padding) and the empty bands of audio recorded at a lower rate than the model's otherwise
            sit near ``10 log10(amin)`` = -100 dB with resampling residue above it, which the per-band
            ``bn0`` of the network then scales up to unit variance.
    """

    def __init__(self, sample_rate: int = 32000, n_fft: int = 1024, hop_length: int = 320, n_mels: int = 64,
                 f_min: float = 50.0, f_max: float = 14000.0, amin: float = 1e-10, ref: float = 1.0,
                 top_db: float | None = None):
        super().__init__()
        if top_db is not None and not top_db > 0:
            raise ValueError(f"top_db must be None or > 0, got {top_db}")
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.f_min, self.f_max, self.amin, self.ref, self.top_db = f_min, f_max, amin, ref, top_db
        with torch.device("cpu"):  # constants, also when the model is built under another default device (meta)
            window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64).float()
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("melW", slaney_mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` input samples (centred frames: ``1 + T // hop``)."""
        return 1 + num_samples // self.hop_length

    def power(self, wave: torch.Tensor) -> torch.Tensor:
        """float (B, T) waveform -> float32 (B, 1, frames, n_fft // 2 + 1) power spectrogram."""
        if wave.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"waveform of {wave.shape[-1]} samples is too short for the {self.n_fft}-point "
                             f"reflect-padded STFT (needs more than {self.n_fft // 2}); pad it first")
        with _no_autocast(wave.device):
            spec = torch.stft(wave.float(), self.n_fft, self.hop_length, self.n_fft, self.window, center=True,
                              pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
            power = spec.real.square() + spec.imag.square()
        return power.transpose(1, 2).unsqueeze(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Args:
            wave: float (B, T) mono waveforms at ``sample_rate``.

        Returns:
            float32 (B, 1, frames, n_mels) log-mel in dB, ``frames = 1 + T // hop_length``.
        """
        power = self.power(wave)
        with _no_autocast(power.device):
            mel = torch.matmul(power, self.melW)
            db = 10.0 * torch.log10(mel.clamp_min(self.amin))
            if self.ref != 1.0:
                db = db - 10.0 * math.log10(max(self.amin, self.ref))
            if self.top_db is not None:
                peak = db.amax(dim=(1, 2, 3), keepdim=True)
                db = torch.maximum(db, peak - self.top_db)
        return db

    def torchlibrosa_state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """This front-end's constants in torchlibrosa's state-dict layout (as stored in PANNs checkpoints).

        Returns:
            ``{prefix + 'spectrogram_extractor.stft.conv_real.weight': (n_freqs, 1, n_fft),
            '...conv_imag.weight': (n_freqs, 1, n_fft), prefix + 'logmel_extractor.melW': (n_freqs, n_mels)}``.
        """
        real, imag = torchlibrosa_stft_weights(self.n_fft)
        return {prefix + "spectrogram_extractor.stft.conv_real.weight": real,
                prefix + "spectrogram_extractor.stft.conv_imag.weight": imag,
                prefix + "logmel_extractor.melW": self.melW.detach().cpu().clone()}

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"n_mels={self.n_mels}, f_min={self.f_min}, f_max={self.f_max}")


# ------------------------------------------------------------------------------------------------
# AST Kaldi fbank


class KaldiFbank(nn.Module):
    """AST's input: Kaldi log mel filterbank, padded/cropped to ``n_frames`` and normalised.

    The arithmetic of ``torchaudio.compliance.kaldi.fbank`` with AST's options, batched: frames of
    25 ms every 10 ms that fit in the clip (``snip_edges``), per-frame DC removal, pre-emphasis 0.97,
    symmetric Hann window, zero-padded 512-point FFT, power, HTK-mel triangles from 20 Hz to Nyquist,
    ``log(max(x, float32 eps))``. Before that the clip mean is removed (AST's data loader does it).

    Args:
        sample_rate: input rate in Hz (AST: 16000).
        n_mels: mel bins (AST: 128).
        n_frames: output frames; shorter clips are zero-padded at the end (before normalisation, as
            AST does), longer ones cropped. 0 keeps every frame.
        norm_mean, norm_std: dataset statistics of the fbank; the output is ``(x - mean) / (2 * std)``.
        frame_length_ms, frame_shift_ms: Kaldi framing.
        low_freq, high_freq: mel range in Hz (``high_freq <= 0`` is an offset from Nyquist).
        preemphasis: pre-emphasis coefficient.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 128, n_frames: int = 1024,
                 norm_mean: float = AST_NORM_MEAN, norm_std: float = AST_NORM_STD, frame_length_ms: float = 25.0,
                 frame_shift_ms: float = 10.0, low_freq: float = 20.0, high_freq: float = 0.0, preemphasis: float = 0.97):
        super().__init__()
        from torchaudio.compliance.kaldi import get_mel_banks

        if norm_std <= 0:
            raise ValueError(f"norm_std must be positive, got {norm_std}")
        self.sample_rate, self.n_mels, self.n_frames = sample_rate, n_mels, n_frames
        self.norm_mean, self.norm_std, self.preemphasis = float(norm_mean), float(norm_std), preemphasis
        self.window_size = int(sample_rate * frame_length_ms * 0.001)
        self.window_shift = int(sample_rate * frame_shift_ms * 0.001)
        self.padded_size = 1 << (self.window_size - 1).bit_length()
        with torch.device("cpu"):  # constants, also when the model is built under another default device (meta)
            banks, _ = get_mel_banks(n_mels, self.padded_size, float(sample_rate), low_freq, high_freq, 100.0, -500.0, 1.0)
            banks = F.pad(banks.float(), (0, 1))  # (n_mels, padded // 2 + 1): the Nyquist bin has no weight
            window = torch.hann_window(self.window_size, periodic=False)
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)  # (n_freqs, n_mels)
        self.register_buffer("window", window, persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Kaldi frames in a clip of ``num_samples`` (before padding/cropping to ``n_frames``)."""
        return 0 if num_samples < self.window_size else 1 + (num_samples - self.window_size) // self.window_shift

    @property
    def min_samples_for_all_frames(self) -> int:
        """Shortest clip that fills all ``n_frames`` frames without padding."""
        return self.window_size + (max(1, self.n_frames) - 1) * self.window_shift

    @property
    def pad_value(self) -> float:
        """What a padded (zero) fbank value becomes after normalisation."""
        return (0.0 - self.norm_mean) / (2.0 * self.norm_std)

    def fbank(self, wave: torch.Tensor) -> torch.Tensor:
        """Raw Kaldi log-mel energies, neither padded nor normalised.

        Args:
            wave: float (B, T) mono waveforms at ``sample_rate``.

        Returns:
            float32 (B, frames, n_mels), ``frames = 1 + (T - window) // shift`` (0 if T < window).
        """
        if wave.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        b, t = wave.shape
        m = self.num_frames(t)
        if m == 0:
            return wave.new_zeros(b, 0, self.n_mels, dtype=torch.float32)
        with _no_autocast(wave.device):
            x = wave.float()
            x = x - x.mean(dim=-1, keepdim=True)
            frames = x.unfold(-1, self.window_size, self.window_shift)  # (B, m, window)
            frames = frames - frames.mean(dim=-1, keepdim=True)
            if self.preemphasis:
                prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
                frames = frames - self.preemphasis * prev
            frames = frames * self.window
            spec = torch.fft.rfft(frames, n=self.padded_size)
            power = spec.abs().pow(2.0)
            mel = torch.matmul(power, self.mel_banks)
            return mel.clamp_min(torch.finfo(torch.float32).eps).log()

    def pad_or_crop(self, fb: torch.Tensor) -> torch.Tensor:
        """(B, frames, n_mels) -> (B, n_frames, n_mels): zero-pad at the end or keep the first frames."""
        if not self.n_frames:
            return fb
        m = fb.shape[1]
        if m < self.n_frames:
            return F.pad(fb, (0, 0, 0, self.n_frames - m))
        return fb[:, : self.n_frames]

    def normalize(self, fb: torch.Tensor) -> torch.Tensor:
        """``(fb - norm_mean) / (2 * norm_std)``."""
        return (fb - self.norm_mean) / (2.0 * self.norm_std)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Args:
            wave: float (B, T) mono waveforms at ``sample_rate``.

        Returns:
            float32 (B, n_frames, n_mels) normalised fbank (time first, as AST's data loader yields it).
        """
        return self.normalize(self.pad_or_crop(self.fbank(wave)))

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, n_frames={self.n_frames}, "
                f"norm_mean={self.norm_mean}, norm_std={self.norm_std}")


# ------------------------------------------------------------------------------------------------
# augmentation


class SpecAugment(nn.Module):
    """Time and frequency stripes set to ``fill`` (training mode only; identity in eval mode).

    Works on the last two dimensions, ``(..., time, freq)``: PANNs' (B, 1, T, mels) and AST's
    (B, T, mels) alike. For each example, ``*_stripes_num`` stripes of width uniform in
    ``[0, drop_width)`` start uniformly among the positions where they fit (torchlibrosa's
    ``DropStripes``; torchaudio's masking in AST draws from nearly the same distribution). Unlike
    torchlibrosa it is out-of-place and vectorised.

    Args:
        time_drop_width, time_stripes_num: PANNs: 64, 2. AST (AudioSet): 192, 1.
        freq_drop_width, freq_stripes_num: PANNs: 8, 2. AST (AudioSet): 48, 1.
        fill: value of the dropped cells (0 after PANNs' bn0; for AST, the normalised value of 0).
    """

    def __init__(self, time_drop_width: int = 64, time_stripes_num: int = 2, freq_drop_width: int = 8,
                 freq_stripes_num: int = 2, fill: float = 0.0):
        super().__init__()
        self.time_drop_width, self.time_stripes_num = time_drop_width, time_stripes_num
        self.freq_drop_width, self.freq_stripes_num = freq_drop_width, freq_stripes_num
        self.fill = fill

    @staticmethod
    def _stripes(batch: int, total: int, drop_width: int, num: int, device: torch.device) -> torch.Tensor | None:
        """bool (B, total): True where one of ``num`` random stripes covers the position."""
        drop_width = min(drop_width, total)
        if num <= 0 or drop_width <= 1:  # widths are drawn from [0, drop_width): nothing to drop
            return None
        width = torch.randint(0, drop_width, (batch, num, 1), device=device)
        start = (torch.rand(batch, num, 1, device=device) * (total - width)).long()
        pos = torch.arange(total, device=device)
        return ((pos >= start) & (pos < start + width)).any(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, ..., T, F) -> same shape, with stripes set to ``fill`` in training mode."""
        if not self.training:
            return x
        if x.dim() < 3:
            raise ValueError(f"SpecAugment expects (batch, ..., time, freq), got shape {tuple(x.shape)}")
        b, t, f = x.shape[0], x.shape[-2], x.shape[-1]
        lead = [1] * (x.dim() - 3)
        tm = self._stripes(b, t, self.time_drop_width, self.time_stripes_num, x.device)
        fm = self._stripes(b, f, self.freq_drop_width, self.freq_stripes_num, x.device)
        if tm is not None:
            x = x.masked_fill(tm.view(b, *lead, t, 1), self.fill)
        if fm is not None:
            x = x.masked_fill(fm.view(b, *lead, 1, f), self.fill)
        return x

    def extra_repr(self) -> str:
        return (f"time={self.time_drop_width}x{self.time_stripes_num}, freq={self.freq_drop_width}x{self.freq_stripes_num}, "
                f"fill={self.fill:g}")


def sample_mixup_lambda(batch_size: int, alpha: float = 1.0, rng: np.random.Generator | None = None) -> torch.Tensor:
    """PANNs' mixup coefficients: for each consecutive pair, ``lam ~ Beta(alpha, alpha)`` and ``1 - lam``.

    Args:
        batch_size: an even batch size.
        alpha: Beta parameter (PANNs: 1.0).
        rng: numpy generator (default: a fresh unseeded one).

    Returns:
        float32 (batch_size,) ``[lam_0, 1 - lam_0, lam_1, 1 - lam_1, ...]``.
    """
    if batch_size % 2:
        raise ValueError(f"PANNs mixup pairs consecutive examples: batch size must be even, got {batch_size}")
    rng = rng if rng is not None else np.random.default_rng()
    lam = rng.beta(alpha, alpha, size=batch_size // 2)
    return torch.from_numpy(np.stack([lam, 1.0 - lam], axis=1).reshape(-1)).float()


def do_mixup(x: torch.Tensor, mixup_lambda: torch.Tensor) -> torch.Tensor:
    """Mix consecutive pairs: ``out[i] = x[2i] * lam[2i] + x[2i + 1] * lam[2i + 1]``.

    Used on the features inside the model and, with the same coefficients, on the targets.

    Args:
        x: (2N, ...) tensor.
        mixup_lambda: (2N,) coefficients from :func:`sample_mixup_lambda`.

    Returns:
        (N, ...) tensor of ``x``'s dtype.
    """
    if x.shape[0] != mixup_lambda.shape[0] or x.shape[0] % 2:
        raise ValueError(f"mixup needs an even batch and one coefficient per example, got {x.shape[0]} and "
                         f"{mixup_lambda.shape[0]}")
    lam = mixup_lambda.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return x[0::2] * lam[0::2] + x[1::2] * lam[1::2]
