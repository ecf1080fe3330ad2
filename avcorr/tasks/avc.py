"""Audio-visual correspondence (AVE-Net, L3-Net): does this audio belong with this frame?"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.avc import AVCPairDataset, collate_pairs
from ..data.avc_stream import AVCShardStream
from ..data.layout import load_split
from ..data.transforms import device_frames
from ..metrics.avc import avc_accuracy
from ..losses import ContrastiveLocalizationLoss
from ..metrics.chance import majority_rate
from ..models import create_model
from .base import Evaluator, Task, argmax_hits, finish_on_device


class AVCModule(nn.Module):
    """``batch -> {'loss', 'logits'}`` with the cross-entropy of the correspondence logits.

    This is the paper's objective (``avc.loss="pairs"``): every example is a labelled positive or
    negative pair.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.model(batch["audio"], batch["image"])
        loss = F.cross_entropy(out["logits"].float(), batch["label"])
        return {"loss": loss, "logits": out["logits"].detach()}


class ContrastiveAVCModule(nn.Module):
    """In-batch contrastive training of AVE-Net (``avc.loss="contrastive"``).

    Training batches hold POSITIVE pairs only (frame ``i`` with the audio centred on it). The loss is

    * the symmetric InfoNCE of the L2-normalised embeddings over the batch (CLIP / open_clip's
      objective, used for audio-visual correspondence by e.g. AVID and the EZ-VSL line): every other
      clip's audio (frame) in the batch is a negative, ``logits = cos / temperature``; gathered across
      DDP processes inside the loss; plus
    * ``pair_weight`` x the cross-entropy of AVE-Net's own distance -> correspondence head on the B
      positives and B in-batch negatives (frame ``i`` with the audio of pair ``i + 1``; a pair whose
      audio comes from the frame's own clip is dropped), so the head that gives ``avc_acc`` stays
      calibrated.

    A batch of B pairs gives B^2 - B negatives instead of the paper's one negative per example, which
    is what makes the objective learn on data where one negative carries little signal (small sounding
    objects among distractors, class-level pairing). In evaluation mode the batch holds labelled
    pairs (as the paper's) and the loss is the pair cross-entropy, so ``avc_acc`` is measured exactly
    as for ``"pairs"``.

    Args:
        model: an AVE-Net (``fusion="distance"``).
        temperature: InfoNCE temperature.
        pair_weight: weight of the pair head's loss.
        soft_targets: share of each InfoNCE target spread over the pairs whose audio sounds alike
            (see :class:`~avcorr.losses.ContrastiveLocalizationLoss`).
    """

    def __init__(self, model: nn.Module, temperature: float = 0.07, pair_weight: float = 1.0, soft_targets: float = 0.0):
        super().__init__()
        if getattr(model, "fusion", None) != "distance":
            raise ValueError("avc.loss='contrastive' needs an embedding model (AVE-Net, fusion='distance'); "
                             f"{type(model).__name__} with fusion={getattr(model, 'fusion', None)!r} has none")
        if temperature <= 0:
            raise ValueError(f"avc.temperature must be > 0, got {temperature}")
        self.model = model
        self.temperature, self.pair_weight = float(temperature), float(pair_weight)
        self.infonce = ContrastiveLocalizationLoss(soft_targets=soft_targets)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if not self.training:
            out = self.model(batch["audio"], batch["image"])
            return {"loss": F.cross_entropy(out["logits"].float(), batch["label"]), "logits": out["logits"].detach()}
        a = self.model.encode_audio(batch["audio"]).float()  # (B, D), L2-normalised
        v = self.model.encode_visual_for_pairs(batch["image"]).float()  # (B, D, h, w): 1 x 1 unless cells
        b = a.shape[0]
        loss = self.infonce(v, a, 1.0 / self.temperature)
        # the pair head: B positives, then frame i with the audio of pair i + 1 (other clips only)
        shifted = torch.roll(torch.arange(b, device=a.device), -1)
        keep = torch.tensor([batch["vid"][i] != batch["vid"][int(j)] for i, j in enumerate(shifted.tolist())],
                            device=a.device, dtype=torch.bool)
        sim = torch.cat([self.model.similarity(v, a), self.model.similarity(v, a[shifted])[keep]])
        labels = torch.cat([torch.ones(b, dtype=torch.long, device=a.device),
                            torch.zeros(int(keep.sum()), dtype=torch.long, device=a.device)])
        logits = self.model.correspondence_logits(sim).float()
        pair_loss = F.cross_entropy(logits, labels)
        return {"loss": loss + self.pair_weight * pair_loss, "infonce": loss.detach(), "pair_loss": pair_loss.detach(),
                "logits": logits.detach(), "label": labels}


