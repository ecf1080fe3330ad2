"""AudioSet attention taggers on embedding packs: heads, packs, the task, the config, the packer."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avcorr.data.embedding_pack import (
    EmbeddingPackDataset,
    collate_embeddings,
    inspect_pack,
    open_embedding_source,
)
from avcorr.data.errors import LayoutError
from avcorr.metrics.tagging import tagging_metrics
from avcorr.models import create_model, list_models

HEADS = ["audioset_avg_pool", "audioset_max_pool", "audioset_single_attention", "audioset_multi_attention",
         "audioset_feature_attention"]
CLASSES = ["Bark", "Siren", "Speech", "Guitar"]


def _arrays(n: int, *, classes: int = 4, frames: int = 10, dim: int = 128, seed: int = 0, prevalence: float = 0.3):
    """Pack-unit embeddings whose labels live in a few dims of a few frames.

    Noise ~ N(128, 30) everywhere; class ``c`` present in a clip (probability ``prevalence``, several
    classes at once allowed) raises dims ``8c .. 8c+7`` by 60 in one or two random frames.

    Returns:
        ``x`` uint8 (n, frames, dim), ``y`` bool (n, classes).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(128, 30, (n, frames, dim))
    y = rng.random((n, classes)) < prevalence
    for i, c in zip(*np.nonzero(y)):
        t = rng.choice(frames, size=int(rng.integers(1, 3)), replace=False)
        x[i, t, 8 * c : 8 * (c + 1)] += 60
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), y


def _write_pack(path, x, y, ids=True):
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=x)
        f.create_dataset("y", data=y)
        if ids:
            f.create_dataset("video_id_list", data=np.array([f"{path.stem}_{i:05d}".encode() for i in range(len(x))]))
    return path


def _write_csv(path, names):
    path.write_text("index,mid,display_name\n" + "".join(f'{i},/m/{i:04d},"{n}"\n' for i, n in enumerate(names)))
    return path


# -- heads ---------------------------------------------------------------------------------------


def test_registered_with_task_kwargs():
    assert set(HEADS) <= set(list_models("audioset_*"))
    m = create_model("audioset_feature_attention", num_classes=7, embed_dim=None, width=None)
    assert (m.input_dim, m.hidden, m.num_classes, m.dropout) == (128, 1024, 7, 0.5)  # the paper's defaults
    assert m.input_kind == "embedding" and m.frame_seconds == 1.0
    m = create_model("audioset_single_attention", num_classes=3, embed_dim=64, width=0.25)
    assert (m.input_dim, m.hidden) == (64, 256)
    assert create_model("audioset_avg_pool", num_classes=3, width=0.25, hidden=8).hidden == 8  # hidden wins
    multi = create_model("audioset_multi_attention", num_classes=3, hidden=8)
    assert multi.levels == (2, 3) and len(multi.attentions) == 2
    assert len(create_model("audioset_multi_attention", num_classes=3, hidden=8, shared_attention=True).attentions) == 1
    with pytest.raises(ValueError, match="levels"):
        create_model("audioset_multi_attention", num_classes=3, hidden=8, levels=(3, 4))
    with pytest.raises(ValueError, match="one width"):
        create_model("audioset_multi_attention", num_classes=3, hidden=8, levels=(0, 3), shared_attention=True)


