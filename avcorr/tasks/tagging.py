"""Supervised audio tagging (PANNs, AST and any registered model with the tagging interface).

A tagging model takes mono waveforms (B, T) at ``model.sample_rate`` and returns ``{'logits': (B, C),
'embedding': (B, D)}``; ``model.clip_samples`` is its clip length. This task trains one from
``cfg.data`` and its own section ``cfg.tagging`` (see :mod:`avcorr.data.tagging` for the four data formats):

* **labels**: ``tagging.label_mode`` ``"multi"`` (sigmoid outputs, binary cross-entropy on each class,
  as PANNs and AST train on AudioSet) or ``"single"`` (softmax outputs, cross-entropy; one label
  per clip, e.g. the AGS experiments or a folder per class). ``"auto"`` picks ``"multi"`` when a
  clip of the training or validation data has two or more labels. The resolved mode and the class
  names are the task's :attr:`TaggingTask.resolved` facts, stored beside the config in every
  checkpoint (``checkpoint["resolved"]``) and in the run's ``resolved.json`` (``avcorr.recognize``
  needs nothing else); the config keeps what was asked.
* **augmentation**: ``tagging.mixup_alpha > 0`` mixes consecutive pairs of the batch as PANNs does
  (``lambda ~ Beta(alpha, alpha)``; the model mixes its features after SpecAugment, the targets
  are mixed with the same coefficients, so a batch of 2N clips trains on N mixtures). SpecAugment
  is part of the models (PANNs: ``model.kwargs.spec_augment``, on by default; AST:
  ``model.kwargs.freqm`` / ``timem``) and is active in training mode only.
* **sampling**: ``tagging.sampler`` ``"random"``, ``"balanced"`` (PANNs) or ``"weighted"`` (AST, from
  ``tagging.weight_file`` or computed with the same formula).
* **input**: the datasets ask the model what it takes (:attr:`~avcorr.models.InputSpec`: sample rate,
  clip length), so the model is built first.

**Embedding heads** (``tagging.format="embeddings"``): models with ``input_kind == "embedding"`` (the
AudioSet attention taggers, :mod:`avcorr.models.audioset_attention`) train on HDF5 embedding packs
(:mod:`avcorr.data.embedding_pack`; ``data.*_split`` name pack files, several comma-separated);
batches carry ``embeddings`` (B, T, D) instead of ``wave``. Such a model needs that format and a
waveform model needs the others (a mismatch is an error), and ``tagging.mixup_alpha`` must be 0 (the
reference trains these heads without mixup).

Evaluation reports ``acc``, ``mAP``, ``AUC``, ``d_prime`` (PANNs/AST convention), ``d_prime_hear``
(HEAR convention), ``loss`` and ``num_clips`` (:mod:`avcorr.metrics.tagging`), over scores that are
the logits (multi-label; the sigmoid is monotonic) or the softmax probabilities (single-label), and
the baselines ``baseline/acc`` (always answering the most frequent class) and ``baseline/mAP`` (the
expected mAP of a random ranking, :mod:`avcorr.metrics.chance`). The
main metric is ``mAP`` for multi-label data and ``acc`` for single-label data. Every evaluation
also draws the per-class AP chart ``ap_per_class_<split>.png`` (:meth:`TaggingTask.write_pictures`:
the trainer writes it into the run folder after each validation, ``avcorr.evaluate`` beside the
checkpoint).
"""

from __future__ import annotations

import logging
import math
import re
import typing
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, TaggingConfig
from ..data.errors import BadClipError
from ..data.records import Manifest
from ..data.embedding_pack import EmbeddingPackDataset, EmbeddingPackSource, collate_embeddings, open_embedding_source
from ..data.tagging import (
    BalancedClassSampler,
    TaggingDataset,
    FORMATS,
    WeightedClipSampler,
    collate_tagging,
    label_rarity_weights,
    open_source,
    read_weight_file,
)
from ..metrics.chance import chance_map, majority_rate
from ..metrics.tagging import tagging_metrics
from ..models import create_model
from .base import Evaluator, Task, argmax_hits

