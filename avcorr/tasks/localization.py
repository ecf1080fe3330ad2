"""Sound localization (AVOL-Net, the EZ-VSL-style contrastive localizer): where in the frame is the sound?

Training draws AVC positives (a frame and the audio centred on it, from
:class:`~avcorr.data.avc.AVCPairDataset` with ``positive_fraction=1``). AVOL-Net's negatives are
the same frames with the audio of the NEXT item of the batch (audio of another clip, as the paper's
negatives; a pair whose audio happens to come from the frame's own clip is dropped), so every
decoded example serves once as a positive and once as a negative, 1:1 as in the paper. The
contrastive localizer uses every other item of the (DDP-gathered) batch as a negative.

Validation and ``avcorr.evaluate`` use :class:`~avcorr.data.localization.LocalizationDataset`
(the middle frame of each clip, where ``boxes.json`` applies; with ``data.storage="shards"``,
:class:`~avcorr.data.avc_stream.AVCShardStream` positives train and
:class:`~avcorr.data.localization_stream.LocalizationShardStream` evaluates, its boxes moved into the
stored crop) and report, over the clips with boxes:

* ``ciou@0.5``, ``auc_ciou``, ``ciou_mean`` - the LVS / EZ-VSL protocol (top half of the pixels on,
  :mod:`avcorr.metrics.localization`);
* ``fixed/ciou@0.5``, ``fixed/auc_ciou``, ``fixed/ciou_mean`` - the same with a fixed threshold of
  0.5 on the normalised map (Senocak et al.'s cIoU(tau)), which does not cap cIoU for small objects;
* ``center/...`` and ``center/fixed/...`` - the same for the centre-prior baseline map;
* ``avc_acc`` (AVOL-Net) - correspondence accuracy on the positives and the in-batch negatives, and
  its chance level ``baseline/avc_acc`` (always answering the more frequent of the two);
* ``loss``, ``num_clips``, ``num_boxed``.

The validation metric that selects ``best.pt`` is ``fixed/auc_ciou`` when the validation split
has boxes, else the validation ``loss``. The LVS protocol caps cIoU at ``min(2A, 0.5 / A)`` for a
box of area ``A`` (``ciou@0.5`` is 0 for every model when the objects cover less than a quarter of
the frame, and its ``auc_ciou`` rewards maps that are merely broad), so only the fixed-threshold
protocol ranks maps of objects of every size. The baseline it is checked against after each
validation is the centre prior's ``center/fixed/auc_ciou`` over ``num_boxed`` clips.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.avc import AVCPairDataset
from ..data.avc_stream import AVCShardStream
from ..data.layout import load_split
from ..data.localization import LocalizationDataset, collate_localization
from ..data.localization_stream import LocalizationShardStream, shards_have_boxes
from ..losses import ContrastiveLocalizationLoss, MILLogisticLoss
from ..metrics.localization import EVAL_SIZE, center_prior_map, localization_cious, localization_summary
from .avc import create_av_model, device_pairs
from .base import Evaluator, Task

logger = logging.getLogger(__name__)

FIXED_THRESHOLD = 0.5  # the fixed-threshold variant of the protocol (``fixed/...`` metrics)


class LocalizationModule(nn.Module):
    """``batch -> {'loss', 'map', ...}`` for AVOL-Net (logistic MIL loss) or the contrastive localizer.

    Args:
        model: an :class:`~avcorr.models.avolnet.AVOLNet` (anything with ``objective``,
            ``audio_embedding``, ``visual_cells``, ``cell_logits`` and ``heatmap``).
        local_loss: contrastive only, see :class:`~avcorr.losses.ContrastiveLocalizationLoss`.
        gather_with_grad: contrastive only, likewise.
    """

    def __init__(self, model: nn.Module, local_loss: bool = False, gather_with_grad: bool = False,
                 negatives: str = "one"):
        super().__init__()
        if negatives not in ("one", "all"):
            raise ValueError(f"localization.negatives must be 'one' or 'all', got {negatives!r}")
        self.model = model
        self.negatives = negatives
        self.objective = getattr(model, "objective", None)
        if self.objective == "avol":
            self.loss = MILLogisticLoss()
        elif self.objective == "contrastive":
            self.loss = ContrastiveLocalizationLoss(local_loss=local_loss, gather_with_grad=gather_with_grad)
        else:
            raise ValueError(f"the localization task needs a localization model (avolnet, ezvsl, ...); "
                             f"{type(model).__name__} has objective {self.objective!r}")

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Args:
            batch: ``image`` (B, 3, S, S), ``audio`` (B, T), ``vid`` / ``audio_vid`` lists; every pair positive.

        Returns:
            ``loss``; in eval mode ``map`` (B, h, w), the localization maps of the positive pairs; for
            AVOL-Net also ``pos_logit`` (B,) and ``neg_logit`` (B',) max-pooled logits (detached).
        """
        if "image" not in batch:  # every clip of the batch failed to decode
            return {"loss": torch.zeros(()), "map": torch.zeros(0, 1, 1)}
        m = self.model
        cells, feats = m.visual_cells(batch["image"])
        audio = m.audio_embedding(batch["audio"])
        out: dict[str, torch.Tensor] = {}
        if self.objective == "avol" and self.negatives == "all" and self.training and audio.shape[0] > 1:
            out.update(self._all_pairs(cells, audio, batch))
        elif self.objective == "avol":
            pos = m.cell_logits(cells, audio)
            b = audio.shape[0]
            neg = pos[:0]
            if b > 1:  # frame i with the audio of item i + 1 (another clip's audio)
                vids, avids = batch["vid"], batch.get("audio_vid", batch["vid"])
                keep = torch.tensor([avids[(i + 1) % b] != vids[i] for i in range(b)], device=audio.device)
                neg = m.cell_logits(cells[keep], audio.roll(-1, dims=0)[keep])
            logits = torch.cat([pos, neg])
            labels = torch.cat([torch.ones(pos.shape[0], device=pos.device), torch.zeros(neg.shape[0], device=pos.device)])
            out["loss"] = self.loss(logits, labels)
            out["pos_logit"] = pos.detach().flatten(1).amax(1)
            out["neg_logit"] = neg.detach().flatten(1).amax(1)
        else:
            out["loss"] = self.loss(cells, audio, m.logit_scale)
        if not self.training:  # the maps are only needed for evaluation
            with torch.no_grad():
                out["map"] = m.heatmap(cells, audio, feats).detach()
        return out

    def _all_pairs(self, cells: torch.Tensor, audio: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """AVOL-Net's logistic MIL loss over every (frame, audio) pair of the batch (``negatives="all"``).

        Each frame is a positive with its own audio and a negative with the audio of every other clip
        of the batch (B - 1 negatives instead of the paper's one); positives and negatives weigh the
        same in total, so the calibration still learns a 1:1 prior.
        """
        m = self.model
        b = audio.shape[0]
        sim = torch.einsum("ndhw,md->nmhw", cells, audio)  # (B frames, B audio, h, w)
        logits = m.calibration(sim.reshape(b * b, 1, *sim.shape[-2:])).view(b, b, -1).amax(-1).float()
        vids, avids = batch["vid"], batch.get("audio_vid", batch["vid"])
        same = torch.tensor([[vids[i] == avids[j] for j in range(b)] for i in range(b)], device=audio.device)
        eye = torch.eye(b, dtype=torch.bool, device=audio.device)
        neg_mask = ~same & ~eye
        pos, neg = logits[eye], logits[neg_mask]
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        if neg.numel():
            loss = (loss + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))) / 2
        return {"loss": loss, "pos_logit": pos.detach(), "neg_logit": neg.detach()}


