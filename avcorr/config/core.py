"""Typed experiment configs: Python config files, strict ``a.b=value`` overrides, (de)serialisation.

A config file is a plain Python file (see ``configs/``) that builds a :class:`Config` and binds it to
the module-level name ``config``. It may import shared pieces relative to its own folder
(``from .common.avc import avc_config``) and edit attributes.

Overrides given on the command line (``train.lr=1e-3``) are parsed as Python literals, must name an
existing field (an unknown key is an error listing the valid keys) and must match the field's type.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import math
import hashlib
import importlib.util
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ._atomic import write_json

__all__ = [
    "AudioConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "check_config",
    "config_from_dict",
    "config_to_dict",
    "find_config_file",
    "flat_keys",
    "load_config",
]


class ConfigError(ValueError):
    """A config file or an override is invalid."""


@dataclass
class AudioConfig:
    """Audio input read by the data pipeline and fed to the model's front-end."""

    sample_rate: int = 48000  # every clip is resampled to this rate
    seconds: float = 1.0  # length of one audio window
    n_fft: int = 512  # 257 frequency bins, as in Objects that Sound
    win_length: int = 480  # 10 ms at 48 kHz
    hop_length: int = 240  # 5 ms at 48 kHz: 1 s -> 200 frames
    n_frames: int = 200  # spectrogram frames kept (cropped / zero-padded)
    n_mels: int = 0  # AVC / localization: mel bands of the log-spectrogram; 0 = linear frequency (the paper)
    gain_jitter: float = 0.0  # training only: random gain in [1 - g, 1 + g]


@dataclass
class DataConfig:
    """Where the data is and how training examples are drawn from it."""

    root: str = ""  # dataset ROOT in the seed layout; "" = the embedded synthetic dataset
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    image_size: int = 224
    augment: bool = True  # random resized crop, flip, brightness/saturation jitter (train only)
    audio: AudioConfig = field(default_factory=AudioConfig)
    negatives: str = "clip"  # "clip": audio of any other clip (paper); "class": of another labelled class (uses labels)
    positive_fraction: float = 0.5
    train_pairs_per_clip: int = 1  # training pairs per clip per epoch
    eval_pairs_per_clip: int = 2  # deterministic evaluation pairs per clip (half positive)
    video_backend: str = ""  # "" = fastest available; "torchcodec" or "decord"
    num_workers: int = 2
    max_bad_retries: int = 20  # consecutive bad clips tolerated before the run stops
    # -- task "tagging" only (avcorr.data.tagging); the defaults change nothing for the other tasks --
    format: str = "layout"  # "layout" (ROOT in the seed layout), "folder" (ROOT/<class>/<file>), "hdf5" (PANNs packs), "ast_json", "embeddings" (AudioSet embedding packs)
    classes: list[str] = field(default_factory=list)  # output classes in order; [] = read from the data (then stored here)
    label_csv: str = ""  # class_labels_indices.csv for "hdf5" / "ast_json"; "" = ROOT/class_labels_indices.csv
    label_mode: str = "auto"  # "single" (softmax, cross-entropy), "multi" (sigmoid, BCE), "auto" (multi if a clip has 2+ labels)
    val_fraction: float = 0.1  # "folder" without train/ val/ sub-folders: share of clips held out (by content hash)
    eval_crop: str = "center"  # evaluation input: "center" window of the model's clip length, or the "full" clip
    window: str = "model"  # tagging window: "model" (its clip length) or "auto" (about the training clips' length, time masks scaled alike; resolved into model.kwargs)
    sampler: str = "random"  # training order: "random", "balanced" (PANNs: cycle over classes), "weighted" (AST: rare labels)
    weight_file: str = ""  # sampler "weighted": AST weight file (one float per training clip); "" = computed from the labels
    mixup_alpha: float = 0.0  # mixup of clip pairs, lambda ~ Beta(alpha, alpha) (PANNs: 1.0); 0 = off
    # -- task "separation" only (Sound of Pixels, avcorr.data.separation); the defaults change nothing for the others --
    num_mix: int = 2  # sources mixed per example (N); each is scaled by 1/N before mixing
    frames_per_clip: int = 3  # frames per source, max-pooled over time by the frame net
    frame_stride: float = 3.0  # seconds between those frames (paper: 24 frames at 8 fps), kept inside the clip
    warp_bins: int = 256  # log-frequency bins the networks see (paper: 256); 0 = the linear STFT bins
    mask: str = "binary"  # "binary" (BCE; thresholded at 0.5 for evaluation) or "ratio" (L1, targets clamped to [0, 5])
    weighted_loss: bool = True  # weight the loss by clamp(log1p(|mixture|), 1e-3, 10), as the paper


