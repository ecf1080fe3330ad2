"""AST: Audio Spectrogram Transformer (Gong, Chung & Glass, Interspeech 2021) on current timm blocks.

The reference (YuanGongND/ast ``src/models/ast_models.py``) pins timm 0.4.5 and patches its ViT;
here the model is assembled from current timm's transformer :class:`~timm.models.vision_transformer.Block`
with the reference's parameter names, so checkpoints map one to one:

* ``frontend`` - :class:`~avcorr.models.tagging_audio.KaldiFbank`: 16 kHz waveform -> normalised
  (B, 1024, 128) Kaldi fbank (time, mel).
* ``v`` - the DeiT trunk: ``v.patch_embed.proj`` a 1-channel 16 x 16 conv with stride (10, 10) over
  the (128 mel x 1024 frame) image -> a 12 x 101 grid of overlapping patches; ``v.cls_token``,
  ``v.dist_token``; ``v.pos_embed`` (1, 2 + 12 * 101, D); ``v.blocks.*``; ``v.norm`` (LayerNorm
  eps 1e-6).
* ``mlp_head`` - LayerNorm (eps 1e-5) + Linear on the mean of the cls and dist tokens.

Variants: ``ast_base`` (DeiT-B distilled 384 geometry: 768-d, 12 layers, 12 heads - the released
AudioSet model), ``ast_small`` (DeiT-S: 384-d, 6 heads), ``ast_tiny`` (DeiT-Ti: 192-d, 3 heads),
``test_ast`` (32-d, 2 layers, 128 frames, for tests). Every geometry argument (``n_frames``,
``fstride``, ``tstride``, ``n_mels``...) can be overridden through ``create_model`` kwargs.

:meth:`AST.load_pretrained` (called by ``create_model(name, checkpoint_path=...)``) reads
(1) the released AST checkpoints: DataParallel state dicts with ``module.v.*`` / ``module.mlp_head.*``
keys (``module.`` is removed by the registry); their unused ImageNet heads ``v.head.*`` /
``v.head_dist.*`` are dropped, the rest must match exactly; a position embedding of another grid
is cropped / interpolated as the reference does for other input lengths;
(2) ImageNet DeiT/ViT state dicts as timm saves them (``patch_embed.proj.weight`` (D, 3, 16, 16),
``pos_embed`` on a square grid, ``blocks.*``...): the patch kernel is summed over RGB, the grid
position embedding is cropped / bilinearly resized to the fbank grid as the reference does; a ViT
without a distillation token gets a copy of its class token (and of that token's position);
the classifier heads are dropped and ``mlp_head`` starts from its initialisation.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ._pretrained import load_checked
from ._registry import register_model
from .input_spec import InputSpec
from .tagging_audio import AST_NORM_MEAN, AST_NORM_STD, KaldiFbank, SpecAugment, do_mixup

__all__ = ["AST", "ASTEncoder", "ast_base", "ast_small", "ast_tiny", "resize_pos_grid", "test_ast"]

logger = logging.getLogger(__name__)


def resize_pos_grid(pos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Fit a grid of position embeddings to another grid, as AST does.

    Time (width) first, then frequency (height): a dimension that shrinks is cropped around its
    centre (start ``int(old / 2) - int(new / 2)``), one that grows is bilinearly interpolated
    (``align_corners=False``).

    Args:
        pos: float (1, D, H, W) position embeddings of the patch grid.
        size: the new grid (h, w).

    Returns:
        float (1, D, h, w).
    """
    h, w = size
    H, W = pos.shape[-2:]
    if w <= W:
        s = int(W / 2) - int(w / 2)
        pos = pos[..., s: s + w]
    else:
        pos = F.interpolate(pos, size=(H, w), mode="bilinear")
    if h <= H:
        s = int(H / 2) - int(h / 2)
        pos = pos[..., s: s + h, :]
    else:
        pos = F.interpolate(pos, size=(h, w), mode="bilinear")
    return pos


