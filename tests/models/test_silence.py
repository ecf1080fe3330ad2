"""Digital silence kept out of the input normalisation (avcorr/models/_silence.py) and the models' option."""

import math

import pytest
import torch
from torch import nn

from avcorr.models import create_model
from avcorr.models._silence import SilenceMaskedBatchNorm2d, masked_batch_norm, silent_frames


def _logmel(model, wave):
    return model.frontend(wave).transpose(1, 3)  # PANNs: (B, n_mels, frames, 1), the bands as channels


def test_without_silence_it_is_batchnorm_in_training_and_evaluation():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 10) * 5 + 2
    ref, bn = nn.BatchNorm2d(3), SilenceMaskedBatchNorm2d(3, floor=-100.0, band_dim=2, tol=1.0)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.0)
        ref.bias.uniform_(-1.0, 1.0)
    bn.load_state_dict(ref.state_dict())  # the same keys
    for _ in range(3):
        torch.testing.assert_close(bn(x), ref(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x), ref(x), atol=1e-5, rtol=1e-5)


def test_silent_frames_are_left_out_and_set_to_the_mean():
    torch.manual_seed(0)
    sound = torch.randn(2, 1, 8, 20) * 3 - 2.0  # (B, C, bands, frames), log power of a sound
    padded = torch.cat([sound, torch.full((2, 1, 8, 60), math.log(1e-10))], dim=-1)  # 3/4 digital silence
    bn = SilenceMaskedBatchNorm2d(1, floor=math.log(1e-10), band_dim=2, tol=0.23)
    with torch.no_grad():
        bn.bias.fill_(0.25)
    y = bn(padded)
    # the sound is normalised by its own statistics, whatever the amount of padding around it
    torch.testing.assert_close(y[..., :20], bn(sound), atol=1e-5, rtol=1e-5)
    assert y[..., :20].mean().item() == pytest.approx(0.25, abs=1e-5)
    assert y[..., :20].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
    assert torch.all(y[..., 20:] == 0.25)
    # plain BN squeezes the sound into a fraction of the range: the problem this solves
    squeezed = nn.BatchNorm2d(1)(padded)[..., :20].std().item()
    assert squeezed < 0.5


def test_running_statistics_come_from_the_sound_only():
    torch.manual_seed(1)
    sound = torch.randn(4, 1, 8, 30) * 2 + 5.0
    padded = torch.cat([sound, torch.full((4, 1, 8, 90), -100.0)], dim=-1)
    bn = SilenceMaskedBatchNorm2d(1, floor=-100.0, band_dim=2, tol=1.0, momentum=1.0)
    bn(padded)
    assert bn.running_mean.item() == pytest.approx(sound.mean().item(), abs=1e-4)
    assert bn.running_var.item() == pytest.approx(sound.var().item(), rel=1e-4)
    bn.eval()
    assert torch.all(bn(padded)[..., 30:] == bn.bias)


def test_silent_frames_need_every_band_at_the_floor():
    x = torch.full((1, 1, 4, 3), -100.0)
    x[0, 0, 2, 1] = -50.0  # one band of frame 1 sounds
    x[0, 0, :, 2] = -99.5  # within the tolerance
    keep = ~silent_frames(x, -100.0, band_dim=2, tol=1.0)
    assert keep.shape == (1, 1, 1, 3)
    assert keep.flatten().tolist() == [False, True, False]
    with pytest.raises(ValueError, match="band_dim"):
        SilenceMaskedBatchNorm2d(1, floor=0.0, band_dim=0, tol=1.0)


def test_gradients_flow_through_the_kept_frames_only():
    x = torch.cat([torch.randn(2, 1, 4, 5), torch.full((2, 1, 4, 5), -100.0)], dim=-1).requires_grad_()
    bn = nn.BatchNorm2d(1)
    masked_batch_norm(bn, x, ~silent_frames(x, -100.0, 2, 1.0)).pow(2).sum().backward()
    assert x.grad[..., 5:].abs().max().item() == 0.0
    assert x.grad[..., :5].abs().max().item() > 0.0
    assert bn.weight.grad is not None and bn.bias.grad is not None


