"""Sound-localization networks: AVOL-Net ("Objects that Sound", ECCV 2018) and an EZ-VSL-style
contrastive localizer (Mo & Morgado, ECCV 2022), on the same two towers.

Both use AVE-Net's subnetworks (:class:`~avcorr.models.avenet.ConvTower`: four blocks of
conv3x3-BN-ReLU x 2 + max-pool, 64-128-256-512 channels) but keep the vision tower's spatial grid:
a 224 x 224 frame gives a 14 x 14 grid of 512-d features. The vision tower's last layers are then
**1 x 1 convolutions** (the fc 512-128, ReLU, fc 128-128 of AVE-Net applied to every cell), giving
one 128-d embedding per cell; the audio side is AVE-Net's (global max pool, fc-ReLU-fc, 128-d).

* **AVOL-Net** (``objective="avol"``): no normalisation; the similarity of the audio embedding with
  every cell is their scalar product; a learned calibration (a 1 x 1 conv on the 1-channel
  similarity map, i.e. a scalar scale and bias) and a sigmoid give the localization map; the
  correspondence score is its maximum over the cells (multiple-instance learning), trained with a
  logistic loss on positive and negative pairs (:class:`~avcorr.losses.MILLogisticLoss`). The
  calibration bias starts at a low per-cell prior (``prior_prob``, see :class:`AVOLNet`).
* **Contrastive localizer** (``objective="contrastive"``, EZ-VSL / LVS style): cells and audio are
  L2-normalised, the map is their cosine similarity, and training is a multiple-instance InfoNCE
  over the batch with max-pooled positives (:class:`~avcorr.losses.ContrastiveLocalizationLoss`,
  temperature 0.03). EZ-VSL's vision tower is an ImageNet-pretrained ResNet-18 and its
  "object-guided localization" blends the map with an object-saliency map of that network; here the
  towers are trained from scratch and the blending (``prior_alpha < 1``, inference only; the
  registered ``ezvsl`` uses EZ-VSL's 0.4) uses the mean activation of this model's own vision tower
  as the object prior.

The registered variants differ only in ``objective`` (and ``ezvsl``'s inference-time object prior),
so one config switch (``model.name=avolnet`` / ``model.name=ezvsl``) compares the classic and the
current method.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from .avc_audio import LogSpectrogram, input_norm
from .avenet import ConvTower, _scaled
from .input_spec import InputSpec

__all__ = ["AVOLNet", "avolnet", "ezvsl", "test_avolnet", "test_ezvsl"]

OBJECTIVES = ("avol", "contrastive")


def _minmax(m: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (h, w) map of a (B, h, w) batch (a constant map becomes 0)."""
    flat = m.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(m)


