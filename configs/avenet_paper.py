# AVE-Net exactly at the paper's sizes (a GPU job): 224 px, 257x200 spectrogram, full width.
#   python -m avcorr.train --config avenet_paper.py data.root=/path/to/ROOT
from .common.avc import avc_paper

config = avc_paper()
config.train.channels_last = True
