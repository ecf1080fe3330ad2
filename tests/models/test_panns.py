"""PANNs CNNs: the torchlibrosa log-mel front-end, reference checkpoints, every variant, AVE-Net backbone."""

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio

from avcorr.models import create_model, list_models
from avcorr.models.tagging_audio import (PannsLogMel, SpecAugment, do_mixup, sample_mixup_lambda,
                                           slaney_mel_filterbank)

PANNS_VARIANTS = ["panns_cnn6", "panns_cnn10", "panns_cnn14", "panns_cnn14_16k", "test_panns"]


# ---------------------------------------------------------------------------------------------
# an independent reference: torchlibrosa's arithmetic (conv STFT with a DFT matrix, librosa mel
# filters = torchaudio's Slaney filters) and the reference Cnn forward, written from a state dict


def _ref_stft_kernels(n_fft):
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann (librosa get_window fftbins=True)
    dft = np.exp(-2j * np.pi * np.outer(n, n) / n_fft)  # W[n, k]
    cols = dft[:, : n_fft // 2 + 1] * window[:, None]
    return (torch.tensor(np.real(cols).T[:, None, :], dtype=torch.float32),
            torch.tensor(np.imag(cols).T[:, None, :], dtype=torch.float32))


def _ref_melw(sr, n_fft, n_mels, fmin, fmax):
    return torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney", mel_scale="slaney")


def _ref_logmel(wave, state, n_fft, hop):
    x = F.pad(wave[:, None, :], (n_fft // 2, n_fft // 2), mode="reflect")
    real = F.conv1d(x, state["spectrogram_extractor.stft.conv_real.weight"], stride=hop)
    imag = F.conv1d(x, state["spectrogram_extractor.stft.conv_imag.weight"], stride=hop)
    power = (real ** 2 + imag ** 2)[:, None].transpose(2, 3)  # (B, 1, T, F)
    mel = power @ state["logmel_extractor.melW"]
    return 10.0 * torch.log10(mel.clamp_min(1e-10))


def _bn(x, s, p):
    return F.batch_norm(x, s[p + ".running_mean"], s[p + ".running_var"], s[p + ".weight"], s[p + ".bias"], False, 0.0, 1e-5)


def _ref_forward(wave, s, n_fft, hop, n_blocks, n_convs, last_pool):
    x = _ref_logmel(wave, s, n_fft, hop)
    x = _bn(x.transpose(1, 3), s, "bn0").transpose(1, 3)
    for i in range(1, n_blocks + 1):
        for j in range(1, n_convs + 1):
            w = s[f"conv_block{i}.conv{j}.weight"]
            x = F.relu(_bn(F.conv2d(x, w, padding=w.shape[-1] // 2), s, f"conv_block{i}.bn{j}"))
        x = F.avg_pool2d(x, last_pool if i == n_blocks else (2, 2))
    x = x.mean(dim=3)
    x = x.max(dim=2).values + x.mean(dim=2)
    emb = F.relu(F.linear(x, s["fc1.weight"], s["fc1.bias"]))
    return emb, torch.sigmoid(F.linear(emb, s["fc_audioset.weight"], s["fc_audioset.bias"]))


def _official_state(channels, n_convs, kernel, n_classes, sr, n_fft, n_mels, fmin, fmax, seed=0, device=None):
    """A reference-layout Cnn state dict (keys and shapes of audioset_tagging_cnn pytorch/models.py)."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, pos=False, scale=0.1, shift=0.0):  # (no arithmetic on meta tensors: it imports torch._dynamo)
        if device == "meta":
            return torch.empty(*shape, device="meta")
        v = torch.randn(*shape, generator=g) * scale
        return v.abs() + 0.5 if pos else v + shift

    s = {}

    def bn(p, c):
        s.update({p + ".weight": t(c, shift=1.0), p + ".bias": t(c), p + ".running_mean": t(c), p + ".running_var": t(c, pos=True),
                  p + ".num_batches_tracked": torch.tensor(7) if device != "meta" else torch.empty((), device="meta")})

    real, imag = _ref_stft_kernels(n_fft)
    melw = _ref_melw(sr, n_fft, n_mels, fmin, fmax)
    s["spectrogram_extractor.stft.conv_real.weight"] = real if device != "meta" else real.to("meta")
    s["spectrogram_extractor.stft.conv_imag.weight"] = imag if device != "meta" else imag.to("meta")
    s["logmel_extractor.melW"] = melw if device != "meta" else melw.to("meta")
    bn("bn0", n_mels)
    c_in = 1
    for i, c in enumerate(channels, 1):
        for j in range(1, n_convs + 1):
            s[f"conv_block{i}.conv{j}.weight"] = t(c, c_in if j == 1 else c, kernel, kernel, scale=0.2 / kernel)
            bn(f"conv_block{i}.bn{j}", c)
        c_in = c
    s["fc1.weight"], s["fc1.bias"] = t(c_in, c_in), t(c_in)
    s["fc_audioset.weight"], s["fc_audioset.bias"] = t(n_classes, c_in), t(n_classes)
    return s


# ---------------------------------------------------------------------------------------------
# front-end


@pytest.mark.parametrize("sr,n_fft,fmax", [(32000, 1024, 14000), (16000, 512, 8000)])
def test_mel_filterbank_is_slaney_as_torchaudio(sr, n_fft, fmax):
    ours = slaney_mel_filterbank(sr, n_fft, 64, 50, fmax)
    ref = _ref_melw(sr, n_fft, 64, 50.0, float(fmax))
    assert ours.shape == (n_fft // 2 + 1, 64)
    assert torch.allclose(ours, ref, atol=1e-7, rtol=1e-5)


def test_logmel_frames_silence_and_sine_peak():
    fe = PannsLogMel()
    assert fe(torch.randn(2, 32000)).shape == (2, 1, 101, 64)  # 1 + T // hop frames, centred
    assert fe.num_frames(320000) == 1001
    silent = fe(torch.zeros(1, 8000))
    assert torch.allclose(silent, torch.full_like(silent, -100.0))  # 10 log10(amin = 1e-10), ref 1.0
    t = torch.arange(32000) / 32000
    for f0 in (440.0, 1000.0, 5000.0):
        db = fe(torch.sin(2 * math.pi * f0 * t)[None])[0, 0, 10:-10]
        # the mel bin whose filter weighs the sine's FFT bin most
        expected = int(fe.melW[int(round(f0 * 1024 / 32000))].argmax())
        assert int(db.mean(0).argmax()) == expected
    # 1 kHz = FFT bin 32 exactly: a periodic Hann frame puts power (N / 4)^2 in bin 32 and (N / 8)^2 in
    # bins 31 and 33, nothing elsewhere; each mel bin then holds a known weighted sum of the three
    t64 = torch.arange(32000, dtype=torch.float64) / 32000
    db = fe(torch.sin(2 * math.pi * 1000.0 * t64)[None].float())[0, 0, 10:-10]
    w = fe.melW.double()
    expected_db = 10 * torch.log10((256.0 ** 2 * w[32] + 128.0 ** 2 * (w[31] + w[33])).clamp_min(1e-10))
    lit = expected_db > 0  # mel bins that see the sine; the others hold float32 leakage only (< -60 dB)
    assert 1 <= int(lit.sum()) <= 3
    assert torch.allclose(db[:, lit].double(), expected_db[lit].expand(db.shape[0], -1), atol=0.01)
    assert (db[:, ~lit] < -60).all()


def test_logmel_equals_torchlibrosa_arithmetic():
    torch.manual_seed(0)
    wave = torch.randn(2, 20000) * 0.3
    for sr, n_fft, hop, fmax in [(32000, 1024, 320, 14000.0), (16000, 512, 160, 8000.0)]:
        fe = PannsLogMel(sr, n_fft, hop, 64, 50.0, fmax)
        real, imag = _ref_stft_kernels(n_fft)
        ref = _ref_logmel(wave, {"spectrogram_extractor.stft.conv_real.weight": real,
                                 "spectrogram_extractor.stft.conv_imag.weight": imag,
                                 "logmel_extractor.melW": _ref_melw(sr, n_fft, 64, 50.0, fmax)}, n_fft, hop)
        out = fe(wave)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() < 2e-3  # dB; float32 FFT vs float32 conv
        ts = fe.torchlibrosa_state()
        assert torch.allclose(ts["spectrogram_extractor.stft.conv_real.weight"], real, atol=1e-6)
        assert torch.allclose(ts["spectrogram_extractor.stft.conv_imag.weight"], imag, atol=1e-6)


def test_top_db_clamps_each_clip_below_its_own_peak():
    torch.manual_seed(0)
    wave = torch.zeros(3, 16000)
    wave[0, :4000] = 0.5 * torch.randn(4000)  # a loud burst, then digital silence
    wave[1] = 1e-3 * torch.randn(16000)  # quiet noise throughout
    plain, clamped = PannsLogMel(), PannsLogMel(top_db=80.0)
    a, b = plain(wave), clamped(wave)
    for i in range(3):
        peak = a[i].max()
        assert b[i].max() == pytest.approx(peak.item())
        assert b[i].min() >= peak - 80.0 - 1e-4  # nothing below the clip's own peak - 80 dB
        keep = a[i] >= peak - 80.0
        assert torch.equal(a[i][keep], b[i][keep])  # values within the range are untouched
    assert (a[0] < a[0].max() - 80.0).any()  # the silence of clip 0 was below the range: now at its floor
    assert b[0].min().item() == pytest.approx(a[0].max().item() - 80.0, abs=1e-4)
    assert torch.equal(b[2], a[2])  # an all-zero clip is its own peak: -100 dB everywhere either way
    with pytest.raises(ValueError, match="top_db"):
        PannsLogMel(top_db=0.0)
    model = create_model("panns_cnn14", num_classes=2, width=0.125, clip_seconds=1.0, top_db=80.0)
    assert model.frontend.top_db == 80.0 and create_model("panns_cnn14", num_classes=2, width=0.125).frontend.top_db is None


def test_frontend_rejects_bad_input():
    fe = PannsLogMel()
    with pytest.raises(ValueError, match="batch, samples"):
        fe(torch.randn(32000))
    with pytest.raises(ValueError, match="too short"):
        fe(torch.randn(1, 100))
    m = create_model("test_panns")
    with pytest.raises(ValueError, match="minimum"):
        m(torch.randn(1, m.min_samples - 1))
    m.eval()(torch.randn(1, m.min_samples))  # the minimum itself works


def test_frontend_has_no_state_and_ignores_autocast():
    m = create_model("test_panns")
    assert not any(k.startswith("frontend") for k in m.state_dict())
    wave = torch.randn(1, 32000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = m.frontend(wave)
    assert x.dtype == torch.float32 and torch.allclose(x, m.frontend(wave))


# ---------------------------------------------------------------------------------------------
# augmentation


def test_spec_augment_stripes():
    torch.manual_seed(0)
    aug = SpecAugment(time_drop_width=16, time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2, fill=-3.0)
    x = torch.randn(64, 1, 100, 64)
    aug.eval()
    assert aug(x) is x
    aug.train()
    y = aug(x)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert (x != -3.0).all()  # out of place
    dropped = y == -3.0
    t_rows = dropped.all(dim=3)[:, 0]  # (B, T) whole time frames dropped
    f_cols = dropped.all(dim=2)[:, 0]  # (B, F) whole mel bins dropped
    assert torch.equal(dropped[:, 0], t_rows[:, :, None] | f_cols[:, None, :])  # only whole stripes
    assert t_rows.sum(1).max() <= 2 * 15 and f_cols.sum(1).max() <= 2 * 7
    assert t_rows.any() and f_cols.any()
    assert torch.equal(aug(torch.zeros(3, 0, 5, 7)), torch.zeros(3, 0, 5, 7))
    # widths larger than the input are clamped, not an error
    SpecAugment(64, 2, 8, 2).train()(torch.randn(2, 1, 10, 4))


def test_mixup_pairs():
    lam = sample_mixup_lambda(6, alpha=1.0, rng=np.random.default_rng(0))
    assert lam.shape == (6,) and torch.allclose(lam[0::2] + lam[1::2], torch.ones(3))
    x = torch.arange(6, dtype=torch.float32)[:, None].expand(6, 4)
    out = do_mixup(x, lam)
    assert out.shape == (3, 4)
    assert torch.allclose(out[:, 0], lam[0::2] * x[0::2, 0] + lam[1::2] * x[1::2, 0])
    with pytest.raises(ValueError, match="even"):
        sample_mixup_lambda(5)
    with pytest.raises(ValueError):
        do_mixup(torch.randn(4, 2), lam)


# ---------------------------------------------------------------------------------------------
# reference checkpoints


def test_full_size_cnn14_reference_layout_loads():
    """The released CNN14's key layout and shapes (527 classes, 2048-d), full size on the meta device."""
    ref = _official_state((64, 128, 256, 512, 1024, 2048), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0, device="meta")
    assert len(ref) == 3 + 5 + 6 * 2 * 6 + 4
    with torch.device("meta"):
        m = create_model("panns_cnn14")
    m.load_pretrained(ref)  # raises on any missing / unexpected / mis-shaped key
    assert set(m.state_dict()) == set(ref) - {"spectrogram_extractor.stft.conv_real.weight",
                                              "spectrogram_extractor.stft.conv_imag.weight", "logmel_extractor.melW"}
    with torch.device("meta"):
        m6 = create_model("panns_cnn6")
    m6.load_pretrained(_official_state((64, 128, 256, 512), 1, 5, 527, 32000, 1024, 64, 50.0, 14000.0, device="meta"))


@pytest.mark.parametrize("name,channels,n_convs,kernel,last_pool,front", [
    ("panns_cnn14", (2, 4, 8, 16, 32, 64), 2, 3, (1, 1), (32000, 1024, 320, 14000.0)),
    ("panns_cnn14_16k", (2, 4, 8, 16, 32, 64), 2, 3, (1, 1), (16000, 512, 160, 8000.0)),
    ("panns_cnn6", (4, 8, 16, 32), 1, 5, (2, 2), (32000, 1024, 320, 14000.0)),
])
def test_reference_checkpoint_loads_and_matches_reference_forward(tmp_path, name, channels, n_convs, kernel, last_pool, front):
    sr, n_fft, hop, fmax = front
    ref = _official_state(channels, n_convs, kernel, 527, sr, n_fft, 64, 50.0, fmax)
    torch.save({"iteration": 1000, "model": ref, "sampler": {}}, tmp_path / "Cnn.pth")
    width = channels[0] / 64
    m = create_model(name, width=width, checkpoint_path=tmp_path / "Cnn.pth").eval()
    own = m.state_dict()
    for k, v in ref.items():
        if k in own:
            assert torch.equal(own[k], v), k
    torch.manual_seed(1)
    wave = torch.randn(2, sr // 2) * 0.2
    with torch.no_grad():
        out = m(wave)
        emb, clip = _ref_forward(wave, ref, n_fft, hop, len(channels), n_convs, last_pool)
    assert out["logits"].shape == (2, 527) and out["embedding"].shape == (2, channels[-1])
    assert torch.allclose(out["embedding"], emb, atol=1e-4, rtol=1e-3)
    assert torch.allclose(out["clipwise_output"], clip, atol=1e-5, rtol=1e-3)
    assert torch.allclose(torch.sigmoid(out["logits"]), out["clipwise_output"])
    # and back to the reference layout
    back = m.official_state_dict()
    assert set(back) == set(ref)
    for k in ref:
        assert torch.allclose(back[k], ref[k], atol=1e-6), k


def test_training_checkpoint_with_numpy_sampler_state_loads(tmp_path):
    """audioset_tagging_cnn saves {'iteration', 'model', 'sampler'}; the sampler holds numpy arrays."""
    import zipfile

    ref = _official_state((4, 8, 16, 32), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0)
    sampler = {"indexes_per_class": [np.arange(5), np.arange(3)], "queue": [np.int64(4)], "pointers_of_classes": [0, 2]}
    torch.save({"iteration": 600000, "model": ref, "sampler": sampler}, tmp_path / "new.pth")
    m = create_model("panns_cnn10", width=1 / 16, checkpoint_path=tmp_path / "new.pth")
    assert torch.equal(m.fc1.weight, ref["fc1.weight"])
    # the same file as numpy 1.x pickled it (module numpy.core instead of numpy._core)
    with zipfile.ZipFile(tmp_path / "new.pth") as zin, zipfile.ZipFile(tmp_path / "old.pth", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, data)
    m = create_model("panns_cnn10", width=1 / 16, checkpoint_path=tmp_path / "old.pth")
    assert torch.equal(m.fc1.weight, ref["fc1.weight"])


def test_checkpoint_of_other_frontend_is_rejected(tmp_path):
    ref16 = _official_state((2, 4, 8, 16, 32, 64), 2, 3, 527, 16000, 512, 64, 50.0, 8000.0)
    torch.save({"model": ref16}, tmp_path / "Cnn14_16k.pth")
    with pytest.raises(ValueError, match="front-end"):
        create_model("panns_cnn14", width=1 / 32, checkpoint_path=tmp_path / "Cnn14_16k.pth")
    # same shapes, other values (another f_max): also caught
    ref = _official_state((2, 4, 8, 16, 32, 64), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0)
    ref["logmel_extractor.melW"] = _ref_melw(32000, 1024, 64, 50.0, 16000.0)
    with pytest.raises(ValueError, match="logmel_extractor.melW"):
        create_model("panns_cnn14", width=1 / 32).load_pretrained(ref)


def test_head_of_other_size_is_skipped_with_a_warning(tmp_path, caplog):
    ref = _official_state((2, 4, 8, 16, 32, 64), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0)
    torch.save({"model": ref}, tmp_path / "Cnn14.pth")
    torch.manual_seed(0)
    init = create_model("panns_cnn14", width=1 / 32, num_classes=5).state_dict()
    with caplog.at_level(logging.WARNING):
        torch.manual_seed(0)
        m = create_model("panns_cnn14", width=1 / 32, num_classes=5, checkpoint_path=tmp_path / "Cnn14.pth")
    assert "fc_audioset.weight" in caplog.text
    assert torch.equal(m.fc_audioset.weight, init["fc_audioset.weight"])  # kept its initialisation
    assert torch.equal(m.fc1.weight, ref["fc1.weight"]) and torch.equal(m.conv_block3.conv2.weight, ref["conv_block3.conv2.weight"])
    feat = create_model("panns_cnn14", width=1 / 32, num_classes=0, checkpoint_path=tmp_path / "Cnn14.pth").eval()
    out = feat(torch.randn(2, 16000))
    assert set(out) == {"embedding"} and out["embedding"].shape == (2, 64)


def test_missing_unexpected_and_old_bn_counters(tmp_path):
    ref = _official_state((4, 8, 16, 32), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0)
    m = create_model("panns_cnn10", width=1 / 16)
    old = {k: v for k, v in ref.items() if not k.endswith("num_batches_tracked")}  # pre-0.4.1 BatchNorm
    m.load_pretrained(old)
    bad = dict(ref)
    del bad["conv_block2.bn1.running_var"]
    with pytest.raises(ValueError, match="missing keys: conv_block2.bn1.running_var"):
        m.load_pretrained(bad)
    bad = {**ref, "conv_block9.conv1.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="unexpected keys: conv_block9"):
        m.load_pretrained(bad)
    bad = {**ref, "fc1.weight": torch.zeros(3, 3)}
    with pytest.raises(ValueError, match="fc1.weight"):
        m.load_pretrained(bad)


# ---------------------------------------------------------------------------------------------
# every variant at a tiny size


def test_variants_registered():
    assert set(PANNS_VARIANTS) <= set(list_models("*panns*"))


@pytest.mark.parametrize("name", PANNS_VARIANTS)
def test_variant_forward_backward(name):
    torch.manual_seed(0)
    kw = {} if name == "test_panns" else {"width": 1 / 32, "num_classes": 7}
    m = create_model(name, **kw)
    n_cls = m.num_classes
    assert m.clip_samples == 10 * m.sample_rate and m.embed_dim > 0
    wave = torch.randn(2, m.sample_rate // 2) * 0.1
    m.train()
    out = m(wave)
    assert out["logits"].shape == (2, n_cls) and out["embedding"].shape == (2, m.embed_dim)
    assert torch.isfinite(out["logits"]).all()
    F.binary_cross_entropy_with_logits(out["logits"], torch.rand(2, n_cls)).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    lam = sample_mixup_lambda(2, rng=np.random.default_rng(0))
    assert m(wave, mixup_lambda=lam)["logits"].shape == (1, n_cls)
    m.eval()
    with torch.no_grad():
        a, b = m(wave), m.forward_features(m.frontend(wave))
    assert torch.allclose(a["logits"], b["logits"]) and torch.allclose(a["embedding"], b["embedding"])
    assert torch.allclose(m.forward_features(m.frontend(wave)[:, 0])["logits"], a["logits"], atol=1e-6)
    with pytest.raises(ValueError, match="log-mel"):
        m.forward_features(torch.randn(2, 1, 50, 32))


def test_cnn14_geometry():
    m = create_model("panns_cnn14", width=1 / 16).eval()
    blocks = [m.conv_block1, m.conv_block6]
    assert [b.conv1.kernel_size for b in blocks] == [(3, 3), (3, 3)] and blocks[1].pool == (1, 1)
    assert m.fc1.in_features == 128 and m.bn0.num_features == 64
    m6 = create_model("panns_cnn6", width=1 / 16)
    assert m6.conv_block1.conv1.kernel_size == (5, 5) and not hasattr(m6.conv_block1, "conv2")
    assert not hasattr(m6, "conv_block5")
    emb = create_model("panns_cnn14", width=1 / 16, embed_dim=32, num_classes=5)  # the reference's Cnn14_emb32
    assert (emb.fc1.in_features, emb.fc1.out_features, emb.fc_audioset.in_features, emb.embed_dim) == (128, 32, 32, 32)
    assert emb.eval()(torch.randn(1, 16000))["embedding"].shape == (1, 32)
    m16 = create_model("panns_cnn14_16k", width=1 / 16)
    assert (m16.sample_rate, m16.frontend.n_fft, m16.frontend.hop_length, m16.frontend.f_max) == (16000, 512, 160, 8000.0)


def test_own_checkpoint_round_trip(tmp_path):
    src = create_model("test_panns").eval()
    torch.save({"model": src.state_dict()}, tmp_path / "own.pt")
    m = create_model("test_panns", checkpoint_path=tmp_path / "own.pt").eval()
    wave = torch.randn(2, 16000)
    with torch.no_grad():
        assert torch.allclose(m(wave)["logits"], src(wave)["logits"])
    m.load_state_dict(src.state_dict())  # plain strict load of avcorr's own state dict


# ---------------------------------------------------------------------------------------------
# as AVE-Net's audio tower


def test_avenet_with_panns_audio_backbone(tmp_path):
    torch.manual_seed(0)
    m = create_model("test_avenet", audio_backbone="test_panns", sample_rate=48000)
    assert m.audio.model.num_classes == 0 and m.audio.out_chans == 32
    assert m.frontend is m.audio.model.frontend
    audio, image = torch.randn(2, 24000), torch.randn(2, 3, 32, 32)
    out = m(audio, image)
    assert out["logits"].shape == (2, 2) and torch.allclose(out["audio_emb"].norm(dim=-1), torch.ones(2), atol=1e-5)
    F.cross_entropy(out["logits"], torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in m.audio.parameters())
    assert m.audio_features(audio).shape == (2, 32, 1, 1)
    # the backbone sees 32 kHz audio: the tower equals the backbone on the resampled wave
    m.eval()
    with torch.no_grad():
        direct = m.audio.model(torchaudio.functional.resample(audio, 48000, 32000))["embedding"]
        assert torch.allclose(m.audio(audio), direct, atol=1e-5)
    # a saved AVE-Net reloads strictly; a reference PANNs checkpoint initialises the backbone
    m2 = create_model("test_avenet", audio_backbone="test_panns", sample_rate=48000)
    m2.load_state_dict(m.state_dict())
    ref = _official_state((4, 8, 16, 32), 2, 3, 527, 32000, 1024, 64, 50.0, 14000.0)
    torch.save({"model": ref}, tmp_path / "Cnn10.pth")
    m3 = create_model("l3net", width=1 / 16, embed_dim=16, audio_backbone="panns_cnn10",
                      audio_backbone_kwargs={"width": 1 / 16}, audio_backbone_checkpoint=str(tmp_path / "Cnn10.pth"),
                      sample_rate=32000)
    assert torch.equal(m3.audio.model.conv_block2.conv1.weight, ref["conv_block2.conv1.weight"])
    assert m3(torch.randn(2, 16000), torch.randn(2, 3, 32, 32))["logits"].shape == (2, 2)
    with pytest.raises(ValueError, match="not a tagging model"):
        create_model("test_avenet", audio_backbone="test_l3net")


def test_audio_backbone_from_the_config():
    from avcorr.config import load_config
    from avcorr.tasks import build_task

    cfg = load_config("avenet.py", ["model.name=test_avenet", "model.kwargs={'audio_backbone': 'test_panns'}"])
    model = build_task(cfg).build_model()
    assert model.audio_backbone == "test_panns" and model.audio.in_rate == cfg.data.audio.sample_rate
    out = model(torch.randn(2, int(cfg.data.audio.sample_rate * cfg.data.audio.seconds)), torch.randn(2, 3, 32, 32))
    assert out["logits"].shape == (2, 2)
