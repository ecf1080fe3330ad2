"""Mix-and-separate training and evaluation (Sound of Pixels, Zhao et al., ECCV 2018).

Training: the N sources of a batch are mixed, the mixture's STFT magnitude is warped to log-frequency
bins, and the model predicts one mask per source from it and the source's frames. Targets are computed
AFTER the warp, as in the public code: binary masks ``|S_n| > 0.5 |X|`` with BCE, or ratio masks
``|S_n| / |X|`` clamped to [0, 5] with L1 on the sigmoid output; both weighted by
``clamp(log1p(|X|), 1e-3, 10)`` when ``separation.weighted_loss`` (the paper's setting). Spectrogram frames
where every source is zero padding (clips shorter than the window) carry no loss.

With ``separation.correspondence_weight`` = w > 0 (not in the paper; the model needs
``model.kwargs={'correspondence_dim': D}``) training adds w times a multiple-instance InfoNCE between each
source's own sound (:class:`~avcorr.models.sop.SourceAudioEncoder` on its warped log magnitude) and the cells
of its frames (:meth:`~avcorr.models.sop.SoundOfPixels.correspondence_cells`): a source is scored by its
best cell, every other source of the batch is a negative
(:class:`~avcorr.losses.ContrastiveLocalizationLoss`, EZ-VSL's objective). The frame net then learns which
object sounds from each source directly, where the masks alone give it a signal only once the sound net
already tells classes apart.

With ``data.storage="shards"`` the mixtures are drawn inside a stream of shards
(:class:`~avcorr.data.separation_stream.SeparationShardStream`), with the same batches.

Evaluation: masks are un-warped, binary masks thresholded at 0.5, multiplied by the mixture
magnitude and inverted with the mixture phase (torch iSTFT); SDR / SIR / SAR (BSS Eval, see
:mod:`avcorr.metrics.separation`) are averaged over the sources of a mixture, then over mixtures;
``nsdr`` is the SDR gain over using the mixture itself as every estimate, so its baseline
``baseline/nsdr`` is 0 dB. The masks as applied are summarised over all mixtures in ``mask_mean``,
``mask_on_fraction`` and ``mask_difference`` (:func:`~avcorr.metrics.separation.mask_statistics`); an
evaluation whose masks are trivial (all-pass, all-off, the same for every source) or whose ``nsdr``
is below 0 logs a warning saying so (:func:`~avcorr.metrics.separation.separation_warnings`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.layout import load_split
from ..data.separation import SeparationDataset, collate_mixtures
from ..data.separation_stream import SeparationShardStream
from ..data.transforms import device_frames
from ..losses import ContrastiveLocalizationLoss
from ..metrics.separation import mask_statistics, separation_scores, separation_warnings
from ..models import create_model
from ..models.sop_audio import SpectrogramSettings, apply_masks, stft, warp
from .base import Evaluator, Task, finish_on_device

logger = logging.getLogger(__name__)

__all__ = ["SeparationEvaluator", "SeparationModule", "SeparationTask"]

MASKS = ("binary", "ratio")


class SeparationModule(nn.Module):
    """``batch -> {'loss', 'masks'}`` for a Sound-of-Pixels model.

    Args:
        model: returns ``{'masks': (B, N, F, T) logits}`` from ``(mixture magnitude (B, 1, F, T), frames)``.
        settings: STFT and warp sizes.
        mask: ``"binary"`` or ``"ratio"``.
        weighted_loss: weight the loss by ``clamp(log1p(|X|), 1e-3, 10)``.
        correspondence_weight: weight of the sources' correspondence InfoNCE (0 = the paper's objective alone;
            > 0 needs a model with ``encode_source_audio`` / ``correspondence_cells``).
        temperature: that InfoNCE's temperature.
    """

    def __init__(self, model: nn.Module, settings: SpectrogramSettings, mask: str = "binary",
                 weighted_loss: bool = True, correspondence_weight: float = 0.0, temperature: float = 0.07):
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        if correspondence_weight > 0 and getattr(model, "correspondence_dim", 0) <= 0:
            raise ValueError(f"separation.correspondence_weight={correspondence_weight} needs a model with a "
                             f"correspondence head: set model.kwargs={{'correspondence_dim': 32}} "
                             f"({type(model).__name__} has none)")
        if temperature <= 0:
            raise ValueError(f"separation.correspondence_temperature must be > 0, got {temperature}")
        self.model, self.settings, self.mask, self.weighted_loss = model, settings, mask, weighted_loss
        self.correspondence_weight, self.temperature = float(correspondence_weight), float(temperature)
        self.infonce = ContrastiveLocalizationLoss()

    def targets(self, audios: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Spectrograms, mask targets and loss weights of a batch of sources (float32, no autocast).

        Args:
            audios: float (B, N, L) sources as mixed.
            lengths: int (B, N) real samples per source (None = all real).

        Returns:
            dict: ``mix_spec`` complex (B, n_bins, T), ``mix_mag`` float (B, 1, F', T) warped mixture
            magnitude (+1e-10), ``gt`` float (B, N, F', T) mask targets, ``weight`` float (B, 1, F', T)
            (zero on padding-only frames), ``source_mag`` float (B, N, F', T) each source's warped magnitude.
        """
        with torch.autocast(audios.device.type, enabled=False):
            return self._targets(audios.float(), lengths)

    def _targets(self, audios: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
        s = self.settings
        mix_spec = stft(audios.sum(1), s)
        mix_mag = warp(mix_spec.abs().unsqueeze(1) + 1e-10, s.warp_bins)
        mags = warp(stft(audios, s).abs(), s.warp_bins)
        if self.mask == "binary":
            gt = (mags > 0.5 * mix_mag).float()
        else:
            gt = (mags / mix_mag).clamp(0.0, 5.0)
        weight = torch.log1p(mix_mag).clamp(1e-3, 10.0) if self.weighted_loss else torch.ones_like(mix_mag)
        if lengths is not None:
            t = mix_mag.shape[-1]
            frame_start = torch.arange(t, device=audios.device) * s.hop_length - s.n_fft // 2
            real = lengths.max(dim=1).values.to(audios.device)
            weight = weight * (frame_start[None, :] < real[:, None]).float()[:, None, None, :]
        return {"mix_spec": mix_spec, "mix_mag": mix_mag, "gt": gt, "weight": weight, "source_mag": mags}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        tg = self.targets(batch["audios"], batch.get("lengths"))
        out = self.model(tg["mix_mag"], batch["frames"])
        logits = out["masks"].float()
        gt, weight = tg["gt"], tg["weight"].expand_as(logits)
        if self.mask == "binary":
            per_bin = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
        else:
            per_bin = (torch.sigmoid(logits) - gt).abs()
        count = (weight > 0).sum().clamp_min(1)
        loss = (per_bin * weight).sum() / count
        result = {"loss": loss, "masks": torch.sigmoid(logits).detach()}
        if self.training and self.correspondence_weight > 0:
            av = self.correspondence_loss(tg["source_mag"], out["visual_map"])
            result.update(loss=loss + self.correspondence_weight * av, mask_loss=loss.detach(),
                          correspondence_loss=av.detach())
        if not self.training:
            result["mix_spec"] = tg["mix_spec"]
        return result


    def correspondence_loss(self, source_mag: torch.Tensor, visual_map: torch.Tensor) -> torch.Tensor:
        """The sources' multiple-instance InfoNCE (see the module docstring).

        Args:
            source_mag: float (B, N, F', T) each source's warped magnitude.
            visual_map: float (B, N, K, h, w) the frame net's map of each source's frames.

        Returns:
            scalar loss over the B * N sources of the batch.
        """
        audio = self.model.encode_source_audio(source_mag.flatten(0, 1).unsqueeze(1) + 1e-10).float()
        cells = self.model.correspondence_cells(visual_map.flatten(0, 1)).float()
        return self.infonce(cells, audio, 1.0 / self.temperature)


class SeparationEvaluator(Evaluator):
    """SDR / SIR / SAR / NSDR over an evaluation pass (see the module docstring).

    Args:
        settings: STFT and warp sizes.
        mask: ``"binary"`` (threshold the un-warped masks) or ``"ratio"`` (use them as they are).
        threshold: binary mask threshold (0.5 in the paper).
        backend: BSS Eval implementation, see :func:`avcorr.metrics.separation.bss_eval`.
    """

    def __init__(self, settings: SpectrogramSettings, mask: str = "binary", threshold: float = 0.5,
                 backend: str = "auto"):
        self.settings, self.mask, self.threshold, self.backend = settings, mask, threshold, backend
        self.scores: dict[str, list[np.ndarray]] = {k: [] for k in ("sdr", "sir", "sar", "sdr_mix", "nsdr")}
        self.mask_stats: dict[str, list[np.ndarray]] = {k: [] for k in ("mean", "on_fraction", "difference")}
        self.num_mixtures = self.num_skipped = self.num_silent_estimates = 0
        self.loss_sum = 0.0
        self.sample: dict[str, np.ndarray] | None = None  # the first mixture, for TensorBoard

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        audios = batch["audios"].float()
        b, n, length = audios.shape
        if "mix_spec" in out:
            mix_spec = out["mix_spec"]
        else:
            mix_spec = stft(audios.sum(1).to(out["masks"].device), self.settings)
        est, applied = apply_masks(out["masks"], mix_spec, self.settings, length,
                                   threshold=self.threshold if self.mask == "binary" else None)
        for key, vals in mask_statistics(applied).items():
            self.mask_stats[key].append(vals)
        ref = audios.cpu().numpy()
        est = est.cpu().numpy()
        if self.sample is None and b:
            self.sample = {"mixture": ref[0].sum(0), "estimates": est[0], "sources": ref[0],
                           "masks": out["masks"][0].float().cpu().numpy()}
        lengths = batch["lengths"].max(dim=1).values.cpu().numpy() if "lengths" in batch else np.full(b, length)
        for i in range(b):  # one mixture at a time: each is scored on its own real (unpadded) length
            k = int(lengths[i])
            res = separation_scores(ref[i, :, :k], est[i, :, :k], ref[i, :, :k].sum(0), backend=self.backend)
            if not res["valid"][0]:
                self.num_skipped += 1
                logger.debug("mixture of %s skipped: a silent reference", batch.get("vid", [["?"]] * b)[i])
                continue
            for key in self.scores:
                self.scores[key].append(res[key])
            self.num_silent_estimates += res["num_silent_estimates"]
        self.num_mixtures += b
        self.loss_sum += float(out["loss"]) * b

    def merge(self, other: "SeparationEvaluator") -> None:
        """Add the mixtures ``other`` scored (another rank's share of the split); the pictured mixture is this
        evaluator's first one, else ``other``'s."""
        for key, vals in other.scores.items():
            self.scores[key] += vals
        for key, vals in other.mask_stats.items():
            self.mask_stats[key] += vals
        self.num_mixtures += other.num_mixtures
        self.num_skipped += other.num_skipped
        self.num_silent_estimates += other.num_silent_estimates
        self.loss_sum += other.loss_sum
        self.sample = self.sample if self.sample is not None else other.sample

    def pictures(self) -> dict[str, Any]:
        """The first mixture: its audio, the estimates, the true sources and the predicted masks."""
        return {"sample": self.sample} if self.sample is not None else {}

    def compute(self) -> dict[str, float]:
        result: dict[str, Any] = {}
        for key, vals in self.scores.items():  # sar is NaN for a mixture whose estimates were all silent
            all_vals = np.concatenate(vals) if vals else np.zeros(0)
            finite = all_vals[~np.isnan(all_vals)]
            result[key] = float(finite.mean()) if finite.size else float("nan")
        if not self.scores["sdr"]:
            logger.warning("no scoreable mixture in this evaluation (%d skipped for a silent reference)",
                           self.num_skipped)
        result["baseline/nsdr"] = 0.0  # the mixture itself as every estimate
        for key, vals in self.mask_stats.items():
            all_vals = np.concatenate(vals) if vals else np.zeros(0)
            result[f"mask_{key}"] = float(np.nanmean(all_vals)) if np.isfinite(all_vals).any() else float("nan")
        result.update(loss=self.loss_sum / max(1, self.num_mixtures), num_mixtures=self.num_mixtures,
                      num_skipped_silent=self.num_skipped, num_silent_estimates=self.num_silent_estimates)
        for sentence in separation_warnings(result):
            logger.warning("separation: %s", sentence)
        return result


def device_source_frames(frames: torch.Tensor, jitter: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`~avcorr.data.transforms.device_frames` on the frames of a batch of mixtures: each source's jitter
    and flip go to all of its frames.

    Args:
        frames: uint8 (B, N, 3, Tf, S, S).
        jitter: float (B, N, 3) brightness, saturation, flip per source; None = none.

    Returns:
        float32 (B, N, 3, Tf, S, S), ImageNet-normalised, contiguous, on ``frames``' device.
    """
    if frames.dim() != 6:
        raise ValueError(f"expected uint8 (B, N, 3, Tf, S, S) frames, got {tuple(frames.shape)}")
    b, n, c, t, h, w = frames.shape
    flat = frames.transpose(2, 3).reshape(b * n * t, c, h, w)
    if jitter is not None:
        jitter = jitter.reshape(b * n, -1).repeat_interleave(t, dim=0)
    return device_frames(flat, jitter).view(b, n, t, c, h, w).transpose(2, 3).contiguous()


class SeparationTask(Task):
    """Sound-of-Pixels mixtures, model and metrics from the config (``task="separation"``).

    Uses ``data.audio.{sample_rate, seconds, n_fft, win_length, hop_length, gain_jitter}``,
    ``data.image_size`` and the ``separation`` section (``num_mix``, ``frames_per_clip``,
    ``frame_stride``, ``warp_bins``, ``mask``, ``weighted_loss``, ``train_mixtures_per_clip``,
    ``eval_mixtures_per_clip``).
    """

    main_metric = "nsdr"
    higher_is_better = True
    baseline_name, metric_unit = "the mixture itself", "dB"  # nsdr: above the mixture by more than 0.5 dB
    collate_fn = staticmethod(collate_mixtures)

    @property
    def settings(self) -> SpectrogramSettings:
        a = self.cfg.data.audio
        return SpectrogramSettings(n_fft=a.n_fft, hop_length=a.hop_length, win_length=a.win_length,
                                   warp_bins=self.cfg.separation.warp_bins)

    @property
    def num_samples(self) -> int:
        """Window length in samples: ``round(data.audio.seconds * data.audio.sample_rate)``."""
        a = self.cfg.data.audio
        return int(round(a.seconds * a.sample_rate))

    def create_model(self) -> nn.Module:
        m = self.cfg.model
        return create_model(m.name, checkpoint_path=m.checkpoint_path or None, width=m.width, **m.kwargs)

    def wrap(self, model: nn.Module) -> SeparationModule:
        s = self.cfg.separation
        return SeparationModule(model, self.settings, s.mask, s.weighted_loss, s.correspondence_weight,
                                s.correspondence_temperature)

    def build_dataset(self, split: str, train: bool) -> SeparationDataset | SeparationShardStream:
        """The split's mixtures: per-sample from the clip files, or drawn in a stream of shards (``data.storage``)."""
        d, s = self.cfg.data, self.cfg.separation
        self.frame_spec()  # the model takes frames as the pipeline normalises them
        common = dict(num_mix=s.num_mix, sample_rate=d.audio.sample_rate, num_samples=self.num_samples,
                      frames_per_clip=s.frames_per_clip, frame_stride=s.frame_stride, image_size=d.image_size,
                      train=train, augment=d.augment,
                      mixes_per_clip=s.train_mixtures_per_clip if train else s.eval_mixtures_per_clip,
                      gain_jitter=d.audio.gain_jitter if train else 0.0, seed=self.cfg.train.seed,
                      device_transforms=d.device_transforms)
        if d.storage == "shards":
            return SeparationShardStream(self.shard_folder(split), **self.stream_options(train), **common)
        return SeparationDataset(load_split(d.root, split), **self.files_options(), **common)

    def device_transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """With ``data.device_transforms``: uint8 ``frames`` (B, N, 3, Tf, S, S) jittered, flipped (one
        ``frames_jitter`` per source for its Tf frames) and normalised on the device (float32, same shape), and
        int16 ``audios`` (B, N, L) of int16 shards scaled by ``audio_gain`` (B, N) into float32 there
        (:func:`~avcorr.data.transforms.device_audio`); ``frames_jitter`` and ``audio_gain`` are dropped.
        Other batches pass unchanged (:func:`~avcorr.tasks.base.finish_on_device`)."""
        return finish_on_device(batch, "frames", "audios", device_source_frames)

    def new_evaluator(self) -> SeparationEvaluator:
        return SeparationEvaluator(self.settings, self.cfg.separation.mask)

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """Trivial masks and ``nsdr < 0`` (:func:`~avcorr.metrics.separation.separation_warnings`)."""
        return separation_warnings(metrics)

    def tensorboard_media(self, pictures: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """The first validation mixture to listen to (mixture, each estimate beside its true source) and each
        predicted mask as a picture on the fixed 0..1 scale with a colour bar (low frequencies at the bottom)."""
        sample = pictures.get("sample")
        if sample is None:
            return []
        from ..viz.heatmap import colorize, with_colorbar

        rate = self.cfg.data.audio.sample_rate
        media: list[tuple[str, str, Any]] = [("sound", "separation/mixture", (sample["mixture"], rate))]
        for k in range(sample["estimates"].shape[0]):
            media.append(("sound", f"separation/estimate_{k}", (sample["estimates"][k], rate)))
            media.append(("sound", f"separation/source_{k}", (sample["sources"][k], rate)))
            mask = np.clip(np.asarray(sample["masks"][k], dtype=np.float32), 0.0, 1.0)[::-1]  # low bins at the bottom
            picture = np.repeat(np.repeat(colorize(mask), 2, axis=0), 2, axis=1)
            media.append(("picture", f"separation/mask_{k}", with_colorbar(picture, (0.0, 1.0), label="mask")))
        return media