logger = logging.getLogger(__name__)

__all__ = ["EMBEDDING_FORMAT", "FORMATS", "TASK_FORMATS", "TaggingEvaluator", "TaggingModule", "TaggingTask",
           "build_tagging_model", "is_embedding_model"]

EMBEDDING_FORMAT = "embeddings"  # HDF5 embedding packs, for models with input_kind == "embedding"
TASK_FORMATS = (*FORMATS, EMBEDDING_FORMAT)
_HINTS = typing.get_type_hints(TaggingConfig)  # the allowed values are the config's Literal types
SAMPLERS: tuple[str, ...] = typing.get_args(_HINTS["sampler"])
LABEL_MODES: tuple[str, ...] = typing.get_args(_HINTS["label_mode"])


def is_embedding_model(model: nn.Module) -> bool:
    """Whether ``model`` tags embedding sequences (``input_kind == "embedding"``) rather than waveforms."""
    return getattr(model, "input_kind", "wave") == "embedding"


def build_tagging_model(cfg: Config, num_classes: int, *, checkpoint_path: str | None = None,
                        window: dict[str, Any] | None = None) -> nn.Module:
    """The registry model of ``cfg.model`` with ``num_classes`` outputs.

    A waveform model needs integer ``sample_rate`` and ``clip_samples``; an embedding model
    (``input_kind == "embedding"``) an integer ``input_dim``. Embedding models go with
    ``tagging.format="embeddings"`` only, waveform models with the other formats.

    Args:
        cfg: the config (``model.name``, ``model.width``, ``model.embed_dim``, ``model.kwargs``, ``tagging.format``).
        num_classes: classifier outputs.
        checkpoint_path: initial weights (a classifier of another size is skipped by the models'
            loaders, so AudioSet checkpoints fine-tune to any class count).
        window: model arguments of a resolved ``tagging.window="auto"`` (see :func:`auto_window`),
            over ``model.kwargs``.

    Raises:
        ValueError: not a tagging model, or a model that does not take the data format's input.
    """
    m = cfg.model
    model = create_model(m.name, checkpoint_path=checkpoint_path or None, num_classes=num_classes,
                         embed_dim=m.embed_dim, width=m.width, **{**m.kwargs, **(window or {})})
    fmt = cfg.tagging.format
    if is_embedding_model(model):
        if not isinstance(getattr(model, "input_dim", None), int):
            raise ValueError(f"model {m.name!r} has input_kind 'embedding' but no integer attribute 'input_dim'")
        if fmt != EMBEDDING_FORMAT:
            raise ValueError(f"model {m.name!r} tags sequences of embeddings, but tagging.format={fmt!r} gives "
                             f"waveforms; use tagging.format={EMBEDDING_FORMAT!r} (HDF5 embedding packs, e.g. made "
                             f"by data_tools/pack_vggish_embeddings.py) or a waveform model (PANNs, AST)")
        return model
    for attr in ("sample_rate", "clip_samples"):
        if not isinstance(getattr(model, attr, None), int):
            raise ValueError(f"model {m.name!r} is not a tagging model: it has no integer attribute {attr!r}")
    if fmt == EMBEDDING_FORMAT:
        raise ValueError(f"tagging.format={EMBEDDING_FORMAT!r} gives embedding sequences, but model {m.name!r} takes "
                         f"waveforms; use an embedding model (audioset_feature_attention, audioset_*) or a "
                         f"waveform format ({', '.join(FORMATS)})")
    return model


