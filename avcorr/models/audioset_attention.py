"""Attention taggers over sequences of AudioSet embeddings (Kong et al. 2019, Yu et al. 2018).

The heads take the 1 Hz, 128-d, 8-bit embeddings that Google released with AudioSet (VGGish
embeddings after PCA and quantisation; :func:`avcorr.models.vggish.VGGish.embed_seconds` makes
the same from any audio) and predict the clip's labels:

* input ``x`` (B, T, D) in pack units (uint8 values 0..255, as a uint8 or float tensor) is mapped
  to ``(x - 128) / 128`` inside the model, then batch-normalised per dimension;
* an "embedding" stack of ``num_layers`` (3) frame-wise fully connected layers of ``hidden``
  (1024) units (1x1 convolutions over time without bias), each followed by batch norm, ReLU
  and dropout (0.5);
* a pooling over time that gives the clipwise probability ``p`` (B, C):

  - ``avg`` / ``max``: decision-level average / max of the per-frame sigmoid outputs;
  - ``single_attention``: decision-level attention (Kong et al. 2018): per frame a classifier
    ``cla = sigmoid(W_c h)`` and an attention ``att = sigmoid(W_a h)`` clamped to [1e-7, 1 - 1e-7],
    normalised over time, ``p = sum_t att_t cla_t / sum_t att_t``;
  - ``multi_attention``: multi-level attention (Yu et al. 2018): one decision-level attention
    module on each layer of ``levels`` (default the last two hidden layers, ``(2, 3)``), their
    outputs concatenated (B, L*C), then ``p = sigmoid(fc(.))``;
  - ``feature_attention``: feature-level attention (Kong et al. 2019, the best of the paper):
    attention pooling of the hidden features with a linear "classifier" (B, H), then batch norm,
    ReLU, dropout and ``p = sigmoid(fc(.))``.

Reference facts (``qiuqiangkong/audioset_classification``, ``pytorch/main.py`` and ``core.py``):
hidden 1024, dropout 0.5, input batch norm, bias-free 1x1 convolutions with batch norm, He-uniform
initialisation (``std = sqrt(2 / fan_in)``, bound ``std * sqrt(3)``, biases 0), sigmoid attention
clamped to [1e-7, 1 - 1e-7], binary cross-entropy on the probabilities, batch 500, Adam lr 1e-3.
That port applies ONE shared attention module to both levels of its multi-level model; Yu's
paper and code use one module per level, which is the default here (``shared_attention=True``
gives the port's variant). Yu's Keras code also differs in width (600) and dropout (0.4).

Every head returns ``logits = logit(p)`` (eps 1e-7), so binary cross-entropy with logits on them
equals the reference's cross-entropy on ``p``, and ``sigmoid(logits)`` gives ``p`` back. The pooling
runs in float32 even under autocast (a probability in bfloat16 has too few bits for its logit).

Model arguments as passed by ``avcorr.tasks.tagging``: ``embed_dim`` is the dimension D of the input
embeddings (128 for the AudioSet release; ``input_dim`` is the same), ``width`` scales the hidden
units (``hidden = round(1024 * width)``); an explicit ``hidden`` wins over ``width``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from .input_spec import InputSpec

__all__ = [
    "POOLINGS",
    "AudioSetAttention",
    "audioset_avg_pool",
    "audioset_feature_attention",
    "audioset_max_pool",
    "audioset_multi_attention",
    "audioset_single_attention",
]

POOLINGS = ("avg", "max", "single_attention", "multi_attention", "feature_attention")
EPS = 1e-7  # attention clamp and logit clamp, as the reference
HIDDEN = 1024


def _init_he_uniform(layer: nn.Module) -> None:
    """The reference's ``init_layer``: uniform in +-sqrt(6 / fan_in), bias 0."""
    w = layer.weight
    fan_in = w[0].numel()
    bound = math.sqrt(2.0 / fan_in) * math.sqrt(3.0)
    with torch.no_grad():
        w.uniform_(-bound, bound)
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()


