# PANNs CNN14 on AudioSet (multi-label, 527 classes) from PANNs HDF5 packs, the paper's recipe:
#   python -m data_tools.pack_waveforms_to_hdf5 pack --format ast_json --root AS --split bal_train.json --out AS/hdf5s/balanced_train.h5
#   python -m data_tools.pack_waveforms_to_hdf5 pack ... --out AS/hdf5s/eval.h5
#   python -m data_tools.pack_waveforms_to_hdf5 index AS/hdf5s/balanced_train.h5 AS/hdf5s/unbalanced_*.h5 --out AS/indexes/full_train.h5
#   python -m avcorr.train --config panns_cnn14_audioset.py data.root=AS
# (packs written by the reference code's utils/dataset.py, and its indexes, read the same way).
#
# 10 s at 32 kHz, balanced sampling, mixup 1.0, SpecAugment, BCE, batch 32, Adam 1e-3, 600k
# iterations; mAP on the evaluation set selects best.pt (PANNs reports 0.431 for CNN14). The
# reference evaluates every 2,000 iterations; here every epoch (one pass of tagging.sampler's draws).
from .common.tagging import panns_paper

config = panns_paper("panns_cnn14")
config.tagging.format = "hdf5"
config.data.train_split = "indexes/full_train.h5"  # relative to data.root; or a single pack
config.data.val_split = "hdf5s/eval.h5"
config.data.test_split = "hdf5s/eval.h5"
config.tagging.label_csv = "class_labels_indices.csv"  # AudioSet's index,mid,display_name
config.train.epochs = 10
config.train.eval_batch_size = 64
config.data.num_workers = 8
