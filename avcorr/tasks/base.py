"""What avcorr's task families share on top of the engine's contract (:mod:`avcorr.engine.protocol`).

:class:`Task` adds the config, the baseline test of the main metric (failure made visible) and
the batch size of the families' batches; :class:`Evaluator` is the engine's. :func:`argmax_hits`
scores classifier logits, for the families' :meth:`~avcorr.engine.protocol.Task.train_metrics`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from torch import nn

from ..config import Config
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, device_audio
from ..engine.protocol import Batch, Evaluator
from ..engine.protocol import Task as TaskProtocol
from ..metrics.chance import ChanceTest, db_test, proportion_test
from ..models.input_spec import InputSpec

__all__ = ["Evaluator", "Task", "argmax_hits", "finish_on_device"]


def argmax_hits(logits: torch.Tensor | None, labels: torch.Tensor | None) -> tuple[int, int] | None:
    """Correct argmax predictions of a classifier: ``(correct, judged)``, or None when nothing is judged.

    Args:
        logits: (B, C) scores, or anything else (None, a mixture's output with no logits) to judge nothing.
        labels: (B,) class indices.
    """
    if logits is None or labels is None or logits.dim() != 2:
        return None
    return int((logits.argmax(-1) == labels).sum()), int(labels.shape[0])


def finish_on_device(batch: Batch, frames: str, audio: str,
                     device_frames: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]) -> Batch:
    """What the families' ``device_transform`` does with ``data.device_transforms``: finish the uint8 frames
    and the int16 audio of a batch on its device.

    uint8 ``batch[frames]`` goes through ``device_frames`` with its ``<frames>_jitter`` (when the batch has
    one) and becomes float32; int16 ``batch[audio]`` becomes float32 times its ``audio_gain``
    (:func:`~avcorr.data.transforms.device_audio`). The jitter and the gain are dropped; a batch with neither
    uint8 frames nor int16 audio is returned as it is.

    Args:
        batch: a collated batch, its tensors on the device.
        frames: the key of its frames.
        audio: the key of its waveforms (T last; one gain per waveform).
        device_frames: ``(uint8 frames, jitter or None) -> float32 frames`` of the family's layout.

    Returns:
        The batch the module gets.
    """
    jitter = f"{frames}_jitter"
    uint8 = frames in batch and batch[frames].dtype == torch.uint8
    pcm16 = audio in batch and batch[audio].dtype == torch.int16
    if not (uint8 or pcm16):
        return batch
    out = {k: v for k, v in batch.items() if k not in (jitter, "audio_gain")}
    if uint8:
        out[frames] = device_frames(batch[frames], batch.get(jitter))
    if pcm16:
        out[audio] = device_audio(batch[audio], batch.get("audio_gain"))
    return out


class Task(TaskProtocol):
    """Base class of avcorr's task families: builds the pieces of one family from a :class:`Config`.

    ``Task(cfg, resolved)``: ``resolved`` is what an earlier run of the task resolved from its data
    (:attr:`resolved`, stored in its checkpoints); families that resolve nothing ignore it.

    Attributes:
        main_metric: the validation metric that selects ``best.pt``.
        higher_is_better: direction of ``main_metric``.
        baseline_name: how sentences name the baseline of ``main_metric`` (``"chance"``, ``"the
            centre prior"`` ...); its value is the evaluation's :meth:`baseline_key` entry.
        count_key: the evaluation's entry counting the items ``main_metric`` is a proportion of.
        count_unit: what ``count_key`` counts, for sentences.
        metric_unit: ``"dB"`` for a decibel ``main_metric`` (tested with the dB margin), else ``""``.
    """

    baseline_name: str = "chance"
    count_key: str | None = None
    count_unit: str = "items"
    metric_unit: str = ""

    def __init__(self, cfg: Config, resolved: dict[str, Any] | None = None):
        self.cfg = cfg
        self._pending_model: nn.Module | None = None
        self._input_spec: InputSpec | None = None

    # -- where a split's clips come from (data.storage) ---------------------------------------------
    def shard_folder(self, split: str) -> str:
        """``data.root/<split>``: the split's shard folder (local or a URL) for ``data.storage="shards"``."""
        return f"{self.cfg.data.root.rstrip('/')}/{split}"

    def stream_options(self, train: bool) -> dict[str, Any]:
        """How a shard stream of this run reads: its shuffle buffer and batch size; an evaluation stream reads
        every shard, whatever the DDP rank (rank 0 of 1), until the trainer splits it across the ranks
        (:meth:`~avcorr.data._shard_stream.ClipShardStream.split_across_ranks`)."""
        eval_only = {} if train else {"rank": 0, "world_size": 1}
        return {"shuffle": self.cfg.data.shuffle_buffer, "batch_size": self.cfg.train.batch_size, **eval_only}

    def files_options(self) -> dict[str, Any]:
        """How a per-sample dataset of this run decodes: the video backend and the bad-clip tolerance."""
        d = self.cfg.data
        return {"video_backend": d.video_backend or None, "max_bad_retries": d.max_bad_retries}

    # -- the model and its input contract -----------------------------------------------------
    def create_model(self) -> nn.Module:
        """A new model of the family as configured (what :meth:`build_model` hands out)."""
        raise NotImplementedError

    def input_spec(self) -> InputSpec:
        """What the model takes (``model.input_spec``): the datasets ask for it, never the config.

        The first call builds the model; :meth:`build_model` then hands out that same model.

        Raises:
            ValueError: the model has no ``input_spec``.
        """
        if self._input_spec is None:
            self._pending_model = self.create_model()
            self._input_spec = _spec_of(self._pending_model, self.cfg.model.name)
        return self._input_spec

    def build_model(self) -> nn.Module:
        model = self._pending_model if self._pending_model is not None else self.create_model()
        self._pending_model = None  # the task keeps no reference to the model it handed out
        return model

    def frame_spec(self) -> InputSpec:
        """:meth:`input_spec`, checked to take frames normalised as the data pipeline does (ImageNet).

        Raises:
            ValueError: the model asks for another frame normalisation.
        """
        spec = self.input_spec()
        if (spec.mean, spec.std) != (IMAGENET_MEAN, IMAGENET_STD):
            raise ValueError(f"model {self.cfg.model.name!r} takes frames normalised with mean {spec.mean} and std "
                             f"{spec.std}; the frame pipeline normalises with ImageNet's {IMAGENET_MEAN} / {IMAGENET_STD}")
        return spec

    def batch_size(self, batch: Batch) -> int:
        """The examples of a batch: the length of its ``label`` (every family's batches have one), else 1."""
        return batch["label"].shape[0] if "label" in batch else 1

    # -- failure made visible ------------------------------------------------------------------
    def baseline_key(self, metric: str) -> str:
        """The evaluation's entry holding the baseline of ``metric`` (default ``baseline/<metric>``)."""
        return f"baseline/{metric}"

    def chance_test(self, metrics: dict[str, Any]) -> ChanceTest | None:
        """``main_metric`` of an evaluation against its baseline; None when it has none (e.g. ``loss``).

        Args:
            metrics: an evaluator's :meth:`Evaluator.compute` result.
        """
        metric = self.main_metric
        value, base = metrics.get(metric), metrics.get(self.baseline_key(metric))
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (value, base)):
            return None
        if self.metric_unit == "dB":
            return db_test(metric, value, base, baseline_name=self.baseline_name)
        count = metrics.get(self.count_key) if self.count_key else None
        if not isinstance(count, int) or count < 1:
            return None
        return proportion_test(metric, value, base, count, baseline_name=self.baseline_name,
                               count_unit=self.count_unit)


def _spec_of(model: nn.Module, name: str) -> InputSpec:
    """``model.input_spec``; for a model registered without one, what its tagging interface says
    (integer ``sample_rate`` and ``clip_samples``, or ``input_dim`` for an embedding model)."""
    spec = getattr(model, "input_spec", None)
    if spec is None and isinstance(getattr(model, "input_dim", None), int):
        spec = InputSpec(input_dim=model.input_dim)
    elif spec is None and all(isinstance(getattr(model, a, None), int) for a in ("sample_rate", "clip_samples")):
        spec = InputSpec.wave(model.sample_rate, clip_samples=model.clip_samples,
                              min_samples=int(getattr(model, "min_samples", 1)))
    if not isinstance(spec, InputSpec):
        raise ValueError(f"model {name!r} ({type(model).__name__}) has no input_spec (an avcorr.models.InputSpec "
                         f"saying what it takes); the task reads its sample rate and clip length from it")
    return spec
