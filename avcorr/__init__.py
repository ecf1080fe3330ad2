"""avcorr: self-supervised audio-visual correspondence and the audio models around it.

``avcorr.create_model`` / ``list_models`` / ``register_model`` and ``avcorr.recognize`` (tag an audio
file with a tagging checkpoint) are imported lazily so that light tools (``python -m
data_tools.validate``) start without loading torch.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "recognize", "register_model"]


def __getattr__(name: str) -> Any:
    if name in ("create_model", "list_models", "register_model"):
        from . import models

        return getattr(models, name)
    if name == "recognize":
        from .recognize import recognize

        globals()["recognize"] = recognize  # the function, not the submodule the import bound here
        return recognize
    raise AttributeError(f"module 'avcorr' has no attribute {name!r}")
