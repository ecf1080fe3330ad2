"""AST: the Kaldi fbank front-end, official / ImageNet checkpoints, every variant, as an AVE-Net tower."""

import logging

import pytest
import timm
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from avcorr.models import create_model, list_models
from avcorr.models.tagging_audio import AST_NORM_MEAN, AST_NORM_STD, KaldiFbank
from avcorr.models.ast import resize_pos_grid

AST_VARIANTS = ["ast_base", "ast_small", "ast_tiny", "test_ast"]


def _ref_fbank(wave: torch.Tensor, n_frames: int, mean: float = AST_NORM_MEAN, std: float = AST_NORM_STD) -> torch.Tensor:
    """AST's data loader, one clip at a time: (B, T) -> (B, n_frames, 128)."""
    out = []
    for w in wave:
        w = w[None] - w.mean()
        fb = torchaudio.compliance.kaldi.fbank(w, htk_compat=True, sample_frequency=16000, use_energy=False,
                                               window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
        p = n_frames - fb.shape[0]
        fb = nn.ZeroPad2d((0, 0, 0, p))(fb) if p > 0 else fb[:n_frames]
        out.append((fb - mean) / (std * 2))
    return torch.stack(out)


def _randomize(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.05
            p.copy_(1.0 + noise if name.endswith("weight") and p.dim() == 1 else noise)


def _official_ast(dim=32, depth=2, heads=2, grid=(12, 12), n_classes=527, seed=0):
    """An AST as the reference builds it (timm DeiT + 1-channel stride-10 patches + grid pos_embed + mlp_head).

    Returns the DeiT trunk ``v``, the ``mlp_head`` and the DataParallel state dict of the whole model.
    """
    v = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, embed_dim=dim, depth=depth, num_heads=heads)
    v.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=(16, 16), stride=(10, 10))
    v.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + 2, dim))
    mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))
    _randomize(v, seed)
    _randomize(mlp_head, seed + 1)
    state = {"module.v." + k: t for k, t in v.state_dict().items()}
    state.update({"module.mlp_head." + k: t for k, t in mlp_head.state_dict().items()})
    return v.eval(), mlp_head.eval(), state


def _ref_ast_forward(v, mlp_head, fbank):
    """The reference ASTModel.forward on a (B, T, F) fbank."""
    x = fbank.unsqueeze(1).transpose(2, 3)
    b = x.shape[0]
    x = v.patch_embed.proj(x).flatten(2).transpose(1, 2)
    x = torch.cat((v.cls_token.expand(b, -1, -1), v.dist_token.expand(b, -1, -1), x), dim=1)
    x = v.pos_drop(x + v.pos_embed)
    for blk in v.blocks:
        x = blk(x)
    x = v.norm(x)
    x = (x[:, 0] + x[:, 1]) / 2
    return x, mlp_head(x)


# ---------------------------------------------------------------------------------------------
# front-end


