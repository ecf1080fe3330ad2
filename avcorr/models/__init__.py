"""Models: a registry of architectures and their variants."""

from ._registry import create_model, is_model, list_models, load_checkpoint_state, load_state_into, register_model
from .avenet import AVENet
from .avolnet import AVOLNet
from .ast import AST
from .audioset_attention import AudioSetAttention
from .panns import PANNsCNN
from .sop import SoundOfPixels
from .vggish import VGGish

__all__ = ["AST", "AudioSetAttention", "AVENet", "AVOLNet", "PANNsCNN", "VGGish", "SoundOfPixels", "create_model", "is_model", "list_models", "load_checkpoint_state", "load_state_into", "register_model"]