@dataclass
class LossConfig:
    """The training objective of the audio-visual tasks (``task="avc"``; ``negatives`` for AVOL-Net)."""

    name: str = "pairs"  # "pairs": the paper's cross-entropy on positive / negative pairs; "contrastive": in-batch InfoNCE + the pair head
    temperature: float = 0.07  # "contrastive": softmax temperature of the cosine similarities
    pair_weight: float = 1.0  # "contrastive": weight of the pair head's cross-entropy on in-batch negatives
    negatives: str = "one"  # localization, AVOL-Net's logistic loss: "one" negative per positive (the paper) or "all" other clips of the batch
    soft_targets: float = 0.0  # "contrastive": share of each InfoNCE target spread over the pairs whose audio sounds alike (0 = one-hot)


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

    name: str = "adam"  # "adam", "adamw" or "sgd"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    momentum: float = 0.9  # sgd only
    lr_mult: dict[str, float] = field(default_factory=dict)  # {"parameter-name prefix": lr multiplier}
    schedule: str = "constant"  # "constant", "cosine" or "step"
    warmup_steps: int = 0
    step_epochs: list[int] = field(default_factory=list)  # "step": epochs at which lr *= step_gamma
    step_gamma: float = 0.1


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 10
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
    max_steps: int = 0  # stop after this many optimiser steps; 0 = no limit
    num_threads: int = 0  # torch CPU threads per process; 0 = torch default
    report_gallery: int = 24  # clips in the report's gallery written at the end (model on a test sample); 0 = none


@dataclass
class Config:
    """A whole experiment."""

    name: str = ""  # run name; "" = the config file's name
    task: str = "avc"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------------------------
# finding and loading config files


def _builtin_config_dirs() -> list[Path]:
    """Folders holding the configs shipped with avcorr (source checkout and installed copy)."""
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "configs", here / "configs"]
    return [d for d in dirs if d.is_dir()]


def find_config_file(name: str | Path) -> Path:
    """Resolve ``--config`` to a file: a path as given, else ``./configs/NAME``, else a shipped config.

    Args:
        name: a path, or a file name such as ``avenet.py`` (``.py`` may be omitted).

    Returns:
        The resolved path.

    Raises:
        ConfigError: nothing matches; the message lists the shipped configs.
    """
    name = str(name)
    candidates = [Path(name)]
    if not name.endswith(".py"):
        candidates.append(Path(name + ".py"))
    for c in list(candidates):
        candidates.append(Path.cwd() / "configs" / c)
        candidates.extend(d / c for d in _builtin_config_dirs())
    for c in candidates:
        if c.is_file():
            return c.resolve()
    shipped = sorted({p.name for d in _builtin_config_dirs() for p in d.glob("*.py") if not p.name.startswith("_")})
    raise ConfigError(f"config {name!r} not found (looked at {name}, ./configs/ and the shipped configs: {', '.join(shipped)})")


