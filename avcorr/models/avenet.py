"""AVE-Net and the L3-Net baseline (Arandjelović & Zisserman, "Objects that Sound", ECCV 2018).

Both share the paper's two subnetworks: a VGG-style vision tower on a 224 x 224 frame and an audio
tower on the 257 x 200 log-spectrogram of 1 s of 48 kHz audio, each four blocks of
(conv3x3-BN-ReLU, conv3x3-BN-ReLU, max-pool 2x2) with 64/128/256/512 channels, then a global max
pool. AVE-Net maps each side to a 128-d L2-normalised embedding (fc 512-128, ReLU, fc 128-128) and
decides correspondence from the Euclidean distance alone (a 1 -> 2 linear layer + softmax), which
makes the embeddings directly usable for cross-modal retrieval. L3-Net (Arandjelović & Zisserman,
ICCV 2017) concatenates the two pooled 512-d features and classifies with two fc layers.

With ``audio_backbone="panns_cnn14"`` (any registered tagging model: ``panns_*``, ``ast_*``) the
audio tower is that model without its classifier: its own front-end on the waveform (resampled from
``sample_rate`` to the backbone's rate inside the model when they differ), its pooled embedding in
place of the max-pooled conv map, then the usual ``audio_head``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import create_model, register_model
from .avc_audio import LogSpectrogram, SpectrogramMasks, input_norm
from .input_spec import InputSpec

__all__ = ["AVENet", "ConvTower", "TaggingAudioTower", "avenet", "avenet_s2", "l3net", "test_avenet", "test_l3net"]

logger = logging.getLogger(__name__)


def _scaled(channels: Sequence[int], width: float) -> list[int]:
    return [max(4, int(round(c * width))) for c in channels]


class ConvTower(nn.Module):
    """VGG-style tower: per stage two conv3x3-BN-ReLU then a 2x2 max-pool.

    Args:
        in_chans: input channels (3 for frames, 1 for spectrograms).
        channels: output channels of each stage.
        pool_last: end with the last stage's max-pool (the paper). Without it the map keeps twice the
            resolution (stride 8 instead of 16 for four stages) for the same convolutions: only what
            follows the tower sees 4x more cells.
        stem_stride: stride of the very first convolution (1 = the paper). 2 makes every later layer
            work on a quarter of the cells, about 4x less compute, the cheaper stem of some public
            re-implementations; the output map then has twice the stride.
    """

    def __init__(self, in_chans: int, channels: Sequence[int] = (64, 128, 256, 512), pool_last: bool = True,
                 stem_stride: int = 1):
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        layers: list[nn.Module] = []
        c_in = in_chans
        for i, c in enumerate(channels):
            for j in range(2):
                stride = stem_stride if i == 0 and j == 0 else 1
                layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c),
                           nn.ReLU(inplace=True)]
                c_in = c
            if pool_last or i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.out_chans = c_in
        self.stride = stem_stride * 2 ** (len(channels) - (0 if pool_last else 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> feature map (B, out_chans, H / stride, W / stride); stride 16 for the paper's tower."""
        return self.features(x)


class TaggingAudioTower(nn.Module):
    """A registered tagging model (PANNs, AST) used as an audio tower: waveform -> pooled embedding.

    The model is built with ``num_classes=0`` (no classifier). Waveforms arrive at ``sample_rate``
    and are resampled (``torchaudio.functional.resample``, float32) to the backbone's rate when the two
    differ.

    Args:
        name: registered tagging model, e.g. ``"panns_cnn14"``, ``"ast_tiny"``.
        sample_rate: rate of the waveforms given to :meth:`forward`.
        kwargs: further arguments of the tagging model (e.g. ``{"width": 0.25}``, ``{"n_frames": 128}``).
        checkpoint_path: optional local checkpoint of the tagging model (official PANNs / AST files
            load; their classifier is skipped).
    """

    def __init__(self, name: str, sample_rate: int, kwargs: dict[str, Any] | None = None,
                 checkpoint_path: str | None = None):
        super().__init__()
        try:
            self.model = create_model(name, checkpoint_path=checkpoint_path or None, **{**(kwargs or {}), "num_classes": 0})
        except TypeError as e:  # a model without num_classes, or a wrong kwarg
            raise ValueError(f"audio backbone {name!r} is not a tagging model or got a wrong argument ({e})") from e
        for attr in ("sample_rate", "embed_dim", "frontend"):
            if not hasattr(self.model, attr):
                raise ValueError(f"audio backbone {name!r} is not a tagging model (it has no {attr!r})")
        self.name = name
        self.in_rate = int(sample_rate)
        self.out_chans = int(self.model.embed_dim)
        if self.in_rate != self.model.sample_rate:
            logger.info("audio backbone %s: resampling %d Hz input to %d Hz", name, self.in_rate, self.model.sample_rate)

    @property
    def frontend(self) -> nn.Module:
        """The backbone's own front-end."""
        return self.model.frontend

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """float (B, T) waveform at ``sample_rate`` -> (B, out_chans) pooled embedding."""
        if self.in_rate != self.model.sample_rate:
            import torchaudio

            with torch.autocast(device_type=wave.device.type, enabled=False):
                wave = torchaudio.functional.resample(wave.float(), self.in_rate, self.model.sample_rate)
        return self.model(wave)["embedding"]


