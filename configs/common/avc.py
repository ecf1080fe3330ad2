"""Shared pieces for audio-visual correspondence experiments (Objects that Sound, ECCV 2018)."""

from avcorr.config import Config


def avc_paper() -> Config:
    """AVE-Net at the paper's settings: 224 px frames, 1 s of 48 kHz audio as a 257 x 200 log-spectrogram,
    full-width towers, 128-d embeddings, Adam. Pairs are half positive, negatives from other clips.
    """
    cfg = Config(task="avc")
    cfg.model.name = "avenet"
    cfg.data.image_size = 224
    cfg.data.audio.sample_rate = 48000
    cfg.data.audio.seconds = 1.0
    cfg.data.audio.n_fft = 512  # 257 frequency bins
    cfg.data.audio.win_length = 480  # 10 ms
    cfg.data.audio.hop_length = 240  # 5 ms -> 200 frames per second
    cfg.data.audio.n_frames = 200
    cfg.data.audio.gain_jitter = 0.2
    cfg.avc.negatives = "clip"
    cfg.optim.name = "adam"
    cfg.optim.lr = 1e-4
    cfg.optim.weight_decay = 1e-5
    cfg.train.batch_size = 64
    cfg.train.epochs = 100
    cfg.train.amp = True
    return cfg
