"""VGGish: front-end against the official arithmetic, torchvggish key layout, PCA post-processing."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avcorr.models import create_model
from avcorr.models.vggish import VGGish, VGGishPostprocessor, resample_to_vggish, vggish_mel_matrix

SR = 16000

# The torchvggish layout: conv indices in `features`, fc indices in `embeddings`.
CONV_IDX = (0, 3, 6, 8, 11, 13)
POOL_AFTER = {0, 3, 8, 13}
FC_IDX = (0, 2, 4)


def _mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _official_mel_matrix(num_mel_bins=64, num_spec_bins=257, sr=16000, lo=125.0, hi=7500.0):
    """mel_features.spectrogram_to_mel_matrix, written out from its formula (loop over bands)."""
    bins_mel = _mel(np.linspace(0.0, sr / 2, num_spec_bins))
    edges = np.linspace(_mel(lo), _mel(hi), num_mel_bins + 2)
    m = np.empty((num_spec_bins, num_mel_bins))
    for i in range(num_mel_bins):
        a, c, b = edges[i:i + 3]
        m[:, i] = np.maximum(0.0, np.minimum((bins_mel - a) / (c - a), (b - bins_mel) / (b - c)))
    m[0, :] = 0.0
    return m


def _official_log_mel(wave):
    """numpy re-statement of vggish_input.waveform_to_examples before framing into patches."""
    n_frames = 1 + (len(wave) - 400) // 160
    idx = np.arange(400)[None] + 160 * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))
    mag = np.abs(np.fft.rfft(wave[idx] * window, n=512))
    return np.log(mag @ _official_mel_matrix() + 0.01)


def _tone(freq, seconds, sr=SR, amp=0.5):
    t = torch.arange(int(round(seconds * sr)), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def _torchvggish_state(cfg_channels=(8, 16, 16, 16, 32, 32), hidden=64, embed=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    state, c_in = {}, 1
    for i, c in zip(CONV_IDX, cfg_channels):
        state[f"features.{i}.weight"] = torch.randn(c, c_in, 3, 3, generator=g) * (2.0 / (9 * c_in)) ** 0.5
        state[f"features.{i}.bias"] = torch.randn(c, generator=g) * 0.05
        c_in = c
    dims = (c_in * 6 * 4, hidden, hidden, embed)
    for j, i in enumerate(FC_IDX):
        state[f"embeddings.{i}.weight"] = torch.randn(dims[j + 1], dims[j], generator=g) * (2.0 / dims[j]) ** 0.5
        state[f"embeddings.{i}.bias"] = torch.randn(dims[j + 1], generator=g) * 0.05
    return state


def _reference_forward(state, patches):
    """An independent VGGish forward on a torchvggish state dict (TF channels-last flatten)."""
    x = patches
    for i in CONV_IDX:
        x = F.relu(F.conv2d(x, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
        if i in POOL_AFTER:
            x = F.max_pool2d(x, 2)
    x = torch.transpose(x, 1, 3)
    x = torch.transpose(x, 1, 2).contiguous().view(x.size(0), -1)
    for i in FC_IDX:
        x = F.relu(F.linear(x, state[f"embeddings.{i}.weight"], state[f"embeddings.{i}.bias"]))
    return x


def test_mel_matrix_matches_official_construction():
    ours = vggish_mel_matrix().numpy()
    ref = _official_mel_matrix()
    assert ours.shape == (257, 64)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert (ours[0] == 0).all()
    # torchaudio's HTK filterbank has triangles linear in Hz: close but not the official matrix.
    import torchaudio

    ta = torchaudio.functional.melscale_fbanks(257, 125.0, 7500.0, 64, SR, norm=None, mel_scale="htk").numpy()
    assert not np.allclose(ours, ta, atol=1e-4)


def test_log_mel_matches_official_arithmetic():
    g = torch.Generator().manual_seed(1)
    wave = (torch.randn(20000, generator=g) * 0.1).float()
    model = create_model("test_vggish")
    ours = model.frontend.log_mel(wave[None])[0].numpy()
    ref = _official_log_mel(wave.double().numpy())
    assert ours.shape == ref.shape == (1 + (20000 - 400) // 160, 64)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_samples", [15599, 15600, 16000, 2 * SR + 3000, 3 * SR])
def test_patch_count_and_shape(n_samples):
    model = create_model("test_vggish")
    expected = max(0, 1 + (n_samples - 400) // 160) // 96
    patches = model.frontend(torch.zeros(2, n_samples))
    assert patches.shape == (2, expected, 1, 96, 64)
    with torch.no_grad():
        out = model(torch.zeros(2, n_samples))
    assert out["embedding"].shape == (2, expected, 128)
    assert torch.allclose(out["patch_times"], torch.arange(expected) * 0.96)
    assert model.sample_rate == 16000 and model.patch_seconds == pytest.approx(0.96)


def test_tone_peaks_in_the_htk_mel_band():
    model = create_model("test_vggish")
    for freq in (1000.0, 3000.0):
        spec = model.frontend(_tone(freq, 1.0)[None])  # (1, 1, 1, 96, 64)
        assert spec.shape == (1, 1, 1, 96, 64)
        centres = np.linspace(_mel(125.0), _mel(7500.0), 66)[1:-1]
        expected = int(np.argmin(np.abs(centres - _mel(freq))))
        assert int(spec.mean(dim=3).flatten().argmax()) == expected


def test_resample_and_mixdown():
    stereo = torch.stack([_tone(1000.0, 1.0, sr=44100), _tone(1000.0, 1.0, sr=44100)])
    out = resample_to_vggish(stereo, 44100)
    assert out.shape == (SR,) and out.dtype == torch.float32
    model = create_model("test_vggish")
    spec = model.frontend(out[None])
    centres = np.linspace(_mel(125.0), _mel(7500.0), 66)[1:-1]
    assert int(spec.mean(dim=3).flatten().argmax()) == int(np.argmin(np.abs(centres - _mel(1000.0))))
    with pytest.raises(ValueError, match="sample_rate"):
        resample_to_vggish(out, 0)


def test_full_vggish_has_torchvggish_keys_and_shapes():
    with torch.device("meta"):
        model = create_model("vggish")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected, c_in = {}, 1
    for i, c in zip(CONV_IDX, (64, 128, 256, 256, 512, 512)):
        expected[f"features.{i}.weight"], expected[f"features.{i}.bias"] = (c, c_in, 3, 3), (c,)
        c_in = c
    for i, (o, n) in zip(FC_IDX, ((4096, 512 * 4 * 6), (4096, 4096), (128, 4096))):
        expected[f"embeddings.{i}.weight"], expected[f"embeddings.{i}.bias"] = (o, n), (o,)
    assert shapes == expected


def test_torchvggish_checkpoint_loads_and_matches_reference(tmp_path):
    state = _torchvggish_state()
    path = tmp_path / "vggish.pth"
    torch.save(state, path)
    model = create_model("test_vggish", checkpoint_path=path).eval()
    assert set(model.state_dict()) == set(state)
    wave = torch.cat([_tone(440.0, 1.0), _tone(2500.0, 1.5)])[None].repeat(2, 1)
    wave[1] *= 0.3
    with torch.no_grad():
        patches = model.frontend(wave)
        b, n = patches.shape[:2]
        ref = _reference_forward(state, patches.reshape(b * n, 1, 96, 64)).reshape(b, n, 128)
        out = model(wave)["embedding"]
        feats = model.forward_features(patches.reshape(b * n, 1, 96, 64))
    assert n == 2 and ref.abs().sum() > 0
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats.reshape(b, n, 128), ref, rtol=1e-4, atol=1e-5)
    # The flatten order matters: a channels-first flatten gives other embeddings.
    x = patches.reshape(b * n, 1, 96, 64)
    with torch.no_grad():
        wrong = model.embeddings(model.features(x).flatten(1)).reshape(b, n, 128)
    assert not torch.allclose(wrong, ref, atol=1e-3)


def test_missing_or_unexpected_keys_are_named(tmp_path):
    state = _torchvggish_state()
    del state["embeddings.2.bias"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing.*embeddings\.2\.bias"):
        create_model("test_vggish", checkpoint_path=path)
    state = _torchvggish_state()
    state["features.1.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected.*features\.1\.weight"):
        create_model("test_vggish").load_pretrained(state)


def _pca_npz(path, seed=0):
    g = np.random.default_rng(seed)
    vecs, _ = np.linalg.qr(g.normal(size=(128, 128)))
    means = g.normal(size=(128, 1)) * 0.5
    np.savez(path, pca_eigen_vectors=vecs, pca_means=means)
    return vecs, means


def test_pca_postprocessing_and_round_trip(tmp_path):
    vecs, means = _pca_npz(tmp_path / "vggish_pca_params.npz")
    pp = VGGishPostprocessor.from_npz(tmp_path / "vggish_pca_params.npz")
    emb = torch.randn(5, 128, dtype=torch.float64) * 2
    ref = (vecs @ (emb.numpy().T - means)).T  # official: matmul(pca_matrix, (emb.T - means)).T
    np.testing.assert_allclose(pp.pca(emb).numpy(), ref, rtol=1e-4, atol=1e-4)
    q = pp(emb)
    assert q.dtype == torch.uint8 and q.shape == (5, 128)
    np.testing.assert_array_equal(q.numpy(), np.round((np.clip(ref, -2, 2) + 2) * 255 / 4).astype(np.uint8))
    # quantise -> dequantise stays within half a quantisation step inside [-2, 2], clips outside
    x = torch.linspace(-3, 3, 1001)
    back = VGGishPostprocessor.dequantize(VGGishPostprocessor.quantize(x))
    inside = x.abs() <= 2
    assert (back[inside] - x[inside]).abs().max() <= 0.5 * 4 / 255 + 1e-6
    assert torch.all(back[x > 2] == 2.0) and torch.all(back[x < -2] == -2.0)
    assert VGGishPostprocessor.quantize(torch.tensor([-5.0, 5.0])).tolist() == [0, 255]


def test_model_applies_postprocessing(tmp_path):
    _pca_npz(tmp_path / "pca.npz")
    torch.save(_torchvggish_state(), tmp_path / "w.pth")
    model = create_model("test_vggish", checkpoint_path=tmp_path / "w.pth", pca_params=str(tmp_path / "pca.npz"))
    with torch.no_grad():
        out = model(_tone(1000.0, 2.0)[None])
    pp = VGGishPostprocessor.from_npz(tmp_path / "pca.npz")
    assert out["quantized"].dtype == torch.uint8 and out["quantized"].shape == (1, 2, 128)
    assert torch.equal(out["quantized"], pp(out["embedding"]))
    assert torch.allclose(out["pca"], VGGishPostprocessor.dequantize(out["quantized"]))
    assert "postprocessor" not in "".join(model.state_dict())  # PCA params never enter the state dict


def test_torchvggish_pproc_entries_set_the_postprocessor(tmp_path):
    vecs, means = _pca_npz(tmp_path / "pca.npz")
    state = _torchvggish_state()
    state["pproc.pca_matrix"] = torch.from_numpy(vecs).float()
    state["pproc.pca_means"] = torch.from_numpy(means).float()
    model = create_model("test_vggish")
    model.load_pretrained(state)
    assert model.postprocessor is not None
    torch.testing.assert_close(model.postprocessor.eigen_vectors, torch.from_numpy(vecs).float())


def test_bad_pca_file_is_named(tmp_path):
    bad = tmp_path / "bad_pca.npz"
    np.savez(bad, pca_eigen_vectors=np.eye(128))
    with pytest.raises(ValueError, match=r"bad_pca\.npz.*pca_means"):
        VGGishPostprocessor.from_npz(bad)
    np.savez(bad, pca_eigen_vectors=np.eye(64), pca_means=np.zeros((64, 1)))
    with pytest.raises(ValueError, match=r"bad_pca\.npz"):
        VGGishPostprocessor.from_npz(bad)
    with pytest.raises(FileNotFoundError):
        VGGishPostprocessor.from_npz(tmp_path / "nope.npz")


def test_forward_features_rejects_wrong_shape():
    model = create_model("test_vggish")
    with pytest.raises(ValueError, match="96"):
        model.forward_features(torch.zeros(2, 1, 64, 96))
    assert isinstance(model, VGGish)
