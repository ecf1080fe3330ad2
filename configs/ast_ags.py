# AST on AGS, the seeds' AGS experiments (PANNs vs AST; accuracy and mAP are both reported):
#   python -m data_tools.ags_labels AGS_label.xlsx New_label.xlsx --out AGS --splits train=0.8,val=0.1,test=0.1
#   python -m avcorr.train --config ast_ags.py data.root=AGS model.checkpoint_path=/path/deit_base_distilled_patch16_384.pth
# or from AST json datafiles, as the seeds prepared them (python -m data_tools.make_ast_json / gen_weight_file):
#   ... tagging.format=ast_json data.train_split=datafiles/train-55-3.json data.val_split=datafiles/eval-55-3.json
#       tagging.label_csv=class_labels_ast-3.csv tagging.weight_file=datafiles/train-55-3_weight.csv
#
# Settings of the seeds' ast/egs/audioset/run.sh: ImageNet-pretrained AST (DeiT-B distilled 384), 128 x 1024
# fbank with AudioSet's normalisation (-4.27 / 4.57; data_tools/fbank_stats.py computes AGS's own),
# patches 16 x 16 with stride 10, SpecAugment freqm 48 / timem 192, weighted sampling ("bal"), BCE,
# batch 12, lr 1e-3 halved every epoch from epoch 2, 40 epochs (the seeds also ran lr 1e-4 and 1e-5).
# Their mixup=0.5 mixes half of the clips with lambda ~ Beta(10, 10); here every pair is mixed
# (tagging.mixup_alpha=10). GPU-sized: see ast_folder.py for a CPU run.
from .common.tagging import ast_paper

config = ast_paper("ast_base")
config.tagging.format = "layout"
config.tagging.label_mode = "multi"  # the seeds' BCE
config.tagging.sampler = "weighted"
config.optim.lr = 1e-3
config.optim.schedule = "step"
config.optim.step_epochs = list(range(2, 40))
config.optim.step_gamma = 0.5
config.train.epochs = 40
config.train.batch_size = 12
config.data.num_workers = 8
