"""Shared pieces of the sound-localization configs (AVOL-Net, the EZ-VSL-style contrastive localizer)."""

from avcorr.config import Config


def localization_quickstart(model: str) -> Config:
    """``model`` ("avolnet" or "ezvsl") at CPU quickstart sizes: towers 1/8 wide, 128 px frames (an
    8 x 8 map at stride 16), 1 s of 48 kHz audio as a 129 x 100 log-spectrogram (256-point FFT, 10 ms
    hop), 128-d embeddings, Adam 1e-3 with a cosine schedule, 10 epochs of 8 positives per training
    clip, batch 32. Negatives are the audio of other clips of the batch (no labels used)."""
    cfg = Config(task="localization")
    cfg.model.name = model
    cfg.model.width = 0.125
    cfg.model.embed_dim = 128
    cfg.data.image_size = 128
    cfg.data.audio.sample_rate = 48000
    cfg.data.audio.seconds = 1.0
    cfg.data.audio.n_fft = 256  # 129 frequency bins
    cfg.data.audio.win_length = 256
    cfg.data.audio.hop_length = 480  # 10 ms hop -> 100 frames per second
    cfg.data.audio.n_frames = 100
    cfg.data.audio.gain_jitter = 0.2
    cfg.localization.train_pairs_per_clip = 8  # an epoch = 8 random positives per training clip
    cfg.optim.name = "adam"
    cfg.optim.lr = 1e-3
    cfg.optim.weight_decay = 1e-5
    cfg.optim.schedule = "cosine"
    cfg.optim.warmup_steps = 50
    cfg.train.batch_size = 32
    cfg.train.eval_batch_size = 64
    cfg.train.epochs = 10
    cfg.train.channels_last = True  # faster on CPU too
    cfg.train.grad_clip = 5.0
    return cfg
