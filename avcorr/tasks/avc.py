"""Audio-visual correspondence (AVE-Net, L3-Net): does this audio belong with this frame?"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.avc import AVCPairDataset, collate_pairs
from ..data.layout import load_split
from ..metrics.avc import avc_accuracy
from ..metrics.chance import majority_rate
from ..models import create_model
from .base import Evaluator, Task


class AVCModule(nn.Module):
    """``batch -> {'loss', 'logits'}`` with the cross-entropy of the correspondence logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.model(batch["audio"], batch["image"])
        loss = F.cross_entropy(out["logits"].float(), batch["label"])
        return {"loss": loss, "logits": out["logits"].detach()}


class AVCEvaluator(Evaluator):
    """``avc_acc``, its chance level ``baseline/avc_acc`` and mean ``loss`` over an evaluation pass.

    The chance level is the accuracy of always answering the more frequent label of the evaluated
    pairs (0.5 for balanced pairs).
    """

    def __init__(self):
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.loss_sum, self.n = 0.0, 0

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        b = batch["label"].shape[0]
        self.logits.append(out["logits"].float().cpu())
        self.labels.append(batch["label"].cpu())
        self.loss_sum += float(out["loss"]) * b
        self.n += b

    def compute(self) -> dict[str, float]:
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        return {"avc_acc": avc_accuracy(logits, labels), "baseline/avc_acc": majority_rate(labels.numpy()),
                "loss": self.loss_sum / max(1, self.n), "num_pairs": self.n}


class AVCTask(Task):
    """Builds AVC pair datasets and an AVE-Net / L3-Net from the config."""

    main_metric = "avc_acc"
    higher_is_better = True
    count_key, count_unit = "num_pairs", "pairs"
    collate_fn = staticmethod(collate_pairs)

    def build_model(self) -> nn.Module:
        m, a = self.cfg.model, self.cfg.data.audio
        return create_model(m.name, checkpoint_path=m.checkpoint_path or None, embed_dim=m.embed_dim, width=m.width,
                            sample_rate=a.sample_rate, n_fft=a.n_fft, win_length=a.win_length,
                            hop_length=a.hop_length, n_frames=a.n_frames, **m.kwargs)

    def wrap(self, model: nn.Module) -> nn.Module:
        return AVCModule(model)

    def build_dataset(self, split: str, train: bool) -> AVCPairDataset:
        d = self.cfg.data
        return AVCPairDataset(
            load_split(d.root, split), sample_rate=d.audio.sample_rate, seconds=d.audio.seconds,
            image_size=d.image_size, train=train, augment=d.augment, negatives=d.negatives,
            positive_fraction=d.positive_fraction,
            pairs_per_clip=d.train_pairs_per_clip if train else d.eval_pairs_per_clip,
            gain_jitter=d.audio.gain_jitter, seed=self.cfg.train.seed, video_backend=d.video_backend or None,
            max_bad_retries=d.max_bad_retries)

    def new_evaluator(self) -> AVCEvaluator:
        return AVCEvaluator()
