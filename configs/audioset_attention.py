# AudioSet tagging with attention over the released embeddings (Kong et al., "Weakly labelled
# AudioSet tagging with attention neural networks", TASLP 2019; Yu et al., EUSIPCO 2018), from the
# HDF5 embedding packs the reference distributes (bal_train.h5, unbal_train.h5, eval.h5:
# x uint8 (N, 10, 128), y bool (N, 527), video_id_list) or packs of your own audio:
#   python -m data_tools.pack_vggish_embeddings --format layout --root DATA --split train \
#       --vggish vggish.pth --pca vggish_pca_params.npz --out AS/bal_train.h5
#   python -m avcorr.train --config audioset_attention.py data.root=AS
#   python -m avcorr.train --config audioset_attention.py data.root=AS model.name=audioset_multi_attention
#   # the full training set (bal + unbal, as the paper; ~4,100 iterations per epoch at batch 500):
#   python -m avcorr.train --config audioset_attention.py data.root=AS \
#       data.train_split=bal_train.h5,unbal_train.h5 train.epochs=13 train.eval_every=1
#
# Heads (model.name): audioset_feature_attention (default; the paper's best, mAP 0.369),
# audioset_multi_attention (0.360), audioset_single_attention (0.337), audioset_avg_pool (0.300),
# audioset_max_pool (0.292). Recipe: see configs/common/tagging.py:audioset_attention_paper
# (batch 500, Adam 1e-3, balanced sampling, 50k iterations). Class names come from
# DATA/class_labels_indices.csv when present (or tagging.label_csv=PATH), else class_0 .. class_526.
# AudioSet has no validation split: as the reference (and panns_cnn14_audioset.py), eval.h5 is
# evaluated during training and selects best.pt.
from .common.tagging import audioset_attention_paper

config = audioset_attention_paper("audioset_feature_attention")
config.data.train_split = "bal_train.h5"  # relative to data.root; several packs comma-separated
config.data.val_split = "eval.h5"
config.data.test_split = "eval.h5"
config.tagging.label_csv = ""  # "" = DATA/class_labels_indices.csv when it exists
config.data.num_workers = 2  # small packs sit in RAM; raise it for unbal_train.h5 (read row by row)
# on bal_train.h5 alone (~22k clips, ~44 iterations per epoch): 50k iterations, evaluated every
# 23 epochs (~1,000 iterations, as the reference)
config.train.epochs = 1200  # bounded by train.max_steps
config.train.eval_every = 23