def load_config(name: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Execute a config file, then apply ``key=value`` overrides.

    Args:
        name: see :func:`find_config_file`.
        overrides: strings like ``"train.epochs=3"``.

    Returns:
        A fresh :class:`Config` (never shared with another load). ``name`` defaults to the file stem.
    """
    path = find_config_file(name)
    # Each config folder is a throw-away package so that ``from .common.x import y`` works; it and
    # its submodules are dropped after loading, so module-level objects are never shared.
    pkg_name = "_avcorr_cfg_" + hashlib.sha1(str(path.parent).encode()).hexdigest()[:12]
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = [str(path.parent)]  # type: ignore[attr-defined]
    pkg.__package__ = pkg_name
    sys.modules[pkg_name] = pkg
    mod_name = f"{pkg_name}.{path.stem}"
    try:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except ConfigError:
            raise
        except Exception as e:  # a config file with a bug: name the file
            raise ConfigError(f"{path}: error while executing the config: {type(e).__name__}: {e}") from e
        cfg = getattr(module, "config", None)
    finally:
        for k in [k for k in sys.modules if k == pkg_name or k.startswith(pkg_name + ".")]:
            del sys.modules[k]
    if not isinstance(cfg, Config):
        raise ConfigError(f"{path}: must bind `config` to an avcorr.config.Config (got {type(cfg).__name__})")
    cfg = copy.deepcopy(cfg)
    if not cfg.name:
        cfg.name = path.stem
    apply_overrides(cfg, overrides)
    return cfg


# ----------------------------------------------------------------------------------------------
# overrides


def flat_keys(obj: Any, prefix: str = "") -> list[str]:
    """All dotted leaf keys of a config dataclass, e.g. ``["data.root", "data.audio.n_fft", ...]``."""
    keys = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            keys.extend(flat_keys(v, prefix + f.name + "."))
        else:
            keys.append(prefix + f.name)
    return keys


def closest_keys(key: str, keys: Sequence[str], n: int = 3) -> list[str]:
    """The valid keys nearest to a mistyped ``key``, best first (``train.epoch`` -> ``train.epochs``).

    Keys whose last part equals or resembles the typed one's (``lr`` -> ``optim.lr``); when there are
    none, keys that resemble the whole dotted name.
    """
    last = key.rsplit(".", 1)[-1]
    by_last: dict[str, list[str]] = {}
    for k in keys:
        by_last.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    out = [k for k in keys if k.rsplit(".", 1)[-1] == last]
    for name in difflib.get_close_matches(last, list(by_last), n=n, cutoff=0.75):
        out += sorted(by_last[name], key=lambda k: -difflib.SequenceMatcher(None, key, k).ratio())
    if not out:
        out = difflib.get_close_matches(key, keys, n=n, cutoff=0.6)
    return list(dict.fromkeys(out))[:n]


def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to ``tp`` (int -> float only) or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _check_type(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not match {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected None, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a float, got {value!r} ({type(value).__name__})")
    if tp in (int, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r} ({type(value).__name__})")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {value!r}")
            return tuple(_check_type(v, a, key) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_check_type(v, item, key) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a dict, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_check_type(k, kt, key): _check_type(v, vt, key) for k, v in value.items()}
    raise ConfigError(f"{key}: unsupported field type {tp}")


def _parse_value(text: str) -> Any:
    """Parse an override's right-hand side as a Python literal (bare words are strings)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text in ("true", "false"):
            return text == "true"
        if text in ("none", "null"):
            return None
        return text  # a bare string such as data.root=/path/to/ROOT


def set_key(cfg: Any, key: str, value: Any) -> None:
    """Set dotted ``key`` on a config dataclass after checking it exists and the type matches."""
    parts = key.split(".")
    obj = cfg
    for i, p in enumerate(parts):
        names = {f.name: f for f in dataclasses.fields(obj)}
        if p not in names:
            keys = flat_keys(cfg)
            near = closest_keys(key, keys)
            hint = f"; did you mean {' or '.join(f'`{k}`' for k in near)}?" if near else ""
            valid = "\n  ".join(keys)
            raise ConfigError(f"unknown config key {key!r}{hint}\nvalid keys are:\n  {valid}")
        if i < len(parts) - 1:
            obj = getattr(obj, p)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"unknown config key {key!r}: {'.'.join(parts[:i + 1])} has no sub-keys")
    hints = typing.get_type_hints(type(obj))
    current = getattr(obj, parts[-1])
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"{key} is a group; set its keys instead: {', '.join(flat_keys(current, key + '.'))}")
    setattr(obj, parts[-1], _check_type(value, hints[parts[-1]], key))


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """Apply ``["a.b=value", ...]`` to ``cfg`` in place (and return it).

    Raises:
        ConfigError: malformed override, unknown key (lists valid keys) or wrong type.
    """
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} must look like key=value (e.g. train.epochs=3)")
        key, text = ov.split("=", 1)
        key = key.strip()
        set_key(cfg, key, _parse_value(text.strip()))
    return cfg


