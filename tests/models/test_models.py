import pytest
import torch

import avcorr
from avcorr.models import AVENet, create_model, list_models, load_checkpoint_state


def test_registry_lists_and_rejects_unknown():
    names = list_models()
    for n in ("avenet", "l3net", "test_avenet", "test_l3net"):
        assert n in names
    assert {"test_avenet", "test_l3net"} <= set(list_models("test_*"))
    with pytest.raises(ValueError, match="avenet"):
        create_model("nope")


def test_none_kwargs_keep_defaults():
    m = create_model("avenet", embed_dim=None, width=None)
    assert m.embed_dim == 128 and m.vision.out_chans == 512


def test_paper_geometry():
    m = create_model("avenet")
    with torch.no_grad():
        a = m.audio_features(torch.randn(1, 48000))
        v = m.visual_features(torch.randn(1, 3, 224, 224))
        spec = m.frontend(torch.randn(1, 48000))
    assert spec.shape == (1, 1, 257, 200)
    assert a.shape == (1, 512, 16, 12) and v.shape == (1, 512, 14, 14)


TAGGING_TEST_MODELS = {"test_panns", "test_ast", "test_vggish"}  # waveform-only: tests/models/test_panns.py, test_ast.py, test_vggish.py


SEPARATION_TEST_MODELS = {"test_sop"}  # (mixture magnitude, frames) -> masks: tests/tasks/test_sop.py


@pytest.mark.parametrize("name", [n for n in avcorr.list_models("test_*")
                                  if n not in TAGGING_TEST_MODELS | SEPARATION_TEST_MODELS])
def test_forward_backward(name):
    torch.manual_seed(0)
    m = create_model(name)
    audio, image = torch.randn(4, 48000), torch.randn(4, 3, 64, 64)
    out = m(audio, image)
    assert out["logits"].shape == (4, 2) and torch.isfinite(out["logits"]).all()
    for k in ("audio_emb", "visual_emb"):
        assert out[k].shape[0] == 4
        assert torch.allclose(out[k].norm(dim=-1), torch.ones(4), atol=1e-5)
    loss = torch.nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1, 0, 1]))
    loss.backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in m.audio.parameters())
    assert any(p.grad.abs().sum() > 0 for p in m.vision.parameters())


def test_avenet_decides_from_distance_with_correct_sign():
    m = create_model("test_avenet")
    d = torch.tensor([[0.0], [2.0]])
    logits = m.classifier(d)
    p_match = logits.softmax(-1)[:, 1]
    assert p_match[0] > 0.5 > p_match[1]  # close embeddings = "corresponds" at initialisation


def test_encoders_match_forward():
    m = create_model("test_avenet").eval()
    audio, image = torch.randn(2, 48000), torch.randn(2, 3, 64, 64)
    out = m(audio, image)
    assert torch.allclose(m.encode_audio(audio), out["audio_emb"], atol=1e-6)
    assert torch.allclose(m.encode_visual(image), out["visual_emb"], atol=1e-6)
    assert torch.allclose(out["distance"], (out["audio_emb"] - out["visual_emb"]).norm(dim=-1), atol=1e-5)


def test_checkpoint_path_loads_wrapped_and_prefixed(tmp_path):
    src = create_model("test_avenet")
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "w.pt")
    m = create_model("test_avenet", checkpoint_path=tmp_path / "w.pt")
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint_state(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        create_model("test_avenet", checkpoint_path=tmp_path / "missing.pt")


def test_frontend_crops_and_pads():
    m = AVENet(width=1 / 16, n_frames=50, hop_length=480)
    assert m.frontend(torch.randn(2, 48000)).shape == (2, 1, 257, 50)
    assert m.frontend(torch.randn(2, 4800)).shape == (2, 1, 257, 50)
    with pytest.raises(ValueError, match="batch, samples"):
        m.frontend(torch.randn(48000))


@pytest.mark.parametrize("name", ["test_avenet", "test_l3net"])
def test_separate_tower_widths(name):
    m = create_model(name, vision_width=0.25, audio_width=0.125)
    assert m.vision.out_chans == 128 and m.audio.out_chans == 64
    out = m(torch.randn(2, 48000), torch.randn(2, 3, 48, 48))
    assert out["logits"].shape == (2, 2)


def test_model_kwargs_from_config(tmp_path):
    from avcorr.config import load_config
    from avcorr.tasks import build_task

    cfg = load_config("avenet.py", ["model.name=test_avenet", "model.kwargs={'vision_width': 0.25}"])
    model = build_task(cfg).build_model()
    assert model.vision.out_chans == 128 and model.audio.out_chans == int(round(512 * cfg.model.width))


def test_cheaper_stem_quarters_the_convolutions():
    """avenet_s2: stride 2 in each tower's first convolution; the same parameters, about 4x fewer FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    from avcorr.models.avenet import ConvTower

    kw = {"width": 1 / 16, "embed_dim": 16}
    paper, cheap = create_model("avenet", **kw).eval(), create_model("avenet_s2", **kw).eval()
    assert sum(p.numel() for p in paper.parameters()) == sum(p.numel() for p in cheap.parameters())
    assert paper.vision.stride == 16 and cheap.vision.stride == 32
    frames, audio = torch.rand(2, 3, 224, 224), torch.randn(2, 48000)

    def flops(model):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = model(audio, frames)
        return counter.get_total_flops(), out

    f_paper, _ = flops(paper)
    f_cheap, out = flops(cheap)
    assert 3.5 < f_paper / f_cheap < 4.1  # the first convolution's own share stays, the rest is a quarter
    assert out["logits"].shape == (2, 2)
    assert ConvTower(3, (8, 16), stem_stride=2)(torch.rand(1, 3, 64, 64)).shape == (1, 16, 8, 8)
    with pytest.raises(ValueError, match="stem_stride"):
        ConvTower(3, (8,), stem_stride=3)


@pytest.mark.parametrize("name, kwargs, make_input", [
    ("test_panns", {"num_classes": 5}, lambda: (torch.randn(2, 32000),)),
    ("avenet", {"width": 1 / 16, "embed_dim": 16}, lambda: (torch.randn(2, 48000), torch.rand(2, 3, 112, 112))),
])
def test_fused_batchnorm_gives_the_same_outputs(name, kwargs, make_input):
    from avcorr.models.fusion import fuse_conv_bn

    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    with torch.no_grad():  # give the BatchNorms statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    inputs = make_input()
    with torch.no_grad():
        before = model(*inputs)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        fused = fuse_conv_bn(model)
        after = model(*inputs)
    assert fused > 0 and sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == n_bn - fused
    key = "logits"
    assert torch.allclose(before[key], after[key], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval"):
        fuse_conv_bn(model.train())