def test_panns_option_masks_zero_padding_and_keeps_checkpoint_keys():
    torch.manual_seed(0)
    plain = create_model("panns_cnn14", num_classes=3, width=0.0625, clip_seconds=1.0)
    masked = create_model("panns_cnn14", num_classes=3, width=0.0625, clip_seconds=1.0, mask_silence=True)
    assert list(masked.state_dict()) == list(plain.state_dict())
    masked.load_state_dict(plain.state_dict())
    wave = torch.randn(2, 32000) * 0.1
    masked.eval(), plain.eval()
    torch.testing.assert_close(masked(wave)["logits"], plain(wave)["logits"])  # no silence: the same model
    masked.train()
    padded = torch.cat([wave[:, :12000], torch.zeros(2, 20000)], dim=1)
    longer = torch.cat([wave[:, :12000], torch.zeros(2, 52000)], dim=1)
    feats = _logmel(masked, padded)
    keep = ~silent_frames(feats, -100.0, band_dim=1, tol=1.0)
    assert 0.5 < 1 - keep.float().mean().item() < 0.7  # the padding is found
    y = masked.bn0(feats)
    assert torch.all(y.masked_select(~keep.expand_as(y)) == 0)
    # each band normalised by the sound's statistics, whatever the amount of padding
    kept = y.masked_select(keep.expand_as(y)).view(2, 64, -1).transpose(0, 1).reshape(64, -1)
    torch.testing.assert_close(kept.mean(1), torch.zeros(64), atol=1e-4, rtol=0)
    torch.testing.assert_close(kept.std(1, unbiased=False), torch.ones(64), atol=1e-3, rtol=0)
    torch.testing.assert_close(masked.bn0(_logmel(masked, longer))[:, :, :60], y[:, :, :60], atol=1e-4, rtol=1e-4)
    assert plain.train().bn0(feats)[:, :, :30].std(dim=(0, 2, 3)).max().item() < 0.7  # without: squeezed
    with pytest.raises(ValueError, match="mask_silence and top_db"):
        create_model("panns_cnn14", num_classes=3, width=0.0625, mask_silence=True, top_db=80.0)


@pytest.mark.parametrize("name", ["avenet", "avolnet"])
def test_av_models_option(name):
    kw = dict(width=0.0625, sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_frames=100, n_mels=32)
    plain, masked = create_model(name, **kw), create_model(name, mask_silence=True, **kw)
    assert list(masked.state_dict()) == list(plain.state_dict())
    assert isinstance(masked.audio_bn0, SilenceMaskedBatchNorm2d) and type(plain.audio_bn0) is nn.BatchNorm2d
    wave = torch.randn(3, 16000) * 0.1
    wave[:, 6000:] = 0.0
    masked.train()
    feats = masked.frontend(wave)
    y = masked.audio_bn0(feats)
    keep = ~silent_frames(feats, math.log(1e-10), band_dim=2, tol=0.23)
    assert keep[..., :35].all() and not keep[..., 40:].any()  # the zeros (and the frames past the clip's end)
    assert torch.all(y[..., 40:] == 0)
    kept = y.masked_select(keep.expand_as(y))
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert kept.std().item() == pytest.approx(1.0, abs=1e-3)


def test_avenet_with_an_audio_backbone_takes_the_option_there():
    with pytest.raises(ValueError, match="audio_backbone_kwargs"):
        create_model("avenet", width=0.0625, audio_backbone="test_panns", mask_silence=True)
    m = create_model("avenet", width=0.0625, audio_backbone="test_panns", sample_rate=32000,
                     audio_backbone_kwargs={"mask_silence": True})
    assert isinstance(m.audio.model.bn0, SilenceMaskedBatchNorm2d)
