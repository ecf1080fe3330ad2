"""Loading pretrained weights into the tagging models: strict keys, a classifier head that may differ.

Policy (timm's): when the checkpoint's classifier head does not fit the model (another number of
classes, or a model built with ``num_classes=0``), the head is left as initialised, the skipped keys
are logged as a warning, and every other key must match exactly: a missing or unexpected key, or a
shape mismatch outside the head, is an error that names the keys.
"""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

import torch
from torch import nn

logger = logging.getLogger(__name__)


def _short(keys: Iterable[str], n: int = 8) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_checked(model: nn.Module, state: Mapping[str, torch.Tensor], head_prefixes: tuple[str, ...] = (),
                 optional_missing: tuple[str, ...] = ("num_batches_tracked",), source: str = "checkpoint") -> list[str]:
    """Load ``state`` into ``model``: exact keys and shapes except a head that does not fit.

    Args:
        model: the module to fill.
        state: state dict already mapped to the model's key names.
        head_prefixes: key prefixes of the classifier head (e.g. ``("fc_audioset.",)``); their entries
            are skipped (with a warning) when the model has no such keys or their shapes differ.
        optional_missing: key suffixes that may be absent from ``state`` (BatchNorm counters of old
            checkpoints); the model keeps its own values for them.
        source: name of the checkpoint for messages.

    Returns:
        The checkpoint keys that were skipped because the head did not fit.

    Raises:
        ValueError: missing or unexpected keys, or shape mismatches outside the head.
    """
    own = model.state_dict()
    skipped: list[str] = []
    load: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for k, v in state.items():
        is_head = any(k.startswith(p) for p in head_prefixes)
        if is_head and (k not in own or own[k].shape != v.shape):
            skipped.append(k)
            continue
        if k in own and own[k].shape != v.shape:
            mismatched.append(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}")
            continue
        load[k] = v
    unexpected = [k for k in load if k not in own]
    missing = [k for k in own if k not in load and not any(k.startswith(p) for p in head_prefixes)
               and not k.endswith(optional_missing)]
    problems = []
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:8]))
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short(unexpected)}")
    if problems:
        raise ValueError(f"{source}: does not fit {type(model).__name__}: " + " | ".join(problems))
    head_missing = [k for k in own if any(k.startswith(p) for p in head_prefixes) and k not in load]
    if skipped or head_missing:
        logger.warning("%s: classifier head not loaded (checkpoint %s, model %s); it keeps its initialisation",
                       source, _short(skipped) or "none",
                       _short(f"{k}{tuple(own[k].shape)}" for k in head_missing) or "none")
    model.load_state_dict(load, strict=False)
    return skipped