@pytest.mark.parametrize("name", HEADS)
def test_shapes_any_length_uint8_or_float(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=5, hidden=16)
    m.eval()
    for t in (1, 3, 10):
        x = torch.randint(0, 256, (4, t, 128), dtype=torch.uint8)
        with torch.no_grad():
            out = m(x)
            out_f = m(x.float())
        assert out["logits"].shape == out["clipwise_output"].shape == (4, 5)
        assert out["embedding"].shape == (4, 16)
        assert torch.equal(out["logits"], out_f["logits"])  # uint8 and float pack units are the same input
        p = out["clipwise_output"]
        assert ((p >= 0) & (p <= 1)).all() and torch.isfinite(out["logits"]).all()
        assert torch.allclose(out["logits"], torch.logit(p, eps=1e-7))
        assert torch.allclose(torch.sigmoid(out["logits"]), p.clamp(1e-7, 1 - 1e-7), atol=1e-6)
        if "framewise_output" in out:
            assert out["framewise_output"].shape == (4, t, 5)
    # the model normalises (x - 128) / 128 itself: shifting by the mean is not a no-op
    m.train()
    x = torch.randint(0, 256, (4, 3, 128), dtype=torch.uint8)
    out = m(x)
    y = (torch.rand(4, 5) < 0.5).float()
    bce = F.binary_cross_entropy_with_logits(out["logits"], y)
    assert torch.allclose(bce, F.binary_cross_entropy(out["clipwise_output"].clamp(1e-7, 1 - 1e-7), y), atol=1e-5)
    bce.backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(2, 3, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(2, 0, 128))
    with pytest.raises(ValueError, match="mixup"):
        m(x, mixup_lambda=torch.ones(4))


def test_input_normalisation_inside_model():
    torch.manual_seed(0)
    m = create_model("audioset_avg_pool", num_classes=2, hidden=8).eval()
    x = torch.randint(0, 256, (3, 4, 128), dtype=torch.uint8)
    a = m.normalize_input(x)
    assert a.shape == (3, 128, 4)
    assert torch.allclose(a, ((x.float() - 128) / 128).transpose(1, 2))


@pytest.mark.parametrize("name,key", [("audioset_single_attention", "attention"),
                                      ("audioset_multi_attention", "attention"),
                                      ("audioset_feature_attention", "attention")])
def test_attention_weights_normalise(name, key):
    torch.manual_seed(1)
    m = create_model(name, num_classes=3, hidden=12).eval()
    x = torch.randint(0, 256, (5, 7, 128), dtype=torch.uint8)
    with torch.no_grad():
        out = m(x)
    w = out[key]
    time_axis = 2 if name == "audioset_multi_attention" else 1
    assert w.shape[time_axis] == 7 and (w > 0).all()
    assert torch.allclose(w.sum(dim=time_axis), torch.ones(()), atol=1e-5)
    if name == "audioset_single_attention":  # decision level: p = sum_t w_t * cla_t
        assert torch.allclose((w * out["framewise_output"]).sum(1), out["clipwise_output"], atol=1e-6)


def test_pooling_outputs_follow_framewise():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (2, 6, 128), dtype=torch.uint8)
    for name, reduce in (("audioset_avg_pool", lambda f: f.mean(1)), ("audioset_max_pool", lambda f: f.amax(1))):
        m = create_model(name, num_classes=3, hidden=8).eval()
        with torch.no_grad():
            out = m(x)
        assert torch.allclose(reduce(out["framewise_output"]), out["clipwise_output"], atol=1e-6)


