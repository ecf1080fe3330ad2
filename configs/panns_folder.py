# PANNs CNN14 on a folder-per-class dataset (ROOT/<class>/<file>, or ROOT/{train,val,test}/<class>/<file>):
#   python -m avcorr.train --config panns_folder.py data.root=DIR
#
# CPU-sized from-scratch defaults: the CNN14 layout (six double-conv blocks) at 1/8 width, 3 s windows
# of the 32 kHz 64-bin log-mel, SpecAugment, softmax + cross-entropy (single-label folders), Adam 1e-3
# with a cosine schedule. On the synthetic dataset made folder-per-class
# (python -m data_tools.make_folder_dataset) it reaches val acc >= 0.9 in a few minutes on 2 CPU cores.
#
# Fine-tuning the released AudioSet CNN14 (GPU), as PANNs' transfer recipe does:
#   model.width=1.0 model.checkpoint_path=/path/Cnn14_mAP=0.431.pth optim.lr=1e-4 data.mixup_alpha=1.0
#   'model.kwargs={"clip_seconds": 10.0}' train.batch_size=32
from .common.tagging import tagging_config

config = tagging_config("panns_cnn14")
config.data.format = "folder"
config.data.val_fraction = 0.1  # used only when DIR has no train/ val/ sub-folders
config.model.width = 0.125
config.model.kwargs = {"clip_seconds": 3.0, "spec_augment": True}
config.optim.lr = 1e-3
config.optim.schedule = "cosine"
config.optim.warmup_steps = 20
config.train.batch_size = 16
config.train.eval_batch_size = 32
config.train.epochs = 10
config.train.grad_clip = 5.0
config.data.num_workers = 1
