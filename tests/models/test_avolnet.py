"""AVOL-Net and the contrastive localizer: geometry, maps, losses (naive references), DDP gathering."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avcorr.losses import ContrastiveLocalizationLoss, MILLogisticLoss, max_cell_similarity
from avcorr.models import AVOLNet, create_model, list_models


def test_registered_variants():
    for name in ("avolnet", "ezvsl", "test_avolnet", "test_ezvsl"):
        assert name in list_models()
    assert create_model("avolnet").objective == "avol" and create_model("test_ezvsl").objective == "contrastive"
    with pytest.raises(ValueError, match="objective"):
        AVOLNet(objective="nope")


def test_avol_1x1_conv_head_gives_14x14_maps_at_224px():
    torch.manual_seed(0)
    m = create_model("avolnet", width=1 / 16).eval()  # paper geometry, thin towers to stay fast
    convs = [layer for layer in m.vision_head if isinstance(layer, nn.Conv2d)]
    assert len(convs) == 2 and all(c.kernel_size == (1, 1) for c in convs)
    assert isinstance(m.calibration, nn.Conv2d) and m.calibration.weight.numel() == 1
    # calibration starts at unit scale and the prior log-odds of a sounding cell (p = 0.01)
    assert m.calibration.weight.item() == 1.0 and m.calibration.bias.item() == pytest.approx(-4.59512, abs=1e-4)
    audio, image = torch.randn(2, 48000), torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        cells = m.encode_visual_cells(image)
        heat = m.localize(audio, image)
        out = m(audio, image)
        emb = m.encode_visual(image)
    assert cells.shape == (2, 128, 14, 14) and heat.shape == (2, 14, 14)
    # retrieval-style global embedding: the cells max-pooled, L2-normalised
    assert torch.allclose(emb, F.normalize(cells.amax(dim=(2, 3)), dim=-1), atol=1e-5)
    assert torch.allclose(out["map"], heat, atol=1e-6)
    # the map is sigmoid(w * <cell, audio> + b), and the correspondence score is its max over cells
    a = m.audio_embedding(audio)  # AVOL-Net compares unnormalised embeddings
    assert torch.allclose(m.encode_audio(audio), F.normalize(a, dim=-1), atol=1e-6)
    w, b = m.calibration.weight.item(), m.calibration.bias.item()
    by_hand = torch.sigmoid(w * (cells * a[:, :, None, None]).sum(1) + b)
    assert torch.allclose(heat, by_hand, atol=1e-5)
    p = out["logits"].softmax(-1)[:, 1]
    assert torch.allclose(p, heat.flatten(1).amax(1), atol=1e-5)


def test_contrastive_map_is_cosine_similarity():
    torch.manual_seed(0)
    m = create_model("test_ezvsl", prior_alpha=1.0).eval()  # the plain cosine map, no object prior
    audio, image = torch.randn(3, 16000), torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        cells, a = m.encode_visual_cells(image), m.audio_embedding(audio)
        heat = m.localize(audio, image)
    assert cells.shape == (3, 16, 4, 4)
    assert torch.allclose(cells.norm(dim=1), torch.ones(3, 4, 4), atol=1e-5)
    assert torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(heat, F.cosine_similarity(cells, a[:, :, None, None], dim=1), atol=1e-5)


@pytest.mark.parametrize("name", ["test_avolnet", "test_ezvsl"])
def test_forward_contract_and_gradients(name):
    torch.manual_seed(0)
    m = create_model(name)
    out = m(torch.randn(4, 16000), torch.randn(4, 3, 64, 64))
    assert out["logits"].shape == (4, 2) and out["map"].shape == (4, 4, 4)
    for k in ("audio_emb", "visual_emb"):
        assert torch.allclose(out[k].norm(dim=-1), torch.ones(4), atol=1e-5)
    F.cross_entropy(out["logits"], torch.tensor([0, 1, 0, 1])).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_object_prior_blending():
    torch.manual_seed(0)
    assert create_model("ezvsl").prior_alpha == 0.4 and create_model("avolnet").prior_alpha == 1.0
    base = create_model("test_ezvsl").eval()
    blended = create_model("test_ezvsl", prior_alpha=0.0).eval()
    blended.load_state_dict(base.state_dict())
    audio, image = torch.randn(2, 16000), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        obj = base.vision(image).mean(1)
        m = blended.localize(audio, image)
    lo, hi = obj.flatten(1).min(1).values, obj.flatten(1).max(1).values
    assert torch.allclose(m, (obj - lo[:, None, None]) / (hi - lo)[:, None, None], atol=1e-5)
    with pytest.raises(ValueError, match="prior_alpha"):
        AVOLNet(prior_alpha=1.5)


def test_mil_logistic_loss_is_bce_of_the_max_cell_and_only_the_max_learns():
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 0.5]], [[1.0, -3.0], [0.0, 0.2]]], requires_grad=True)
    labels = torch.tensor([1, 0])
    loss = MILLogisticLoss()(logits, labels)
    z = torch.tensor([2.0, 1.0])
    expected = -(torch.log(torch.sigmoid(z[0])) + torch.log(1 - torch.sigmoid(z[1]))) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    g = logits.grad
    assert g[0, 0, 1] < 0 and g[1, 0, 0] > 0  # positive pushed up, negative pushed down
    assert (g != 0).sum() == 2  # every other cell gets no gradient (multiple-instance max)


def _naive_contrastive(v, a, scale):
    """Loops: s[n, m] = max over cells of <v_n, a_m>; mean of the two cross-entropies."""
    n = v.shape[0]
    s = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            s[i, j] = max((v[i, :, y, x] * a[j]).sum() for y in range(v.shape[2]) for x in range(v.shape[3]))
    s = s * scale
    ce_v = -sum(torch.log_softmax(s[i], 0)[i] for i in range(n)) / n
    ce_a = -sum(torch.log_softmax(s[:, j], 0)[j] for j in range(n)) / n
    return (ce_v + ce_a) / 2


def test_contrastive_loss_matches_naive_reference():
    torch.manual_seed(0)
    v = F.normalize(torch.randn(5, 8, 3, 4), dim=1)
    a = F.normalize(torch.randn(5, 8), dim=1)
    assert torch.allclose(max_cell_similarity(v, a)[2, 3], (v[2] * a[3][:, None, None]).sum(0).max())
    loss = ContrastiveLocalizationLoss()(v, a, 1 / 0.07)
    assert loss.item() == pytest.approx(_naive_contrastive(v, a, 1 / 0.07).item(), rel=1e-5)
    # matching pairs made similar -> lower loss
    aligned = F.normalize(v[:, :, 0, 0] + 0.1 * torch.randn(5, 8), dim=1)
    assert ContrastiveLocalizationLoss()(v, aligned, 1 / 0.07) < loss


# -- DDP: the loss gathers across 2 gloo processes ----------------------------------------------------


def _full_batch(world_size=2, b=3):
    g = torch.Generator().manual_seed(123)
    v = F.normalize(torch.randn(world_size * b, 6, 2, 3, generator=g), dim=1)
    a = F.normalize(torch.randn(world_size * b, 6, generator=g), dim=1)
    return v, a


def _ddp_worker(rank, world_size, init_file, out_file):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        v, a = _full_batch(world_size)
        b = v.shape[0] // world_size
        results = {}
        for mode in ("default", "local", "with_grad"):
            lv = v[rank * b:(rank + 1) * b].clone().requires_grad_(True)
            la = a[rank * b:(rank + 1) * b].clone().requires_grad_(True)
            loss_fn = ContrastiveLocalizationLoss(local_loss=mode == "local", gather_with_grad=mode == "with_grad")
            loss = loss_fn(lv, la, 10.0)
            loss.backward()
            results[mode] = (loss.detach(), lv.grad.clone(), la.grad.clone())
        loss_fn.eval()  # evaluation gathers nothing: the local batch alone
        results["eval"] = loss_fn(v[rank * b:(rank + 1) * b], a[rank * b:(rank + 1) * b], 10.0)
        torch.save(results, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
def test_contrastive_loss_gathers_across_two_gloo_processes(tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    world = 2
    mp.spawn(_ddp_worker, args=(world, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=world, join=True)
    v, a = _full_batch(world)
    b = v.shape[0] // world
    loss_fn = ContrastiveLocalizationLoss()
    for rank in range(world):
        got = torch.load(tmp_path / f"out.{rank}", weights_only=True)
        sl = slice(rank * b, (rank + 1) * b)
        # default (open_clip semantics): the global loss, gradient through the local slice
        fv, fa = v.clone().requires_grad_(True), a.clone().requires_grad_(True)
        full = loss_fn(fv, fa, 10.0)
        full.backward()
        loss, gv, ga = got["default"]
        assert loss.item() == pytest.approx(full.item(), rel=1e-5)
        assert torch.allclose(gv, fv.grad[sl], atol=1e-6) and torch.allclose(ga, fa.grad[sl], atol=1e-6)
        # local_loss: only the local anchors' rows against everything gathered (candidates carry no grad)
        fv, fa = v.clone().requires_grad_(True), a.clone().requires_grad_(True)
        labels = torch.arange(v.shape[0])
        v2a = 10.0 * max_cell_similarity(fv[sl], fa.detach())
        a2v = 10.0 * max_cell_similarity(fv.detach(), fa[sl]).t()
        local = (F.cross_entropy(v2a, labels[sl]) + F.cross_entropy(a2v, labels[sl])) / 2
        local.backward()
        loss, gv, ga = got["local"]
        assert loss.item() == pytest.approx(local.item(), rel=1e-5)
        assert torch.allclose(gv, fv.grad[sl], atol=1e-6) and torch.allclose(ga, fa.grad[sl], atol=1e-6)
        # gather_with_grad: every process computes the global loss; the gather's backward sums the
        # gradients of all processes' losses for the local slice (world_size x the global gradient)
        loss, gv, ga = got["with_grad"]
        fv, fa = v.clone().requires_grad_(True), a.clone().requires_grad_(True)
        loss_fn(fv, fa, 10.0).backward()
        assert loss.item() == pytest.approx(full.item(), rel=1e-5)
        assert torch.allclose(gv, world * fv.grad[sl], atol=1e-6)
        # eval mode: no gathering
        assert got["eval"].item() == pytest.approx(loss_fn(v[sl], a[sl], 10.0).item(), rel=1e-5)


def test_avol_all_pairs_loss():
    from avcorr.models import create_model
    from avcorr.tasks.localization import LocalizationModule

    torch.manual_seed(0)
    m = create_model("test_avolnet", sample_rate=16000, n_fft=256, win_length=160, hop_length=160, n_frames=100)
    mod = LocalizationModule(m, negatives="all").train()
    batch = {"image": torch.randn(4, 3, 32, 32), "audio": torch.randn(4, 16000), "vid": ["a", "b", "b", "c"],
             "audio_vid": ["a", "b", "b", "c"]}
    out = mod(batch)
    # 4 positives; negatives: every (frame, other audio) pair except the two pairs of clip b -> 12 - 2 = 10
    assert out["pos_logit"].shape == (4,) and out["neg_logit"].shape == (10,)
    cells, audio = m.visual_cells(batch["image"])[0], m.audio_embedding(batch["audio"])
    full = torch.stack([m.cell_logits(cells, audio.roll(-k, 0)).flatten(1).amax(1) for k in range(4)], 1)
    pos = full[:, 0]
    assert torch.allclose(out["pos_logit"], pos.detach(), atol=1e-5)
    keep = torch.tensor([[batch["vid"][i] != batch["vid"][(i + k) % 4] for k in range(1, 4)] for i in range(4)])
    neg = full[:, 1:][keep]
    ref = (F.binary_cross_entropy_with_logits(pos, torch.ones(4)) + F.binary_cross_entropy_with_logits(neg, torch.zeros(10))) / 2
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-5)
    out["loss"].backward()
    with pytest.raises(ValueError, match="negatives"):
        LocalizationModule(m, negatives="some")


def test_avol_cosine_variant():
    from avcorr.models import create_model

    m = create_model("test_avolnet", cosine=True, temperature=0.1)
    assert m.calibration.weight.item() == pytest.approx(10.0)
    cells, _ = m.visual_cells(torch.randn(2, 3, 64, 64))
    assert torch.allclose(cells.norm(dim=1), torch.ones(2, *cells.shape[-2:]), atol=1e-5)
    assert torch.allclose(m.audio_embedding(torch.randn(2, 48000)).norm(dim=-1), torch.ones(2), atol=1e-5)
    plain = create_model("test_avolnet")
    assert not plain.normalized and plain.calibration.weight.item() == 1.0


def test_map_logits_keeps_the_ranking_and_unsaturates_a_fixed_threshold():
    from avcorr.metrics.localization import binarize, normalize_map

    torch.manual_seed(0)
    m = create_model("test_avolnet", cosine=True, temperature=0.1).eval()
    with torch.no_grad():  # a strongly calibrated model: the sigmoid saturates over most cells
        m.calibration.weight.fill_(40.0)
        m.calibration.bias.fill_(20.0)
    audio, image = torch.randn(2, 48000), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        prob = m(audio, image)
        m.map_logits = True
        logit = m(audio, image)
    assert torch.allclose(torch.sigmoid(logit["map"]), prob["map"], atol=1e-6)
    for key in ("cell_logits", "logits", "audio_emb", "visual_emb"):  # training and scores unchanged
        assert torch.equal(prob[key], logit[key])
    flat_p, flat_l = prob["map"].flatten(1), logit["map"].flatten(1)
    in_logit_order = flat_p.gather(1, flat_l.argsort(dim=1))
    assert (in_logit_order.diff(dim=1) >= 0).all()  # the same ranking (ties where the sigmoid saturates)
    on_p = binarize(normalize_map(prob["map"]), threshold=0.5).float().mean()
    on_l = binarize(normalize_map(logit["map"]), threshold=0.5).float().mean()
    assert on_p > on_l  # the saturated probability map switches on more of the frame at a fixed threshold


def test_the_colour_scale_of_a_logit_map_is_the_calibration_range():
    from avcorr.inference.localization import model_range

    m = create_model("test_avolnet", cosine=True, temperature=0.1)
    assert model_range(m) == (0.0, 1.0)  # the sigmoid
    m.map_logits = True
    with torch.no_grad():
        m.calibration.weight.fill_(8.0)
        m.calibration.bias.fill_(-3.0)
    lo, hi = model_range(m)
    assert (lo, hi) == pytest.approx((-11.0, 5.0))
    with torch.no_grad():
        maps = m(torch.randn(2, 48000), torch.randn(2, 3, 64, 64))["map"]
    assert lo - 1e-4 <= maps.min() and maps.max() <= hi + 1e-4  # every cosine map falls inside it
    plain = create_model("test_avolnet", map_logits=True)
    assert model_range(plain) is None  # unbounded scalar products: each map on its own range
    assert model_range(create_model("test_avolnet", objective="contrastive")) == (-1.0, 1.0)