def test_fbank_equals_torchaudio_kaldi_fbank():
    torch.manual_seed(0)
    fe = KaldiFbank(n_frames=0)
    for t in (16000, 20837):
        wave = torch.randn(3, t) * 0.1 + 0.05  # a DC offset: removed per clip, as AST's loader does
        ours = fe(wave) * (2 * AST_NORM_STD) + AST_NORM_MEAN
        raw = fe.fbank(wave)
        assert raw.shape == (3, 1 + (t - 400) // 160, 128)
        assert torch.allclose(ours, raw, atol=1e-5)
        for i in range(3):
            ref = torchaudio.compliance.kaldi.fbank((wave[i] - wave[i].mean())[None], htk_compat=True,
                                                    sample_frequency=16000, use_energy=False, window_type="hanning",
                                                    num_mel_bins=128, dither=0.0, frame_shift=10)
            assert torch.allclose(raw[i], ref, atol=1e-4), (raw[i] - ref).abs().max()


def test_fbank_pad_crop_and_normalisation():
    torch.manual_seed(0)
    fe = KaldiFbank(n_frames=128)
    short = torch.randn(2, 8000)  # 48 frames
    long = torch.randn(2, 40000)  # 248 frames
    out_s, out_l = fe(short), fe(long)
    assert out_s.shape == out_l.shape == (2, 128, 128)
    assert torch.allclose(out_s, _ref_fbank(short, 128), atol=1e-5)
    assert torch.allclose(out_l, _ref_fbank(long, 128), atol=1e-5)
    assert torch.allclose(out_s[:, 48:], torch.full((2, 80, 128), -AST_NORM_MEAN / (2 * AST_NORM_STD)))
    assert fe.pad_value == pytest.approx(4.2677393 / (2 * 4.5689974))
    assert torch.allclose(fe(torch.randn(1, 300)), torch.full((1, 128, 128), fe.pad_value))  # shorter than a frame
    assert fe.num_frames(fe.min_samples_for_all_frames) == 128 and fe.num_frames(fe.min_samples_for_all_frames - 1) == 127
    custom = KaldiFbank(n_frames=128, norm_mean=-6.0, norm_std=3.0)
    assert torch.allclose(custom(long), (fe.fbank(long)[:, :128] + 6.0) / 6.0, atol=1e-5)
    with pytest.raises(ValueError, match="batch, samples"):
        fe(torch.randn(16000))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fe(long).dtype == torch.float32


def test_fbank_of_a_tone_peaks_at_its_mel_bin():
    t = torch.arange(16000, dtype=torch.float64) / 16000
    fe = KaldiFbank(n_frames=0)
    for f0 in (300.0, 1000.0, 4000.0):
        fb = fe.fbank(torch.sin(2 * torch.pi * f0 * t)[None].float())[0]
        mel = 1127.0 * torch.log1p(torch.tensor(f0) / 700.0)  # HTK mel; bins evenly spaced from 20 Hz to 8 kHz
        lo, hi = 1127.0 * torch.log1p(torch.tensor(20.0) / 700.0), 1127.0 * torch.log1p(torch.tensor(8000.0) / 700.0)
        centre_bin = (mel - lo) / ((hi - lo) / 129) - 1
        assert abs(int(fb.mean(0).argmax()) - float(centre_bin)) <= 1.5  # FFT bins are 31.25 Hz wide


# ---------------------------------------------------------------------------------------------
# checkpoints


def test_full_size_official_ast_layout_loads():
    """The released AudioSet AST (timm DeiT-B/384 distilled + AST's changes, DataParallel keys) on the meta device."""
    with torch.device("meta"):
        ref = timm.create_model("deit_base_distilled_patch16_384", pretrained=False)
        m = create_model("ast_base")
    state = {"v." + k: t for k, t in ref.state_dict().items()}  # "module." is removed by the registry's loader
    state["v.patch_embed.proj.weight"] = torch.empty(768, 1, 16, 16, device="meta")
    state["v.pos_embed"] = torch.empty(1, 1214, 768, device="meta")
    state.update({"mlp_head.0.weight": torch.empty(768, device="meta"), "mlp_head.0.bias": torch.empty(768, device="meta"),
                  "mlp_head.1.weight": torch.empty(527, 768, device="meta"), "mlp_head.1.bias": torch.empty(527, device="meta")})
    assert "v.head.weight" in state and "v.head_dist.weight" in state  # unused ImageNet heads ride along
    m.load_pretrained(state)
    assert m.grid == (12, 101) and m.v.pos_embed.shape == (1, 1214, 768) and m.clip_samples == 164080
    assert set(m.state_dict()) == set(state) - {"v.head.weight", "v.head.bias", "v.head_dist.weight", "v.head_dist.bias"}


def test_official_checkpoint_loads_and_matches_reference_forward(tmp_path):
    v, head, state = _official_ast()
    torch.save(state, tmp_path / "audioset_10_10_0.4593.pth")
    m = create_model("test_ast", num_classes=527, checkpoint_path=tmp_path / "audioset_10_10_0.4593.pth").eval()
    own = m.state_dict()
    for k, t in state.items():
        k = k[len("module."):]
        if not k.startswith(("v.head.", "v.head_dist.")):
            assert torch.equal(own[k], t), k
    torch.manual_seed(0)
    wave = torch.randn(2, 16000) * 0.2
    with torch.no_grad():
        out = m(wave)
        emb, logits = _ref_ast_forward(v, head, _ref_fbank(wave, 128))
    assert out["logits"].shape == (2, 527) and out["embedding"].shape == (2, 32)
    assert torch.allclose(out["embedding"], emb, atol=1e-4)
    assert torch.allclose(out["logits"], logits, atol=1e-4)
    assert torch.allclose(out["clipwise_output"], torch.sigmoid(logits), atol=1e-5)


def test_official_checkpoint_into_a_shorter_model_crops_positions():
    _, _, state = _official_ast()
    state = {k[len("module."):]: t for k, t in state.items()}
    m = create_model("test_ast", num_classes=527, n_frames=64)  # 12 x 5 patches
    m.load_pretrained(state)
    grid = state["v.pos_embed"][:, 2:].transpose(1, 2).reshape(1, 32, 12, 12)
    expected = grid[:, :, :, 4:9].reshape(1, 32, 60).transpose(1, 2)  # 6 - int(5 / 2) = 4: the middle 5 columns
    assert torch.equal(m.v.pos_embed[:, 2:], expected)
    assert torch.equal(m.v.pos_embed[:, :2], state["v.pos_embed"][:, :2])


def test_head_of_other_size_is_skipped(caplog):
    _, _, state = _official_ast()
    state = {k[len("module."):]: t for k, t in state.items()}
    torch.manual_seed(3)
    init = create_model("test_ast", num_classes=3).state_dict()
    torch.manual_seed(3)
    m = create_model("test_ast", num_classes=3)
    with caplog.at_level(logging.WARNING):
        m.load_pretrained(state)
    assert "mlp_head.1.weight" in caplog.text
    assert torch.equal(m.mlp_head[1].weight, init["mlp_head.1.weight"])
    assert torch.equal(m.v.blocks[1].mlp.fc2.weight, state["v.blocks.1.mlp.fc2.weight"])
    bad = dict(state)
    del bad["v.blocks.0.attn.qkv.bias"]
    with pytest.raises(ValueError, match="v.blocks.0.attn.qkv.bias"):
        m.load_pretrained(bad)
    with pytest.raises(ValueError, match="neither an AST checkpoint"):
        m.load_pretrained({"foo": torch.zeros(1)})


def test_imagenet_deit_384_maps_as_ast_does(tmp_path):
    """A DeiT-B/384-like timm checkpoint (24 x 24 patch grid) into the 12 x 101 AudioSet geometry."""
    deit = timm.create_model("deit_base_distilled_patch16_384", pretrained=False, embed_dim=32, depth=2, num_heads=2)
    _randomize(deit, 5)
    sd = deit.state_dict()
    torch.save(sd, tmp_path / "deit_384.pth")
    m = create_model("test_ast", n_frames=1024, checkpoint_path=tmp_path / "deit_384.pth")
    assert m.grid == (12, 101)
    assert torch.allclose(m.v.patch_embed.proj.weight, sd["patch_embed.proj.weight"].sum(1, keepdim=True))
    assert torch.equal(m.v.patch_embed.proj.bias, sd["patch_embed.proj.bias"])
    assert torch.equal(m.v.dist_token, sd["dist_token"]) and torch.equal(m.v.cls_token, sd["cls_token"])
    # AST: (1, 578, D) -> 24 x 24 grid -> time interpolated to 101 -> frequency cropped to the middle 12
    g = sd["pos_embed"][:, 2:].transpose(1, 2).reshape(1, 32, 24, 24)
    g = F.interpolate(g, size=(24, 101), mode="bilinear")[:, :, 6:18, :]
    expected = torch.cat([sd["pos_embed"][:, :2], g.reshape(1, 32, 1212).transpose(1, 2)], dim=1)
    assert torch.allclose(m.v.pos_embed, expected, atol=1e-6)
    assert torch.equal(m.v.blocks[0].attn.qkv.weight, sd["blocks.0.attn.qkv.weight"])
    assert torch.equal(m.v.norm.weight, sd["norm.weight"])
    out = m.eval()(torch.randn(1, 16000))
    assert out["logits"].shape == (1, 10) and torch.isfinite(out["logits"]).all()


def test_imagenet_vit_without_distillation_token(tmp_path):
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, embed_dim=32, depth=2, num_heads=2)
    _randomize(vit, 6)
    sd = vit.state_dict()
    m = create_model("test_ast")
    m.load_pretrained(sd)  # 14 x 14 grid -> 12 x 12: both dimensions cropped to the middle
    assert torch.equal(m.v.dist_token, sd["cls_token"])
    grid = sd["pos_embed"][:, 1:].transpose(1, 2).reshape(1, 32, 14, 14)[:, :, 1:13, 1:13]
    assert torch.equal(m.v.pos_embed[:, 2:], grid.reshape(1, 32, 144).transpose(1, 2))
    assert torch.equal(m.v.pos_embed[:, 0], sd["pos_embed"][:, 0]) and torch.equal(m.v.pos_embed[:, 1], sd["pos_embed"][:, 0])
    with pytest.raises(ValueError, match="patch embedding"):
        create_model("test_ast", embed_dim=64, num_heads=2).load_pretrained(sd)


