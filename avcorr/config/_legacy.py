"""The one place where configs of the old flat layout are read into the per-task sections.

Before the sections existed, ``DataConfig`` held every task's data fields side by side, the AVC and
localization objectives lived in ``loss.*`` (and the contrastive localizer's flags in
``model.kwargs``), and a tagging run stored the classes and label mode it resolved from the data in
``data.classes`` / ``data.label_mode``. :func:`migrate_keys` maps such keys to their new place; it is
used by every way a config comes in (:mod:`avcorr.config.core`): a config file that still sets
``config.data.mask`` (recorded, then migrated once the file has run), a config dict stored in an
old checkpoint or ``config.json``, and command-line overrides with an old key name. Each use logs
one line naming the old keys and their new names.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("avcorr.config")

__all__ = ["LOCALIZATION_KWARGS", "OLD_DATA_KEYS", "OLD_LOSS_KEYS", "migrate_keys", "new_key"]

# old key -> new key, the same for every task
_MOVED: dict[str, str] = {
    "data.negatives": "avc.negatives",
    "data.positive_fraction": "avc.positive_fraction",
    **{f"data.{k}": f"tagging.{k}" for k in ("format", "classes", "label_csv", "label_mode", "val_fraction",
                                             "eval_crop", "window", "sampler", "weight_file", "mixup_alpha")},
    **{f"data.{k}": f"separation.{k}" for k in ("num_mix", "frames_per_clip", "frame_stride", "warp_bins", "mask",
                                                "weighted_loss")},
    "loss.name": "avc.loss",
    "loss.temperature": "avc.temperature",
    "loss.pair_weight": "avc.pair_weight",
    "loss.soft_targets": "avc.soft_targets",
    "loss.negatives": "localization.negatives",
    "model.kwargs.local_loss": "localization.local_loss",
    "model.kwargs.gather_with_grad": "localization.gather_with_grad",
}
# old key -> {task: new key}; a task not listed reads the "avc" entry (the key meant nothing to it)
_BY_TASK: dict[str, dict[str, str]] = {
    "data.train_pairs_per_clip": {"avc": "avc.train_pairs_per_clip",
                                  "localization": "localization.train_pairs_per_clip",
                                  "separation": "separation.train_mixtures_per_clip"},
    "data.eval_pairs_per_clip": {"avc": "avc.eval_pairs_per_clip", "separation": "separation.eval_mixtures_per_clip"},
}

OLD_DATA_KEYS = frozenset(k.split(".", 1)[1] for k in [*_MOVED, *_BY_TASK] if k.startswith("data."))
OLD_LOSS_KEYS = frozenset(k.split(".", 1)[1] for k in _MOVED if k.startswith("loss."))
LOCALIZATION_KWARGS = ("local_loss", "gather_with_grad")  # objective flags once passed in model.kwargs

# what the old fields defaulted to (read back by a config file that reads an old key it did not set)
OLD_DEFAULTS: dict[str, Any] = {
    "data.negatives": "clip", "data.positive_fraction": 0.5, "data.train_pairs_per_clip": 1,
    "data.eval_pairs_per_clip": 2, "data.format": "layout", "data.classes": [], "data.label_csv": "",
    "data.label_mode": "auto", "data.val_fraction": 0.1, "data.eval_crop": "center", "data.window": "model",
    "data.sampler": "random", "data.weight_file": "", "data.mixup_alpha": 0.0, "data.num_mix": 2,
    "data.frames_per_clip": 3, "data.frame_stride": 3.0, "data.warp_bins": 256, "data.mask": "binary",
    "data.weighted_loss": True, "loss.name": "pairs", "loss.temperature": 0.07, "loss.pair_weight": 1.0,
    "loss.negatives": "one", "loss.soft_targets": 0.0,
}


def new_key(old: str, task: str) -> str | None:
    """The key that replaced ``old`` for a run of ``task`` (None: ``old`` is not an old key)."""
    if old in _MOVED:
        return _MOVED[old]
    if old in _BY_TASK:
        choices = _BY_TASK[old]
        return choices.get(task, choices["avc"])
    return None


def migrate_keys(old: dict[str, Any], task: str, where: str) -> dict[str, Any]:
    """Map old flat keys to the keys of the per-task sections, logging one line when there are any.

    Args:
        old: ``{"data.mask": "ratio", "loss.name": "contrastive", ...}``: old dotted keys and values.
        task: the config's task (``data.train_pairs_per_clip`` becomes separation's mixtures per clip).
        where: what the keys came from, for the log line (a file, ``"checkpoint config"``, ``"override"``).

    Returns:
        ``{new dotted key: value}`` in the order given.

    Raises:
        KeyError: a key that is not an old key (callers pass only keys :func:`new_key` knows).
    """
    out: dict[str, Any] = {}
    for key, value in old.items():
        new = new_key(key, task)
        if new is None:
            raise KeyError(key)
        out[new] = value
    if out:
        pairs = [f"{k} -> {n}" for k, n in zip(old, out)]
        moved = ", ".join(pairs[:4]) + (f" and {len(pairs) - 4} more" if len(pairs) > 4 else "")
        logger.warning("%s: old config keys, read as the per-task sections (%s); rename them", where, moved)
    return out
