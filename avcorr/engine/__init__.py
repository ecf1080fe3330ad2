"""The training engine: one loop for every task, and the contract a task implements.

:mod:`avcorr.engine.protocol` defines that contract (:class:`~avcorr.engine.protocol.Task`,
:class:`~avcorr.engine.protocol.Evaluator`, what a task's module returns); :mod:`avcorr.tasks`
implements it for avcorr's task families. The engine imports ``config``, ``data`` and ``metrics``,
nothing of ``tasks`` (rules in :mod:`avcorr`).

The names below are imported on first use, so that a task importing the contract does not load the
trainer.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"Evaluator": "protocol", "Task": "protocol", "Trainer": "trainer", "evaluate_loader": "evaluation",
          "evaluation_pass": "evaluation", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value
