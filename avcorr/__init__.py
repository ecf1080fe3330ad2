"""avcorr: self-supervised audio-visual correspondence and the audio models around it.

``avcorr.create_model`` / ``list_models`` / ``register_model`` and ``avcorr.recognize`` (tag an audio
file with a tagging checkpoint; :func:`avcorr.inference.tagging.recognize`) are imported lazily so that
light tools (``python -m data_tools.validate``) start without loading torch.

Where things are: :mod:`avcorr.runs` loads a trained run for inference (:func:`~avcorr.runs.load_run`);
:mod:`avcorr.inference` holds the inference code of each task; the modules ``avcorr.train``,
``avcorr.evaluate``, ``avcorr.localize``, ``avcorr.separate``, ``avcorr.retrieve``, ``avcorr.tag`` and
``avcorr.recognize`` are the command lines (``python -m avcorr.<command>``), thin shells over them.

Import rules (``tests/house/test_import_rules.py`` checks them on the source):

* Layers. ``metrics``, ``viz``, ``losses``, ``retrieval``, ``models``, ``data`` and ``config``
  import no other part of avcorr: they take arrays, tensors and models as given objects. ``engine``
  imports ``config``, ``data`` and ``metrics``, nothing of ``tasks``: it defines the contract a task
  implements (``engine.protocol``). ``tasks`` imports ``config``, ``data``, ``models``, ``losses``,
  ``metrics``, ``viz`` and that contract (``engine.protocol``), never the trainer. The top-level
  command modules (``train``, ``evaluate``, ``retrieve``, ...) sit on top and may import any part.
* No cycles: no two subpackages (or a subpackage and ``config``) import each other, even through a
  third.
* Privacy. A module or name starting with ``_`` is private to the package it lives in: modules of
  that package share it freely, nothing outside imports it (``avcorr.data._clip_media`` is for
  ``avcorr.data`` only). What another package needs has a public name (``avcorr.models.sop_audio``,
  ``avcorr.data.skipped``, ``avcorr.data.wav``). The exception are the top-level private modules
  ``avcorr._amp``, ``_atomic``, ``_cli``, ``_ffmpeg``, ``_lazy``, ``_progress``, ``_torch_load`` and
  ``_weights``: the project's shared internals (autocast, atomic writes, command-line helpers, the
  ffmpeg lookup, lazy torch, progress bars, safe ``torch.load``, the torch-free registry of released
  weights), which
  any module of avcorr, ``data_tools`` or ``experiments`` may import, and which themselves import
  no other part of avcorr. Tests may import anything.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "recognize", "register_model"]


def __getattr__(name: str) -> Any:
    if name in ("create_model", "list_models", "register_model"):
        from . import models

        return getattr(models, name)
    if name == "recognize":
        from .inference.tagging import recognize

        globals()["recognize"] = recognize
        return recognize
    raise AttributeError(f"module 'avcorr' has no attribute {name!r}")
