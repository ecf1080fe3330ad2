"""The AVC objectives: the paper's pair cross-entropy and the in-batch contrastive objective."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from avcorr import create_model, train
from avcorr.config import Config, apply_overrides
from avcorr.models.avenet import ConvTower
from avcorr.tasks.avc import AVCModule, AVCTask, ContrastiveAVCModule
from tests.conftest import TINY_AVC


def _batch(b=6, vids=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.randn(b, 16000, generator=g), "image": torch.randn(b, 3, 32, 32, generator=g),
            "label": torch.ones(b, dtype=torch.long), "vid": vids or [f"v{i}" for i in range(b)]}


def _model(**kw):
    torch.manual_seed(0)
    return create_model("test_avenet", sample_rate=16000, n_fft=256, win_length=160, hop_length=160, n_frames=100,
                        **kw)


def _infonce(sim):
    """The symmetric InfoNCE of a (B, B) similarity matrix (frame n, sound m) / temperature."""
    target = torch.arange(sim.shape[0])
    return (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target)) / 2


def test_contrastive_loss_is_infonce_plus_pair_head():
    model = _model()
    module = ContrastiveAVCModule(model, temperature=0.1, pair_weight=0.5).train()
    batch = _batch()
    out = module(batch)
    a = model.encode_audio(batch["audio"])
    v = model.encode_visual(batch["image"])
    assert out["infonce"].item() == pytest.approx(_infonce(v @ a.t() / 0.1).item(), rel=1e-4)
    # pair head: 6 positives then frame i with the audio of pair i + 1
    assert out["label"].tolist() == [1] * 6 + [0] * 6
    assert out["logits"].shape == (12, 2)
    assert out["loss"].item() == pytest.approx(out["infonce"].item() + 0.5 * out["pair_loss"].item(), rel=1e-5)
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_same_clip_shifted_pairs_are_not_negatives():
    module = ContrastiveAVCModule(_model()).train()
    out = module(_batch(vids=["a", "a", "b", "c", "c", "d"]))
    # shifted partners: a->a (dropped), a->b, b->c, c->c (dropped), c->d, d->a
    assert out["label"].tolist() == [1] * 6 + [0] * 4


def test_eval_mode_scores_labelled_pairs_like_the_paper_objective():
    model = _model().eval()
    batch = _batch()
    batch["label"] = torch.tensor([1, 0, 1, 0, 1, 0])
    with torch.no_grad():
        ours = ContrastiveAVCModule(model).eval()(batch)
        paper = AVCModule(model).eval()(batch)
    assert torch.equal(ours["logits"], paper["logits"])
    assert ours["loss"].item() == pytest.approx(paper["loss"].item())


def test_objective_errors():
    with pytest.raises(ValueError, match="embedding model"):
        ContrastiveAVCModule(create_model("test_l3net"))
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveAVCModule(_model(), temperature=0.0)
    with pytest.raises(ValueError, match="avc.loss"):  # checked when the config is loaded
        apply_overrides(Config(task="avc"), ["avc.loss=triplet"])


def test_unpooled_tower_keeps_twice_the_resolution():
    x = torch.randn(2, 3, 64, 64)
    assert ConvTower(3, (4, 4, 4, 4))(x).shape[-2:] == (4, 4)
    tower = ConvTower(3, (4, 4, 4, 4), pool_last=False)
    assert tower(x).shape[-2:] == (8, 8) and tower.stride == 8
    m = create_model("test_ezvsl", vision_stride=8, sample_rate=16000, n_fft=256, win_length=160, hop_length=160,
                     n_frames=100)
    assert m.localize(torch.randn(2, 16000), torch.randn(2, 3, 64, 64)).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="vision_stride"):
        create_model("test_avolnet", vision_stride=4)


def test_contrastive_training_end_to_end(tiny_root, tmp_path):
    run = tmp_path / "run"
    assert train.main(["--config", "avenet.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}",
                       *TINY_AVC, "avc.loss=contrastive"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    tr = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert len(tr) == 2 and all(math.isfinite(r["loss"]) and 0 <= r["avc_acc"] <= 1 for r in tr)
    assert len(val) == 2 and all(0 <= r["avc_acc"] <= 1 and r["num_pairs"] == 12 for r in val)
    assert json.loads((run / "config.json").read_text())["avc"]["loss"] == "contrastive"


def test_class_level_ceiling(tiny_root):
    from avcorr.data.avc import AVCPairDataset, collate_pairs
    from avcorr.data.layout import load_split
    from avcorr.tasks.avc import AVCEvaluator

    index = load_split(tiny_root, "train")
    ds = AVCPairDataset(index, sample_rate=16000, image_size=32, train=False, pairs_per_clip=4)
    labels = {c.vid: set(c.labels) for c in index.clips}
    drawn = {c.vid: set(index.visible_labels(c)) for c in index.clips}  # the generator writes visible.json
    items = [ds[i] for i in range(len(ds))]
    for it in items:
        expected = it["label"].item() == 0 and bool(drawn[it["vid"]] & labels[it["audio_vid"]])
        assert it["shares_label"].item() == expected
    shared = sum(int(it["shares_label"]) for it in items)
    assert 0 < shared < len(items) // 2  # 3 classes: some negatives share the frame's class
    ev = AVCEvaluator()
    batch = collate_pairs(items)
    logits = torch.stack([torch.zeros(len(items)), (batch["label"] * 2 - 1).float()], dim=1)  # a perfect model
    ev.update(batch, {"logits": logits, "loss": torch.tensor(0.0)})
    out = ev.compute()
    assert out["avc_acc"] == 1.0 and out["ceiling/avc_acc"] == pytest.approx(1 - shared / len(items))


def test_class_level_ceiling_counts_silent_objects(tiny_copy):
    """visible.json drawing every class in every frame: no negative can be told by classes, the ceiling is the
    share of positives (0.5); listing no silent object gives the labels' ceiling again."""
    from avcorr.data.avc import AVCPairDataset, collate_pairs
    from avcorr.data.layout import load_split
    from avcorr.tasks.avc import AVCEvaluator

    def ceiling(visible):
        (tiny_copy / "val" / "visible.json").write_text(json.dumps(visible))
        ds = AVCPairDataset(load_split(tiny_copy, "val"), sample_rate=16000, image_size=32, train=False,
                            pairs_per_clip=4)
        batch = collate_pairs([ds[i] for i in range(len(ds))])
        ev = AVCEvaluator()
        logits = torch.stack([torch.zeros(len(ds)), (batch["label"] * 2 - 1).float()], dim=1)  # a perfect model
        ev.update(batch, {"logits": logits, "loss": torch.tensor(0.0)})
        return ev.compute(), batch

    vids = json.loads((tiny_copy / "val" / "vid2genre.json").read_text())
    classes = load_split(tiny_copy, "val").classes
    out, batch = ceiling({v: classes for v in vids})
    assert out["ceiling/avc_acc"] == 0.5 and out["avc_acc"] == 1.0 and int(batch["label"].sum()) == len(vids) * 2
    out, batch = ceiling({})
    labels = {c.vid: set(c.labels) for c in load_split(tiny_copy, "val").clips}
    shared = sum(not y and bool(labels[v] & labels[a]) for v, a, y in zip(batch["vid"], batch["audio_vid"],
                                                                           batch["label"].tolist()))
    assert out["ceiling/avc_acc"] == pytest.approx(1 - shared / len(batch["vid"])) and 0.5 < out["ceiling/avc_acc"]


