# PANNs CNN14 on a folder-per-class dataset (ROOT/<class>/<file>, or ROOT/{train,val,test}/<class>/<file>):
#   python -m avcorr.train --config panns_folder.py data.root=DIR
#
# CPU-sized from-scratch defaults: the CNN14 layout (six double-conv blocks) at 1/8 width, 3 s windows
# of the 32 kHz 64-bin log-mel, SpecAugment, softmax + cross-entropy (single-label folders), dropout
# 0.1 after each block and 0.2 in the head (CNN14: 0.2 / 0.5; at 1/8 width those left the model
# under-fitting and slow to start on the development families: val acc 0.64-0.70 instead of 0.23-0.58
# after 110-220 steps on ltcommands, experiments/RESULTS.md), Adam 1e-3
# with a cosine schedule over 3,000 optimiser steps whatever the dataset's size (train.epochs=0
# train.max_steps=3000; a few minutes on 2 CPU cores). Chosen on real recordings (the ltcommands
# development family, docs/data.md); figures on held-out real recordings in experiments/RESULTS.md.
# For audio recorded at a lower rate than 32 kHz or padded with digital silence,
# 'model.kwargs={"clip_seconds": 3.0, "spec_augment": True, "dropout": 0.1, "head_dropout": 0.2, "top_db": 80.0}' clamps each clip's
# log-mel to 80 dB below its peak (librosa's default); not the default: it made no clear difference
# on the development family; "mask_silence": True instead keeps zero padding out of bn0's statistics
# (docs/tagging.md; no difference at the end of training on the development family either).
#
# Fine-tuning the released AudioSet CNN14 (GPU), as PANNs' transfer recipe does:
#   model.width=1.0 model.checkpoint_path=/path/Cnn14_mAP=0.431.pth optim.lr=1e-4 tagging.mixup_alpha=1.0
#   'model.kwargs={"clip_seconds": 10.0}' (CNN14's own dropout) train.batch_size=32 train.epochs=10 train.max_steps=0
from .common.tagging import folder_from_scratch

config = folder_from_scratch("panns_cnn14")
config.model.width = 0.125
config.model.kwargs = {"clip_seconds": 3.0, "spec_augment": True, "dropout": 0.1, "head_dropout": 0.2}
config.optim.warmup_steps = 20
