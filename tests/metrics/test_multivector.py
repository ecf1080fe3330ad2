"""Best-cell scores (a clip as frames x cells) and the retrieval metrics over them, against naive loops."""

import numpy as np
import pytest

from avcorr.metrics.multivector import max_sim_scores
from avcorr.metrics.retrieval import Relevance, cross_modal_metrics, retrieval_metrics
from tests.metrics.test_retrieval_metrics import _naive


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _naive_scores(query, gallery, pool):
    """One (query, item) at a time: the best pair of vectors of each pair of groups, pooled over the groups."""
    q = query if query.ndim == 4 else query[:, None, None]
    g = gallery if gallery.ndim == 4 else gallery[:, None, None]
    out = np.zeros((len(q), len(g)))
    for i in range(len(q)):
        for j in range(len(g)):
            best = [max(float(np.dot(x, y)) for x in qa for y in gb) for qa in q[i] for gb in g[j]]
            out[i, j] = np.mean(best) if pool == "mean" else max(best)
    return out


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_max_sim_scores_match_naive_loops(pool):
    rng = np.random.default_rng(0)
    audio = _unit(rng.normal(size=(5, 6)))
    clips = _unit(rng.normal(size=(7, 3, 4, 6)))  # 3 frames x 4 cells
    for q, g in ((audio, clips), (clips, audio), (clips[:3], clips), (audio, audio)):
        np.testing.assert_allclose(max_sim_scores(q, g, pool), _naive_scores(q, g, pool), atol=1e-6)
    # two sets of vectors: exactly the inner products of the pooled path
    assert np.array_equal(max_sim_scores(audio, audio[:4], pool), (audio @ audio[:4].T).astype(np.float64))
    with pytest.raises(ValueError, match="pool must be one of"):
        max_sim_scores(audio, clips, "sum")
    with pytest.raises(ValueError, match="dimension 6 and gallery vectors of 5"):
        max_sim_scores(audio, clips[..., :5])
    with pytest.raises(ValueError, match=r"\(N, G, C, D\) sets"):
        max_sim_scores(audio, clips[:, 0])


def _clustered_clips(n=36, frames=2, cells=4, d=8, classes=4, seed=0):
    """Audio near its class centre; one cell of each frame near it, the others noise (silent objects)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d))
    audio = _unit(centres[labels] + 0.7 * rng.normal(size=(n, d)))
    cells_ = rng.normal(size=(n, frames, cells, d))
    cells_[:, :, 0] = centres[labels][:, None] + 0.7 * rng.normal(size=(n, frames, d))
    return audio, _unit(cells_), labels


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_cross_modal_metrics_over_cells_match_naive(pool):
    audio, cells, labels = _clustered_clips()
    visual = _unit(cells.max(axis=(1, 2)))  # a pooled frame embedding, for a2a / v2v
    lab = [[str(x)] for x in labels]
    rel = (labels[:, None] == labels[None, :]).astype(float)
    got = cross_modal_metrics(audio, visual, lab, visual_sets=cells, set_pool=pool, ndcg_ks=(10,), chunk_size=5)
    n = len(audio)
    for d, scores in (("a2v", _naive_scores(audio, cells, pool)), ("v2a", _naive_scores(cells, audio, pool))):
        ref = _naive(scores, rel, pairs=np.arange(n))
        for key, val in ref.items():
            assert got[f"{d}/{key}"] == pytest.approx(val, abs=1e-9), (d, key)
    # within a modality the pooled embeddings are compared, as without cells
    pooled = cross_modal_metrics(audio, visual, lab, ndcg_ks=(10,))
    for key, val in pooled.items():
        if key.startswith(("a2a/", "v2v/")):
            assert got[key] == val, key
    assert got["a2v/ndcg@10"] != pooled["a2v/ndcg@10"]
    with pytest.raises(ValueError, match=r"visual_sets must be \(N=36, F, C, D=8\)"):
        cross_modal_metrics(audio, visual, lab, visual_sets=cells[:5])


def test_retrieval_metrics_chunks_sets_and_one_vector_sets_are_the_pooled_path():
    audio, cells, labels = _clustered_clips(n=20, seed=2)
    lab = [[str(x)] for x in labels]
    r = Relevance.from_labels(lab, lab)
    whole = retrieval_metrics(audio, cells, pairs=np.arange(20), relevance=r, chunk_size=256)
    for chunk in (1, 3):
        assert retrieval_metrics(audio, cells, pairs=np.arange(20), relevance=r, chunk_size=chunk) == whole
    as_sets = retrieval_metrics(audio, cells[:, :1, :1], pairs=np.arange(20), relevance=r)
    assert as_sets == retrieval_metrics(audio, cells[:, 0, 0], pairs=np.arange(20), relevance=r)