def test_training_accuracy_judges_the_pairs_the_module_made():
    """AVCTask.train_metrics: avc_acc over the batch's pairs, or the contrastive module's own pairs."""
    from avcorr.config import Config, apply_overrides
    from avcorr.tasks.avc import AVCTask

    task = AVCTask(Config())
    batch = {"label": torch.tensor([1, 0, 1])}
    logits = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # answers 1, 1, 0
    assert task.train_metrics(batch, {"loss": torch.tensor(0.0), "logits": logits}) == {"avc_acc": (1, 3)}
    own = {"loss": torch.tensor(0.0), "logits": logits[:2], "label": torch.tensor([1, 1])}
    assert task.train_metrics(batch, own) == {"avc_acc": (2, 2)}
    assert task.train_metrics(batch, {"loss": torch.tensor(0.0)}) == {}
    assert task.batch_size(batch) == 3


def test_soft_targets_spread_over_pairs_that_sound_alike():
    from avcorr.losses import ContrastiveLocalizationLoss

    g = torch.Generator().manual_seed(3)
    v = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    a = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    a[1] = a[0]  # pairs 0 and 1 sound the same
    scale = 10.0
    hard = ContrastiveLocalizationLoss()(v[:, :, None, None], a, scale)
    logits = scale * v @ a.t()
    target = torch.arange(5)
    assert hard.item() == pytest.approx(((F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2).item(), rel=1e-5)
    soft = ContrastiveLocalizationLoss(soft_targets=0.4)(v[:, :, None, None], a, scale)
    t = 0.6 * torch.eye(5) + 0.4 * (scale * a @ a.t()).softmax(-1)
    assert t[0, 1] > 0.15 and t[0, 1] == pytest.approx(t[0, 0] - 0.6, abs=1e-6)  # pair 1 shares pair 0's target
    ref = (-(t * logits.log_softmax(-1)).sum(-1).mean() - (t * logits.t().log_softmax(-1)).sum(-1).mean()) / 2
    assert soft.item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match="soft_targets"):
        ContrastiveLocalizationLoss(soft_targets=1.0)


