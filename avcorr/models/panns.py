"""PANNs CNN taggers (Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks", 2020).

One implementation, :class:`PANNsCNN`, covers the CNN family of the reference code
(qiuqiangkong/audioset_tagging_cnn ``pytorch/models.py``); the variants are registered functions:

============== ======================== ========================== =========== ==============
name           conv blocks              channels                   embedding   front-end
============== ======================== ========================== =========== ==============
panns_cnn6     4 x (conv5x5-BN-ReLU)    64-128-256-512             512         32 kHz
panns_cnn10    4 x 2 x (conv3x3-BN-ReLU) 64-128-256-512            512         32 kHz
panns_cnn14    6 x 2 x (conv3x3-BN-ReLU) 64-...-2048 (last unpooled) 2048      32 kHz
panns_cnn14_16k as panns_cnn14                                                 16 kHz
test_panns     CNN10 layout at width 1/16                          32          32 kHz
============== ======================== ========================== =========== ==============

Each block ends with a 2x2 average pool (CNN14's sixth: none) and dropout 0.2; the map is averaged
over mel bins, then max + mean over time, dropout 0.5, ``fc1`` + ReLU (the embedding), and the
``fc_audioset`` classifier. In training mode SpecAugment (2 time stripes < 64 frames, 2 frequency
stripes < 8 bins) runs after ``bn0``, as in the reference.

State-dict keys are the reference's (``bn0.*``, ``conv_block1.conv1.weight``, ``conv_block1.bn1.*``,
``fc1.*``, ``fc_audioset.*``), so the released checkpoints (``{'model': state_dict, ...}``) load with
:meth:`PANNsCNN.load_pretrained` (``create_model(name, checkpoint_path=...)`` calls it). Their
torchlibrosa front-end tensors (``spectrogram_extractor.stft.conv_real.weight``, ``conv_imag.weight``,
``logmel_extractor.melW``) are not weights: they are checked against this model's front-end (same
shapes, values within float32 rounding) and dropped; a mismatch means the checkpoint is for another
front-end (e.g. a 16 kHz checkpoint into ``panns_cnn14``) and is an error.
:meth:`PANNsCNN.official_state_dict` writes them back for the reference code.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._pretrained import load_checked
from ._registry import register_model
from ._silence import SilenceMaskedBatchNorm2d
from .input_spec import InputSpec
from .tagging_audio import PannsLogMel, SpecAugment, do_mixup

__all__ = ["PANNsCNN", "panns_cnn6", "panns_cnn10", "panns_cnn14", "panns_cnn14_16k", "test_panns"]

logger = logging.getLogger(__name__)

FRONTEND_KEYS = ("spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
                 "logmel_extractor.melW")


class ConvBlock(nn.Module):
    """``n_convs`` x (conv k x k, no bias - BN - ReLU), then average pooling.

    Keys ``conv1``/``bn1`` (and ``conv2``/``bn2``) as the reference's ``ConvBlock`` / ``ConvBlock5x5``.

    Args:
        in_chans, out_chans: channels.
        kernel_size: 3 (CNN10/14) or 5 (CNN6).
        n_convs: 2 (CNN10/14) or 1 (CNN6).
        pool: average-pool kernel (time, freq); ``(1, 1)`` = none.
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3, n_convs: int = 2,
                 pool: tuple[int, int] = (2, 2)):
        super().__init__()
        self.n_convs, self.pool = n_convs, tuple(pool)
        for i in range(1, n_convs + 1):
            conv = nn.Conv2d(in_chans if i == 1 else out_chans, out_chans, kernel_size, padding=kernel_size // 2, bias=False)
            nn.init.xavier_uniform_(conv.weight)
            self.add_module(f"conv{i}", conv)
            self.add_module(f"bn{i}", nn.BatchNorm2d(out_chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, F) -> (B, C_out, T / pool_t, F / pool_f)."""
        for i in range(1, self.n_convs + 1):
            x = F.relu_(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        if self.pool != (1, 1):
            x = F.avg_pool2d(x, kernel_size=self.pool)
        return x


class PANNsCNN(nn.Module):
    """A PANNs CNN tagger on raw waveforms.

    Args:
        num_classes: classifier outputs (527 for AudioSet); 0 builds no classifier (feature extractor).
        channels: output channels of each conv block (before ``width``).
        kernel_size, n_convs: block type: (3, 2) = ``ConvBlock``; (5, 1) = ``ConvBlock5x5``.
        last_pool: pooling of the last block ((1, 1) in CNN14, (2, 2) in CNN6/10).
        width: channel multiplier of the conv blocks (1.0 = reference).
        embed_dim: ``fc1`` output size = embedding size (default: the last block's channels; the
            reference's ``Cnn14_emb512`` / ``emb128`` / ``emb32`` are CNN14 with 512 / 128 / 32).
        sample_rate, n_fft, hop_length, n_mels, f_min, f_max: the log-mel front-end.
        clip_seconds: clip length the model was trained on (sets ``clip_samples``; inputs may be any
            length long enough to survive the pooling, about 0.3 s for CNN14).
        dropout: dropout after each block.
        head_dropout: dropout before ``fc1`` (and on the returned embedding in training mode).
        spec_augment: SpecAugment in training mode.
        top_db: clamp each clip's log-mel to its maximum minus ``top_db`` dB (None: PANNs, no clamp);
            see :class:`~avcorr.models.tagging_audio.PannsLogMel`.
        time_drop_width, time_stripes_num, freq_drop_width, freq_stripes_num: its stripes.
        mask_silence: treat frames of digital silence (every mel band within 1 dB of the front-end's
            floor, ``10 log10(amin)`` = -100 dB: zero padding of short clips, or the padding some
            datasets store in their files) as missing: ``bn0`` takes its statistics from the other
            frames only and those frames come out at the normalised mean, as SpecAugment's stripes do.
            Without it (PANNs) a clip that is half padding makes each band's statistics bimodal
            (-100 dB against speech at -40..+20 dB) and the normalised sound is squeezed into a
            third of its range. Off by default: the released checkpoints were trained without it.
    """

    def __init__(self, num_classes: int = 527, channels: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
                 kernel_size: int = 3, n_convs: int = 2, last_pool: tuple[int, int] = (1, 1), width: float = 1.0,
                 embed_dim: int | None = None,
                 sample_rate: int = 32000, n_fft: int = 1024, hop_length: int = 320, n_mels: int = 64,
                 f_min: float = 50.0, f_max: float = 14000.0, clip_seconds: float = 10.0, dropout: float = 0.2,
                 head_dropout: float = 0.5, spec_augment: bool = True, time_drop_width: int = 64,
                 time_stripes_num: int = 2, freq_drop_width: int = 8, freq_stripes_num: int = 2,
                 top_db: float | None = None, mask_silence: bool = False):
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if mask_silence and top_db is not None:
            raise ValueError("mask_silence and top_db exclude each other: top_db lifts digital silence off the "
                             "floor that mask_silence detects it by; choose one")
        chans = [max(1, int(round(c * width))) for c in channels]
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.clip_samples = int(round(clip_seconds * sample_rate))
        self.embed_dim = int(embed_dim) if embed_dim else chans[-1]
        self.dropout, self.head_dropout = dropout, head_dropout
        self.frontend = PannsLogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db=top_db)
        self.spec_augmenter = SpecAugment(time_drop_width, time_stripes_num, freq_drop_width, freq_stripes_num) \
            if spec_augment else nn.Identity()
        # bn0 normalises each mel band (the bands are its channels); with mask_silence, frames of digital
        # silence (every band within 1 dB of 10 log10(amin)) are left out
        self.bn0 = (SilenceMaskedBatchNorm2d(n_mels, 10.0 * math.log10(self.frontend.amin), band_dim=1, tol=1.0)
                    if mask_silence else nn.BatchNorm2d(n_mels))
        self.num_blocks = len(chans)
        c_in = 1
        for i, c in enumerate(chans, 1):
            pool = tuple(last_pool) if i == len(chans) else (2, 2)
            self.add_module(f"conv_block{i}", ConvBlock(c_in, c, kernel_size, n_convs, pool))
            c_in = c
        self.fc1 = nn.Linear(c_in, self.embed_dim)
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.zeros_(self.fc1.bias)
        if num_classes:
            self.fc_audioset = nn.Linear(self.embed_dim, num_classes)
            nn.init.xavier_uniform_(self.fc_audioset.weight)
            nn.init.zeros_(self.fc_audioset.bias)

    @property
    def input_spec(self) -> InputSpec:
        """Mono waveforms at ``sample_rate``, ``clip_samples`` long (any length from :attr:`min_samples`)."""
        return InputSpec.wave(self.sample_rate, clip_samples=self.clip_samples, min_samples=self.min_samples)

    @property
    def min_samples(self) -> int:
        """Shortest waveform the pooling stages accept."""
        n_pool = sum(1 for i in range(1, self.num_blocks + 1) if getattr(self, f"conv_block{i}").pool[0] > 1)
        return max(self.frontend.hop_length * ((1 << n_pool) - 1), self.frontend.n_fft // 2 + 1)

    def forward_features(self, features: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Everything after the front-end, from precomputed log-mel features.

        Args:
            features: float (B, 1, frames, n_mels) or (B, frames, n_mels) log-mel (dB) as
                :attr:`frontend` computes it.
            mixup_lambda: optional (B,) PANNs mixup coefficients (``sample_mixup_lambda``); the
                features are mixed pairwise after SpecAugment and the outputs have B / 2 rows.

        Returns:
            dict with ``embedding`` (B, embed_dim) (the ReLU'd ``fc1`` output, dropped out in
            training mode as in the reference) and, when ``num_classes > 0``, ``logits``
            (B, num_classes) and ``clipwise_output`` = ``sigmoid(logits)``.
        """
        x = features.unsqueeze(1) if features.dim() == 3 else features
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] != self.bn0.num_features:
            raise ValueError(f"expected (batch, 1, frames, {self.bn0.num_features}) log-mel features, got "
                             f"{tuple(features.shape)}")
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = self.spec_augmenter(x)
        if mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
        for i in range(1, self.num_blocks + 1):
            x = getattr(self, f"conv_block{i}")(x)
            x = F.dropout(x, p=self.dropout, training=self.training)
        x = torch.mean(x, dim=3)
        x = torch.amax(x, dim=2) + torch.mean(x, dim=2)
        x = F.dropout(x, p=self.head_dropout, training=self.training)
        x = F.relu_(self.fc1(x))
        out = {"embedding": F.dropout(x, p=self.head_dropout, training=self.training)}
        if self.num_classes:
            logits = self.fc_audioset(x)
            out["logits"] = logits
            out["clipwise_output"] = torch.sigmoid(logits)
        return out

    def forward(self, wave: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Args:
            wave: float (B, T) mono waveforms at ``sample_rate`` (any T >= :attr:`min_samples`).
            mixup_lambda: see :meth:`forward_features`.

        Returns:
            see :meth:`forward_features`.
        """
        if wave.dim() == 2 and wave.shape[-1] < self.min_samples:
            raise ValueError(f"waveform of {wave.shape[-1]} samples is shorter than this model's minimum of "
                             f"{self.min_samples} ({self.min_samples / self.sample_rate:.3f} s); pad it")
        return self.forward_features(self.frontend(wave), mixup_lambda)

    # -- weights of the reference implementation ---------------------------------------------
    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load a reference PANNs state dict (or one of this model's own).

        The torchlibrosa front-end tensors are checked against :attr:`frontend` and dropped; a
        classifier of another size (or ``num_classes=0``) is skipped with a warning; every other key
        must match exactly.

        Args:
            state_dict: ``checkpoint['model']`` of a released PANNs file, ``module.`` prefix removed.
            source: name for messages.

        Raises:
            ValueError: a front-end of other settings, or missing / unexpected / mis-shaped keys.
        """
        state = dict(state_dict)
        ref = self.frontend.torchlibrosa_state()
        for k in FRONTEND_KEYS:
            if k not in state:
                continue
            v = state.pop(k).float()
            if v.shape != ref[k].shape or (v.device.type != "meta"
                                           and not torch.allclose(v, ref[k], rtol=1e-4, atol=1e-6)):
                raise ValueError(
                    f"{source}: front-end tensor {k} {tuple(v.shape)} differs from this model's front-end "
                    f"{tuple(ref[k].shape)} ({self.frontend.extra_repr()}); the checkpoint was made for other "
                    f"front-end settings (e.g. panns_cnn14_16k vs panns_cnn14)")
        load_checked(self, state, head_prefixes=("fc_audioset.",), source=source)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """This model's weights in the reference layout, torchlibrosa front-end tensors included."""
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        state.update(self.frontend.torchlibrosa_state())
        return state


def _create(num_classes: int = 527, **kwargs) -> PANNsCNN:
    return PANNsCNN(num_classes=num_classes, **kwargs)


_CNN14 = dict(channels=(64, 128, 256, 512, 1024, 2048), kernel_size=3, n_convs=2, last_pool=(1, 1))
_CNN10 = dict(channels=(64, 128, 256, 512), kernel_size=3, n_convs=2, last_pool=(2, 2))
_CNN6 = dict(channels=(64, 128, 256, 512), kernel_size=5, n_convs=1, last_pool=(2, 2))
_FRONT_16K = dict(sample_rate=16000, n_fft=512, hop_length=160, f_max=8000.0)


@register_model
def panns_cnn6(**kwargs) -> PANNsCNN:
    """PANNs CNN6: four conv5x5 blocks, 512-d embedding, 32 kHz log-mel (AudioSet mAP 0.343)."""
    return _create(**{**_CNN6, **kwargs})


@register_model
def panns_cnn10(**kwargs) -> PANNsCNN:
    """PANNs CNN10: four double-conv3x3 blocks, 512-d embedding, 32 kHz log-mel (AudioSet mAP 0.380)."""
    return _create(**{**_CNN10, **kwargs})


@register_model
def panns_cnn14(**kwargs) -> PANNsCNN:
    """PANNs CNN14: six double-conv3x3 blocks, 2048-d embedding, 32 kHz log-mel (AudioSet mAP 0.431)."""
    return _create(**{**_CNN14, **kwargs})


@register_model
def panns_cnn14_16k(**kwargs) -> PANNsCNN:
    """PANNs CNN14 on a 16 kHz log-mel (window 512, hop 160, 50-8000 Hz; AudioSet mAP 0.438)."""
    return _create(**{**_CNN14, **_FRONT_16K, **kwargs})


@register_model
def test_panns(**kwargs) -> PANNsCNN:
    """Tiny PANNs for tests: the CNN10 layout at width 1/16 (4-8-16-32 channels), 10 classes."""
    return _create(**{**_CNN10, "width": 1 / 16, "num_classes": 10, **kwargs})
