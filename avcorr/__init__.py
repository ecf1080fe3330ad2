"""avcorr: self-supervised audio-visual correspondence and the audio models around it."""

from .models import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "register_model"]
