# AVOL-Net quickstart ("Objects that Sound", ECCV 2018): sound localization on the embedded
# synthetic dataset within 15 minutes on a 2-core CPU (800 steps). The contrastive localizer is the same
# config with ONE switch: model.name=ezvsl (or --config ezvsl.py).
#
# Paper settings (a GPU job on real data):
#   python -m avcorr.train --config avolnet.py data.root=/path/to/ROOT model.width=1.0 \
#     data.image_size=224 data.audio.n_fft=512 data.audio.win_length=480 data.audio.hop_length=240 \
#     data.audio.n_frames=200 optim.lr=1e-4 optim.schedule=constant train.batch_size=64 train.epochs=100
# i.e. full-width towers, 224 px frames -> a 14 x 14 map, 1 s of 48 kHz audio as a 257 x 200
# log-spectrogram, 128-d embeddings, Adam at 1e-4, half positive / half negative pairs.
# EZ-VSL's own runs (ImageNet-pretrained ResNet-18, which avcorr does not download) use
# Adam 1e-4, batch 128, temperature 0.03, 224 px; here both methods share the towers above.
#
# Quickstart: towers 1/8 wide, 128 px frames (an 8 x 8 map), a 129 x 100 spectrogram (256-point
# FFT, 10 ms hop), lr 1e-3 with a cosine schedule.
from avcorr.config import Config

config = Config(task="localization")
config.model.name = "avolnet"  # "ezvsl" = the contrastive (EZ-VSL-style) localizer, same towers
config.model.width = 0.125
config.model.embed_dim = 128
config.data.image_size = 128
config.data.audio.sample_rate = 48000
config.data.audio.seconds = 1.0
config.data.audio.n_fft = 256  # 129 frequency bins
config.data.audio.win_length = 256
config.data.audio.hop_length = 480  # 10 ms hop -> 100 frames per second
config.data.audio.n_frames = 100
config.data.audio.gain_jitter = 0.2
config.data.negatives = "clip"  # AVOL-Net's negatives: audio of another clip (in-batch), no labels used
config.data.train_pairs_per_clip = 8  # an epoch = 8 random positives per training clip
config.optim.name = "adam"
config.optim.lr = 1e-3
config.optim.weight_decay = 1e-5
config.optim.schedule = "cosine"
config.optim.warmup_steps = 50
config.train.batch_size = 32
config.train.eval_batch_size = 64
config.train.epochs = 10  # 800 steps: about 10 minutes on an idle 2-core CPU (estimated, not measured idle)
config.train.channels_last = True  # faster on CPU too
config.train.grad_clip = 5.0
