# PANNs CNN14 on AGS, the seeds' AGS experiments (PANNs vs AST; accuracy and mAP are both reported):
#   python -m data_tools.ags_labels AGS_label.xlsx New_label.xlsx --out AGS --splits train=0.8,val=0.1,test=0.1
#   (put each split's audio slices in AGS/<split>/audio/<name>.wav)
#   python -m avcorr.train --config panns_cnn14_ags.py data.root=AGS model.checkpoint_path=/path/Cnn14_mAP=0.431.pth
#   python -m avcorr.evaluate --checkpoint runs/panns_cnn14_ags/checkpoints/best.pt --split test
#
# Settings of the seeds' pann/scripts/4_train.sh: 32 kHz log-mel (window 1024, hop 320, 64 bins,
# 50-14000 Hz), clip-level BCE, balanced sampling, mixup, batch 32, lr 1e-4, stop after 20,000
# iterations; fine-tuned from the AudioSet CNN14 (model.checkpoint_path; its 527-class head is
# replaced). Without a checkpoint it trains from scratch. GPU-sized: see panns_folder.py for a CPU run.
from .common.tagging import panns_paper

config = panns_paper("panns_cnn14")
config.tagging.format = "layout"
config.tagging.label_mode = "multi"  # the seeds' clip BCE; "single" trains softmax + cross-entropy instead
config.tagging.sampler = "balanced"
config.tagging.mixup_alpha = 1.0
config.model.kwargs = {"clip_seconds": 10.0, "spec_augment": True}
config.optim.lr = 1e-4
config.train.batch_size = 32
config.train.epochs = 1000  # bounded by max_steps
config.train.max_steps = 20_000
config.data.num_workers = 8