class TaggingModule(nn.Module):
    """``batch -> {'loss', 'logits'}``: the tagging loss of a model's logits.

    The model's input is ``batch['embeddings']`` when the batch has it (embedding packs), else
    ``batch['wave']``.

    Args:
        model: a tagging model (``forward(wave or embeddings, mixup_lambda=None) -> {'logits', ...}``).
        multilabel: binary cross-entropy per class (True) or softmax cross-entropy (False).
        mixup_alpha: training only: PANNs mixup with ``Beta(alpha, alpha)``; 0 = off.
    """

    def __init__(self, model: nn.Module, multilabel: bool, mixup_alpha: float = 0.0):
        super().__init__()
        self.model = model
        self.multilabel = multilabel
        self.mixup_alpha = float(mixup_alpha)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: logits float (B, C); target float (B, C) (multi-hot, or mixed).  Returns: scalar."""
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.cross_entropy(logits, target)  # target rows are class probabilities

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        wave, target = batch["embeddings"] if "embeddings" in batch else batch["wave"], batch["target"]
        if wave.shape[0] == 0:  # every clip of an evaluation batch failed to load
            return {"loss": target.new_zeros(()), "logits": target.new_zeros(0, target.shape[-1])}
        if self.training and self.mixup_alpha > 0 and wave.shape[0] >= 2:
            from ..models.tagging_audio import do_mixup, sample_mixup_lambda

            b = wave.shape[0] - wave.shape[0] % 2
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            lam = sample_mixup_lambda(b, self.mixup_alpha, rng).to(wave.device)
            out = self.model(wave[:b], mixup_lambda=lam)
            mixed = do_mixup(target[:b].float(), lam)
            # no 'logits' in the output: its rows are mixtures, not the batch's clips
            return {"loss": self.loss(out["logits"].float(), mixed)}
        out = self.model(wave)
        logits = out["logits"].float()
        return {"loss": self.loss(logits, target.float()), "logits": logits.detach()}


class TaggingEvaluator(Evaluator):
    """Accumulates scores and targets; computes the tagging metrics (and keeps what the AP chart shows).

    Args:
        classes: class names (C).
        multilabel: scores are logits (True) or softmax probabilities (False).
    """

    def __init__(self, classes: list[str], multilabel: bool):
        self.classes, self.multilabel = classes, multilabel
        self.scores: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.loss_sum, self.n = 0.0, 0
        self._per_class: dict[str, Any] = {}

    def update(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> None:
        b = batch["target"].shape[0]
        if b == 0:
            return
        logits = out["logits"].float()
        scores = logits if self.multilabel else logits.softmax(-1)
        self.scores.append(scores.cpu())
        self.targets.append(batch["target"].cpu() > 0.5)
        self.loss_sum += float(out["loss"]) * b
        self.n += b

    def compute(self) -> dict[str, float]:
        if self.n == 0:
            nan = math.nan
            self._per_class = {}
            return {"acc": nan, "mAP": nan, "AUC": nan, "d_prime": nan, "d_prime_hear": nan, "loss": nan,
                    "num_clips": 0}
        scores, targets = torch.cat(self.scores), torch.cat(self.targets)
        m = tagging_metrics(scores, targets, per_class=True)
        self._per_class = {"ap_per_class": m["ap_per_class"].numpy(), "counts": m["counts"].numpy(),
                           "classes": list(self.classes), "n_clips": int(targets.shape[0])}
        y = targets.numpy()
        return {"acc": m["acc"], "mAP": m["mAP"], "AUC": m["AUC"], "d_prime": m["d_prime"],
                "d_prime_hear": m["d_prime_hear"], "baseline/acc": majority_rate(y), "baseline/mAP": chance_map(y),
                "loss": self.loss_sum / self.n, "num_clips": self.n}

    def pictures(self) -> dict[str, Any]:
        """After :meth:`compute`: ``ap_per_class`` float64 (C,), ``counts`` int (C,) positives per class,
        ``classes`` (C names); empty when nothing was evaluated."""
        return dict(self._per_class)


WINDOW_QUANTILE = 0.95  # tagging.window="auto" covers this share of the training clips whole
MIN_WINDOW_SECONDS = 0.5


def clip_durations(clips, limit: int = 2000) -> np.ndarray:
    """Durations (s) of up to ``limit`` file clips (an even sample of them), from their headers.

    Clips that cannot be probed are left out (the datasets skip and count them later).
    """
    from ..data import decode

    files = [c.media for c in clips if c.media is not None]
    if len(files) > limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]
    out = []
    for path in files:
        try:
            out.append(decode.probe_audio(str(path)).duration)
        except (BadClipError, OSError, ValueError):
            continue
    return np.asarray([d for d in out if d and d > 0], dtype=np.float64)


def auto_window(model: nn.Module, durations: np.ndarray) -> dict[str, Any]:
    """Model arguments that fit a tagging model's window to its training clips.

    Short sounds zero-padded into a long window leave the model mostly silence to look at, and time
    masks sized for that window (SpecAugment) can erase a whole short sound. The window becomes the
    :data:`WINDOW_QUANTILE` quantile of the clip durations, rounded up to 0.1 s, at least
    :data:`MIN_WINDOW_SECONDS` and never longer than the model's own; the time-mask widths shrink in
    the same proportion (SpecAugment's masks as a share of the input, Park et al. 2019).

    Args:
        model: a PANNs (``clip_seconds``, ``time_drop_width``) or AST (``n_frames``, ``timem``) model.
        durations: float (N,) clip durations in seconds.

    Returns:
        The keyword arguments to build the model with (empty when its window already fits).

    Raises:
        ValueError: a model whose window this cannot set, or no durations.
    """
    if durations.size == 0:
        raise ValueError("tagging.window='auto': no training clip could be measured")
    if not (hasattr(model, "clip_samples") and hasattr(model, "sample_rate")):
        raise ValueError(f"tagging.window='auto' knows how to set the window of PANNs and AST models, not of "
                         f"{type(model).__name__}")
    current = model.clip_samples / model.sample_rate
    want = float(np.quantile(durations, WINDOW_QUANTILE))
    seconds = min(current, max(MIN_WINDOW_SECONDS, math.ceil(want * 10 - 1e-6) / 10))
    if seconds >= current - 1e-9:
        logger.info("tagging.window='auto': the training clips (%.2f s at the %d%% quantile) fill the model's "
                    "%.2f s window; kept", want, round(WINDOW_QUANTILE * 100), current)
        return {}
    ratio = seconds / current
    frontend = getattr(model, "frontend", None)
    spec = getattr(model, "spec_augmenter", None)
    if hasattr(model, "grid") and frontend is not None and hasattr(frontend, "n_frames"):  # AST
        kwargs: dict[str, Any] = {"n_frames": max(int(round(frontend.n_frames * ratio)), 16)}
        if spec is not None and hasattr(spec, "time_drop_width"):
            kwargs["timem"] = int(round(spec.time_drop_width * ratio))
    elif hasattr(model, "fc_audioset") or hasattr(model, "conv_block1"):  # PANNs
        kwargs = {"clip_seconds": seconds}
        if spec is not None and hasattr(spec, "time_drop_width"):
            kwargs["time_drop_width"] = max(2, int(round(spec.time_drop_width * ratio)))
    else:
        raise ValueError(f"tagging.window='auto' knows how to set the window of PANNs and AST models, not of "
                         f"{type(model).__name__}; set its clip length in model.kwargs and tagging.window='model'")
    logger.info("tagging.window='auto': %d%% of the training clips last at most %.2f s; window %.2f s instead of "
                "%.2f s (%s)", round(WINDOW_QUANTILE * 100), want, seconds, current,
                ", ".join(f"{k}={v}" for k, v in kwargs.items()))
    return kwargs


class TaggingTask(Task):
    """Builds tagging datasets, a tagging model and its loss from the config (module docstring).

    Args:
        cfg: the config (``data``, ``model`` and ``tagging``).
        resolved: what an earlier run resolved from the data (:attr:`resolved`, from a checkpoint or
            ``resolved.json``); the data is not read again for what it holds.
    """

    collate_fn = staticmethod(collate_tagging)

    def __init__(self, cfg: Config, resolved: dict[str, Any] | None = None):
        super().__init__(cfg)
        d, t = cfg.data, cfg.tagging
        if t.format == EMBEDDING_FORMAT:
            if t.mixup_alpha > 0:
                raise ValueError(f"tagging.mixup_alpha={t.mixup_alpha}: the embedding heads (tagging.format="
                                 f"{EMBEDDING_FORMAT!r}) are trained without mixup, as the reference; "
                                 f"set tagging.mixup_alpha=0")
            self.collate_fn = collate_embeddings  # batches carry 'embeddings' instead of 'wave'
        self._sources: dict[str, Manifest | EmbeddingPackSource] = {}
        given = dict(resolved or {})
        self.classes: list[str] = list(given.get("classes") or t.classes)
        self.label_mode: str = given.get("label_mode") or t.label_mode
        self._window: dict[str, Any] | None = given.get("window") if t.window == "auto" else None
        if not self.classes or self.label_mode == "auto":
            train = self._source(d.train_split)
            if not self.classes:
                self.classes = list(train.classes)
            if self.label_mode == "auto":
                multi = train.is_multilabel
                if not multi and d.val_split:
                    try:
                        multi = self._source(d.val_split).is_multilabel
                    except (OSError, ValueError) as e:  # LayoutError is a ValueError
                        logger.warning("label_mode 'auto': validation data not readable (%s); using the training data", e)
                self.label_mode = "multi" if multi else "single"
            logger.info("tagging: %d classes, %s-label (%s)", len(self.classes), self.label_mode,
                        ", ".join(self.classes[:10]) + (" ..." if len(self.classes) > 10 else ""))

    @property
    def resolved(self) -> dict[str, Any]:  # type: ignore[override]
        """``classes`` and ``label_mode`` (``single`` / ``multi``) as the run uses them, and for
        ``tagging.window="auto"`` the ``window`` (model arguments) once the model was built."""
        out: dict[str, Any] = {"classes": list(self.classes), "label_mode": self.label_mode}
        if self._window is not None:
            out["window"] = dict(self._window)
        return out

    # -- selection metric ----------------------------------------------------------------------
    @property
    def multilabel(self) -> bool:
        return self.label_mode == "multi"

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        return "mAP" if self.multilabel else "acc"

    higher_is_better = True
    count_key, count_unit = "num_clips", "clips"

    # -- data ----------------------------------------------------------------------------------
    def _split_file(self, split: str) -> str:
        """For the file formats, ``train``/``val``/``test`` name the config's files (``data.*_split``)."""
        d = self.cfg.data
        if self.cfg.tagging.format in ("layout", "folder"):
            return split
        return {"train": d.train_split, "val": d.val_split, "test": d.test_split}.get(split, split)

    def _root_path(self, p: str) -> Path:
        d = self.cfg.data
        q = Path(p).expanduser()
        return q if q.is_absolute() or not d.root else Path(d.root).expanduser() / q

    def _source(self, split: str) -> Manifest | EmbeddingPackSource:
        if split not in self._sources:
            d, t = self.cfg.data, self.cfg.tagging
            if t.format == EMBEDDING_FORMAT:
                self._sources[split] = open_embedding_source(d.root, self._split_file(split),
                                                             label_csv=t.label_csv or None, classes=self.classes or None)
                return self._sources[split]
            self._sources[split] = open_source(t.format, d.root, self._split_file(split), label_csv=t.label_csv or None,
                                               val_fraction=t.val_fraction, classes=self.classes or None)
        return self._sources[split]

    def create_model(self) -> nn.Module:
        ckpt = self.cfg.model.checkpoint_path or None
        m = build_tagging_model(self.cfg, len(self.classes), checkpoint_path=ckpt, window=self._window)
        if self.cfg.tagging.window == "auto" and self._window is None and not is_embedding_model(m):
            self._window = self._resolve_window(m)
            m = build_tagging_model(self.cfg, len(self.classes), checkpoint_path=ckpt, window=self._window)
        return m

    def _resolve_window(self, model: nn.Module) -> dict[str, Any]:
        """``tagging.window="auto"``: the model arguments that fit its window to the training clips
        (:func:`auto_window`); they become part of :attr:`resolved`, so a checkpoint rebuilds the same
        model without reading the data again."""
        src = self._source(self.cfg.data.train_split)
        return auto_window(model, clip_durations(src.clips))

    def build_dataset(self, split: str, train: bool) -> TaggingDataset | EmbeddingPackDataset:
        d = self.cfg.data
        spec = self.input_spec()  # what the model takes: the data follows it
        if self.cfg.tagging.format == EMBEDDING_FORMAT:
            ds: TaggingDataset | EmbeddingPackDataset = EmbeddingPackDataset(
                self._source(split), train=train, multilabel=self.multilabel,  # type: ignore[arg-type]
                input_dim=spec.input_dim, max_bad_retries=d.max_bad_retries)
        else:
            sr, clip, min_samples = spec.sample_rate, spec.clip_samples, spec.min_samples
            ds = TaggingDataset(self._source(split), sample_rate=sr, clip_samples=clip, train=train,
                                multilabel=self.multilabel, eval_crop=self.cfg.tagging.eval_crop,
                                min_samples=min_samples, max_bad_retries=d.max_bad_retries)
        logger.info("%s: %d clips (%s)", ds.name, len(ds), "train" if train else "eval")
        return ds

    def build_sampler(self, dataset, *, train: bool, seed: int, distributed: bool):
        d = self.cfg.tagging
        if not train or d.sampler == "random":
            return None
        if d.sampler == "balanced":
            # per-class lists, never a dense (N, C) matrix (1 GB for AudioSet's embedding packs)
            return BalancedClassSampler.from_class_lists(dataset.class_indices(), len(dataset), seed=seed)
        if d.weight_file:
            src = self._source(self.cfg.data.train_split)
            if not src.num_rows:
                raise ValueError(f"tagging.weight_file needs a datafile format (ast_json, hdf5 or embeddings), "
                                 f"not {d.format!r}")
            rows = read_weight_file(self._root_path(d.weight_file), expected=src.num_rows)
            if isinstance(dataset, EmbeddingPackDataset):  # one weight per pack row, packs in order
                weights = rows[dataset.rows]
            else:
                weights = rows[[c.row for c in dataset.clips]]
        else:
            weights = label_rarity_weights(dataset.targets)
        return WeightedClipSampler(weights, seed=seed)

    # -- model -----------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        return TaggingModule(model, self.multilabel, self.cfg.tagging.mixup_alpha)

    def new_evaluator(self) -> TaggingEvaluator:
        return TaggingEvaluator(list(self.classes), self.multilabel)

    def train_metrics(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
        """``acc`` (argmax against the first label) of a step's clips; none for a mixup step (no logits)."""
        hits = argmax_hits(out.get("logits"), batch.get("label"))
        return {"acc": hits} if hits is not None else {}

    def write_pictures(self, pictures: dict[str, Any], out_dir: Path, split: str) -> list[Path]:
        """The per-class AP chart ``out_dir/ap_per_class_<split>.png`` (``<split>``: the stem of the split's
        name, characters other than letters, digits, ``_.-`` replaced); a chart that cannot be drawn is logged."""
        if not pictures:
            return []
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(split).stem)
        path = Path(out_dir) / f"ap_per_class_{name}.png"
        try:
            from ..viz.ap_bars import plot_ap_per_class

            return [plot_ap_per_class(pictures["ap_per_class"], pictures["counts"], pictures["classes"], path,
                                      title=name, n_clips=pictures.get("n_clips"))]
        except (ImportError, OSError, ValueError) as e:  # a picture never stops a run
            logger.warning("could not write %s: %s", path, e)
            return []