MEDIA_CLIPS = 4  # validation clips shown in TensorBoard


class LocalizationEvaluator(Evaluator):
    """cIoU metrics (LVS protocol and the fixed-threshold variant) for the model and the centre prior.

    Args:
        size: evaluation resolution (224 as LVS / EZ-VSL).
    """

    def __init__(self, size: int = EVAL_SIZE):
        self.size = size
        self.prior = torch.from_numpy(center_prior_map(size))
        self.cious: dict[str, list[np.ndarray]] = {"": [], "fixed/": [], "center/": [], "center/fixed/": []}
        self.loss_sum, self.n_loss, self.n_clips = 0.0, 0, 0
        self.correct, self.n_pairs, self.n_pos = 0, 0, 0
        self.has_avc = False
        self.samples: list[tuple[np.ndarray, np.ndarray, list]] = []  # first MEDIA_CLIPS (frame, map, boxes)

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        b = len(batch.get("vid", ()))
        if b == 0:
            return
        if len(self.samples) < MEDIA_CLIPS and "image" in batch and "map" in out:
            from ..data.transforms import denormalize

            for i in range(min(b, MEDIA_CLIPS - len(self.samples))):
                frame = (denormalize(batch["image"][i].float().cpu()).permute(1, 2, 0).numpy() * 255).round()
                boxes = list((batch.get("boxes") or [[]] * b)[i] or [])
                self.samples.append((frame.astype(np.uint8), out["map"][i].float().cpu().numpy(), boxes))
        self.loss_sum += float(out["loss"]) * b
        self.n_loss += b
        self.n_clips += b
        if "pos_logit" in out:
            self.has_avc = True
            self.correct += int((out["pos_logit"] > 0).sum()) + int((out["neg_logit"] <= 0).sum())
            self.n_pairs += out["pos_logit"].numel() + out["neg_logit"].numel()
            self.n_pos += out["pos_logit"].numel()
        boxes = batch.get("boxes")
        if not boxes:
            return
        maps = out["map"].float().cpu()
        prior = self.prior.expand(b, -1, -1)
        for prefix, m in (("", maps), ("center/", prior)):
            self.cious[prefix].append(localization_cious(m, boxes, threshold="median", size=self.size))
            self.cious[prefix + "fixed/"].append(localization_cious(m, boxes, threshold=FIXED_THRESHOLD, size=self.size))

    def merge(self, other: "LocalizationEvaluator") -> None:
        """Add the clips ``other`` saw (another rank's share of the split); the pictured clips are this
        evaluator's first ones, then ``other``'s, up to ``MEDIA_CLIPS``."""
        for prefix, parts in other.cious.items():
            self.cious[prefix] += parts
        self.loss_sum += other.loss_sum
        self.n_loss += other.n_loss
        self.n_clips += other.n_clips
        self.correct += other.correct
        self.n_pairs += other.n_pairs
        self.n_pos += other.n_pos
        self.has_avc = self.has_avc or other.has_avc
        self.samples += other.samples[:max(0, MEDIA_CLIPS - len(self.samples))]

    def pictures(self) -> dict[str, Any]:
        """The first validation clips' frames, maps and boxes (for TensorBoard)."""
        return {"samples": self.samples}

    def compute(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        n_boxed = 0
        if any(len(c) for c in self.cious[""]):
            for prefix, parts in self.cious.items():
                c = np.concatenate(parts)
                n_boxed = int((~np.isnan(c)).sum())
                if n_boxed:
                    metrics.update(localization_summary(c, prefix))
        if self.has_avc:
            metrics["avc_acc"] = self.correct / max(1, self.n_pairs)
            metrics["baseline/avc_acc"] = max(self.n_pos, self.n_pairs - self.n_pos) / max(1, self.n_pairs)
        metrics["loss"] = self.loss_sum / self.n_loss if self.n_loss else math.nan
        metrics["num_clips"] = self.n_clips
        metrics["num_boxed"] = n_boxed
        return metrics


def localization_media(samples: list) -> list[tuple[str, str, Any]]:
    """Overlays of the maps on their frames, on one scale for all of them, with a colour bar (ground truth green)."""
    from ..viz.heatmap import overlay_heatmap, value_range, with_colorbar

    if not samples:
        return []
    vrange = value_range([m for _, m, _ in samples])
    return [("picture", f"localization/{i}", with_colorbar(overlay_heatmap(f, m, boxes=b, vrange=vrange), vrange))
            for i, (f, m, b) in enumerate(samples)]


class LocalizationTask(Task):
    """Builds AVOL-Net / the contrastive localizer, AVC training pairs and middle-frame evaluation data.

    ``model.kwargs`` may carry the model's arguments (``prior_alpha``, ``temperature``,
    ``vision_width`` ...); the objective's settings are the ``localization`` section (``negatives``,
    and for the contrastive loss ``local_loss`` / ``gather_with_grad``).
    """

    collate_fn = staticmethod(collate_localization)
    baseline_name, count_key, count_unit = "the centre prior", "num_boxed", "boxed clips"

    def __init__(self, cfg, resolved=None):
        super().__init__(cfg)
        self._val_has_boxes: bool | None = None

    # -- model selection metric ---------------------------------------------------------------
    def _val_boxes(self) -> bool:
        if self._val_has_boxes is None:
            d = self.cfg.data
            try:
                if d.storage == "shards":  # the boxes are in the clips' json members: read until one has a box
                    self._val_has_boxes = shards_have_boxes(self.shard_folder(d.val_split))
                else:
                    self._val_has_boxes = any(c.boxes for c in load_split(d.root, d.val_split).clips)
            except (OSError, ValueError) as e:  # LayoutError and ShardError are ValueErrors
                logger.warning("cannot read the validation split to look for boxes (%s); selecting on loss", e)
                self._val_has_boxes = False
        return self._val_has_boxes

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        # the fixed-threshold protocol: the LVS one switches on half of the pixels, which caps cIoU at
        # min(2A, 0.5 / A) for a box of area A, so it cannot rank maps of objects under ~25 % of the frame
        return "fixed/auc_ciou" if self._val_boxes() else "loss"

    @property
    def higher_is_better(self) -> bool:  # type: ignore[override]
        return self._val_boxes()

    def baseline_key(self, metric: str) -> str:
        """The centre prior's score (``center/<metric>``); ``avc_acc``'s chance level (``baseline/avc_acc``)."""
        return "baseline/avc_acc" if metric == "avc_acc" else f"center/{metric}"

    # -- pieces ------------------------------------------------------------------------------
    def create_model(self) -> nn.Module:
        return create_av_model(self.cfg)

    def wrap(self, model: nn.Module) -> nn.Module:
        lc = self.cfg.localization
        return LocalizationModule(model, local_loss=lc.local_loss, gather_with_grad=lc.gather_with_grad,
                                  negatives=lc.negatives)

    def build_dataset(self, split: str, train: bool):
        """Training: AVC positives; evaluation: the middle frame with its boxes. Per-sample from the clip files,
        or from a stream of shards (``data.storage``)."""
        d, spec = self.cfg.data, self.frame_spec()
        if train:
            common = dict(sample_rate=spec.sample_rate, seconds=spec.clip_seconds, image_size=d.image_size,
                          train=True, augment=d.augment, negatives="clip", positive_fraction=1.0,  # positives only
                          pairs_per_clip=self.cfg.localization.train_pairs_per_clip, gain_jitter=d.audio.gain_jitter,
                          seed=self.cfg.train.seed, device_transforms=d.device_transforms)
            if d.storage == "shards":
                return AVCShardStream(self.shard_folder(split), **self.stream_options(True), **common)
            return AVCPairDataset(load_split(d.root, split), **self.files_options(), **common)
        if d.storage == "shards":  # every shard, whatever the DDP rank, until the trainer splits it
            return LocalizationShardStream(self.shard_folder(split), sample_rate=spec.sample_rate,
                                           seconds=spec.clip_seconds, image_size=d.image_size,
                                           seed=self.cfg.train.seed, device_transforms=d.device_transforms)
        return LocalizationDataset(load_split(d.root, split), sample_rate=spec.sample_rate, seconds=spec.clip_seconds,
                                   image_size=d.image_size, video_backend=d.video_backend or None,
                                   device_transforms=d.device_transforms)

    def device_transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """With ``data.device_transforms``: the frames of training pairs and evaluation clips (uint8) jittered,
        flipped and normalised on the device, int16 audio of int16 shards made float32 there
        (:func:`~avcorr.tasks.avc.device_pairs`); boxes and ids pass untouched. Other batches pass unchanged."""
        return device_pairs(batch)

    def new_evaluator(self) -> LocalizationEvaluator:
        return LocalizationEvaluator()

    def tensorboard_media(self, pictures: dict[str, Any]) -> list[tuple[str, str, Any]]:
        return localization_media(pictures.get("samples", []))