class PatchEmbed(nn.Module):
    """Overlapping patches: a conv of ``patch_size`` with stride ``(fstride, tstride)``, flattened.

    Args:
        in_chans: 1 for a spectrogram.
        embed_dim: token width.
        patch_size: square kernel size.
        fstride, tstride: strides along frequency and time.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, fstride: int, tstride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=(fstride, tstride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, T) -> (B, f_dim * t_dim, D)."""
        return self.proj(x).flatten(2).transpose(1, 2)


class ASTEncoder(nn.Module):
    """The transformer trunk (the reference's ``v``): patches, cls + dist tokens, blocks, final norm.

    Args:
        grid: patch grid (f_dim, t_dim).
        embed_dim, depth, num_heads, mlp_ratio: transformer geometry.
        patch_size, fstride, tstride: patch embedding.
        drop_rate, attn_drop_rate, drop_path_rate: dropout of embeddings/projections, attention,
            stochastic depth (linearly increasing over depth).
    """

    def __init__(self, grid: tuple[int, int], embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, fstride: int = 10, tstride: int = 10,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        from timm.models.vision_transformer import Block

        self.grid = tuple(grid)
        self.num_prefix_tokens = 2
        self.patch_embed = PatchEmbed(1, embed_dim, patch_size, fstride, tstride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + 2, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, proj_drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=dpr[i], norm_layer=norm, act_layer=nn.GELU)
            for i in range(depth)])
        self.norm = norm(embed_dim)
        for p in (self.pos_embed, self.cls_token, self.dist_token):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, F, T) spectrogram image -> (B, 2 + f_dim * t_dim, D) normalised tokens."""
        x = self.patch_embed(x)
        b = x.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class AST(nn.Module):
    """Audio Spectrogram Transformer on raw waveforms.

    Args:
        num_classes: classifier outputs (527 for AudioSet); 0 builds no ``mlp_head``.
        embed_dim, depth, num_heads, mlp_ratio: transformer geometry (ast_base: 768, 12, 12, 4).
        patch_size, fstride, tstride: 16 x 16 patches, strides 10 (overlap 6) in the reference.
        n_mels, n_frames: fbank size (128 x 1024 = 10.24 s).
        sample_rate: input rate (16000).
        norm_mean, norm_std: fbank statistics of the training data (AudioSet's by default).
        drop_rate, attn_drop_rate, drop_path_rate: transformer regularisation (0 in the reference).
        freqm, timem: SpecAugment maximum mask widths in training mode (AudioSet recipe: 48, 192;
            ESC-50: 24, 96); 0 disables a mask. Masked cells take the value a zero fbank has after
            normalisation, which is what masking before normalisation (the reference) gives.
    """

    def __init__(self, num_classes: int = 527, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, fstride: int = 10, tstride: int = 10,
                 n_mels: int = 128, n_frames: int = 1024, sample_rate: int = 16000,
                 norm_mean: float = AST_NORM_MEAN, norm_std: float = AST_NORM_STD, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, freqm: int = 48, timem: int = 192):
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if n_mels < patch_size or n_frames < patch_size:
            raise ValueError(f"fbank {n_mels} x {n_frames} is smaller than one {patch_size} x {patch_size} patch")
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.grid = ((n_mels - patch_size) // fstride + 1, (n_frames - patch_size) // tstride + 1)
        self.frontend = KaldiFbank(sample_rate, n_mels, n_frames, norm_mean, norm_std)
        self.clip_samples = self.frontend.min_samples_for_all_frames
        self.spec_augmenter = SpecAugment(timem, 1 if timem else 0, freqm, 1 if freqm else 0, fill=self.frontend.pad_value)
        self.v = ASTEncoder(self.grid, embed_dim, depth, num_heads, mlp_ratio, patch_size, fstride, tstride,
                            drop_rate, attn_drop_rate, drop_path_rate)
        if num_classes:
            self.mlp_head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
            nn.init.trunc_normal_(self.mlp_head[1].weight, std=0.02)
            nn.init.zeros_(self.mlp_head[1].bias)

    @property
    def input_spec(self) -> InputSpec:
        """Mono waveforms at ``sample_rate``; ``clip_samples`` fill the fbank's ``n_frames`` exactly."""
        return InputSpec.wave(self.sample_rate, clip_samples=self.clip_samples,
                              min_samples=int(getattr(self, "min_samples", 1)))

    def forward_features(self, features: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Everything after the front-end, from a precomputed normalised fbank.

        Args:
            features: float (B, n_frames, n_mels) (or (B, 1, n_frames, n_mels)) as :attr:`frontend`
                returns it.
            mixup_lambda: optional (B,) PANNs-style pair coefficients: the fbanks are mixed pairwise
                and the outputs have B / 2 rows. (The AST recipe mixes waveforms in the data loader
                instead; ``do_mixup`` on the waveforms before :meth:`forward` does that.)

        Returns:
            dict with ``embedding`` (B, embed_dim) (mean of the cls and dist tokens) and, when
            ``num_classes > 0``, ``logits`` (B, num_classes) and ``clipwise_output`` = ``sigmoid(logits)``.
        """
        x = features.squeeze(1) if features.dim() == 4 and features.shape[1] == 1 else features
        want = (self.frontend.n_frames, self.frontend.n_mels)
        if x.dim() != 3 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected (batch, {want[0]}, {want[1]}) fbank features, got {tuple(features.shape)}")
        x = self.spec_augmenter(x)
        if mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
        tokens = self.v(x.unsqueeze(1).transpose(2, 3))
        emb = (tokens[:, 0] + tokens[:, 1]) / 2
        out = {"embedding": emb}
        if self.num_classes:
            logits = self.mlp_head(emb)
            out["logits"] = logits
            out["clipwise_output"] = torch.sigmoid(logits)
        return out

    def forward(self, wave: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Args:
            wave: float (B, T) mono waveforms at ``sample_rate``; the fbank is padded or cropped to
                ``n_frames`` (``clip_samples`` samples fill it exactly).
            mixup_lambda: see :meth:`forward_features`.

        Returns:
            see :meth:`forward_features`.
        """
        return self.forward_features(self.frontend(wave), mixup_lambda)

    # -- pretrained weights --------------------------------------------------------------------
    def _fit_pos_embed(self, pos: torch.Tensor, n_prefix_in: int, src_grid: tuple[int, int]) -> torch.Tensor:
        """(1, n_prefix_in + H * W, D) -> (1, 2 + f_dim * t_dim, D) with the grid part resized."""
        d = pos.shape[-1]
        prefix = pos[:, :n_prefix_in]
        if n_prefix_in == 0:
            prefix = pos.new_zeros(1, 2, d)
        elif n_prefix_in == 1:
            prefix = torch.cat([prefix, prefix], dim=1)
        grid = pos[:, n_prefix_in:]
        if tuple(src_grid) != self.grid:
            g = grid.transpose(1, 2).reshape(1, d, *src_grid)
            g = resize_pos_grid(g, self.grid)
            grid = g.reshape(1, d, -1).transpose(1, 2)
            logger.info("position embedding resized from a %s to a %s patch grid", tuple(src_grid), self.grid)
        return torch.cat([prefix, grid], dim=1)

    def _ast_src_grid(self, n: int) -> tuple[int, int]:
        for f in (self.grid[0], 12):
            if n % f == 0:
                return f, n // f
        r = math.isqrt(n)
        if r * r == n:
            return r, r
        raise ValueError(f"cannot tell the patch grid of a position embedding with {n} patches")

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load an official AST checkpoint, an avcorr one, or a timm ImageNet DeiT/ViT state dict.

        Args:
            state_dict: ``module.``-free state dict (see the module docstring for the formats).
            source: name for messages.

        Raises:
            ValueError: an unknown format, or keys/shapes that do not fit (head excepted).
        """
        state = dict(state_dict)
        if any(k.startswith("v.") for k in state):  # AST (official or avcorr)
            dropped = [k for k in state if k.startswith(("v.head.", "v.head_dist.", "v.pre_logits."))]
            for k in dropped:
                del state[k]
            if dropped:
                logger.info("%s: dropped the unused ImageNet heads %s", source, ", ".join(sorted(dropped)))
            pos = state.get("v.pos_embed")
            if pos is not None and pos.shape[1] != self.v.pos_embed.shape[1]:
                state["v.pos_embed"] = self._fit_pos_embed(pos, 2, self._ast_src_grid(pos.shape[1] - 2))
        elif "pos_embed" in state and "patch_embed.proj.weight" in state:  # timm ImageNet ViT / DeiT
            state = self._from_timm(state, source)
        else:
            raise ValueError(f"{source}: neither an AST checkpoint (v.* keys) nor a timm ViT/DeiT state dict "
                             f"(pos_embed, patch_embed.proj.weight); first keys: {sorted(state)[:5]}")
        load_checked(self, state, head_prefixes=("mlp_head.",), source=source)

    def _from_timm(self, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
        w = state["patch_embed.proj.weight"]
        d = self.embed_dim
        if w.shape[0] != d or tuple(w.shape[-2:]) != (self.patch_size, self.patch_size):
            raise ValueError(f"{source}: patch embedding {tuple(w.shape)} does not fit this AST "
                             f"({d}-d tokens, {self.patch_size} x {self.patch_size} patches)")
        out: dict[str, torch.Tensor] = {}
        dropped = []
        for k, v in state.items():
            if k.startswith(("head.", "head_dist.", "pre_logits.")):
                dropped.append(k)
            elif k.startswith(("blocks.", "norm.")):
                out["v." + k] = v
        cls = state["cls_token"]
        out["v.cls_token"] = cls
        out["v.dist_token"] = state["dist_token"] if "dist_token" in state else cls.clone()
        n_prefix = 2 if "dist_token" in state else 1
        pos = state["pos_embed"]
        n_grid = pos.shape[1] - n_prefix
        r = math.isqrt(max(n_grid, 0))
        if r * r != n_grid:
            r = math.isqrt(pos.shape[1])
            if r * r != pos.shape[1]:
                raise ValueError(f"{source}: pos_embed {tuple(pos.shape)} is not a square patch grid")
            n_prefix = 0  # position embeddings of the patches only (no_embed_class); tokens get zeros
        out["v.pos_embed"] = self._fit_pos_embed(pos, n_prefix, (r, r))
        out["v.patch_embed.proj.weight"] = w.sum(dim=1, keepdim=True)
        if "patch_embed.proj.bias" in state:
            out["v.patch_embed.proj.bias"] = state["patch_embed.proj.bias"]
        unknown = [k for k in state if not k.startswith(("head.", "head_dist.", "pre_logits.", "blocks.", "norm.",
                                                         "cls_token", "dist_token", "pos_embed", "patch_embed."))]
        if unknown:
            raise ValueError(f"{source}: keys this AST cannot use: {', '.join(sorted(unknown)[:8])}")
        if "dist_token" not in state:
            logger.info("%s: no distillation token; it starts as a copy of the class token", source)
        logger.info("%s: ImageNet ViT weights mapped to AST (patch kernel summed over RGB, %dx%d position grid -> %s); "
                    "dropped %s", source, r, r, self.grid, ", ".join(sorted(dropped)) or "nothing")
        return out


def _create(**kwargs) -> AST:
    return AST(**kwargs)


@register_model
def ast_base(**kwargs) -> AST:
    """AST as released for AudioSet: DeiT-B distilled 384 geometry (768-d, 12 layers, 12 heads),
    16 x 16 patches with stride 10 over a 128 x 1024 fbank (12 x 101 patches), 527 classes."""
    return _create(**{"embed_dim": 768, "depth": 12, "num_heads": 12, **kwargs})


@register_model
def ast_small(**kwargs) -> AST:
    """AST on the DeiT-S geometry (384-d, 12 layers, 6 heads)."""
    return _create(**{"embed_dim": 384, "depth": 12, "num_heads": 6, **kwargs})


@register_model
def ast_tiny(**kwargs) -> AST:
    """AST on the DeiT-Ti geometry (192-d, 12 layers, 3 heads)."""
    return _create(**{"embed_dim": 192, "depth": 12, "num_heads": 3, **kwargs})


@register_model
def test_ast(**kwargs) -> AST:
    """Tiny AST for tests: 32-d, 2 layers, 2 heads, 128 fbank frames (12 x 12 patches), 10 classes."""
    return _create(**{"embed_dim": 32, "depth": 2, "num_heads": 2, "n_frames": 128, "num_classes": 10,
                      "timem": 24, **kwargs})
