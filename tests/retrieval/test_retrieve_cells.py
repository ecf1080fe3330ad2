"""Best-cell retrieval end to end on the tiny dataset: `evaluate --retrieval` records its scoring, `retrieve
index/query` keep and search the frames' cells, and a model without cells is scored as before."""

import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
faiss.omp_set_num_threads(1)

from avcorr import evaluate, retrieve  # noqa: E402
from avcorr.inference.retrieval import embed_query, load_embedding_model  # noqa: E402
from avcorr.metrics.multivector import max_sim_scores  # noqa: E402
from avcorr.retrieval import CELLS, RetrievalIndex  # noqa: E402
from tests.retrieval.test_retrieve_cli import _checkpoint  # noqa: E402

pytestmark = pytest.mark.ffmpeg

RETRIEVAL = ("a2v/", "v2a/", "a2a/", "v2v/", "retrieval/")


def _evaluate(ckpt, out, *extra):
    assert evaluate.main(["--checkpoint", str(ckpt), "--split", "test", "--workers", "0", "--no-progress",
                          "--retrieval", "--retrieval-frames", "2", "--device", "cpu", "--out", str(out), *extra]) == 0
    res = json.loads((out / "eval_test.json").read_text())
    assert json.loads((out / "eval_test_retrieval.json").read_text())["retrieval/cross_modal_scoring"] == \
        res["retrieval/cross_modal_scoring"]
    return {k: v for k, v in res.items() if k.startswith(RETRIEVAL)}


