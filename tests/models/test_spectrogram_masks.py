"""SpecAugment for the correspondence models' spectrogram (avc_audio.SpectrogramMasks, AVE-Net's spec_augment)."""

import pytest
import torch

from avcorr.models import create_model
from avcorr.models.avc_audio import SpectrogramMasks

KW = dict(width=0.0625, sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_frames=300, n_mels=64)


def test_masks_are_stripes_of_whole_bands_and_frames_in_training_only():
    torch.manual_seed(0)
    masks = SpectrogramMasks(n_bands=64, n_frames=300)
    x = torch.randn(16, 1, 64, 300) + 5.0  # nothing is 0 before masking
    y = masks.train()(x)
    zero = y == 0
    assert zero.any()
    cols = zero.all(dim=2)  # (B, 1, frames): whole time stripes
    rows = zero.all(dim=3)  # (B, 1, bands): whole band stripes
    assert torch.equal(zero, cols.unsqueeze(2) | rows.unsqueeze(3))  # every masked cell is in a stripe
    assert cols.sum(dim=-1).max().item() <= 2 * 18 and rows.sum(dim=-1).max().item() <= 2 * 7
    assert torch.equal(y[~zero], x[~zero])
    assert torch.equal(masks.eval()(x), x)


def test_avenet_option_keeps_the_state_dict_and_evaluation():
    plain, masked = create_model("avenet", **KW), create_model("avenet", spec_augment=True, **KW)
    assert list(masked.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(masked.state_dict())
    wave = torch.randn(3, 48000) * 0.1
    plain.eval(), masked.eval()
    torch.testing.assert_close(masked.encode_audio(wave), plain.encode_audio(wave))
    masked.train()
    torch.manual_seed(1)
    a = masked.audio_masks(masked.audio_bn0(masked.frontend(wave)))
    assert (a == 0).float().mean().item() > 0.01
    with pytest.raises(ValueError, match="audio_backbone_kwargs"):
        create_model("avenet", width=0.0625, audio_backbone="test_panns", spec_augment=True)
