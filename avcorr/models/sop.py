"""Sound of Pixels (Zhao, Gan, Rouditchenko, Vondrick, McDermott & Torralba, ECCV 2018).

Mix-and-separate: the audio of N videos is mixed; from the mixture's (log-frequency warped) log
magnitude and each video's frames the network predicts one spectrogram mask per video.

Three parts, as in the paper and its public code (``hangzhaomit/Sound-of-Pixels``):

* **sound net** - a 7-level audio U-Net on the log magnitude of the warped mixture spectrogram
  (256 x 256 at the paper's sizes) giving K = 32 feature maps of the same size, no activation;
* **frame net** - a ResNet-18 (torchvision) whose last stage is dilated (output stride 16), a 3 x 3
  conv to K channels, a max-pool over the frames and the image (the public code pools time, height
  and width at once) and a sigmoid: one K-vector per video;
* **synthesizer** - a per-channel scaled inner product of that vector with the K sound feature maps,
  plus a bias: one mask logit per time-frequency bin (the sigmoid is applied by the loss / caller).

``pixel_sound_map`` asks the same question of every pixel's feature vector ("what would this pixel
sound like?") and returns the energy of the spectrogram it selects, the paper's sound-localisation map.

Width multipliers shrink both networks for CPU training (``sop_small``); ``sop`` is the paper's size.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import load_checkpoint_state, register_model
from .input_spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec

__all__ = ["AudioUNet", "FrameNet", "InnerProductSynthesizer", "SoundOfPixels", "SourceAudioEncoder", "pool_space", "sop", "sop_small", "test_sop"]


def _init_like_public_code(module: nn.Module) -> None:
    """The public code's init of the sound net: conv weights N(0, 0.001), BN weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class AudioUNet(nn.Module):
    """The audio U-Net of Sound of Pixels (pix2pix-style, skip connections by concatenation).

    Level ``i`` (0 = outermost) has ``ngf * min(2**i, 8)`` channels: down = [LeakyReLU 0.2] + conv 4x4
    stride 2 (+ BN except at both ends); up = ReLU + bilinear x2 upsampling + conv 3x3 (+ BN except at
    the outermost level, whose conv has a bias and gives ``out_chans`` maps). As in the public code
    (whose in-place LeakyReLU also rewrites the skip tensor) the skip connections carry the
    LeakyReLU'd activations.

    Args:
        out_chans: K, the output feature maps.
        num_downs: levels (7 in the paper; at least 2).
        ngf: channels of the first level (64 in the paper).
    """

    def __init__(self, out_chans: int = 32, num_downs: int = 7, ngf: int = 64):
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        self.num_downs = num_downs
        chans = [ngf * min(2 ** i, 8) for i in range(num_downs)]
        self.bn0 = nn.BatchNorm2d(1)
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i, c in enumerate(chans):
            c_in = 1 if i == 0 else chans[i - 1]
            innermost = i == num_downs - 1
            down: list[nn.Module] = [nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=False)]
            if 0 < i < num_downs - 1:
                down.append(nn.BatchNorm2d(c))
            self.downs.append(nn.Sequential(*down))
            up_in = c if innermost else 2 * c
            if i == 0:
                up: list[nn.Module] = [nn.Conv2d(up_in, out_chans, 3, padding=1, bias=True)]
            else:
                up = [nn.Conv2d(up_in, chans[i - 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i - 1])]
            self.ups.append(nn.Sequential(*up))
        _init_like_public_code(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: float (B, 1, F, T) log magnitudes. F and T that are not multiples of ``2 ** num_downs``
                are edge-padded inside and cropped back (the paper's 256 x 256 needs no padding).

        Returns:
            float (B, out_chans, F, T) sound features.
        """
        f, t = x.shape[-2:]
        m = 2 ** self.num_downs
        pf, pt = (-f) % m, (-t) % m
        h = self.bn0(_like_weight(x, self.ups[0][0].weight))
        if pf or pt:
            h = F.pad(h, (0, pt, 0, pf), mode="replicate")
        skips = []
        for i, down in enumerate(self.downs):
            if i > 0:
                h = F.leaky_relu(h, 0.2)
            skips.append(h)
            h = down(h)
        for i in reversed(range(self.num_downs)):
            h = F.interpolate(F.relu(h), scale_factor=2, mode="bilinear", align_corners=True)
            h = self.ups[i](h)
            if i > 0:
                h = torch.cat([skips[i], h], dim=1)
        return h[..., :f, :t]


def _like_weight(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory when the conv weights are (``train.channels_last``: ~1.7x faster on CPU)."""
    if weight.dim() == 4 and not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _scaled_resnet18(width: float) -> nn.Module:
    """A ResNet-18 with every stage's channels times ``width`` (torchvision's own model at 1.0)."""
    import torchvision  # here, not at import: it costs about a second, and only this model needs it
    from torchvision.models.resnet import BasicBlock

    if width == 1.0:
        return torchvision.models.resnet18(weights=None)
    widths = [max(4, int(round(c * width))) for c in (64, 128, 256, 512)]
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(widths[0])
    net.relu = nn.ReLU(inplace=True)
    net.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
    c_in = widths[0]
    for k, c in enumerate(widths):
        stride = 1 if k == 0 else 2
        down = None
        if stride != 1 or c_in != c:
            down = nn.Sequential(nn.Conv2d(c_in, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c))
        setattr(net, f"layer{k + 1}", nn.Sequential(BasicBlock(c_in, c, stride, down), BasicBlock(c, c)))
        c_in = c
    for m in net.modules():  # torchvision's init
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _dilate_last_stage(layer: nn.Module) -> None:
    """Remove the stride of a ResNet stage and dilate its later 3x3 convs by 2 (the public code's recipe)."""
    for m in layer.modules():
        if isinstance(m, nn.Conv2d):
            if m.stride == (2, 2):
                m.stride = (1, 1)
                if m.kernel_size == (3, 3):
                    m.dilation, m.padding = (1, 1), (1, 1)
            elif m.kernel_size == (3, 3):
                m.dilation, m.padding = (2, 2), (2, 2)


POOLS = ("max", "mean", "lse")


def pool_space(x: torch.Tensor, pool: str, sharpness: float = 1.0) -> torch.Tensor:
    """Pool float (B, K, H, W) features over space: ``max`` (the paper), ``mean``, or ``lse`` = the
    log-mean-exp ``log(mean(exp(r x))) / r`` with ``r = sharpness`` (between the mean, r -> 0, and the max)."""
    if pool == "max":
        return x.amax(dim=(-2, -1))
    if pool == "mean":
        return x.mean(dim=(-2, -1))
    if pool == "lse":
        flat = x.flatten(-2) * sharpness
        return (torch.logsumexp(flat, dim=-1) - math.log(flat.shape[-1])) / sharpness
    raise ValueError(f"visual pool must be one of {POOLS}, got {pool!r}")


class FrameNet(nn.Module):
    """ResNet-18 (last stage dilated) + 3x3 conv to K channels; max-pool over frames, pool over space; sigmoid.

    Args:
        out_chans: K.
        width: channel multiplier of the ResNet (1.0 = torchvision's ResNet-18).
        dilate: dilate the last stage (output stride 16 instead of 32), as in the paper.
        weights: optional local file with torchvision ResNet-18 weights (e.g. ImageNet); its ``fc.*``
            keys are ignored. Only for ``width=1.0``.
        pool: how the map is pooled over space (:func:`pool_space`): ``"max"`` as in the paper.
        sharpness: r of the ``"lse"`` pool.
    """

    def __init__(self, out_chans: int = 32, width: float = 1.0, dilate: bool = True, weights: str | Path = "",
                 pool: str = "max", sharpness: float = 1.0):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"visual pool must be one of {POOLS}, got {pool!r}")
        self.pool, self.sharpness = pool, float(sharpness)
        trunk = _scaled_resnet18(width)
        if dilate:
            _dilate_last_stage(trunk.layer4)
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        self.features = nn.Sequential(OrderedDict((n, getattr(trunk, n)) for n in names))
        c4 = trunk.layer4[-1].conv2.out_channels
        self.fc = nn.Conv2d(c4, out_chans, 3, padding=1)
        if weights:
            if width != 1.0:
                raise ValueError(f"ImageNet weights ({weights}) need the full-width frame net, got width {width}")
            self.load_resnet_weights(weights)

    def load_resnet_weights(self, path: str | Path) -> None:
        """Load a torchvision ResNet-18 state dict (``conv1.weight`` ... ``layer4.*``; ``fc.*`` dropped).

        Raises:
            ValueError: the file's keys or shapes do not match a ResNet-18 (the message names the file).
        """
        state = {k: v for k, v in load_checkpoint_state(path).items() if not k.startswith("fc.")}
        try:
            self.features.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: not a torchvision ResNet-18 state dict ({str(e).splitlines()[0]})") from e

    def feature_map(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-pixel features before pooling and activation.

        Args:
            frames: float (B, 3, Tf, H, W) normalised frames.

        Returns:
            float (B, K, Tf, H / 16, W / 16) (H / 32 without dilation).
        """
        b, c, t, h, w = frames.shape
        x = _like_weight(frames.transpose(1, 2).reshape(b * t, c, h, w), self.fc.weight)
        x = self.fc(self.features(x))
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)

    def pool_map(self, cells: torch.Tensor) -> torch.Tensor:
        """float (B, K, h, w) frame-maxed map -> float (B, K) in (0, 1): ``pool`` over pixels, then sigmoid."""
        return torch.sigmoid(pool_space(cells, self.pool, self.sharpness))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """float (B, 3, Tf, H, W) -> float (B, K) in (0, 1): max over frames, ``pool`` over pixels, then sigmoid."""
        return self.pool_map(torch.amax(self.feature_map(frames), dim=2))


class SourceAudioEncoder(nn.Module):
    """One source's sound -> an L2-normalised embedding, for the correspondence objective (not in the paper).

    Four blocks of conv 3x3 + BN + ReLU + 2x2 max-pool (``width``, 2, 4, 8 x ``width`` channels) on the
    log magnitude of the source's warped spectrogram (a BatchNorm over the input first, as the U-Net),
    mean over frequency and max over time, then a linear map to ``dim``.

    Args:
        dim: embedding size (that of the frame cells it is compared with).
        width: channels of the first block.
    """

    def __init__(self, dim: int = 32, width: int = 16):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(1)
        layers: list[nn.Module] = []
        c_in = 1
        for c in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.blocks = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, dim)

    def forward(self, log_mag: torch.Tensor) -> torch.Tensor:
        """float (B, 1, F, T) log magnitudes -> float (B, dim), unit length."""
        h = self.blocks(self.bn0(log_mag))
        return F.normalize(self.proj(h.mean(dim=2).amax(dim=-1)), dim=-1)


class InnerProductSynthesizer(nn.Module):
    """Mask logit = sum_k scale_k * v_k * s_k(f, t) + bias (the public code's ``InnerProd``).

    Args:
        channels: K.
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, visual: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """Args:
            visual: float (B, N, K) one vector per video (or (B, P, K) one per pixel).
            sound: float (B, K, F, T) sound features.

        Returns:
            float (B, N, F, T) mask logits.
        """
        return torch.einsum("bnk,bkft->bnft", visual * self.scale, sound) + self.bias


class SoundOfPixels(nn.Module):
    """The Sound of Pixels network (see the module docstring).

    Args:
        num_channels: K, channels shared by the sound features and the visual vectors (32).
        width: default multiplier of both networks (1.0 = paper).
        audio_width: U-Net multiplier (``ngf = 64 * audio_width``); default ``width``.
        vision_width: ResNet-18 multiplier; default ``width``.
        unet_levels: U-Net levels (7 in the paper).
        dilate: dilated last ResNet stage (paper: yes).
        visual_pool: how the frame net pools its map over space (``"max"`` in the paper; ``"mean"``,
            ``"lse"``, see :func:`pool_space`).
        pool_sharpness: r of the ``"lse"`` pool.
        correspondence_dim: > 0 adds what the correspondence objective needs (``separation.correspondence_weight``,
            not in the paper): a :class:`SourceAudioEncoder` for each source's own sound and a 1x1 conv that maps
            every cell of the frame net's map to that many dimensions (:meth:`correspondence_cells`). 0 = the
            paper's network.

    ImageNet initialisation of the frame net (as in the paper): ``create_model("sop",
    checkpoint_path="resnet18.pth")`` with a local torchvision ResNet-18 file (see :meth:`load_pretrained`).
    """

    def __init__(self, num_channels: int = 32, width: float = 1.0, audio_width: float | None = None,
                 vision_width: float | None = None, unet_levels: int = 7, dilate: bool = True,
                 visual_pool: str = "max", pool_sharpness: float = 1.0, correspondence_dim: int = 0):
        super().__init__()
        aw = width if audio_width is None else audio_width
        vw = width if vision_width is None else vision_width
        self.num_channels = num_channels
        self.sound_net = AudioUNet(num_channels, unet_levels, ngf=max(2, int(round(64 * aw))))
        self.frame_net = FrameNet(num_channels, width=vw, dilate=dilate, pool=visual_pool, sharpness=pool_sharpness)
        self.synthesizer = InnerProductSynthesizer(num_channels)
        self.correspondence_dim = int(correspondence_dim)
        if self.correspondence_dim > 0:
            self.source_encoder = SourceAudioEncoder(self.correspondence_dim, width=max(4, int(round(64 * aw))))
            self.cell_head = nn.Conv2d(num_channels, self.correspondence_dim, 1)

    def load_pretrained(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights given to ``create_model(..., checkpoint_path=...)``.

        A torchvision ResNet-18 state dict (``conv1.weight`` ... ``layer4.*``, ``fc.*`` ignored), e.g.
        ImageNet weights, initialises the frame net's trunk; anything else must be a whole
        Sound-of-Pixels state dict (strict).

        Raises:
            ValueError: a ResNet-18 state dict whose shapes do not fit this frame net (width != 1).
        """
        trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
        if trunk and set(trunk) == set(self.frame_net.features.state_dict()):
            try:
                self.frame_net.features.load_state_dict(trunk, strict=True)
            except RuntimeError as e:
                raise ValueError(f"ResNet-18 weights do not fit this frame net (ImageNet weights need "
                                 f"vision_width=1.0): {str(e).splitlines()[0]}") from e
            return
        self.load_state_dict(state, strict=True)

    @staticmethod
    def log_magnitude(mix_mag: torch.Tensor) -> torch.Tensor:
        """float (B, 1, F, T) magnitude -> its natural log (magnitudes floored at 1e-10, as the public code)."""
        return torch.log(mix_mag.float().clamp_min(1e-10))

    def encode_audio(self, mix_mag_warped: torch.Tensor) -> torch.Tensor:
        """float (B, 1, F, T) warped mixture magnitude -> float (B, K, F, T) sound features."""
        return self.sound_net(self.log_magnitude(mix_mag_warped))

    def encode_visual(self, frames: torch.Tensor) -> torch.Tensor:
        """float (B, 3, Tf, H, W) frames of one video each -> float (B, K) visual vectors in (0, 1)."""
        return self.frame_net(frames)

    def encode_source_audio(self, source_mag_warped: torch.Tensor) -> torch.Tensor:
        """float (B, 1, F, T) warped magnitude of ONE source each -> float (B, D) unit embeddings
        (``correspondence_dim`` > 0 only)."""
        self._need_correspondence()
        return self.source_encoder(self.log_magnitude(source_mag_warped))

    def correspondence_cells(self, cells: torch.Tensor) -> torch.Tensor:
        """float (B, K, h, w) frame-maxed map (``visual_map`` of :meth:`forward`) -> float (B, D, h, w), each cell
        of unit length (``correspondence_dim`` > 0 only)."""
        self._need_correspondence()
        return F.normalize(self.cell_head(cells), dim=1)

    def _need_correspondence(self) -> None:
        if self.correspondence_dim <= 0:
            raise ValueError("this Sound of Pixels model has no correspondence head: create it with "
                             "model.kwargs={'correspondence_dim': D} (D > 0) to train with "
                             "separation.correspondence_weight > 0")

    @property
    def input_spec(self) -> InputSpec:
        """ImageNet-normalised RGB frames of any size and number; the audio input is the mixture's warped
        magnitude, which the separation task computes (its STFT settings are the task's)."""
        return InputSpec(mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def forward(self, mix_mag_warped: torch.Tensor,
                frames: torch.Tensor | Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Predict one mask per video.

        Args:
            mix_mag_warped: float (B, 1, F, T) magnitude of the mixture on the network's (warped) bins.
            frames: float (B, N, 3, Tf, H, W), or a sequence of N tensors (B, 3, Tf, H, W).

        Returns:
            dict with ``masks`` float (B, N, F, T) mask LOGITS (sigmoid gives the mask),
            ``visual_feats`` (B, N, K), ``sound_feats`` (B, K, F, T) and ``visual_map`` (B, N, K, h, w), the
            frame net's map max-pooled over each video's frames (before the space pool and the sigmoid).
        """
        if not isinstance(frames, torch.Tensor):
            frames = torch.stack(list(frames), dim=1)
        if frames.dim() != 6:
            raise ValueError(f"frames must be (B, N, 3, Tf, H, W), got shape {tuple(frames.shape)}")
        b, n = frames.shape[:2]
        sound = self.encode_audio(mix_mag_warped)
        cells = torch.amax(self.frame_net.feature_map(frames.flatten(0, 1)), dim=2)  # (B * N, K, h, w)
        visual = self.frame_net.pool_map(cells).reshape(b, n, -1)
        masks = self.synthesizer(visual.to(sound.dtype), sound)
        return {"masks": masks, "visual_feats": visual, "sound_feats": sound,
                "visual_map": cells.reshape(b, n, *cells.shape[1:])}

    @torch.no_grad()
    def pixel_sound_map(self, mix_mag_warped: torch.Tensor, frames: torch.Tensor,
                        chunk: int = 64) -> torch.Tensor:
        """Which pixels sound: the energy of the spectrogram each pixel's features select.

        Every pixel of the frame feature map (max-pooled over the frames, then sigmoid) is used as
        the visual vector; its mask (sigmoid) times the mixture magnitude is summed over time and
        frequency.

        Args:
            mix_mag_warped: float (B, 1, F, T) warped mixture magnitude.
            frames: float (B, 3, Tf, H, W) frames of ONE video per example.
            chunk: pixels synthesised at once (memory bound).

        Returns:
            float (B, H / 16, W / 16) energy per pixel (same units as ``mix_mag_warped``).
        """
        sound = self.encode_audio(mix_mag_warped)
        pix = torch.sigmoid(torch.amax(self.frame_net.feature_map(frames), dim=2))  # (B, K, h, w)
        b, k, h, w = pix.shape
        pix = pix.flatten(2).transpose(1, 2).to(sound.dtype)  # (B, h*w, K)
        mag = mix_mag_warped.to(sound.dtype)
        energy = []
        for s in range(0, h * w, chunk):
            masks = torch.sigmoid(self.synthesizer(pix[:, s:s + chunk], sound))
            energy.append((masks * mag).sum(dim=(2, 3)))
        return torch.cat(energy, dim=1).reshape(b, h, w).float()


def _create(defaults: dict, kwargs: dict) -> SoundOfPixels:
    return SoundOfPixels(**{**defaults, **kwargs})


@register_model
def sop(**kwargs) -> SoundOfPixels:
    """Sound of Pixels at the paper's sizes: 7-level U-Net (ngf 64), dilated ResNet-18, K = 32."""
    return _create({}, kwargs)


@register_model
def sop_small(**kwargs) -> SoundOfPixels:
    """CPU quickstart variant (configs/sop.py): U-Net ngf 16, a 1/8-wide ResNet-18, K = 32; same structure."""
    return _create({"audio_width": 0.25, "vision_width": 0.125}, kwargs)


@register_model
def test_sop(**kwargs) -> SoundOfPixels:
    """Tiny variant for tests: 4-level U-Net with ngf 4, 1/16-width ResNet-18, K = 8."""
    return _create({"num_channels": 8, "audio_width": 1 / 16, "vision_width": 1 / 16, "unet_levels": 4}, kwargs)
