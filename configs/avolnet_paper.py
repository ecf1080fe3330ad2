# AVOL-Net with the paper's objective (raw scalar products, one negative per positive, stride-16 maps)
# at the quickstart sizes of configs/common/localization.py. The paper's own sizes (a GPU job):
#   python -m avcorr.train --config avolnet_paper.py data.root=/path/to/ROOT model.width=1.0 \
#     data.image_size=224 data.audio.n_fft=512 data.audio.win_length=480 data.audio.hop_length=240 \
#     data.audio.n_frames=200 optim.lr=1e-4 optim.schedule=constant train.batch_size=64 train.epochs=100
# i.e. full-width towers, 224 px frames -> a 14 x 14 map, 1 s of 48 kHz audio as a 257 x 200
# log-spectrogram, 128-d embeddings, Adam at 1e-4, half positive / half negative pairs.
from .common.localization import localization_quickstart

config = localization_quickstart("avolnet")
