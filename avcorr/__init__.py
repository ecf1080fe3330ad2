"""avcorr: self-supervised audio-visual correspondence and the audio models around it.

``avcorr.create_model`` / ``list_models`` / ``register_model`` and ``avcorr.recognize`` (tag an audio
file with a tagging checkpoint; :func:`avcorr.inference.tagging.recognize`) are imported lazily so that
light tools (``python -m data_tools.validate``) start without loading torch.

Where things are: :mod:`avcorr.runs` loads a trained run for inference (:func:`~avcorr.runs.load_run`);
:mod:`avcorr.inference` holds the inference code of each task; the modules ``avcorr.train``,
``avcorr.evaluate``, ``avcorr.localize``, ``avcorr.separate``, ``avcorr.retrieve``, ``avcorr.tag`` and
``avcorr.recognize`` are the command lines (``python -m avcorr.<command>``), thin shells over them.
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
