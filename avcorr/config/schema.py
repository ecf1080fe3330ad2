"""The config dataclasses: what every task reads (``data``, ``model``, ``optim``, ``train``) and one
section per task family for its own data and objective knobs (``avc``, ``localization``, ``tagging``,
``separation``).

A task reads the shared sections and its own; the other task sections keep their defaults and are
ignored. Fields with a fixed set of values are ``Literal`` types, checked when a config is loaded.
What a run resolves from its data (a tagging run's classes and label mode, an automatic window) is
not written back here: the trainer stores it beside the config (``checkpoint["resolved"]``,
``resolved.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ._legacy import OLD_DATA_KEYS, OLD_DEFAULTS, OLD_LOSS_KEYS

__all__ = ["TASK_NAMES", "AVCConfig", "AudioConfig", "Config", "DataConfig", "LocalizationConfig", "ModelConfig",
           "OptimConfig", "SeparationConfig", "TaggingConfig", "TrainConfig"]

TaskName = Literal["avc", "localization", "separation", "tagging"]
TASK_NAMES = ("avc", "localization", "separation", "tagging")


class _Recorder:
    """Accepts the old flat keys a config file still sets (``config.data.mask = ...``) and keeps them
    in ``_legacy`` until the loader moves them to their sections (:func:`avcorr.config.core.migrate_config`)."""

    _old_prefix = ""
    _old_names: frozenset[str] = frozenset()

    def _legacy(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_legacy_values", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._old_names:
            self._legacy()[self._old_prefix + name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not attributes
        if name in type(self)._old_names:
            key = self._old_prefix + name
            return self._legacy().get(key, OLD_DEFAULTS.get(key))
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


@dataclass
class AudioConfig:
    """Audio input read by the data pipeline (the models' own input contract is their ``input_spec``)."""

    sample_rate: int = 48000  # every clip is resampled to this rate
    seconds: float = 1.0  # length of one audio window
    n_fft: int = 512  # 257 frequency bins, as in Objects that Sound
    win_length: int = 480  # 10 ms at 48 kHz
    hop_length: int = 240  # 5 ms at 48 kHz: 1 s -> 200 frames
    n_frames: int = 200  # spectrogram frames kept (cropped / zero-padded)
    n_mels: int = 0  # AVC / localization: mel bands of the log-spectrogram; 0 = linear frequency (the paper)
    gain_jitter: float = 0.0  # training only: random gain in [1 - g, 1 + g]


@dataclass
class DataConfig(_Recorder):
    """Where the data is and how it is read: what every task uses."""

    _old_prefix = "data."
    _old_names = OLD_DATA_KEYS

    root: str = ""  # dataset ROOT in the vid2genre layout; "" = the embedded synthetic dataset; storage "shards": make_shards' OUT (a folder or URL holding <split>/manifest.json)
    storage: Literal["files", "shards"] = "files"  # "files": a clip per sample from ROOT's video/audio files; "shards": tar shards of data_tools.make_shards (tasks avc, localization, separation)
    shuffle_buffer: int = 256  # storage "shards", training: clips in the shuffle buffer of each loader worker (decoded: a 10 s clip at 48 kHz holds 2 MB)
    # split names: folders of ROOT in the vid2genre layout and "folder"; for tagging's file formats
    # ("hdf5", "ast_json", "embeddings") the file (relative to ROOT; several packs comma-separated)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    image_size: int = 224
    augment: bool = True  # random resized crop, flip, brightness/saturation jitter (train only)
    device_transforms: bool = False  # tasks avc, localization, separation: frames travel as uint8 (and audio of int16 shards as int16); colour jitter, flip, normalisation and the audio gain run batched on the training device
    audio: AudioConfig = field(default_factory=AudioConfig)
    video_backend: Literal["", "torchcodec", "decord"] = ""  # "" = fastest available
    num_workers: int = 2
    max_bad_retries: int = 20  # consecutive bad clips tolerated before the run stops


@dataclass
class AVCConfig:
    """Task ``avc`` (AVE-Net, L3-Net): how correspondence pairs are drawn, and the objective."""

    negatives: Literal["clip", "class"] = "clip"  # "clip": audio of any other clip (paper); "class": of another labelled class
    positive_fraction: float = 0.5  # training: share of positive pairs ("pairs" objective)
    train_pairs_per_clip: int = 1  # training pairs per clip per epoch
    eval_pairs_per_clip: int = 2  # deterministic evaluation pairs per clip (half positive)
    loss: Literal["pairs", "contrastive"] = "pairs"  # "pairs": the paper's cross-entropy on positive / negative pairs; "contrastive": in-batch InfoNCE + the pair head
    temperature: float = 0.07  # "contrastive": softmax temperature of the cosine similarities
    pair_weight: float = 1.0  # "contrastive": weight of the pair head's cross-entropy on in-batch negatives
    soft_targets: float = 0.0  # "contrastive": share of each InfoNCE target spread over the pairs whose audio sounds alike (0 = one-hot)


@dataclass
class LocalizationConfig:
    """Task ``localization`` (AVOL-Net, the contrastive localizer): training positives and the objective."""

    train_pairs_per_clip: int = 1  # training positives per clip per epoch
    negatives: Literal["one", "all"] = "one"  # AVOL-Net's logistic loss: "one" negative per positive (the paper) or "all" other clips of the batch
    local_loss: bool = False  # contrastive localizer: each process's rows only (see avcorr.losses.ContrastiveLocalizationLoss)
    gather_with_grad: bool = False  # contrastive localizer: gather the other processes' embeddings with their gradients


@dataclass
class TaggingConfig:
    """Task ``tagging`` (PANNs, AST, the AudioSet attention heads): data format, labels, sampling, mixup."""

    format: Literal["layout", "folder", "hdf5", "ast_json", "embeddings"] = "layout"  # "layout" (ROOT in the vid2genre layout), "folder" (ROOT/<class>/<file>), "hdf5" (PANNs packs), "ast_json", "embeddings" (AudioSet embedding packs)
    classes: list[str] = field(default_factory=list)  # output classes in order; [] = read from the data (the run stores what it read in resolved.json)
    label_csv: str = ""  # class_labels_indices.csv for "hdf5" / "ast_json"; "" = ROOT/class_labels_indices.csv
    label_mode: Literal["auto", "single", "multi"] = "auto"  # "single" (softmax, cross-entropy), "multi" (sigmoid, BCE), "auto" (multi if a clip has 2+ labels)
    val_fraction: float = 0.1  # "folder" without train/ val/ sub-folders: share of clips held out (by content hash)
    eval_crop: Literal["center", "full"] = "center"  # evaluation input: "center" window of the model's clip length, or the "full" clip
    window: Literal["model", "auto"] = "model"  # "model" (its clip length) or "auto" (about the training clips' length, time masks scaled alike; stored in resolved.json)
    sampler: Literal["random", "balanced", "weighted"] = "random"  # training order: "balanced" (PANNs: cycle over classes), "weighted" (AST: rare labels)
    weight_file: str = ""  # sampler "weighted": AST weight file (one float per training clip); "" = computed from the labels
    mixup_alpha: float = 0.0  # mixup of clip pairs, lambda ~ Beta(alpha, alpha) (PANNs: 1.0); 0 = off


@dataclass
class SeparationConfig:
    """Task ``separation`` (Sound of Pixels): how mixtures are made, and the mask objective."""

    num_mix: int = 2  # sources mixed per example (N); each is scaled by 1/N before mixing
    frames_per_clip: int = 3  # frames per source, max-pooled over time by the frame net
    frame_stride: float = 3.0  # seconds between those frames (paper: 24 frames at 8 fps), kept inside the clip
    warp_bins: int = 256  # log-frequency bins the networks see (paper: 256); 0 = the linear STFT bins
    mask: Literal["binary", "ratio"] = "binary"  # "binary" (BCE; thresholded at 0.5 for evaluation) or "ratio" (L1, targets clamped to [0, 5])
    weighted_loss: bool = True  # weight the loss by clamp(log1p(|mixture|), 1e-3, 10), as the paper
    train_mixtures_per_clip: int = 1  # training mixtures per clip per epoch
    eval_mixtures_per_clip: int = 2  # deterministic evaluation mixtures per clip
    correspondence_weight: float = 0.0  # > 0: add the sources' correspondence InfoNCE (needs model.kwargs correspondence_dim)
    correspondence_temperature: float = 0.07  # its temperature


@dataclass
class ModelConfig:
    """Which registered model to build. ``None`` fields are not passed, so the model's defaults stand."""

    name: str = "avenet"
    embed_dim: int | None = None
    width: float | None = None  # channel multiplier of the conv towers (1.0 = paper)
    checkpoint_path: str = ""  # initialise from a local checkpoint file
    kwargs: dict[str, Any] = field(default_factory=dict)  # further model arguments, e.g. {"vision_width": 0.25}


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    momentum: float = 0.9  # sgd only
    lr_mult: dict[str, float] = field(default_factory=dict)  # {"parameter-name prefix": lr multiplier}
    schedule: Literal["constant", "cosine", "step"] = "constant"
    warmup_steps: int = 0
    step_epochs: list[int] = field(default_factory=list)  # "step": epochs at which lr *= step_gamma
    step_gamma: float = 0.1


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 10  # passes over the training set; 0 = no epoch limit, train.max_steps is the budget
    batch_size: int = 32  # per process
    eval_batch_size: int = 64
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 + grad scaling)
    channels_last: bool = False
    compile: bool = False  # torch.compile the model
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    seed: int = 0
    out_dir: str = ""  # "" = runs/<config name>
    log_every: int = 20  # steps between log lines / TensorBoard points
    eval_every: int = 1  # epochs between validation passes
    max_steps: int = 0  # stop after this many optimiser steps (the lr schedule ends there too); 0 = no limit
    num_threads: int = 0  # torch CPU threads per process; 0 = torch default
    report_gallery: int = 24  # clips in the report's gallery written at the end (model on a test sample); 0 = none


@dataclass
class Config(_Recorder):
    """A whole experiment: the shared sections, and one section per task family."""

    _old_prefix = "loss."
    _old_names = frozenset()  # the old ``loss`` group is recorded by its proxy (``config.loss.name = ...``)

    name: str = ""  # run name; "" = the config file's name
    task: TaskName = "avc"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    avc: AVCConfig = field(default_factory=AVCConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    separation: SeparationConfig = field(default_factory=SeparationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __getattr__(self, name: str) -> Any:
        if name == "loss":  # the old objective group: ``config.loss.name = "contrastive"`` in an old file
            return _LossProxy(self)
        raise AttributeError(f"Config has no attribute {name!r}")


class _LossProxy(_Recorder):
    """``config.loss`` of an old config file: its keys are recorded on the config they belong to."""

    _old_prefix = "loss."
    _old_names = OLD_LOSS_KEYS

    def __init__(self, owner: Config):
        object.__setattr__(self, "_owner", owner)

    def _legacy(self) -> dict[str, Any]:
        return self._owner._legacy()  # type: ignore[attr-defined]