class AVOLNet(nn.Module):
    """Audio-visual object localization network (AVOL-Net or the contrastive localizer).

    Args:
        embed_dim: embedding size of cells and audio (128 in the paper).
        width: channel multiplier of both towers (1.0 = paper: 64-128-256-512).
        objective: ``"avol"`` (calibrated dot product + sigmoid, logistic MIL loss) or
            ``"contrastive"`` (cosine map, MIL InfoNCE).
        temperature: the contrastive model's InfoNCE temperature (EZ-VSL: 0.03); with ``cosine``, AVOL-Net's
            initial calibration scale is its inverse.
        prior_prob: AVOL only: initial probability that a cell "sounds", which sets the calibration's
            initial bias to ``log(p / (1 - p))`` (the prior-probability initialisation of RetinaNet,
            Lin et al. 2017; not specified by the paper). With a bias of 0 the max-pooled logistic loss
            can settle on "every object cell below the background" (loss ln 2, maps inverted), from
            which the max never reaches the object cells again; starting from a low prior, positives
            raise the max cell (an object) first and the discriminative signal flows through it.
        prior_alpha: weight of the audio-visual map when blending with the object prior at
            inference (``alpha * av + (1 - alpha) * obj`` after min-max normalising both; EZ-VSL's
            OGL uses 0.4); 1.0 = no blending.
        vision_width: channel multiplier of the vision tower alone (default: ``width``).
        audio_width: channel multiplier of the audio tower alone (default: ``width``).
        cosine: AVOL only: compare L2-normalised cells and audio (cosine similarity) instead of raw
            embeddings, with the calibration's scale starting at ``1 / temperature``. Bounded
            similarities keep the logistic loss from stalling at ln 2 while the embeddings' norms
            drift (the contrastive model always normalises).
        map_logits: AVOL only: the localization map is the calibrated logit of each cell instead of its
            sigmoid (the paper). The same ranking of the cells, but a cosine map scaled by
            ``1 / temperature`` saturates the sigmoid over the whole object and much of the
            background, so a fixed threshold on the min-max normalised map switches on far more than
            the object; training and the correspondence score are unchanged.
        vision_stride: 16 (the paper: 14 x 14 cells at 224 px) or 8 (the vision tower's last max-pool
            dropped: 28 x 28 at 224 px, 16 x 16 at 128 px). The convolutions cost the same; the
            finer grid is what lets a map outline objects of a few percent of the frame.
        sample_rate: audio sample rate the front-end expects (informational).
        n_fft, win_length, hop_length, n_frames: log-spectrogram front-end (paper: 512/480/240/200 at 48 kHz).
        clip_seconds: the audio window the model takes (default ``n_frames * hop_length / sample_rate``);
            part of :attr:`input_spec`, which the data side reads.
        n_mels: mel bands of the front-end; 0 = the paper's linear-frequency spectrogram.
        mask_silence: the audio input's batch normalisation leaves out frames of digital silence (zero
            padding of short sounds) and sets them to its mean (:func:`~avcorr.models.avc_audio.input_norm`).
    """

    def __init__(self, embed_dim: int = 128, width: float = 1.0, objective: str = "avol", temperature: float = 0.03,
                 prior_prob: float = 0.01, prior_alpha: float = 1.0, vision_width: float | None = None, audio_width: float | None = None,
                 vision_stride: int = 16, cosine: bool = False, sample_rate: int = 48000, n_fft: int = 512, win_length: int = 480, hop_length: int = 240,
                 n_frames: int = 200, n_mels: int = 0, clip_seconds: float | None = None,
                 map_logits: bool = False, mask_silence: bool = False):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if not 0.0 <= prior_alpha <= 1.0:
            raise ValueError(f"prior_alpha must be in [0, 1], got {prior_alpha}")
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if vision_stride not in (8, 16):
            raise ValueError(f"vision_stride must be 8 or 16, got {vision_stride}")
        self.objective = objective
        self.normalized = objective == "contrastive" or bool(cosine)
        self.embed_dim = embed_dim
        self.sample_rate = sample_rate
        self.clip_seconds = float(n_frames * hop_length / sample_rate if clip_seconds is None else clip_seconds)
        self.prior_alpha = prior_alpha
        self.map_logits = bool(map_logits)
        base = (64, 128, 256, 512)
        self.frontend = LogSpectrogram(n_fft, win_length, hop_length, n_frames, n_mels=n_mels, sample_rate=sample_rate)
        self.audio_bn0 = input_norm(self.frontend, mask_silence)  # puts the log-spectrogram on a sane scale
        self.vision = ConvTower(3, _scaled(base, width if vision_width is None else vision_width),
                                pool_last=vision_stride == 16)
        self.audio = ConvTower(1, _scaled(base, width if audio_width is None else audio_width))
        vfeat, afeat = self.vision.out_chans, self.audio.out_chans
        # the vision tower's "fc" layers as 1 x 1 convolutions: one embedding per grid cell
        self.vision_head = nn.Sequential(nn.Conv2d(vfeat, embed_dim, 1), nn.ReLU(inplace=True),
                                         nn.Conv2d(embed_dim, embed_dim, 1))
        self.audio_head = nn.Sequential(nn.Linear(afeat, embed_dim), nn.ReLU(inplace=True),
                                        nn.Linear(embed_dim, embed_dim))
        if objective == "avol":
            self.calibration = nn.Conv2d(1, 1, 1)  # scalar scale and bias of the similarity map
            with torch.no_grad():  # a positive scale (a random negative one would flip the map), low prior bias
                self.calibration.weight.fill_(1.0 / temperature if cosine else 1.0)
                self.calibration.bias.fill_(math.log(prior_prob / (1.0 - prior_prob)))
        else:
            self.register_buffer("logit_scale", torch.tensor(1.0 / temperature), persistent=False)

    # -- towers ------------------------------------------------------------------------------
    @property
    def input_spec(self) -> InputSpec:
        """Mono waveforms of ``clip_seconds`` at ``sample_rate``, ImageNet-normalised RGB frames of any size."""
        return InputSpec.wave(self.sample_rate, clip_seconds=self.clip_seconds, frames=True)

    def audio_embedding(self, wave: torch.Tensor) -> torch.Tensor:
        """float (B, T) waveform -> (B, embed_dim) audio embedding as the maps use it.

        Raw for AVOL-Net (the paper compares unnormalised embeddings), L2-normalised for the
        contrastive model.
        """
        x = torch.amax(self.audio(self.audio_bn0(self.frontend(wave))), dim=(2, 3))
        x = self.audio_head(x)
        return F.normalize(x, dim=-1) if self.normalized else x

    def visual_cells(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell embeddings as the maps use them, and the tower features they come from.

        Args:
            image: float (B, 3, H, W) normalised frames.

        Returns:
            ``(cells (B, embed_dim, h, w), features (B, C, h, w))`` with h = H / vision_stride; cells are
            L2-normalised over ``embed_dim`` for the contrastive model, raw for AVOL-Net.
        """
        feats = self.vision(image)
        cells = self.vision_head(feats)
        if self.normalized:
            cells = F.normalize(cells, dim=1)
        return cells, feats

    def encode_visual_cells(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) frame -> (B, embed_dim, H / s, W / s) cell embeddings, s = vision_stride (14 x 14 at 224 px for s = 16)."""
        return self.visual_cells(image)[0]

    def encode_audio(self, wave: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """float (B, T) waveform -> (B, embed_dim) embedding, L2-normalised unless ``normalize=False``
        (for retrieval; :meth:`audio_embedding` is what the maps use)."""
        x = self.audio_embedding(wave)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_visual(self, image: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """float (B, 3, H, W) frame -> (B, embed_dim) global embedding: the cells max-pooled over the
        grid, L2-normalised unless ``normalize=False`` (for retrieval; :meth:`encode_visual_cells`
        gives the grid)."""
        x = torch.amax(self.encode_visual_cells(image), dim=(2, 3))
        return F.normalize(x, dim=-1) if normalize else x

    # -- maps --------------------------------------------------------------------------------
    def similarity(self, cells: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Per-cell similarity of pair ``i``: (B, D, h, w) cells and (B, D) audio -> (B, h, w).

        Scalar product for AVOL-Net, cosine similarity for the contrastive model (inputs normalised).
        """
        return torch.einsum("bdhw,bd->bhw", cells, audio)

    def cell_logits(self, cells: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Per-cell correspondence logits (B, h, w): calibrated similarity (AVOL) or similarity / temperature."""
        sim = self.similarity(cells, audio)
        if self.objective == "avol":
            return self.calibration(sim.unsqueeze(1)).squeeze(1)
        return sim * self.logit_scale

    def heatmap(self, cells: torch.Tensor, audio: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The localization map (B, h, w): sigmoid of the calibrated logits (AVOL; the logits themselves
        with ``map_logits``) or the cosine map.

        With ``prior_alpha < 1`` and the tower ``features`` given, the map is blended with the
        object prior (mean tower activation per cell), both min-max normalised first.
        """
        sim = self.similarity(cells, audio)
        if self.objective == "avol":
            m = self.calibration(sim.unsqueeze(1)).squeeze(1)
            if not self.map_logits:
                m = torch.sigmoid(m)
        else:
            m = sim
        if self.prior_alpha < 1.0 and features is not None:
            obj = features.float().abs().mean(dim=1)
            m = self.prior_alpha * _minmax(m.float()) + (1 - self.prior_alpha) * _minmax(obj)
        return m

    def localize(self, audio: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Where in each frame does its audio come from?

        Args:
            audio: float (B, T) waveforms at ``sample_rate``.
            image: float (B, 3, H, W) normalised frames.

        Returns:
            float (B, H / s, W / s) map (s = vision_stride), higher = more likely the source (14 x 14 at 224 px, s = 16).
        """
        cells, feats = self.visual_cells(image)
        return self.heatmap(cells, self.audio_embedding(audio), feats)

    def forward(self, audio: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            audio: float (B, T) waveforms at ``sample_rate``.
            image: float (B, 3, H, W) normalised frames.

        Returns:
            dict with ``map`` (B, h, w) localization map; ``cell_logits`` (B, h, w); ``logits``
            (B, 2) = ``[0, max cell logit]`` so that ``softmax(logits)[:, 1]`` is AVOL-Net's
            correspondence probability (uncalibrated for the contrastive model); ``audio_emb`` and
            ``visual_emb`` (B, D), L2-normalised (the visual one max-pooled over the cells).
        """
        cells, feats = self.visual_cells(image)
        a = self.audio_embedding(audio)
        logits_map = self.cell_logits(cells, a)
        z = logits_map.flatten(1).amax(dim=1)
        return {
            "map": self.heatmap(cells, a, feats),
            "cell_logits": logits_map,
            "logits": torch.stack([torch.zeros_like(z), z], dim=-1),
            "audio_emb": F.normalize(a, dim=-1),
            "visual_emb": F.normalize(torch.amax(cells, dim=(2, 3)), dim=-1),
        }


@register_model
def avolnet(**kwargs) -> AVOLNet:
    """AVOL-Net as in the paper (width 1.0, 128-d, 257 x 200 spectrogram, 224 px -> 14 x 14 map)."""
    return AVOLNet(**{"objective": "avol", **kwargs})


@register_model
def ezvsl(**kwargs) -> AVOLNet:
    """The contrastive localizer (EZ-VSL-style MIL InfoNCE, temperature 0.03) on AVOL-Net's towers, with
    EZ-VSL's object-guided blending at inference (``prior_alpha=0.4``; 1.0 turns it off)."""
    return AVOLNet(**{"objective": "contrastive", "prior_alpha": 0.4, **kwargs})


@register_model
def test_avolnet(**kwargs) -> AVOLNet:
    """Tiny AVOL-Net for tests (width 1/16, 16-d)."""
    return AVOLNet(**{"objective": "avol", "width": 1 / 16, "embed_dim": 16, **kwargs})


@register_model
def test_ezvsl(**kwargs) -> AVOLNet:
    """Tiny contrastive localizer for tests (width 1/16, 16-d, object-guided blending 0.4 as ``ezvsl``)."""
    return AVOLNet(**{"objective": "contrastive", "prior_alpha": 0.4, "width": 1 / 16, "embed_dim": 16, **kwargs})