# ----------------------------------------------------------------------------------------------
# values


def _at_least(lo: float) -> tuple[Any, str]:
    return (lambda v: v >= lo), f"must be at least {lo:g}"


def _between(lo: float, hi: float, *, open_hi: bool = False) -> tuple[Any, str]:
    if open_hi:
        return (lambda v: lo <= v < hi), f"must be in [{lo:g}, {hi:g})"
    return (lambda v: lo <= v <= hi), f"must be in [{lo:g}, {hi:g}]"


_POSITIVE = ((lambda v: v > 0), "must be positive")

# key -> (test of a finite value, what the value must be); None values (model defaults) are not checked
_RULES: dict[str, tuple[Any, str]] = {
    "train.epochs": _at_least(1), "train.batch_size": _at_least(1), "train.eval_batch_size": _at_least(1),
    "train.log_every": _at_least(1), "train.eval_every": _at_least(1), "train.max_steps": _at_least(0),
    "train.grad_clip": _at_least(0), "train.seed": _at_least(0), "train.num_threads": _at_least(0),
    "optim.lr": _at_least(0), "optim.weight_decay": _at_least(0), "optim.momentum": _between(0, 1),
    "optim.warmup_steps": _at_least(0), "optim.step_gamma": _POSITIVE,
    "data.image_size": _at_least(1), "data.num_workers": _at_least(0), "data.max_bad_retries": _at_least(0),
    "data.positive_fraction": _between(0, 1), "data.train_pairs_per_clip": _at_least(1),
    "data.eval_pairs_per_clip": _at_least(1), "data.val_fraction": _between(0, 1, open_hi=True),
    "data.mixup_alpha": _at_least(0), "data.num_mix": _at_least(1), "data.frames_per_clip": _at_least(1),
    "data.frame_stride": _at_least(0), "data.warp_bins": _at_least(0),
    "data.audio.sample_rate": _POSITIVE, "data.audio.seconds": _POSITIVE, "data.audio.n_fft": _POSITIVE,
    "data.audio.win_length": _POSITIVE, "data.audio.hop_length": _POSITIVE, "data.audio.n_frames": _POSITIVE,
    "data.audio.n_mels": _at_least(0), "data.audio.gain_jitter": _between(0, 1, open_hi=True),
    "loss.temperature": _POSITIVE, "loss.pair_weight": _at_least(0),
    "model.embed_dim": _at_least(1), "model.width": _POSITIVE,
}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def check_config(cfg: Config) -> Config:
    """Check the values a run cannot start with, before anything is built; returns ``cfg``.

    Numbers must be in range (``train.epochs >= 1``, ``train.batch_size >= 1``, ``optim.lr >= 0`` ...,
    finite), ``optim.lr_mult`` multipliers non-negative, and a ``data.root`` that is set must exist.

    Raises:
        ConfigError: one line naming the key, its value and what it must be.
    """
    for key, (ok, must) in _RULES.items():
        value = _get(cfg, key)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value!r}: must be a finite number")
        if not ok(value):
            raise ConfigError(f"{key}={value!r}: {must}")
    for prefix, mult in cfg.optim.lr_mult.items():
        if not (math.isfinite(mult) and mult >= 0):
            raise ConfigError(f"optim.lr_mult[{prefix!r}]={mult!r}: must be a non-negative number")
    if cfg.data.root and not Path(cfg.data.root).expanduser().exists():
        raise ConfigError(f"data.root={cfg.data.root!r}: no such file or folder")
    return cfg


# ----------------------------------------------------------------------------------------------
# (de)serialisation


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain JSON-able Python (stored in run folders and checkpoints)."""
    return dataclasses.asdict(cfg)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(where + k for k in unknown)}")
    obj = cls()
    for k, v in data.items():
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            setattr(obj, k, _from_dict(tp, v, f"{where}{k}."))
        else:
            setattr(obj, k, _check_type(v, tp, where + k))
    return obj


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :func:`config_to_dict` output (e.g. from a checkpoint)."""
    return _from_dict(Config, data, "")


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as JSON (atomically)."""
    write_json(path, config_to_dict(cfg))
