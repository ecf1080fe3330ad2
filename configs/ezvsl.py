# The contrastive sound localizer (EZ-VSL / LVS style: multiple-instance InfoNCE over the batch,
# max-pooled positives, temperature 0.03) at the quickstart sizes of avolnet.py. It differs from
# avolnet.py in ONE setting, model.name, so the classic and the current method compare on the same
# data, towers and schedule. The registered ezvsl model blends its map with an object prior at
# inference as EZ-VSL's OGL does (0.4 * audio-visual + 0.6 * object map, the object map being this
# model's own mean vision activation); model.kwargs="{'prior_alpha': 1.0}" gives the plain map.
import copy

from .avolnet import config as _avolnet

config = copy.deepcopy(_avolnet)
config.model.name = "ezvsl"
