"""Model registry: ``register_model`` / ``create_model`` / ``list_models`` (timm style)."""

from __future__ import annotations

import fnmatch
import inspect
import logging
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

logger = logging.getLogger(__name__)

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator registering a model-variant function under its own name."""
    name = fn.__name__
    if name in _MODELS and _MODELS[name] is not fn:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODELS


def _numpy_array_globals() -> list[Any]:
    """What plain numpy arrays and scalars need to unpickle under ``weights_only=True`` (nothing else)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and n != "ObjectDType"]
    if core.__name__ != "numpy.core":  # numpy >= 2 reading a file pickled by numpy 1.x
        allowed += [(core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                    (core.multiarray.scalar, "numpy.core.multiarray.scalar")]
    return allowed


def load_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a local checkpoint file (``weights_only=True``).

    Accepts a bare state dict or one wrapped as ``{'model': ...}`` / ``{'state_dict': ...}``;
    a DataParallel/DDP ``module.`` prefix is removed.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no recognisable state dict.
    """
    from .._torch_load import load_tensors_only

    path = Path(path)
    obj = load_tensors_only(path, _numpy_array_globals())  # released PANNs files hold numpy sampler state
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: no state dict found (expected tensors, or a dict with 'model'/'state_dict')")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state_into(model: nn.Module, checkpoint_path: str | Path, source: str | None = None) -> None:
    """Load a local checkpoint file into ``model``: its ``load_pretrained`` when it has one (released
    key layouts, a classifier head that may differ), else a strict ``load_state_dict``."""
    state = load_checkpoint_state(checkpoint_path)
    load = getattr(model, "load_pretrained", None)
    if load is not None:
        if source is not None and "source" in inspect.signature(load).parameters:
            load(state, source=source)
        else:
            load(state)
    else:
        model.load_state_dict(state, strict=True)


def create_model(name: str, checkpoint_path: str | Path | None = None, pretrained: bool | str = False,
                 **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        checkpoint_path: optional local file to load weights from (strict key match).
        pretrained: ``True`` loads the released weights of ``name`` (downloaded once into the cache,
            see :mod:`avcorr.models.hub`); a string names a tag from ``avcorr.hub.list_pretrained()``.
        **kwargs: passed to the variant function; ``None`` values are dropped so defaults stand.

    Raises:
        ValueError: unknown model name (the message lists the registered ones), both
            ``checkpoint_path`` and ``pretrained``, or released weights made for another model.
        avcorr.hub.WeightsError: the released file cannot be had (offline, download, hash).
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    if pretrained and checkpoint_path:
        raise ValueError("give checkpoint_path or pretrained, not both")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = _MODELS[name](**kwargs)
    if pretrained:
        from . import hub

        tag = name if pretrained is True else str(pretrained)
        try:
            entry = hub.get_weights(tag)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        if entry.model != name:
            raise ValueError(f"released weights {entry.tag!r} are for {entry.model!r}, not {name!r}")
        hub.load_pretrained(model, entry.tag)
        logger.info("loaded %s weights %s", name, entry.tag)
    elif checkpoint_path:
        load_state_into(model, checkpoint_path)
        logger.info("loaded %s weights from %s", name, checkpoint_path)
    return model
