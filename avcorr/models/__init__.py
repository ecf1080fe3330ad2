"""Models: a registry of architectures and their variants.

One module per architecture (``avenet``, ``avolnet``, ``sop``, ``panns``, ``ast``,
``audioset_attention``, ``vggish``) and one per family's audio front-end, named after whose it is:

* :mod:`~avcorr.models.avc_audio` - the log (mel) spectrogram of the correspondence models
  (AVE-Net, L3-Net, AVOL-Net / EZ-VSL).
* :mod:`~avcorr.models.tagging_audio` - the tagging models' front-ends (PANNs log-mel, AST Kaldi
  fbank), SpecAugment and PANNs' mixup.
* :mod:`~avcorr.models.sop_audio` - Sound of Pixels' STFT / iSTFT, log-frequency warp and masks.

Every model exposes ``model.input_spec`` (:class:`~avcorr.models.input_spec.InputSpec`): what it
takes (sample rate, clip length, frame normalisation, embedding size). The data side asks the model
for it, never the other way round.

This package imports no other part of avcorr (see the rules in :mod:`avcorr`).
"""

from ._registry import create_model, is_model, list_models, load_checkpoint_state, load_state_into, register_model
from .avenet import AVENet
from .avolnet import AVOLNet
from .input_spec import InputSpec
from .ast import AST
from .audioset_attention import AudioSetAttention
from .panns import PANNsCNN
from .sop import SoundOfPixels
from .vggish import VGGish

__all__ = ["AST", "AudioSetAttention", "AVENet", "AVOLNet", "PANNsCNN", "VGGish", "SoundOfPixels", "InputSpec", "create_model", "is_model", "list_models", "load_checkpoint_state", "load_state_into", "register_model"]