class AVENet(nn.Module):
    """Audio-visual correspondence network.

    Args:
        embed_dim: embedding size (128 in the paper).
        width: channel multiplier of both towers (1.0 = paper: 64-128-256-512).
        vision_width: channel multiplier of the vision tower alone (default: ``width``).
        audio_width: channel multiplier of the audio tower alone (default: ``width``).
        fusion: ``"distance"`` (AVE-Net) or ``"concat"`` (L3-Net).
        sample_rate: audio sample rate the front-end expects (the data side reads it from :attr:`input_spec`).
        clip_seconds: the audio window the model takes (default: ``n_frames * hop_length / sample_rate``,
            or the audio backbone's window); part of :attr:`input_spec`.
        n_fft, win_length, hop_length, n_frames: log-spectrogram front-end (paper: 512/480/240/200 at 48 kHz).
        n_mels: mel bands of the front-end; 0 = the paper's linear-frequency spectrogram.
        audio_backbone: a registered tagging model (``"panns_cnn14"``, ``"ast_base"``...) replacing the
            audio tower (and its front-end; ``n_fft``... and ``audio_width`` are then unused).
        audio_backbone_kwargs: arguments of that model (e.g. ``{"width": 0.25}``).
        audio_backbone_checkpoint: local checkpoint file of that model (e.g. the released CNN14).
        stem_stride: stride of the first convolution of both towers (1 = the paper; 2 = the cheaper
            stem, about 4x fewer FLOPs, registered as ``avenet_s2``).
        mask_silence: the audio input's batch normalisation leaves out frames of digital silence (zero
            padding of short sounds) and sets them to its mean (:func:`~avcorr.models.avc_audio.input_norm`).
        spec_augment: SpecAugment time and band stripes on the normalised spectrogram in training mode
            (:class:`~avcorr.models.avc_audio.SpectrogramMasks`); no parameters.
        visual_pool: how a frame meets a sound. ``"max"`` (the paper): the vision tower's map is
            max-pooled, then ``vision_head`` gives ONE embedding per frame. ``"cells"`` (multiple
            instance, as the localization work from AVOL-Net to EZ-VSL): ``vision_head`` embeds every
            cell of the map (the same weights, so checkpoints load either way) and a sound's similarity
            to a frame is that of its best cell (:meth:`similarity`), so a frame with several objects
            need not be one average of them; :meth:`encode_visual` is then the max-pooled cells (what
            retrieval indexes).
    """

    def __init__(self, embed_dim: int = 128, width: float = 1.0, fusion: str = "distance", sample_rate: int = 48000,
                 n_fft: int = 512, win_length: int = 480, hop_length: int = 240, n_frames: int = 200, n_mels: int = 0,
                 vision_width: float | None = None, audio_width: float | None = None,
                 audio_backbone: str | None = None, audio_backbone_kwargs: dict[str, Any] | None = None,
                 audio_backbone_checkpoint: str | None = None, stem_stride: int = 1,
                 clip_seconds: float | None = None, mask_silence: bool = False, spec_augment: bool = False,
                 visual_pool: str = "max"):
        super().__init__()
        if fusion not in ("distance", "concat"):
            raise ValueError(f"fusion must be 'distance' or 'concat', got {fusion!r}")
        if visual_pool not in ("max", "cells"):
            raise ValueError(f"visual_pool must be 'max' or 'cells', got {visual_pool!r}")
        if visual_pool == "cells" and fusion != "distance":
            raise ValueError("visual_pool='cells' needs embeddings to compare (fusion='distance', AVE-Net), not "
                             "L3-Net's concatenation: for L3-Net leave it out (model.kwargs={} on a command line "
                             "that starts from avenet.py)")
        self.fusion, self.visual_pool = fusion, visual_pool
        self.sample_rate = sample_rate
        self.embed_dim = embed_dim
        base = (64, 128, 256, 512)
        self.audio_backbone = audio_backbone or None
        self.vision = ConvTower(3, _scaled(base, width if vision_width is None else vision_width),
                                stem_stride=stem_stride)
        if self.audio_backbone and (mask_silence or spec_augment):
            raise ValueError("mask_silence and spec_augment are options of the audio tower; with an audio backbone, "
                             "pass them in audio_backbone_kwargs (PANNs models take both)")
        if self.audio_backbone:
            self.audio: nn.Module = TaggingAudioTower(self.audio_backbone, sample_rate, audio_backbone_kwargs,
                                                      audio_backbone_checkpoint)
            self.frontend = self.audio.frontend  # the backbone's (holds no state of its own)
            self.audio_bn0: nn.Module = nn.Identity()
            self.audio_masks = nn.Identity()
        else:
            self.frontend = LogSpectrogram(n_fft, win_length, hop_length, n_frames, n_mels=n_mels, sample_rate=sample_rate)
            self.audio_bn0 = input_norm(self.frontend, mask_silence)  # puts the log-spectrogram on a sane scale
            self.audio_masks: nn.Module = SpectrogramMasks(self.frontend.n_bins, n_frames) if spec_augment else nn.Identity()
            self.audio = ConvTower(1, _scaled(base, width if audio_width is None else audio_width),
                                   stem_stride=stem_stride)
        if clip_seconds is None:
            backbone = getattr(self.audio, "model", None)
            clip_seconds = (backbone.clip_samples / backbone.sample_rate if hasattr(backbone, "clip_samples")
                            else n_frames * hop_length / sample_rate)
        self.clip_seconds = float(clip_seconds)
        vfeat, afeat = self.vision.out_chans, self.audio.out_chans
        if fusion == "distance":
            self.vision_head = nn.Sequential(nn.Linear(vfeat, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim))
            self.audio_head = nn.Sequential(nn.Linear(afeat, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim))
            self.classifier = nn.Linear(1, 2)
            with torch.no_grad():  # class 1 = "corresponds": its logit must fall as the distance grows
                self.classifier.weight.copy_(torch.tensor([[2.0], [-2.0]]))
                self.classifier.bias.copy_(torch.tensor([-2.0, 2.0]))
        else:
            self.classifier = nn.Sequential(nn.Linear(vfeat + afeat, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, 2))

    # -- towers ------------------------------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        """Mono waveforms of ``clip_seconds`` at ``sample_rate``, ImageNet-normalised RGB frames of any size."""
        return InputSpec.wave(self.sample_rate, clip_seconds=self.clip_seconds, frames=True)

    def audio_features(self, wave: torch.Tensor) -> torch.Tensor:
        """float (B, T) waveform -> audio feature map (B, C, F', T') ((B, C, 1, 1) with an audio backbone)."""
        if self.audio_backbone:
            return self.audio(wave)[:, :, None, None]
        return self.audio(self.audio_masks(self.audio_bn0(self.frontend(wave))))

    def visual_features(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) normalised frame -> visual feature map (B, C, H / 16, W / 16)."""
        return self.vision(image)

    def encode_audio(self, wave: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """float (B, T) waveform -> (B, embed_dim) embedding (L2-normalised unless ``normalize=False``).

        For L3-Net the embedding is the pooled feature (B, C) of the audio tower.
        """
        x = torch.amax(self.audio_features(wave), dim=(2, 3))
        if self.fusion == "concat":
            return F.normalize(x, dim=-1) if normalize else x
        x = self.audio_head(x)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_visual_cells(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) frame -> (B, embed_dim, H / 16, W / 16) L2-normalised cell embeddings
        (``vision_head`` on every cell of the map; AVE-Net only)."""
        if self.fusion != "distance":
            raise ValueError("L3-Net (fusion='concat') has no embedding head to apply to cells")
        cells = self.vision_head(self.visual_features(image).permute(0, 2, 3, 1))
        return F.normalize(cells, dim=-1).permute(0, 3, 1, 2)

    def encode_visual(self, image: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """float (B, 3, H, W) frame -> (B, embed_dim) embedding (L2-normalised unless ``normalize=False``);
        with ``visual_pool="cells"`` the cell embeddings max-pooled over the map."""
        if self.visual_pool == "cells":
            x = torch.amax(self.encode_visual_cells(image), dim=(2, 3))
            return F.normalize(x, dim=-1) if normalize else x
        x = torch.amax(self.visual_features(image), dim=(2, 3))
        if self.fusion == "concat":
            return F.normalize(x, dim=-1) if normalize else x
        x = self.vision_head(x)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_visual_for_pairs(self, image: torch.Tensor) -> torch.Tensor:
        """What :meth:`similarity` compares a sound with: (B, D, h, w) cells with ``visual_pool="cells"``,
        else the (B, D, 1, 1) frame embedding; L2-normalised over D."""
        if self.visual_pool == "cells":
            return self.encode_visual_cells(image)
        return self.encode_visual(image)[:, :, None, None]

    @staticmethod
    def similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of pair ``i``'s sound and frame: (B, D, h, w) from
        :meth:`encode_visual_for_pairs` and (B, D) normalised audio -> (B,), the best cell's."""
        return torch.einsum("bdhw,bd->bhw", visual.float(), audio.float()).flatten(1).amax(1)

    def correspondence_logits(self, similarity: torch.Tensor) -> torch.Tensor:
        """(B,) cosine similarities -> (B, 2) logits of the distance head (class 1 = corresponds); the
        distance of unit vectors is sqrt(2 - 2 cos)."""
        d = (2.0 - 2.0 * similarity.float()).clamp_min(1e-12).sqrt()
        return self.classifier(d.unsqueeze(-1).to(self.classifier.weight.dtype))

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            audio: float (B, T) waveforms at ``sample_rate``.
            image: float (B, 3, H, W) normalised frames.

        Returns:
            dict with ``logits`` (B, 2) (class 1 = audio and frame correspond), ``audio_emb`` and
            ``visual_emb`` (B, D), and for AVE-Net ``distance`` (B,).
        """
        if self.fusion == "distance" and self.visual_pool == "cells":
            a = self.encode_audio(audio)
            cells = self.encode_visual_cells(image)
            sim = self.similarity(cells, a)
            v = F.normalize(torch.amax(cells, dim=(2, 3)), dim=-1)
            return {"logits": self.correspondence_logits(sim), "audio_emb": a, "visual_emb": v,
                    "distance": (2.0 - 2.0 * sim).clamp_min(1e-12).sqrt()}
        if self.fusion == "distance":
            a = self.encode_audio(audio)
            v = self.encode_visual(image)
            d = (a - v).float().pow(2).sum(-1).clamp_min(1e-12).sqrt()
            logits = self.classifier(d.unsqueeze(-1).to(self.classifier.weight.dtype))
            return {"logits": logits, "audio_emb": a, "visual_emb": v, "distance": d}
        a = self.encode_audio(audio, normalize=False)
        v = self.encode_visual(image, normalize=False)
        logits = self.classifier(torch.cat([v, a], dim=-1))
        return {"logits": logits, "audio_emb": F.normalize(a, dim=-1), "visual_emb": F.normalize(v, dim=-1)}


@register_model
def avenet(**kwargs) -> AVENet:
    """AVE-Net as in the paper (width 1.0, 128-d embeddings, 257 x 200 spectrogram, 224 px frames)."""
    return AVENet(**{"fusion": "distance", **kwargs})


@register_model
def avenet_s2(**kwargs) -> AVENet:
    """AVE-Net with the cheaper stem: the first convolution of each tower has stride 2 (about 4x fewer
    FLOPs at the paper's sizes; everything else as :func:`avenet`)."""
    return AVENet(**{"fusion": "distance", "stem_stride": 2, **kwargs})


@register_model
def l3net(**kwargs) -> AVENet:
    """The L3-Net baseline: same towers, concatenated features, fc-fc classifier."""
    return AVENet(**{"fusion": "concat", **kwargs})


@register_model
def test_avenet(**kwargs) -> AVENet:
    """Tiny AVE-Net for tests (width 1/16)."""
    return AVENet(**{"fusion": "distance", "width": 1 / 16, "embed_dim": 16, **kwargs})


@register_model
def test_l3net(**kwargs) -> AVENet:
    """Tiny L3-Net for tests (width 1/16)."""
    return AVENet(**{"fusion": "concat", "width": 1 / 16, "embed_dim": 16, **kwargs})