def test_resize_pos_grid_rules():
    pos = torch.randn(1, 4, 6, 9)
    assert torch.equal(resize_pos_grid(pos, (6, 9)), pos)
    assert torch.equal(resize_pos_grid(pos, (2, 3)), pos[:, :, 2:4, 3:6])  # int(6/2)-1, int(9/2)-1
    grown = resize_pos_grid(pos, (10, 20))
    assert torch.allclose(grown, F.interpolate(F.interpolate(pos, size=(6, 20), mode="bilinear"), size=(10, 20),
                                               mode="bilinear"))


# ---------------------------------------------------------------------------------------------
# every variant at a tiny size


def test_variants_registered_with_reference_geometry():
    assert set(AST_VARIANTS) <= set(list_models("*ast*"))
    with torch.device("meta"):
        dims = {n: (create_model(n).embed_dim, len(create_model(n).v.blocks), create_model(n).v.blocks[0].attn.num_heads)
                for n in ("ast_base", "ast_small", "ast_tiny")}
    assert dims == {"ast_base": (768, 12, 12), "ast_small": (384, 12, 6), "ast_tiny": (192, 12, 3)}


@pytest.mark.parametrize("name", AST_VARIANTS)
def test_variant_forward_backward(name):
    torch.manual_seed(0)
    kw = {} if name == "test_ast" else {"depth": 1, "n_frames": 48, "num_classes": 7, "timem": 10}
    m = create_model(name, **kw)
    n_cls = m.num_classes
    wave = torch.randn(2, m.clip_samples) * 0.1
    m.train()
    out = m(wave)
    assert out["logits"].shape == (2, n_cls) and out["embedding"].shape == (2, m.embed_dim)
    assert torch.isfinite(out["logits"]).all()
    F.binary_cross_entropy_with_logits(out["logits"], torch.rand(2, n_cls)).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert m(wave, mixup_lambda=torch.tensor([0.3, 0.7]))["logits"].shape == (1, n_cls)
    m.eval()
    with torch.no_grad():
        a, b = m(wave), m.forward_features(m.frontend(wave))
        c = m.forward_features(m.frontend(wave)[:, None])
    assert torch.allclose(a["logits"], b["logits"]) and torch.allclose(a["logits"], c["logits"])
    with pytest.raises(ValueError, match="fbank features"):
        m.forward_features(torch.randn(2, 10, 128))


def test_spec_augment_in_training_only_with_normalised_zero():
    m = create_model("test_ast", freqm=20, timem=30)
    x = m.frontend(torch.randn(4, m.clip_samples))
    m.eval()
    assert torch.equal(m.spec_augmenter(x), x)
    m.train()
    torch.manual_seed(0)
    y = m.spec_augmenter(x)
    masked = y != x
    assert masked.any() and torch.allclose(y[masked], torch.tensor(m.frontend.pad_value))
    no_aug = create_model("test_ast", freqm=0, timem=0).train()
    assert torch.equal(no_aug.spec_augmenter(x), x)


def test_avenet_with_ast_audio_backbone():
    m = create_model("test_avenet", audio_backbone="test_ast", sample_rate=48000)
    out = m(torch.randn(2, 24000), torch.randn(2, 3, 32, 32))
    assert out["logits"].shape == (2, 2) and m.audio.out_chans == 32
    out["logits"].sum().backward()
    assert m.audio.model.v.patch_embed.proj.weight.grad is not None
