# AVE-Net quickstart: trains on the embedded synthetic dataset (or your own, data.root=...) in minutes
# on a 2-core CPU.
#
# The paper's architecture (two VGG-style towers, 128-d embeddings, a distance -> correspondence head)
# at 1/8 width on 96 px frames, with four departures from the paper, each chosen on the development
# families (embedded, clutter) and kept for the held-out ones (see docs/data.md "Dataset families" and
# experiments/RESULTS.md):
#  * the sound is matched to the frame's BEST CELL (model visual_pool="cells": the frame head applied
#    to every cell of the vision tower's map, the same weights as the paper's head on the pooled map,
#    as AVOL-Net / EZ-VSL do for localization) instead of one embedding of the whole frame: on clutter
#    (small objects among silent ones) val avc_acc 0.773 at epoch 10 instead of a 0.651 peak, on the
#    held-out wide test 0.872 +- 0.013 instead of 0.832 +- 0.021 (3 seeds). Retrieval indexes the
#    max-pooled cells. The paper's pooled frame embedding: "model.kwargs={'visual_pool': 'max'}";
#  * the in-batch contrastive objective (avc.loss="contrastive": symmetric InfoNCE over the batch plus
#    the paper's head trained on in-batch negatives). The paper's pair cross-entropy
#    (avc.loss="pairs", as avenet_paper.py) stayed at chance for 6 of 10 epochs on clutter;
#  * 3 s of audio around the frame instead of 1 s (as the recent localization work, LVS / EZ-VSL):
#    a short sound in a long clip (a spoken word, an intermittent source) is inside the window;
#  * a 64-band log-mel spectrogram of 16 kHz audio (25 ms windows, 10 ms hop: 64 x 300) instead of the
#    linear 48 kHz spectrogram: the same input whatever the recording's rate (8 kHz speech to 48 kHz),
#    and a third of the audio tower's cost per second of audio.
# The paper's own settings: avenet_paper.py (a GPU job).
from .common.avc import avc_paper

config = avc_paper()
config.model.width = 0.125
config.model.kwargs = {"visual_pool": "cells"}  # a model.kwargs override replaces the whole dict: keep it there
config.data.image_size = 96
config.data.audio.sample_rate = 16000
config.data.audio.seconds = 3.0
config.data.audio.n_fft = 512
config.data.audio.win_length = 400  # 25 ms
config.data.audio.hop_length = 160  # 10 ms -> 300 frames in 3 s
config.data.audio.n_frames = 300
config.data.audio.n_mels = 64
config.avc.train_pairs_per_clip = 8  # an epoch = 8 random positives per training clip
config.avc.eval_pairs_per_clip = 4  # evaluation: half positive, half negative pairs, as the paper
config.avc.loss = "contrastive"
config.avc.temperature = 0.07
config.optim.lr = 1e-3
config.optim.schedule = "cosine"
config.optim.warmup_steps = 50
config.train.batch_size = 32
config.train.epochs = 10
config.train.channels_last = True  # ~1.7x faster on CPU too
config.train.grad_clip = 5.0