class TimeAttention(nn.Module):
    """Attention pooling over time with a per-frame classifier and a per-frame attention.

    Args:
        n_in: input channels.
        n_out: outputs (classes for decision-level attention, hidden units for feature-level).
        cla_activation: ``"sigmoid"`` (decision level) or ``"linear"`` (feature level).
    """

    def __init__(self, n_in: int, n_out: int, cla_activation: str = "sigmoid"):
        super().__init__()
        if cla_activation not in ("sigmoid", "linear"):
            raise ValueError(f"cla_activation must be 'sigmoid' or 'linear', got {cla_activation!r}")
        self.cla_activation = cla_activation
        self.att = nn.Conv1d(n_in, n_out, kernel_size=1)
        self.cla = nn.Conv1d(n_in, n_out, kernel_size=1)
        _init_he_uniform(self.att)
        _init_he_uniform(self.cla)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pool ``h`` over time.

        Args:
            h: (B, n_in, T) frame features.

        Returns:
            ``(pooled (B, n_out), weights (B, n_out, T), cla (B, n_out, T))``; the weights are the
            clamped sigmoid attention normalised to sum to 1 over time for every output.
        """
        att = torch.sigmoid(self.att(h)).clamp(EPS, 1.0 - EPS)
        weights = att / att.sum(dim=2, keepdim=True)
        cla = self.cla(h)
        if self.cla_activation == "sigmoid":
            cla = torch.sigmoid(cla)
        return (weights * cla).sum(dim=2), weights, cla


class AudioSetAttention(nn.Module):
    """A tagger over a sequence of embeddings: embedding stack + pooling (module docstring).

    Interface used by the tagging task and ``avcorr.tag``: ``input_kind = "embedding"``,
    ``input_dim`` (D), ``frame_seconds = 1.0`` (one embedding per second), ``num_classes``.

    Args:
        num_classes: outputs C (527 for AudioSet).
        input_dim: embedding dimension D (128).
        hidden: units H of each hidden layer (1024).
        num_layers: hidden layers of the embedding stack (3).
        dropout: dropout after each hidden layer (and after feature-level pooling) (0.5).
        pooling: one of :data:`POOLINGS`.
        levels: ``multi_attention`` only: the layers that get an attention module, 1-based hidden
            layers (0 = the batch-normalised input); default the last two.
        shared_attention: ``multi_attention`` only: one attention module for every level (the
            reference PyTorch port) instead of one per level (Yu et al.); needs equal widths.
    """

    input_kind = "embedding"
    frame_seconds = 1.0

    def __init__(self, num_classes: int = 527, input_dim: int = 128, hidden: int = HIDDEN, num_layers: int = 3,
                 dropout: float = 0.5, pooling: str = "feature_attention", levels: Sequence[int] | None = None,
                 shared_attention: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        for name, v in (("num_classes", num_classes), ("input_dim", input_dim), ("hidden", hidden),
                        ("num_layers", num_layers)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes, self.input_dim, self.hidden = int(num_classes), int(input_dim), int(hidden)
        self.num_layers, self.dropout, self.pooling = int(num_layers), float(dropout), pooling
        self.num_features = self.hidden  # size of the 'embedding' output

        self.bn0 = nn.BatchNorm1d(self.input_dim)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        c_in = self.input_dim
        for _ in range(self.num_layers):
            conv = nn.Conv1d(c_in, self.hidden, kernel_size=1, bias=False)
            _init_he_uniform(conv)
            self.convs.append(conv)
            self.bns.append(nn.BatchNorm1d(self.hidden))
            c_in = self.hidden

        self.levels: tuple[int, ...] = ()
        if pooling in ("avg", "max"):
            self.fc = nn.Conv1d(self.hidden, self.num_classes, kernel_size=1)  # per-frame classifier
            _init_he_uniform(self.fc)
        elif pooling == "single_attention":
            self.attention = TimeAttention(self.hidden, self.num_classes, "sigmoid")
        elif pooling == "multi_attention":
            lv = tuple(int(v) for v in (levels if levels is not None else (self.num_layers - 1, self.num_layers)))
            if not lv or len(set(lv)) != len(lv) or any(not 0 <= v <= self.num_layers for v in lv):
                raise ValueError(f"levels must be distinct layers in 0..{self.num_layers} (0 = input, "
                                 f"{self.num_layers} = last hidden layer), got {list(lv)}")
            self.levels = lv
            widths = [self.input_dim if v == 0 else self.hidden for v in lv]
            if shared_attention:
                if len(set(widths)) != 1:
                    raise ValueError(f"shared_attention needs levels of one width; levels {list(lv)} have {widths}")
                self.attentions = nn.ModuleList([TimeAttention(widths[0], self.num_classes, "sigmoid")])
            else:
                self.attentions = nn.ModuleList([TimeAttention(w, self.num_classes, "sigmoid") for w in widths])
            self.fc = nn.Linear(self.num_classes * len(lv), self.num_classes)
            _init_he_uniform(self.fc)
        else:  # feature_attention
            self.attention = TimeAttention(self.hidden, self.hidden, "linear")
            self.bn_attention = nn.BatchNorm1d(self.hidden)
            self.fc = nn.Linear(self.hidden, self.num_classes)
            _init_he_uniform(self.fc)
        self.shared_attention = bool(shared_attention) and pooling == "multi_attention"

    # -- pieces --------------------------------------------------------------------------------
    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) uint8 or float in pack units -> (B, D, T) float32 ``(x - 128) / 128``.

        Raises:
            ValueError: not a (B, T, input_dim) tensor with T >= 1.
        """
        if x.dim() != 3 or x.shape[-1] != self.input_dim or x.shape[1] < 1:
            raise ValueError(f"expected embeddings of shape (B, T >= 1, {self.input_dim}), got {tuple(x.shape)}")
        return ((x.float() - 128.0) / 128.0).transpose(1, 2)

    @property
    def input_spec(self) -> InputSpec:
        """Sequences of ``input_dim``-d embeddings (B, T, input_dim), any T >= 1."""
        return InputSpec(input_dim=self.input_dim)

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The embedding stack.

        Args:
            x: (B, T, D) embeddings in pack units.

        Returns:
            ``[a0, a1, ..., aL]``: ``a0`` (B, D, T) the batch-normalised input, ``ai`` (B, H, T) the
            output of hidden layer ``i`` (after batch norm, ReLU and dropout).
        """
        a = self.bn0(self.normalize_input(x))
        out = [a]
        for conv, bn in zip(self.convs, self.bns):
            a = F.dropout(F.relu(bn(conv(a))), p=self.dropout, training=self.training)
            out.append(a)
        return out

    def forward(self, x: torch.Tensor, mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Tag a batch of embedding sequences.

        Args:
            x: (B, T, D) uint8 or float embeddings in pack units (0..255), any T >= 1.
            mixup_lambda: not supported (the reference trains these heads without mixup); must be None.

        Returns:
            ``clipwise_output`` (B, C) float32 probabilities ``p``; ``logits`` (B, C) ``logit(p)``
            (eps 1e-7); ``embedding`` (B, H) a clip feature (feature-level attention: the pooled
            features after batch norm and ReLU; the other heads: the time average of the last hidden
            layer). Decision-level heads (avg, max, single attention) add ``framewise_output``
            (B, T, C), the per-frame probabilities; attention heads add ``attention``: (B, T, C)
            single, (B, L, T, C) multi (one per level), (B, T, H) feature level - each sums to 1
            over T.

        Raises:
            ValueError: a wrong input shape, or a ``mixup_lambda``.
        """
        if mixup_lambda is not None:
            raise ValueError("the AudioSet embedding heads are trained without mixup (as the reference); "
                             "set tagging.mixup_alpha=0")
        layers = self.forward_layers(x)
        out: dict[str, torch.Tensor] = {}
        with torch.autocast(device_type=x.device.type, enabled=False):
            layers = [a.float() for a in layers]
            last = layers[-1]  # (B, H, T)
            if self.pooling in ("avg", "max"):
                frame = torch.sigmoid(self.fc(last))  # (B, C, T)
                p = frame.mean(dim=2) if self.pooling == "avg" else frame.amax(dim=2)
                out["framewise_output"] = frame.transpose(1, 2)
                emb = last.mean(dim=2)
            elif self.pooling == "single_attention":
                p, w, cla = self.attention(last)
                out["framewise_output"] = cla.transpose(1, 2)
                out["attention"] = w.transpose(1, 2)
                emb = last.mean(dim=2)
            elif self.pooling == "multi_attention":
                pooled, weights = [], []
                for k, level in enumerate(self.levels):
                    att = self.attentions[0 if self.shared_attention else k]
                    pk, wk, _ = att(layers[level])
                    pooled.append(pk)
                    weights.append(wk.transpose(1, 2))
                p = torch.sigmoid(self.fc(torch.cat(pooled, dim=1)))
                out["attention"] = torch.stack(weights, dim=1)
                emb = last.mean(dim=2)
            else:  # feature_attention
                pooled, w, _ = self.attention(last)  # (B, H)
                emb = F.relu(self.bn_attention(pooled))
                p = torch.sigmoid(self.fc(F.dropout(emb, p=self.dropout, training=self.training)))
                out["attention"] = w.transpose(1, 2)
            out["clipwise_output"] = p
            out["logits"] = torch.logit(p, eps=EPS)
            out["embedding"] = emb
        return out