def test_heads_learn_labels_hidden_in_a_few_frames():
    """Each head learns a multi-label pack far above chance; attention heads beat average pooling."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xtr, ytr = _arrays(600, seed=0)
        xte, yte = _arrays(300, seed=1)
        chance = float(yte.mean())
        x, y = torch.from_numpy(xtr), torch.from_numpy(ytr).float()
        maps = {}
        for name in HEADS:
            torch.manual_seed(0)
            m = create_model(name, num_classes=4, hidden=64, dropout=0.1)
            opt = torch.optim.Adam(m.parameters(), lr=3e-3)
            g = np.random.default_rng(0)
            for _ in range(150):
                idx = torch.from_numpy(g.integers(0, len(x), 50))
                loss = F.binary_cross_entropy_with_logits(m(x[idx])["logits"], y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            m.eval()
            with torch.no_grad():
                scores = m(torch.from_numpy(xte))["logits"]
            maps[name] = tagging_metrics(scores, torch.from_numpy(yte))["mAP"]
    finally:
        torch.set_num_threads(threads)
    assert all(v > chance + 0.2 for v in maps.values()), (chance, maps)
    for name in ("audioset_single_attention", "audioset_feature_attention", "audioset_max_pool"):
        assert maps[name] > 0.95, maps
    for name in ("audioset_single_attention", "audioset_multi_attention", "audioset_feature_attention"):
        assert maps[name] >= maps["audioset_avg_pool"] + 0.1, maps  # 1-2 event frames of 10: averaging dilutes


# -- packs ---------------------------------------------------------------------------------------


def test_source_and_dataset_read_several_packs(tmp_path):
    xa, ya = _arrays(30, seed=0)
    xb, yb = _arrays(12, seed=1)
    _write_pack(tmp_path / "bal_train.h5", xa, ya)
    with h5py.File(tmp_path / "unbal_train.h5", "w") as f:  # 0/1 integers and no ids are accepted
        f["x"], f["y"] = xb, yb.astype(np.uint8)
    src = open_embedding_source(tmp_path, "bal_train.h5, unbal_train.h5")
    assert src.num_rows == 42 and (src.frames, src.dim) == (10, 128)
    assert src.classes == [f"class_{i}" for i in range(4)]  # no csv
    assert src.vid(0) == "bal_train_00000" and src.vid(31) == "unbal_train.h5#1"
    assert np.array_equal(src.targets(), np.concatenate([ya, yb]))
    assert np.array_equal(src.targets(np.array([40, 2])), np.stack([yb[10], ya[2]]))
    assert src.is_multilabel == bool((np.concatenate([ya, yb]).sum(1) > 1).any())
    _write_csv(tmp_path / "class_labels_indices.csv", CLASSES)
    src = open_embedding_source(tmp_path, "bal_train.h5,unbal_train.h5")
    assert src.classes == CLASSES
    for preload in (0, 1 << 30):  # read row by row, or from RAM
        ds = EmbeddingPackDataset(src, train=False, multilabel=True, input_dim=128, preload_bytes=preload)
        items = [ds[i] for i in (0, 33)]
        assert np.array_equal(items[0]["embeddings"].numpy(), xa[0])
        assert np.array_equal(items[1]["embeddings"].numpy(), xb[3])
        assert torch.equal(items[1]["target"], torch.from_numpy(yb[3]).float())
        batch = collate_embeddings(items)
        assert batch["embeddings"].dtype == torch.uint8 and batch["embeddings"].shape == (2, 10, 128)
        assert batch["label"].tolist() == [-1, -1] and batch["vid"] == ["bal_train_00000", "unbal_train.h5#3"]
    assert np.array_equal(ds.targets, src.targets())
    per_class = ds.class_indices()  # what the balanced sampler gets: no dense matrix
    assert len(per_class) == 4
    for c, idx in enumerate(per_class):
        assert np.array_equal(idx, np.flatnonzero(ds.targets[:, c]))
    with pytest.raises(LayoutError, match="64"):
        EmbeddingPackDataset(src, train=True, multilabel=True, input_dim=64)


def test_bad_packs_are_clear_errors(tmp_path):
    x, y = _arrays(8)
    with h5py.File(tmp_path / "no_x.h5", "w") as f:
        f["y"] = y
    with pytest.raises(LayoutError, match=r"no_x\.h5.*'x'"):
        inspect_pack(tmp_path / "no_x.h5")
    with h5py.File(tmp_path / "rows.h5", "w") as f:
        f["x"], f["y"] = x, y[:5]
    with pytest.raises(LayoutError, match=r"rows\.h5.*8 rows.*5"):
        inspect_pack(tmp_path / "rows.h5")
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["x"], f["y"] = x[:, 0], y
    with pytest.raises(LayoutError, match=r"flat\.h5.*\(clips, frames, dims\)"):
        inspect_pack(tmp_path / "flat.h5")
    with h5py.File(tmp_path / "ids.h5", "w") as f:
        f["x"], f["y"], f["video_id_list"] = x, y, np.array([b"a", b"b"])
    with pytest.raises(LayoutError, match=r"ids\.h5.*video_id_list"):
        inspect_pack(tmp_path / "ids.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(LayoutError, match=r"text\.h5.*HDF5"):
        inspect_pack(tmp_path / "text.h5")
    with pytest.raises(LayoutError, match="not found"):
        open_embedding_source(tmp_path, "missing.h5")
    _write_pack(tmp_path / "a.h5", x, y)
    _write_pack(tmp_path / "short.h5", x[:, :5], y)
    with pytest.raises(LayoutError, match=r"short\.h5.*5 frames per clip"):
        open_embedding_source(tmp_path, "a.h5,short.h5")
    with pytest.raises(LayoutError, match=r"4 columns.*3 classes"):
        open_embedding_source(tmp_path, "a.h5", label_csv=_write_csv(tmp_path / "three.csv", CLASSES[:3]))


def test_float_pack_with_nan_row_is_skipped(tmp_path):
    x, y = _arrays(6)
    xf = x.astype(np.float32)
    xf[2, 3, 5] = np.nan
    _write_pack(tmp_path / "f.h5", xf, y)
    src = open_embedding_source(tmp_path, "f.h5")
    ev = EmbeddingPackDataset(src, train=False, multilabel=True)
    batch = collate_embeddings([ev[i] for i in range(6)])
    assert batch["embeddings"].shape[0] == 5 and batch["embeddings"].dtype == torch.float32
    assert [v for v, _ in batch["skipped"]] == ["f_00002"] and "NaN" in batch["skipped"][0][1]
    tr = EmbeddingPackDataset(src, train=True, multilabel=True)
    torch.manual_seed(0)
    item = tr[2]  # replaced by another clip, and reported
    assert item["vid"] != "f_00002" and item["skipped"][0][0] == "f_00002"


def test_single_label_packs(tmp_path):
    x, _ = _arrays(10)
    y = np.zeros((10, 3), bool)
    y[np.arange(10), np.arange(10) % 3] = True
    y[9] = False  # unlabelled: skipped in single-label mode
    _write_pack(tmp_path / "s.h5", x, y)
    src = open_embedding_source(tmp_path, "s.h5")
    assert not src.is_multilabel
    ds = EmbeddingPackDataset(src, train=False, multilabel=False)
    assert len(ds) == 9 and ds.init_skipped[0][0] == "s_00009"
    assert [ds[i]["label"] for i in range(4)] == [0, 1, 2, 0]
    y[0, 1] = True
    _write_pack(tmp_path / "m.h5", x, y)
    with pytest.raises(LayoutError, match="label_mode"):
        EmbeddingPackDataset(open_embedding_source(tmp_path, "m.h5"), train=True, multilabel=False)


# -- task and config -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("audioset_packs")
    xtr, ytr = _arrays(240, seed=0)
    xev, yev = _arrays(120, seed=1)
    _write_pack(root / "bal_train.h5", xtr, ytr)
    _write_pack(root / "eval.h5", xev, yev)
    _write_csv(root / "class_labels_indices.csv", CLASSES)
    return root


TINY = ['model.kwargs={"hidden": 64, "dropout": 0.1}', "train.batch_size=40", "train.eval_batch_size=64",
        "train.epochs=15", "train.eval_every=5", "optim.lr=0.005", "data.num_workers=0", "train.num_threads=1"]


def test_config_is_the_paper_recipe():
    from avcorr.config import load_config

    cfg = load_config("audioset_attention.py")
    assert cfg.task == "tagging" and cfg.model.name == "audioset_feature_attention"
    assert cfg.tagging.format == "embeddings" and cfg.tagging.sampler == "balanced" and cfg.tagging.mixup_alpha == 0
    assert (cfg.train.batch_size, cfg.optim.name, cfg.optim.lr, cfg.train.max_steps) == (500, "adam", 1e-3, 50_000)
    assert (cfg.data.train_split, cfg.data.val_split, cfg.data.test_split) == ("bal_train.h5", "eval.h5", "eval.h5")


def test_train_evaluate_and_reload(pack_root, tmp_path):
    from avcorr import evaluate, train
    from avcorr.data.tagging import BalancedClassSampler
    from avcorr.engine.checkpoint import load_checkpoint
    from avcorr.inference.tagging import load_tagger

    run = tmp_path / "run"
    assert train.main(["--config", "audioset_attention.py", "--no-progress", f"data.root={pack_root}",
                       f"train.out_dir={run}", *TINY]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [5, 10, 15]
    for key in ("mAP", "AUC", "d_prime", "loss", "num_clips"):
        assert key in val[-1]
    assert val[-1]["num_clips"] == 120
    assert max(r["mAP"] for r in val) > 0.7  # chance is ~0.3 (0.87 measured)
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["resolved"]["classes"] == CLASSES and ckpt["resolved"]["label_mode"] == "multi"
    assert (run / "checkpoints" / "last.pt").is_file()

    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "test",
                          "--no-progress", "--workers", "0"]) == 0
    res = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert res["num_clips"] == 120 and abs(res["mAP"] - ckpt["best"]) < 1e-6

    tagger = load_tagger(run / "checkpoints" / "best.pt", "cpu")  # what avcorr.tag relies on
    assert tagger.model.input_kind == "embedding" and tagger.model.input_dim == 128
    with torch.no_grad():
        out = tagger.model(torch.randint(0, 256, (2, 3, 128), dtype=torch.uint8))  # any context length
    assert out["logits"].shape == (2, 4)

    # the run used the balanced sampler, over the pack's labels
    from avcorr.config import load_config
    from avcorr.tasks import build_task

    task = build_task(load_config("audioset_attention.py", [f"data.root={pack_root}", *TINY]))
    ds = task.build_dataset("bal_train.h5", train=True)
    sampler = task.build_sampler(ds, train=True, seed=0, distributed=False)
    assert isinstance(sampler, BalancedClassSampler) and len(sampler) == 240
    order = sampler.global_order()
    per_class = ds.targets[order].sum(0)
    assert per_class.min() >= 0.2 * len(order)  # each class drawn in turn


def test_task_refuses_mixed_inputs_and_mixup(pack_root):
    from avcorr.config import load_config
    from avcorr.tasks import build_task
    from avcorr.tasks.tagging import build_tagging_model

    cfg = load_config("audioset_attention.py", [f"data.root={pack_root}", "tagging.mixup_alpha=1.0"])
    with pytest.raises(ValueError, match="mixup"):
        build_task(cfg)
    cfg = load_config("audioset_attention.py", [f"data.root={pack_root}", "tagging.format=layout"])
    with pytest.raises(ValueError, match="tagging.format='embeddings'"):
        build_tagging_model(cfg, 4)
    cfg = load_config("audioset_attention.py", [f"data.root={pack_root}", "model.name=test_panns",
                                                 'model.kwargs={"clip_seconds": 1.0}'])
    with pytest.raises(ValueError, match="takes waveforms"):
        build_tagging_model(cfg, 4)
    with pytest.raises(ValueError, match="embeddings"):  # checked when the config is loaded
        load_config("audioset_attention.py", [f"data.root={pack_root}", "tagging.format=nope"])


# -- the packer ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vggish_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vggish")
    torch.manual_seed(0)
    torch.save(create_model("test_vggish").state_dict(), d / "vggish.pt")
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    np.savez(d / "pca.npz", pca_eigen_vectors=(q * 20).astype(np.float32),
             pca_means=rng.normal(0, 0.01, (128, 1)).astype(np.float32))
    return d


def _pack_cli(root, out, vggish_files, *extra):
    from data_tools.pack_vggish_embeddings import main

    return main(["--format", "layout", "--root", str(root), "--split", "train", "--model", "test_vggish",
                 "--vggish", str(vggish_files / "vggish.pt"), "--pca", str(vggish_files / "pca.npz"),
                 "--out", str(out), "--device", "cpu", "--no-progress", *extra])


def test_pack_vggish_embeddings_layout(tiny_copy, vggish_files, tmp_path, capsys):
    from avcorr.data.layout import load_split
    from avcorr.data.tagging import layout_source
    from avcorr.models.vggish import load_vggish
    from tests.media import make_non_media

    index = load_split(tiny_copy, "train")
    bad = index.clips[0]
    make_non_media(bad.audio)  # one undecodable clip: skipped and counted
    out = tmp_path / "packs" / "bal_train.h5"
    assert _pack_cli(tiny_copy, out, vggish_files, "--frames", "3") == 0  # 2 s clips: one padded second
    assert "1 skipped" in capsys.readouterr().out
    info = inspect_pack(out)
    n = len(index.clips) - 1
    assert (info.rows, info.frames, info.dim, info.dtype) == (n, 3, 128, "uint8")
    src = open_embedding_source(out.parent, out.name)  # the csv written beside the pack names the columns
    classes = layout_source(tiny_copy, "train").classes
    assert src.classes == list(classes)
    vids = [src.vid(i) for i in range(n)]
    assert bad.vid not in vids and set(vids) == {c.vid for c in index.clips[1:]}
    by_vid = {c.vid: c for c in index.clips}
    for i, v in enumerate(vids):
        assert sorted(src.labels(i).tolist()) == sorted(classes.index(lab) for lab in by_vid[v].labels)
    with h5py.File(out) as f:
        x = f["x"][:]
    net = load_vggish(vggish_files / "vggish.pt", vggish_files / "pca.npz", "test_vggish")
    silence = net.embed_seconds(torch.zeros(16000))["quantized"][0].numpy()
    assert (x[:, 2] == silence).all() and not (x[:, 0] == silence).all()  # padded with silence, as the reference
    ds = EmbeddingPackDataset(src, train=False, multilabel=src.is_multilabel, input_dim=128)
    assert ds[0]["embeddings"].shape == (3, 128)

    # one second per embedding: the first second does not depend on what follows; --pad zero
    out1 = tmp_path / "one" / "p.h5"
    assert _pack_cli(tiny_copy, out1, vggish_files, "--frames", "1") == 0
    out0 = tmp_path / "zero" / "p.h5"
    assert _pack_cli(tiny_copy, out0, vggish_files, "--frames", "3", "--pad", "zero") == 0
    with h5py.File(out1) as f1, h5py.File(out0) as f0:
        assert np.array_equal(f1["x"][:, 0], x[:, 0])
        assert np.array_equal(f0["x"][:, :2], x[:, :2]) and (f0["x"][:, 2] == 0).all()


def test_pack_vggish_embeddings_needs_pca(tiny_root, vggish_files, tmp_path, capsys):
    from data_tools.pack_vggish_embeddings import main

    rc = main(["--root", str(tiny_root), "--model", "test_vggish", "--vggish", str(vggish_files / "vggish.pt"),
               "--out", str(tmp_path / "p.h5"), "--no-progress"])
    assert rc == 2 and "--pca" in capsys.readouterr().err
    assert not (tmp_path / "p.h5").exists()
    (tmp_path / "class_labels_indices.csv").write_text("index,mid,display_name\n0,/m/x,Other\n")
    assert _pack_cli(tiny_root, tmp_path / "p.h5", vggish_files) == 2  # the csv beside it names other classes
    assert "other classes" in capsys.readouterr().err and not (tmp_path / "p.h5").exists()
