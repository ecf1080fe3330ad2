# Sound of Pixels (Zhao et al., ECCV 2018) at the paper's / public code's settings (a GPU job):
#   python -m avcorr.train --config sop_paper.py data.root=/path/to/ROOT
#   (4 GPUs x 20 = the paper's batch of 80: torchrun --nproc_per_node 4 -m avcorr.train --config sop_paper.py ...)
# The paper starts the frame net from ImageNet: give a local torchvision ResNet-18 weight file with
#   model.checkpoint_path=/path/to/resnet18-f37072fd.pth
from avcorr.config import Config

config = Config(task="separation")
config.model.name = "sop"  # 7-level U-Net (ngf 64), dilated ResNet-18, K = 32 channels

a = config.data.audio
a.sample_rate = 11025
a.seconds = 65535 / 11025  # 65535 samples, ~5.94 s
a.n_fft = 1022  # 512 frequency bins
a.win_length = 1022
a.hop_length = 256  # 256 frames
a.n_frames = 256  # (informational: the task derives the frames from the window)
a.gain_jitter = 0.5  # random volume 0.5-1.5 per source while training

config.separation.num_mix = 2  # N sources, each scaled by 1/N
config.separation.warp_bins = 256  # log-frequency warp 512 -> 256 bins
config.separation.mask = "binary"  # BCE on |S_n| > 0.5 |X|, weighted by clamp(log1p(|X|), 1e-3, 10)
config.separation.weighted_loss = True
config.separation.frames_per_clip = 3  # max-pooled over time
config.separation.frame_stride = 3.0  # 24 frames at 8 fps
config.data.image_size = 224
config.separation.train_mixtures_per_clip = 100  # the public code's dup_trainset: mixtures per clip per epoch
config.separation.eval_mixtures_per_clip = 1  # one deterministic mixture per clip
config.data.num_workers = 8

# SGD, lr 1e-3 for the sound net, synthesizer and the frame net's 3x3 conv, 1e-4 for the ResNet trunk
config.optim.name = "sgd"
config.optim.lr = 1e-3
config.optim.momentum = 0.9
config.optim.weight_decay = 1e-4
config.optim.lr_mult = {"frame_net.features.": 0.1}
config.optim.schedule = "step"
config.optim.step_epochs = [40, 80]
config.optim.step_gamma = 0.1

config.train.batch_size = 20  # per process
config.train.eval_batch_size = 20
config.train.epochs = 100
config.train.amp = True
config.train.channels_last = True