def _cells_model():
    return _model(visual_pool="cells")


def test_cells_pooling_scores_a_sound_by_its_best_cell():
    model = _cells_model().eval()
    assert set(model.state_dict()) == set(_model().state_dict())  # same weights: checkpoints load either way
    batch = _batch()
    with torch.no_grad():
        out = model(batch["audio"], batch["image"])
        cells = model.encode_visual_cells(batch["image"])  # (B, D, 2, 2) at 32 px
        a = model.encode_audio(batch["audio"])
        # every cell is the frame head applied to that cell of the tower's map, unit length
        feats = model.visual_features(batch["image"])
        assert cells.shape == (6, 16, *feats.shape[2:]) and feats.shape[2:] == (2, 2)
        torch.testing.assert_close(cells[:, :, 1, 0], F.normalize(model.vision_head(feats[:, :, 1, 0]), dim=-1))
        best = torch.einsum("bdhw,bd->bhw", cells, a).flatten(1).amax(1)
        torch.testing.assert_close(out["distance"], (2 - 2 * best).sqrt())
        # the distance head of the best cell: the same map from distance to logits as the pooled model
        torch.testing.assert_close(out["logits"], model.classifier(out["distance"][:, None]))
        # retrieval indexes one vector a frame: the cells max-pooled
        torch.testing.assert_close(model.encode_visual(batch["image"]), F.normalize(cells.amax(dim=(2, 3)), dim=-1))


def test_cells_pooling_finds_the_cell_that_matches():
    """A frame whose one cell equals the sound scores cos 1 whatever its other cells hold."""
    cells = F.normalize(torch.randn(3, 8, 4, 4), dim=1)
    audio = F.normalize(torch.randn(3, 8), dim=-1)
    cells[1, :, 2, 3] = audio[1]
    sim = create_model("test_avenet", visual_pool="cells").similarity(cells, audio)
    assert sim[1].item() == pytest.approx(1.0) and (sim[[0, 2]] < 1).all()


def test_contrastive_loss_with_cells_is_multiple_instance():
    model = _cells_model()
    module = ContrastiveAVCModule(model, temperature=0.1, pair_weight=0.5).train()
    batch = _batch()
    out = module(batch)
    a = model.encode_audio(batch["audio"])
    cells = model.encode_visual_cells(batch["image"])
    sim = torch.einsum("ndhw,md->nmhw", cells, a).flatten(2).amax(-1)  # frame n, sound m: the best cell
    assert out["infonce"].item() == pytest.approx(_infonce(sim / 0.1).item(), rel=1e-4)
    assert out["label"].tolist() == [1] * 6 + [0] * 6
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_cells_pooling_errors():
    with pytest.raises(ValueError, match="visual_pool"):
        create_model("test_avenet", visual_pool="mean")
    with pytest.raises(ValueError, match="fusion='distance'"):
        create_model("test_l3net", visual_pool="cells")
