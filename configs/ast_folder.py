# AST on a folder-per-class dataset, the seeds' cat/ dog/ pig/ use case (a clip copied into two class
# folders has both labels):
#   python -m avcorr.train --config ast_folder.py data.root=DIR
#   python -m avcorr.recognize clip.wav --checkpoint runs/ast_folder/checkpoints/best.pt
#
# CPU-sized from-scratch defaults: a 4-layer AST at the DeiT-Ti width (192-d, 3 heads) on a 64-bin
# Kaldi fbank of 3 s (300 frames) cut into non-overlapping 16 x 16 patches (4 x 18 = 72 patches);
# softmax + cross-entropy unless a clip sits in two folders; AdamW 1e-3, cosine schedule over 3,000
# optimiser steps (train.epochs=0 train.max_steps=3000). On the synthetic dataset made folder-per-class it
# reaches val acc >= 0.9 in minutes on 2 CPU cores; on a few hundred real recordings a transformer from
# scratch does not learn in this budget (experiments/RESULTS.md): start it from released weights.
#
# The seeds' fine-tuning (GPU) starts from the released AudioSet AST and 5 s clips:
#   model.name=ast_base model.checkpoint_path=/path/audioset_10_10_0.4593.pth
#   'model.kwargs={"n_mels": 128, "n_frames": 512, "fstride": 10, "tstride": 10, "freqm": 24, "timem": 96}'
#   optim.name=adam optim.lr=1e-5 optim.weight_decay=5e-7 optim.warmup_steps=0 train.batch_size=12 train.epochs=25 train.max_steps=0
# and the fbank statistics of the data (python -m data_tools.fbank_stats --root DIR --format folder) as
#   model.kwargs norm_mean / norm_std (default: AudioSet's -4.27 / 4.57).
from .common.tagging import folder_from_scratch

config = folder_from_scratch("ast_tiny")
config.model.kwargs = {"depth": 4, "n_mels": 64, "n_frames": 300, "fstride": 16, "tstride": 16, "freqm": 12, "timem": 48}
config.optim.name = "adamw"
config.optim.weight_decay = 0.05
config.optim.warmup_steps = 40
