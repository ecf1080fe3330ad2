"""A trained run, ready for inference: checkpoint -> config -> task -> model -> device, in one place.

Every command and library function that uses a training checkpoint (evaluate, localize, separate,
recognize, tag, retrieve) starts with :func:`load_run`. The checkpoint is read with
``weights_only=True`` (:func:`avcorr.engine.checkpoint.load_checkpoint`); the config stored in it
rebuilds the task and the model, with what the run resolved from its data (``checkpoint["resolved"]``,
e.g. a tagging run's classes; a checkpoint written before a config field existed gets that field's
default, and one of the old flat config layout is read into the per-task sections); the weights are loaded and the model is put in eval mode on the device.

``expect`` says what the caller can use, as task names (``"avc"``, ``"localization"``,
``"separation"``, ``"tagging"``) or capabilities of the model (``"embedding"``: ``encode_audio`` and
``encode_visual``; ``"localize"``: a ``localize`` method). A checkpoint that matches none is refused
with a :class:`RunKindError` naming the file, the task and model it holds, and what was expected.

Example:
    >>> from avcorr.runs import load_run
    >>> run = load_run("runs/avenet/checkpoints/best.pt", device="cpu", expect="embedding")
    >>> run.model.encode_audio(waves)  # (N, T) -> (N, D)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # torch is imported when a run is loaded, so that a command's --help comes at once
    import torch
    from torch import nn

    from .config import Config
    from .tasks.base import Task

logger = logging.getLogger(__name__)

__all__ = ["CAPABILITIES", "TASK_KINDS", "Run", "RunKindError", "load_run"]

TASK_KINDS = ("avc", "localization", "separation", "tagging")  # = avcorr.tasks.TASKS (a test checks)
# capability -> (the model methods it needs, how to say it)
CAPABILITIES: dict[str, tuple[tuple[str, ...], str]] = {
    "embedding": (("encode_audio", "encode_visual"),
                  "an audio-visual embedding model (encode_audio / encode_visual), such as avenet"),
    "localize": (("localize",), "a model that localizes sounds (train one with --config avolnet.py or ezvsl.py)"),
}


class RunKindError(ValueError):
    """The checkpoint holds another kind of run than the caller can use."""


@dataclass
class Run:
    """A trained model rebuilt from its checkpoint.

    Attributes:
        path: the checkpoint file.
        cfg: the resolved :class:`~avcorr.config.Config` stored in it (``model.checkpoint_path``
            cleared: the weights come from the checkpoint; ``data.root`` replaced when asked).
        task: the task built from ``cfg`` (datasets, ``wrap`` for the loss, evaluator).
        model: the network, in eval mode, on ``device``.
        device: where it runs.
        epoch: the epoch the checkpoint was written after (None when it does not say).
        weights: the checkpoint's state dict on the CPU, when ``keep_weights`` (else None).
        resolved: what training resolved from the data (:attr:`Task.resolved <avcorr.engine.protocol.Task.resolved>`:
            a tagging run's ``classes`` and ``label_mode`` ...).
    """

    path: Path
    cfg: Config
    task: Task
    model: nn.Module
    device: torch.device
    epoch: int | None = None
    weights: dict[str, torch.Tensor] | None = None
    resolved: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """The run's task name (``cfg.task``)."""
        return self.cfg.task

    def require(self, expect: str | Iterable[str]) -> None:
        """Raise :class:`RunKindError` unless the run is one of ``expect`` (see the module docstring)."""
        problem = _mismatch(self.path, self.cfg, self.model, _kinds(expect))
        if problem:
            raise RunKindError(problem)


def _kinds(expect: str | Iterable[str] | None) -> tuple[str, ...]:
    if expect is None:
        return ()
    kinds = (expect,) if isinstance(expect, str) else tuple(expect)
    unknown = [k for k in kinds if k not in TASK_KINDS and k not in CAPABILITIES]
    if unknown:
        raise ValueError(f"expect={unknown[0]!r}: not a task ({', '.join(TASK_KINDS)}) or a capability "
                         f"({', '.join(CAPABILITIES)})")
    return kinds


def _has(model: Any, capability: str) -> bool:
    return all(callable(getattr(model, m, None)) for m in CAPABILITIES[capability][0])


def _mismatch(path: Path, cfg: Config, model: Any, kinds: tuple[str, ...]) -> str | None:
    """Why the run is none of ``kinds`` (None when it is one, or when ``kinds`` is empty).

    ``model`` None: judge by the task alone (only when every kind is a task).
    """
    if not kinds or cfg.task in kinds:
        return None
    if model is not None and any(k in CAPABILITIES and _has(model, k) for k in kinds):
        return None
    wanted = [f"a {k} one (task {k!r})" for k in kinds if k in TASK_KINDS]
    wanted += [CAPABILITIES[k][1] for k in kinds if k in CAPABILITIES]
    return (f"{path}: a {cfg.task!r} checkpoint (model {cfg.model.name!r}), not " + " or ".join(wanted))


def _check_resolved(path: Path, cfg: Config, resolved: dict[str, Any]) -> None:
    """A tagging run must carry what training resolved from the data (its classes, label mode and an
    automatic window), in ``checkpoint["resolved"]`` or (older checkpoints) in its config."""
    if cfg.task == "tagging":
        t = cfg.tagging
        if not (resolved.get("classes") or t.classes):
            raise ValueError(f"{path}: the checkpoint has no class names (resolved classes or tagging.classes)")
        mode = resolved.get("label_mode") or t.label_mode
        if mode not in ("single", "multi"):
            raise ValueError(f"{path}: unresolved label mode {mode!r} (resolved label_mode or tagging.label_mode)")
        if t.window == "auto" and "window" not in resolved:
            raise ValueError(f"{path}: tagging.window='auto' but the checkpoint has no resolved window")


def load_run(checkpoint: str | Path, device: str = "auto", expect: str | Iterable[str] | None = None, *,
             data_root: str | Path | None = None, storage: str | None = None, split: str = "test",
             keep_weights: bool = False) -> Run:
    """Rebuild a training run's model from its checkpoint, for inference.

    Args:
        checkpoint: ``last.pt`` / ``best.pt`` written by ``avcorr.train``.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``.
        expect: the task name(s) or capability(ies) the caller can use (None: any run).
        data_root: use this dataset root instead of the one in the stored config; it is read as what it is
            (``data.storage``: a make_shards output or a URL as shards, else files; see
            :func:`avcorr.data.storage.resolve_storage`), whatever the run was trained from.
        storage: read the data root (``data_root``, else the stored one) as ``"files"`` or ``"shards"``; a
            root that is not what this says is an error. None: as detected when ``data_root`` is given,
            else the stored config's.
        split: the split that will be read (named in the errors of ``storage``).
        keep_weights: keep the checkpoint's state dict in :attr:`Run.weights` (e.g. to fingerprint it).

    Returns:
        The :class:`Run`.

    Raises:
        FileNotFoundError: no such checkpoint.
        RunKindError: the checkpoint holds a run that is none of ``expect`` (a ``ValueError``).
        ValueError: not an avcorr checkpoint (or one :func:`torch.load` refuses with ``weights_only=True``),
            a stored config that does not load, or weights that do not fit the model; each names the file;
            or a data root that is not the ``storage`` asked for, or shards for a task that reads files only.
    """
    from .config import ConfigError, config_from_dict
    from .config.core import SHARD_TASKS
    from .data.storage import resolve_storage
    from .engine.checkpoint import load_checkpoint
    from .engine.distributed import resolve_device
    from .tasks import build_task

    path = Path(checkpoint)
    kinds = _kinds(expect)
    ckpt = load_checkpoint(path)
    try:
        cfg = config_from_dict(ckpt["config"], f"{path}: config")
    except ConfigError as e:
        raise ValueError(f"{path}: the config stored in the checkpoint does not load: {e}") from None
    if kinds and all(k in TASK_KINDS for k in kinds):  # said before a model is built
        problem = _mismatch(path, cfg, None, kinds)
        if problem:
            raise RunKindError(problem)
    resolved = ckpt.get("resolved") or {}
    _check_resolved(path, cfg, resolved)
    if data_root:
        cfg.data.root = str(data_root)
    if data_root or storage:
        cfg.data.storage = resolve_storage(cfg.data.root, storage, split)
        if cfg.data.storage == "shards" and cfg.task not in SHARD_TASKS:
            raise ValueError(f"{cfg.data.root}: holds shards of python -m data_tools.make_shards; a {cfg.task} run "
                             f"reads files only (shards: tasks {', '.join(SHARD_TASKS)}): pass a dataset root")
    cfg.model.checkpoint_path = ""  # the weights come from this checkpoint
    task = build_task(cfg, resolved)
    model = task.build_model()
    problem = _mismatch(path, cfg, model, kinds)
    if problem:
        raise RunKindError(problem)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit model {cfg.model.name!r}: {str(e).splitlines()[0]}") from None
    dev = resolve_device(device)
    model.to(dev).eval()
    logger.debug("loaded %s run %s (model %s) on %s", cfg.task, path, cfg.model.name, dev)
    return Run(path, cfg, task, model, dev, ckpt.get("epoch"), ckpt["model"] if keep_weights else None,
               task.resolved)
