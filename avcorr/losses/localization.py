"""Losses of the sound-localization models.

* :class:`ContrastiveLocalizationLoss` - EZ-VSL's multiple-instance InfoNCE (Mo & Morgado, ECCV
  2022; LVS, Chen et al. CVPR 2021, is the same idea with hard-negative tri-maps): the score of an
  (audio, frame) pair is the **maximum over the frame's grid cells** of the cosine similarity of the
  cell and the audio embedding, and every other frame (audio) of the batch is a negative. It is an
  ``nn.Module`` that gathers the features of all DDP processes itself (open_clip's ``ClipLoss``
  pattern), so the trainer needs to know nothing about it.
* :class:`MILLogisticLoss` - AVOL-Net's loss (Arandjelovic & Zisserman, "Objects that Sound",
  ECCV 2018): logistic loss on the maximum over cells of the calibrated correspondence logits.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["ContrastiveLocalizationLoss", "MILLogisticLoss", "gather_features", "max_cell_similarity"]


def max_cell_similarity(visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Max over grid cells of the dot product of every visual cell map with every audio embedding.

    Args:
        visual: float (N, D, h, w) cell embeddings of N frames.
        audio: float (M, D) embeddings of M audio windows.

    Returns:
        float (N, M): ``out[n, m] = max_{y, x} <visual[n, :, y, x], audio[m]>``.
    """
    if visual.dim() != 4 or audio.dim() != 2 or visual.shape[1] != audio.shape[1]:
        raise ValueError(f"expected visual (N, D, h, w) and audio (M, D), got {tuple(visual.shape)} and "
                         f"{tuple(audio.shape)}")
    sim = torch.einsum("ndhw,md->nmhw", visual, audio)
    return sim.flatten(2).amax(dim=-1)


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums every process's gradient for the local slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.world_size = dist.get_rank(), dist.get_world_size()
        parts = [torch.zeros_like(x) for _ in range(ctx.world_size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over processes, then keep this process's rows
        return grad.chunk(ctx.world_size, 0)[ctx.rank]


def gather_features(visual: torch.Tensor, audio: torch.Tensor, *, local_loss: bool = False,
                    gather_with_grad: bool = False, rank: int = 0,
                    world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All processes' features, concatenated in rank order.

    Without ``gather_with_grad`` the gathered copies carry no gradient; unless ``local_loss``, this
    process's own slice is put back so that the gradient flows through the local features (each
    process then computes the full-batch loss, and DDP's gradient averaging adds the pieces up).
    With ``gather_with_grad`` the gather itself is differentiable (its backward sums the
    gradients of all processes for the local slice).

    Args:
        visual: float (B, D, h, w) local cell embeddings.
        audio: float (B, D) local audio embeddings.
        local_loss: the caller only uses the local rows (no need to put the local slice back).
        gather_with_grad: differentiable all-gather.
        rank: this process's rank.
        world_size: number of processes.

    Returns:
        ``(all_visual (world_size * B, D, h, w), all_audio (world_size * B, D))``.
    """
    if world_size == 1:
        return visual, audio
    if gather_with_grad:
        return _AllGatherWithGrad.apply(visual), _AllGatherWithGrad.apply(audio)
    vs = [torch.zeros_like(visual) for _ in range(world_size)]
    as_ = [torch.zeros_like(audio) for _ in range(world_size)]
    dist.all_gather(vs, visual.contiguous())
    dist.all_gather(as_, audio.contiguous())
    if not local_loss:
        vs[rank], as_[rank] = visual, audio
    return torch.cat(vs, 0), torch.cat(as_, 0)


class ContrastiveLocalizationLoss(nn.Module):
    """Symmetric multiple-instance InfoNCE over the batch (EZ-VSL), gathered across DDP processes.

    For visual cells ``v_n`` (L2-normalised per cell) and audio embeddings ``a_m`` (L2-normalised),
    ``s[n, m] = max_cells <v_n, a_m>`` and with ``logits = logit_scale * s``::

        loss = (CE(logits, diag) + CE(logits.T, diag)) / 2

    i.e. frame -> audio and audio -> frame cross-entropy with the matching pair as the class. The
    positive is max-pooled over cells (the sounding object wins), negatives are all other pairs.
    EZ-VSL sums the two directions; the mean is used here (as open_clip), which only halves the
    scale. ``logit_scale = 1 / tau``; EZ-VSL uses tau = 0.03.

    Under ``torch.distributed`` the features of all processes are gathered inside the loss
    (open_clip ``ClipLoss`` semantics): by default every process computes the full global loss with
    gradients through its own slice; ``local_loss=True`` computes only the rows of the local
    anchors against all gathered candidates (cheaper: B x (world_size * B) instead of the square);
    ``gather_with_grad=True`` differentiates through the gather. In eval mode (``.eval()``) nothing
    is gathered: the loss is that of the local batch (validation runs on the main process alone).

    Args:
        local_loss: only the local anchors' rows (see above).
        gather_with_grad: differentiable all-gather.
    """

    def __init__(self, local_loss: bool = False, gather_with_grad: bool = False, soft_targets: float = 0.0):
        super().__init__()
        if not 0.0 <= soft_targets < 1.0:
            raise ValueError(f"soft_targets must be in [0, 1), got {soft_targets}")
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad
        self.soft_targets = soft_targets

    def _targets(self, audio_rows: torch.Tensor, audio_cols: torch.Tensor, logit_scale: torch.Tensor | float,
                 labels: torch.Tensor) -> torch.Tensor:
        """One-hot targets, or with ``soft_targets`` = s: ``(1 - s) * onehot + s * softmax(a_i . a_j / tau)``.

        The soft part spreads the target of pair ``i`` over the candidates whose AUDIO sounds like
        pair ``i``'s (the within-modality similarity, no gradient): clips of the same kind of sound
        stop being pushed apart as negatives (the "faulty negatives" of audio-visual instance
        discrimination, Morgado et al., CVPR 2021, who soften the targets the same way).
        """
        onehot = F.one_hot(labels, audio_cols.shape[0]).float()
        if not self.soft_targets:
            return onehot
        with torch.no_grad():
            soft = (logit_scale * audio_rows @ audio_cols.t()).softmax(dim=-1)
        return (1 - self.soft_targets) * onehot + self.soft_targets * soft

    def forward(self, visual: torch.Tensor, audio: torch.Tensor,
                logit_scale: torch.Tensor | float) -> torch.Tensor:
        """Args:
            visual: float (B, D, h, w) per-cell embeddings of the local frames, L2-normalised over D.
            audio: float (B, D) embeddings of the local audio windows (pair ``i`` = row ``i``).
            logit_scale: scalar, ``1 / temperature``.

        Returns:
            scalar loss.
        """
        if visual.shape[0] != audio.shape[0]:
            raise ValueError(f"{visual.shape[0]} frames but {audio.shape[0]} audio windows")
        # gather only in training mode: evaluation runs on one process while the others wait
        distributed = self.training and dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if world_size > 1 else 0
        b = visual.shape[0]
        visual, audio = visual.float(), audio.float()
        all_v, all_a = gather_features(visual, audio, local_loss=self.local_loss,
                                       gather_with_grad=self.gather_with_grad, rank=rank, world_size=world_size)
        if self.local_loss and world_size > 1:
            labels = torch.arange(b, device=visual.device) + b * rank
            v2a = logit_scale * max_cell_similarity(visual, all_a)  # (B, W*B): local frames vs all audio
            a2v = logit_scale * max_cell_similarity(all_v, audio).t()  # (B, W*B): local audio vs all frames
            targets = self._targets(audio.detach(), all_a.detach(), logit_scale, labels)
        else:  # the whole (W*B, W*B) matrix; gradients reach this process's slice only (unless gathered with grad)
            labels = torch.arange(all_v.shape[0], device=visual.device)
            v2a = logit_scale * max_cell_similarity(all_v, all_a)
            a2v = v2a.t()
            targets = self._targets(all_a.detach(), all_a.detach(), logit_scale, labels)
        if not self.soft_targets:
            return (F.cross_entropy(v2a, labels) + F.cross_entropy(a2v, labels)) / 2
        return (F.cross_entropy(v2a, targets) + F.cross_entropy(a2v, targets)) / 2


class MILLogisticLoss(nn.Module):
    """AVOL-Net's loss: binary cross-entropy of the max-pooled calibrated cell logits.

    ``sigmoid`` is monotonic, so ``max_cells sigmoid(z) = sigmoid(max_cells z)``: the loss is
    computed from the max logit with ``binary_cross_entropy_with_logits`` (numerically stable).

    Args:
        pos_weight: weight of the positive term (1 = plain logistic loss).
    """

    def __init__(self, pos_weight: float = 1.0):
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, cell_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Args:
            cell_logits: float (B, h, w) calibrated logits of each cell (before the sigmoid).
            labels: (B,) 1 = the audio belongs to the frame, 0 = it does not.

        Returns:
            scalar loss (mean over the batch).
        """
        if cell_logits.dim() != 3 or labels.shape != cell_logits.shape[:1]:
            raise ValueError(f"expected cell logits (B, h, w) and labels (B,), got {tuple(cell_logits.shape)} "
                             f"and {tuple(labels.shape)}")
        z = cell_logits.float().flatten(1).amax(dim=1)
        weight = None
        if self.pos_weight != 1.0:
            weight = torch.where(labels > 0, torch.full_like(z, self.pos_weight), torch.ones_like(z))
        return F.binary_cross_entropy_with_logits(z, labels.float(), weight=weight)
