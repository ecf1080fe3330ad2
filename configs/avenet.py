# AVE-Net quickstart: trains on the embedded synthetic dataset in minutes on a 2-core CPU.
#
# Same architecture, front-end and pair sampling as the paper (see avenet_paper.py), but the conv
# towers are 1/4 wide and frames are 112 px, and the spectrogram uses a 2x longer hop, so that the
# quickstart finishes in about 10 minutes on a laptop. For real data on a GPU use avenet_paper.py
# (or override: model.width=1.0 data.image_size=224 data.audio.hop_length=240 data.audio.n_frames=200).
from .common.avc import avc_paper

config = avc_paper()
config.model.width = 0.25
config.data.image_size = 112
config.data.audio.n_fft = 512
config.data.audio.win_length = 480
config.data.audio.hop_length = 480  # 10 ms hop -> 100 frames per second
config.data.audio.n_frames = 100
config.data.train_pairs_per_clip = 8  # an epoch = 8 random pairs per training clip
config.data.eval_pairs_per_clip = 4
config.optim.lr = 3e-4
config.optim.schedule = "cosine"
config.optim.warmup_steps = 50
config.train.batch_size = 32
config.train.epochs = 8
config.train.grad_clip = 5.0
