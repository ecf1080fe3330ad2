"""Models: a registry of architectures and their variants."""

from ._registry import create_model, is_model, list_models, load_checkpoint_state, register_model
from .avenet import AVENet

__all__ = ["AVENet", "create_model", "is_model", "list_models", "load_checkpoint_state", "register_model"]