class AVCEvaluator(Evaluator):
    """``avc_acc``, its chance level ``baseline/avc_acc`` and mean ``loss`` over an evaluation pass.

    The chance level is the accuracy of always answering the more frequent label of the evaluated
    pairs (0.5 for balanced pairs). ``ceiling/avc_acc`` is the best accuracy of a model that knows
    the classes of frame and sound perfectly but nothing finer: it must accept a negative whose audio
    comes from a clip of a class drawn in the frame (pairs with ``shares_label``). Real class-level
    models sit below it; with few classes it is well under 1 (8 classes, 10 clips each: about 0.94).
    With the split's ``visible.json`` (the classes of every object drawn, sounding or silent) it counts
    the silent objects too and is the exact class-level ceiling; without it only the frame clip's own
    labels count, and silent objects of the negative's class lower the true ceiling below the one
    reported.
    """

    def __init__(self):
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.shared = 0
        self.loss_sum, self.n = 0.0, 0

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        b = batch["label"].shape[0]
        self.logits.append(out["logits"].float().cpu())
        self.labels.append(batch["label"].cpu())
        if "shares_label" in batch:
            self.shared += int(batch["shares_label"].sum())
        self.loss_sum += float(out["loss"]) * b
        self.n += b

    def merge(self, other: "AVCEvaluator") -> None:
        """Add the pairs ``other`` saw (another rank's share of the split)."""
        self.logits += other.logits
        self.labels += other.labels
        self.shared += other.shared
        self.loss_sum += other.loss_sum
        self.n += other.n

    def compute(self) -> dict[str, float]:
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        return {"avc_acc": avc_accuracy(logits, labels), "baseline/avc_acc": majority_rate(labels.numpy()),
                "ceiling/avc_acc": 1.0 - self.shared / max(1, self.n),
                "loss": self.loss_sum / max(1, self.n), "num_pairs": self.n}


def device_pairs(batch: dict[str, Any]) -> dict[str, Any]:
    """Finish a batch of frame / audio pairs on its device (``data.device_transforms``; the AVC and localization
    tasks' ``device_transform``): uint8 ``image`` (B, 3, S, S) jittered and flipped by its ``image_jitter``
    (B, 3), when the batch has one, and normalised (:func:`~avcorr.data.transforms.device_frames`); int16
    ``audio`` (B, T) made float32 times its ``audio_gain`` (B,). See :func:`~avcorr.tasks.base.finish_on_device`.

    Args:
        batch: a collated batch (:func:`~avcorr.data.avc.collate_pairs`,
            :func:`~avcorr.data.localization.collate_localization`), its tensors on the device.
    """
    return finish_on_device(batch, "image", "audio", device_frames)


def create_av_model(cfg) -> nn.Module:
    """The audio-visual model of ``cfg.model`` (AVE-Net, L3-Net, AVOL-Net ...), its audio front-end and
    window set from ``data.audio``; the datasets then read the window back from ``model.input_spec``."""
    m, a = cfg.model, cfg.data.audio
    return create_model(m.name, checkpoint_path=m.checkpoint_path or None, embed_dim=m.embed_dim, width=m.width,
                        sample_rate=a.sample_rate, n_fft=a.n_fft, win_length=a.win_length, hop_length=a.hop_length,
                        n_frames=a.n_frames, n_mels=a.n_mels, clip_seconds=a.seconds, **m.kwargs)


class AVCTask(Task):
    """Builds AVC pair datasets and an AVE-Net / L3-Net from the config (``data``, ``model``, ``avc``)."""

    main_metric = "avc_acc"
    higher_is_better = True
    count_key, count_unit = "num_pairs", "pairs"
    collate_fn = staticmethod(collate_pairs)

    def create_model(self) -> nn.Module:
        return create_av_model(self.cfg)

    def wrap(self, model: nn.Module) -> nn.Module:
        a = self.cfg.avc
        if a.loss == "contrastive":
            return ContrastiveAVCModule(model, temperature=a.temperature, pair_weight=a.pair_weight,
                                        soft_targets=a.soft_targets)
        return AVCModule(model)

    def build_dataset(self, split: str, train: bool) -> AVCPairDataset | AVCShardStream:
        """The split's pairs: per-sample from the clip files, or drawn in a stream of shards (``data.storage``)."""
        d, a, spec = self.cfg.data, self.cfg.avc, self.frame_spec()
        contrastive = a.loss == "contrastive"
        common = dict(sample_rate=spec.sample_rate, seconds=spec.clip_seconds, image_size=d.image_size, train=train,
                      augment=d.augment, negatives=a.negatives,
                      positive_fraction=1.0 if (train and contrastive) else a.positive_fraction,
                      pairs_per_clip=a.train_pairs_per_clip if train else a.eval_pairs_per_clip,
                      gain_jitter=d.audio.gain_jitter, seed=self.cfg.train.seed,
                      device_transforms=d.device_transforms)
        if d.storage == "shards":
            return AVCShardStream(self.shard_folder(split), **self.stream_options(train), **common)
        return AVCPairDataset(load_split(d.root, split), **self.files_options(), **common)

    def device_transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """With ``data.device_transforms``: :func:`device_pairs`. Other batches pass unchanged."""
        return device_pairs(batch)

    def new_evaluator(self) -> AVCEvaluator:
        return AVCEvaluator()

    def train_metrics(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
        """``avc_acc`` of the step's pairs (those the contrastive module made itself, when it returns them)."""
        hits = argmax_hits(out.get("logits"), out.get("label", batch.get("label")))
        return {"avc_acc": hits} if hits is not None else {}
