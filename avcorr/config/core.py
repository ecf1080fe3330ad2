"""Loading configs: Python config files, strict ``a.b=value`` overrides, checks, (de)serialisation.

A config file is a plain Python file (see ``configs/``) that builds a :class:`Config` and binds it to
the module-level name ``config``. It may import shared pieces relative to its own folder
(``from .common.avc import avc_paper``) and edit attributes. Every value is type-checked when the
file has run (``Literal`` fields: one of their values).

Overrides given on the command line (``train.lr=1e-3``) are parsed as Python literals, must name an
existing field (an unknown key is an error listing the valid keys) and must match the field's type.
Keys of the old flat layout (``data.mask``, ``loss.name`` ...) are accepted everywhere a config comes
in and moved to their sections by :mod:`avcorr.config._legacy`.
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
import logging
from pathlib import Path
from typing import Any, Literal, Sequence

from .._atomic import write_json
from ._legacy import LOCALIZATION_KWARGS, migrate_keys, new_key
from .schema import Config

__all__ = ["ConfigError", "apply_overrides", "check_config", "check_types", "closest_keys", "config_from_dict",
           "config_to_dict", "find_config_file", "flat_keys", "load_config", "migrate_config", "save_config",
           "set_key"]

logger = logging.getLogger("avcorr.config")


class ConfigError(ValueError):
    """A config file or an override is invalid."""


# ----------------------------------------------------------------------------------------------
# finding and loading config files


def _builtin_config_dirs() -> list[Path]:
    """Folders holding the configs shipped with avcorr (source checkout and installed copy)."""
    here = Path(__file__).resolve().parent.parent  # the avcorr package
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
    migrate_config(cfg, str(path))
    try:
        check_types(cfg)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    apply_overrides(cfg, overrides)
    return cfg


def migrate_config(cfg: Config, where: str = "config") -> Config:
    """Move what a config file set under the old flat keys into the per-task sections (in place).

    ``config.data.mask = ...`` / ``config.loss.name = ...`` of an old file were recorded by the
    dataclasses (:mod:`avcorr.config.schema`); the contrastive localizer's loss flags in
    ``model.kwargs`` move to ``localization``. Running it twice changes nothing.

    Args:
        cfg: the config, changed in place.
        where: what it came from, for the log line.

    Returns:
        ``cfg``.
    """
    old: dict[str, Any] = {}
    for holder in (cfg, cfg.data):
        old.update(holder.__dict__.pop("_legacy_values", {}))
    if cfg.task == "localization":
        for k in LOCALIZATION_KWARGS:
            if k in cfg.model.kwargs:
                old[f"model.kwargs.{k}"] = cfg.model.kwargs[k]
        if any(k in cfg.model.kwargs for k in LOCALIZATION_KWARGS):
            cfg.model.kwargs = {k: v for k, v in cfg.model.kwargs.items() if k not in LOCALIZATION_KWARGS}
    for key, value in migrate_keys(old, cfg.task, where).items():
        set_key(cfg, key, value)
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
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise ConfigError(f"{key}={value!r}: must be one of {', '.join(repr(a) for a in args)}")
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
    if isinstance(cfg, Config) and new_key(key, cfg.task) is not None:  # an old flat key
        ((key, value),) = migrate_keys({key: value}, cfg.task, "override").items()
        parts = key.split(".")
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
    if isinstance(cfg, Config):
        migrate_config(cfg, "override")  # e.g. the localizer's loss flags given in model.kwargs
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
SHARD_TASKS = ("avc", "localization", "separation")  # the tasks that read data.storage="shards"
DEVICE_TRANSFORM_TASKS = ("avc", "localization", "separation")  # the tasks that take data.device_transforms

# key -> (test of a finite value, what the value must be); None values (model defaults) are not checked
_RULES: dict[str, tuple[Any, str]] = {
    "train.epochs": _at_least(0), "train.batch_size": _at_least(1), "train.eval_batch_size": _at_least(1),
    "train.log_every": _at_least(1), "train.eval_every": _at_least(1), "train.max_steps": _at_least(0),
    "train.grad_clip": _at_least(0), "train.seed": _at_least(0), "train.num_threads": _at_least(0),
    "optim.lr": _at_least(0), "optim.weight_decay": _at_least(0), "optim.momentum": _between(0, 1),
    "optim.warmup_steps": _at_least(0), "optim.step_gamma": _POSITIVE,
    "data.image_size": _at_least(1), "data.num_workers": _at_least(0), "data.max_bad_retries": _at_least(0),
    "data.shuffle_buffer": _at_least(0),
    "avc.positive_fraction": _between(0, 1), "avc.train_pairs_per_clip": _at_least(1),
    "avc.eval_pairs_per_clip": _at_least(1), "avc.pair_weight": _at_least(0), "avc.temperature": _POSITIVE,
    "avc.soft_targets": _between(0, 1, open_hi=True), "localization.train_pairs_per_clip": _at_least(1),
    "tagging.val_fraction": _between(0, 1, open_hi=True), "tagging.mixup_alpha": _at_least(0),
    "separation.num_mix": _at_least(1), "separation.frames_per_clip": _at_least(1),
    "separation.frame_stride": _at_least(0), "separation.warp_bins": _at_least(0),
    "separation.train_mixtures_per_clip": _at_least(1), "separation.eval_mixtures_per_clip": _at_least(1),
    "separation.correspondence_weight": _at_least(0), "separation.correspondence_temperature": _POSITIVE,
    "data.audio.sample_rate": _POSITIVE, "data.audio.seconds": _POSITIVE, "data.audio.n_fft": _POSITIVE,
    "data.audio.win_length": _POSITIVE, "data.audio.hop_length": _POSITIVE, "data.audio.n_frames": _POSITIVE,
    "data.audio.n_mels": _at_least(0), "data.audio.gain_jitter": _between(0, 1, open_hi=True),
    "model.embed_dim": _at_least(1), "model.width": _POSITIVE,
}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def check_config(cfg: Config) -> Config:
    """Check the values a run cannot start with, before anything is built; returns ``cfg``.

    Numbers must be in range (``train.epochs >= 0``, 0 only with a ``train.max_steps`` budget,
    ``train.batch_size >= 1``, ``optim.lr >= 0`` ...,
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
    if cfg.train.epochs == 0 and cfg.train.max_steps == 0:
        raise ConfigError("train.epochs=0: means 'until train.max_steps', so set train.max_steps > 0 "
                          "(or give train.epochs >= 1)")
    for prefix, mult in cfg.optim.lr_mult.items():
        if not (math.isfinite(mult) and mult >= 0):
            raise ConfigError(f"optim.lr_mult[{prefix!r}]={mult!r}: must be a non-negative number")
    if cfg.data.storage == "shards":
        if cfg.task not in SHARD_TASKS:
            raise ConfigError(f"data.storage='shards': implemented for the tasks {', '.join(SHARD_TASKS)}; task "
                              f"{cfg.task!r} reads data.storage='files'")
        if not cfg.data.root:
            raise ConfigError("data.storage='shards' needs data.root: the output folder of "
                              "python -m data_tools.make_shards (a path or URL holding <split>/manifest.json)")
    if cfg.data.device_transforms and cfg.task not in DEVICE_TRANSFORM_TASKS:
        raise ConfigError("data.device_transforms=True: implemented for the tasks "
                          f"{', '.join(DEVICE_TRANSFORM_TASKS)}; task {cfg.task!r} transforms its data in the loader")
    if cfg.data.root and "://" not in cfg.data.root and not Path(cfg.data.root).expanduser().exists():
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


def config_from_dict(data: dict[str, Any], where: str = "stored config") -> Config:
    """Rebuild a :class:`Config` from :func:`config_to_dict` output (e.g. from a checkpoint).

    A dict of the old flat layout (``data.mask``, ``loss.*``, ``data.classes`` ...: checkpoints and
    ``config.json`` files written before the per-task sections) is read into the sections.

    Args:
        data: the dict.
        where: what it came from, for the log line about old keys.

    Raises:
        ConfigError: an unknown key or a value of the wrong type, named.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    data = copy.deepcopy(data)
    task = data.get("task", "avc")
    old: dict[str, Any] = {}
    section = data.get("data")
    if isinstance(section, dict):
        old.update({f"data.{k}": section.pop(k) for k in list(section) if new_key(f"data.{k}", task)})
    loss = data.pop("loss", None)
    if isinstance(loss, dict):
        old.update({f"loss.{k}": v for k, v in loss.items()})  # an unknown one is named below
    kwargs = data.get("model", {}).get("kwargs") if isinstance(data.get("model"), dict) else None
    if task == "localization" and isinstance(kwargs, dict):
        old.update({f"model.kwargs.{k}": kwargs.pop(k) for k in LOCALIZATION_KWARGS if k in kwargs})
    unknown = [k for k in old if new_key(k, task) is None]
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(unknown)}")
    cfg = _from_dict(Config, data, "")
    for key, value in migrate_keys(old, task, where).items():
        set_key(cfg, key, value)
    return cfg


def check_types(cfg: Any, prefix: str = "") -> Any:
    """Check (and convert: int -> float) every field of a config against its type, in place.

    Args:
        cfg: a :class:`Config` or one of its sections.
        prefix: the dotted path of ``cfg`` (for the messages).

    Returns:
        ``cfg``.

    Raises:
        ConfigError: one line naming the key, the bad value and what it must be
            (``separation.mask='soft': must be one of 'binary', 'ratio'``).
    """
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_types(value, f"{prefix}{f.name}.")
        else:
            setattr(cfg, f.name, _check_type(value, hints[f.name], prefix + f.name))
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as JSON (atomically)."""
    write_json(path, config_to_dict(cfg))
