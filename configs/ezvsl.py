# The contrastive sound localizer (EZ-VSL / LVS style: multiple-instance InfoNCE over the batch,
# max-pooled positives, temperature 0.03) at the quickstart sizes of configs/common/localization.py
# (the same towers, audio and schedule as avolnet_paper.py, so the classic and the current method
# compare on one setup: only model.name differs). The registered ezvsl model blends its map with an
# object prior at inference as EZ-VSL's OGL does (0.4 * audio-visual + 0.6 * object map, the object
# map being this model's own mean vision activation); model.kwargs="{'prior_alpha': 1.0}" gives the
# plain map (on the development family `clutter` the blend took test fixed/ciou@0.5 from 0.07 to 0.25).
# EZ-VSL's own runs (ImageNet-pretrained ResNet-18, which avcorr does not download) use Adam 1e-4,
# batch 128, temperature 0.03, 224 px.
from .common.localization import localization_quickstart

config = localization_quickstart("ezvsl")