@pytest.fixture()
def given_sets(monkeypatch):
    """The shape of the ``visual_sets`` (and the ``set_pool``) each cross_modal_metrics call of an evaluation got."""
    from avcorr.metrics import retrieval as metrics

    seen, real = [], metrics.cross_modal_metrics

    def spy(*args, **kwargs):
        if "set_pool" in kwargs:  # the evaluation's call, not the class-level ceiling's
            sets = kwargs.get("visual_sets")
            seen.append((None if sets is None else sets.shape, kwargs["set_pool"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "cross_modal_metrics", spy)
    return seen


def test_evaluate_scores_a_cells_model_by_the_best_cell(tiny_root, tmp_path, given_sets):
    ckpt = _checkpoint(tmp_path / "cells.pt", tiny_root)  # avenet.py: visual_pool='cells'
    cells = _evaluate(ckpt, tmp_path / "auto", "--retrieval-pool", "max")
    pooled = _evaluate(ckpt, tmp_path / "off", "--retrieval-pool", "max", "--retrieval-cells", "off")
    assert cells["retrieval/cross_modal_scoring"] == "best_cell" and pooled["retrieval/cross_modal_scoring"] == "pooled"
    n = cells["retrieval/num_clips"]
    assert given_sets == [((n, 2, 4, 16), "max"), (None, "max")]  # 2 frames of 2 x 2 cells, 16-d
    assert set(cells) == set(pooled)  # the same metric names either way
    for key in cells:  # within a modality nothing changes
        if key.startswith(("a2a/", "v2v/")):
            assert cells[key] == pooled[key], key


def test_evaluate_of_a_model_without_cells_is_unchanged(tiny_root, tmp_path, given_sets):
    ckpt = _checkpoint(tmp_path / "max.pt", tiny_root, "model.kwargs={'visual_pool': 'max'}")
    auto = _evaluate(ckpt, tmp_path / "auto")
    assert auto["retrieval/cross_modal_scoring"] == "pooled" and given_sets == [(None, "mean")]
    assert auto == _evaluate(ckpt, tmp_path / "off", "--retrieval-cells", "off")


def _vectors(index, modality):
    """float32 (n, D) vectors of a flat FAISS index, in position order."""
    raw = index.indexes[modality]._index
    return raw.reconstruct_n(0, raw.ntotal)


@pytest.fixture(scope="module")
def indexes(tiny_root, tmp_path_factory):
    """(checkpoint, index with cells, index without) of the test split, two frames a clip."""
    tmp = tmp_path_factory.mktemp("cells")
    ckpt = _checkpoint(tmp / "ckpt.pt", tiny_root, seed=3)
    out = {}
    for mode in ("auto", "off"):
        out[mode] = tmp / mode
        assert retrieve.main(["index", "--checkpoint", str(ckpt), "--split", "test", "--out", str(out[mode]),
                              "--frames", "2", "--cells", mode, "--no-progress", "--device", "cpu"]) == 0
    return ckpt, out["auto"], out["off"]


def test_index_keeps_the_cells_and_the_same_pooled_vectors(indexes):
    _, with_cells, without = indexes
    a, b = RetrievalIndex.load(with_cells), RetrievalIndex.load(without)
    assert a.info["embedding"]["cells"] is True and b.info["embedding"]["cells"] is False
    assert CELLS not in b.indexes and json.loads((without / "index.json").read_text())["version"] == 1
    assert a.layouts[CELLS] == (2, 4) and a.ids == b.ids  # 2 frames x (32 px / 16)^2 cells
    cells = _vectors(a, CELLS)
    np.testing.assert_allclose(np.linalg.norm(cells, axis=1), 1.0, atol=1e-5)
    for m in ("audio", "visual"):  # the pooled visual made from the cells is the model's encode_visual
        np.testing.assert_allclose(_vectors(a, m), _vectors(b, m), atol=1e-5)


def test_cells_and_pooled_indexes_are_not_mixed(indexes, capsys):
    ckpt, _, without = indexes
    assert retrieve.main(["index", "--checkpoint", str(ckpt), "--split", "val", "--out", str(without), "--append",
                          "--frames", "2", "--no-progress", "--device", "cpu"]) == 2
    assert "cells=False" in capsys.readouterr().err


def _query(capsys, tmp_path, *args):
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
    assert retrieve.main(["query", "--device", "cpu", "--json", str(out), *map(str, args)]) == 0, capsys.readouterr().err
    return json.loads(out.read_text()), capsys.readouterr().out


def test_cross_modal_queries_rank_by_the_best_cell(indexes, tmp_path, capsys):
    ckpt, with_cells, without = indexes
    index = RetrievalIndex.load(with_cells)
    em = load_embedding_model(ckpt, "cpu")
    cells = _vectors(index, CELLS).reshape(len(index), 2, 4, -1)
    audio = _vectors(index, "audio")
    item = index.items[1]
    n = len(index)
    # a sound -> the clips, by each frame's best cell, averaged over the two frames
    res, printed = _query(capsys, tmp_path, "--index", with_cells, "--audio", item["audio"], "--k", n)
    assert res["scoring"] == "best_cell" and "scored by the best cell" in printed
    q = embed_query(em, audio=item["audio"], frames=2)[0]
    ref = max_sim_scores(q[None], cells, "mean")[0]
    assert [h["id"] for h in res["hits"]] == [index.items[j]["id"] for j in np.argsort(-ref, kind="stable")]
    np.testing.assert_allclose([h["score"] for h in res["hits"]], np.sort(ref)[::-1], atol=1e-5)
    # a video's frames -> the sounds, each frame by its best cell against the sound
    res, _ = _query(capsys, tmp_path, "--index", with_cells, "--video", item["video"], "--k", 3)
    qc = embed_query(em, video=item["video"], frames=2, cells=True)[0]
    assert qc.shape == (2, 4, 16) and res["scoring"] == "best_cell" and res["query"]["target"] == "audio"
    ref = max_sim_scores(qc[None], audio, "mean")[0]
    assert [h["id"] for h in res["hits"]] == [index.items[j]["id"] for j in np.argsort(-ref, kind="stable")[:3]]
    # --cells off, a pooled index, or a query within a modality: the pooled vectors, as before
    off, _ = _query(capsys, tmp_path, "--index", with_cells, "--audio", item["audio"], "--k", n, "--cells", "off")
    plain, _ = _query(capsys, tmp_path, "--index", without, "--audio", item["audio"], "--k", n)
    assert off["scoring"] == plain["scoring"] == "pooled"
    assert [h["id"] for h in off["hits"]] == [h["id"] for h in plain["hits"]]
    same, _ = _query(capsys, tmp_path, "--index", with_cells, "--video", item["video"], "--target", "visual", "--k", 2)
    assert same["scoring"] == "pooled" and same["hits"][0]["id"] == item["id"]
