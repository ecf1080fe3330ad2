# Sound of Pixels quickstart: trains on the embedded synthetic dataset on a 2-core CPU.
#
# Same method as sop_paper.py (mix-and-separate, N = 2, 11025 Hz, n_fft 1022 / hop 256, log-frequency
# warp, binary masks with the weighted BCE, U-Net + dilated ResNet-18 + inner-product synthesizer), but
#  * sop_small: U-Net ngf 16 and a 1/8-wide ResNet-18 (same structure);
#  * a 32767-sample window (~2.97 s, 128 STFT frames) - the synthetic clips last 3 s - warped to 128 bins;
#  * 96 px frames, 3 frames 1 s apart;
#  * Adam at 1e-3 for everything: the paper's lower frame-net rate (optim.lr_mult) is for fine-tuning
#    ImageNet weights, and this frame net starts from scratch.
# Paper sizes: python -m avcorr.train --config sop_paper.py
import copy

from .sop_paper import config as _paper

config = copy.deepcopy(_paper)
config.model.name = "sop_small"

config.data.audio.seconds = 32767 / 11025  # 128 STFT frames
config.data.audio.n_frames = 128
config.separation.warp_bins = 128
config.data.image_size = 96
config.separation.frame_stride = 1.0
config.separation.train_mixtures_per_clip = 4  # an epoch = 4 random mixtures per training clip
config.separation.eval_mixtures_per_clip = 1
config.data.num_workers = 2

config.optim.name = "adam"
config.optim.lr = 1e-3
config.optim.weight_decay = 0.0
config.optim.lr_mult = {}
config.optim.schedule = "step"
config.optim.step_epochs = [10]  # lr / 10 for the last 4 epochs
config.optim.step_gamma = 0.1

config.train.batch_size = 16
config.train.eval_batch_size = 16
config.train.epochs = 14  # 14 x 1280 mixtures: ~20 min on an idle 2-core CPU
config.train.eval_every = 2  # BSS Eval of the 80 validation mixtures costs ~20 s
config.train.grad_clip = 5.0