def _create(pooling: str, *, embed_dim: int | None = None, width: float | None = None, hidden: int | None = None,
            **kwargs: Any) -> AudioSetAttention:
    """Map the task's generic arguments: ``embed_dim`` -> ``input_dim``; ``width`` scales 1024 hidden units."""
    if embed_dim is not None:
        if "input_dim" in kwargs and int(kwargs["input_dim"]) != int(embed_dim):
            raise ValueError(f"embed_dim ({embed_dim}) and input_dim ({kwargs['input_dim']}) disagree; give one")
        kwargs["input_dim"] = int(embed_dim)
    if hidden is None:
        if width is not None and width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        hidden = max(1, int(round(HIDDEN * (1.0 if width is None else float(width)))))
    return AudioSetAttention(pooling=pooling, hidden=int(hidden), **kwargs)


@register_model
def audioset_avg_pool(**kwargs: Any) -> AudioSetAttention:
    """Decision-level average pooling of per-second sigmoid outputs (reference mAP 0.300)."""
    return _create("avg", **kwargs)


@register_model
def audioset_max_pool(**kwargs: Any) -> AudioSetAttention:
    """Decision-level max pooling of per-second sigmoid outputs (reference mAP 0.292)."""
    return _create("max", **kwargs)


@register_model
def audioset_single_attention(**kwargs: Any) -> AudioSetAttention:
    """Decision-level single attention (Kong et al. 2018; reference mAP 0.337)."""
    return _create("single_attention", **kwargs)


@register_model
def audioset_multi_attention(**kwargs: Any) -> AudioSetAttention:
    """Multi-level attention on hidden layers 2 and 3 (Yu et al. 2018; reference mAP 0.357-0.360)."""
    return _create("multi_attention", **kwargs)


@register_model
def audioset_feature_attention(**kwargs: Any) -> AudioSetAttention:
    """Feature-level attention (Kong et al. 2019, the paper's best: mAP 0.369)."""
    return _create("feature_attention", **kwargs)
