"""Best-cell (multi-vector) search: FAISS against the numpy brute force, both directions, ties, k beyond the
gallery, and the on-disk index that holds the cells."""

import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
faiss.omp_set_num_threads(1)

from avcorr.metrics.multivector import max_sim_scores  # noqa: E402
from avcorr.retrieval import (  # noqa: E402
    CELLS,
    IndexFormatError,
    RetrievalIndex,
    VectorIndex,
    max_sim_search,
)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _brute(query, gallery, k, pool):
    """Stable ranking of the numpy reference: descending score, ties in gallery order."""
    s = max_sim_scores(query, gallery, pool)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), order


def _index(vectors):
    index = VectorIndex(vectors.shape[-1])
    index.add(vectors.reshape(-1, vectors.shape[-1]))
    return index


class _Counting:
    """A VectorIndex that counts its searches (to see the search go deeper)."""

    def __init__(self, index):
        self.index, self.calls = index, 0
        self.dim, self.ntotal = index.dim, index.ntotal

    def search(self, q, k):
        self.calls += 1
        return self.index.search(q, k)


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("frames,cells", [(1, 1), (1, 4), (3, 4), (2, 5)])
def test_audio_to_cells_matches_brute_force(pool, frames, cells):
    rng = np.random.default_rng([frames, cells])
    gallery = _unit(rng.normal(size=(37, frames, cells, 8)))  # 37 clips of frames x cells
    audio = _unit(rng.normal(size=(6, 8)))
    index = _index(gallery)
    for k in (1, 5, 37, 50):  # 50: more than the gallery
        scores, items = max_sim_search(index, audio, k, groups=frames, cells=cells, pool=pool)
        ref_s, ref_i = _brute(audio, gallery, k, pool)
        assert items.shape == (6, min(k, 37))
        np.testing.assert_array_equal(items, ref_i)
        np.testing.assert_allclose(scores, ref_s, atol=1e-5)


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_cells_to_audio_matches_brute_force(pool):
    rng = np.random.default_rng(7)
    audio = _unit(rng.normal(size=(41, 8)))
    frames = _unit(rng.normal(size=(5, 3, 4, 8)))  # 5 query clips: 3 frames x 4 cells
    index = _index(audio)
    for k in (1, 3, 41, 100):
        scores, items = max_sim_search(index, frames, k, pool=pool)
        ref_s, ref_i = _brute(frames, audio, k, pool)
        np.testing.assert_array_equal(items, ref_i)
        np.testing.assert_allclose(scores, ref_s, atol=1e-5)
    # one vector against one vector a clip is the plain search
    s, i = max_sim_search(index, audio[:3], 5)
    fs, fi = index.search(audio[:3], 5)
    np.testing.assert_array_equal(i, fi)
    np.testing.assert_allclose(s, fs, atol=1e-6)


def _tied(rng, shape):
    """Unit vectors from a small set whose inner products are exact in float32 (0, +-0.5, +-1): many ties."""
    atoms = np.concatenate([np.eye(4), -np.eye(4), np.full((1, 4), 0.5), np.full((1, 4), -0.5)]).astype(np.float32)
    return atoms[rng.integers(0, len(atoms), shape)]


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_ties_follow_gallery_order_in_both_directions(pool):
    rng = np.random.default_rng(3)
    gallery = _tied(rng, (30, 2, 3))  # 30 clips, 2 frames x 3 cells
    audio = _tied(rng, (30,))
    a2v = _Counting(_index(gallery))
    v2a = _Counting(_index(audio))
    for k in (1, 2, 7, 30, 31):
        s, i = max_sim_search(a2v, audio[:8], k, groups=2, cells=3, pool=pool)
        ref_s, ref_i = _brute(audio[:8], gallery, k, pool)
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_array_equal(s, ref_s)  # exact arithmetic: the very same numbers
        s, i = max_sim_search(v2a, gallery[:8], k, pool=pool)
        ref_s, ref_i = _brute(gallery[:8], audio, k, pool)
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_array_equal(s, ref_s)
    # ties across the first depth's last score are settled by searching deeper, not by chance
    assert a2v.calls > 5 and v2a.calls > 5


def test_all_equal_scores_rank_in_gallery_order():
    gallery = np.tile(np.eye(4, dtype=np.float32)[0], (9, 2, 2, 1))  # every cell of every clip the same
    s, i = max_sim_search(_index(gallery), np.eye(4, dtype=np.float32)[:1], 4, groups=2, cells=2)
    assert i.tolist() == [[0, 1, 2, 3]] and s.tolist() == [[1.0] * 4]


def test_bad_arguments():
    index = _index(_unit(np.random.default_rng(0).normal(size=(6, 8))))
    with pytest.raises(ValueError, match="does not hold items of 4 x 1"):
        max_sim_search(index, np.ones(8), 2, groups=4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        max_sim_search(index, np.ones(8), 0)
    with pytest.raises(ValueError, match="pool must be one of"):
        max_sim_search(index, np.ones(8), 2, pool="sum")
    with pytest.raises(ValueError, match=r"\(Q, 8\) vectors or \(Q, Gq, Cq, 8\) sets"):
        max_sim_search(index, np.ones((2, 3, 8)), 2)


def _cells_index(rng, n=12, frames=2, cells=3, dim=8):
    info = {"model": "m", "embed_dim": dim}
    items = [{"id": f"c{i}", "labels": [f"l{i % 3}"]} for i in range(n)]
    emb = {"audio": _unit(rng.normal(size=(n, dim))), "visual": _unit(rng.normal(size=(n, dim))),
           CELLS: _unit(rng.normal(size=(n, frames, cells, dim)))}
    index = RetrievalIndex(info, modalities=("audio", "visual", CELLS), layouts={CELLS: (frames, cells)})
    assert index.add(items, emb) == n
    return index, emb


def test_retrieval_index_holds_the_cells(tmp_path):
    rng = np.random.default_rng(5)
    index, emb = _cells_index(rng)
    index.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["version"] == 2 and meta["modalities"][CELLS]["groups"] == 2 and meta["modalities"][CELLS]["cells"] == 3
    loaded = RetrievalIndex.load(tmp_path / "idx")
    assert loaded.layouts == {"audio": (1, 1), "visual": (1, 1), CELLS: (2, 3)}
    for idx in (index, loaded):
        hits = idx.search(emb["audio"][:4], CELLS, k=5, pool="mean")  # audio -> the clips' cells
        ref_s, ref_i = _brute(emb["audio"][:4], emb[CELLS], 5, "mean")
        assert [[h.position for h in row] for row in hits] == ref_i.tolist()
        assert [h.id for h in hits[0]] == [f"c{j}" for j in ref_i[0]]
        np.testing.assert_allclose([[h.score for h in row] for row in hits], ref_s, atol=1e-5)
        hits = idx.search(emb[CELLS][:2], "audio", k=3, pool="max")  # a clip's cells -> the audio
        assert [[h.position for h in row] for row in hits] == _brute(emb[CELLS][:2], emb["audio"], 3, "max")[1].tolist()
        plain = idx.search(emb["audio"][:2], "visual", k=3)  # pooled modalities search as before
        assert [[h.position for h in r] for r in plain] == _brute(emb["audio"][:2], emb["visual"], 3, "mean")[1].tolist()
    # a clip added twice is skipped in every modality, cells included
    assert index.add([{"id": "c0"}], {m: e[:1] for m, e in emb.items()}) == 0
    assert index.indexes[CELLS].ntotal == 12 * 6
    with pytest.raises(ValueError, match=r"expected \(1, 2, 3, 8\)"):
        index.add([{"id": "new"}], {**{m: e[:1] for m, e in emb.items()}, CELLS: emb[CELLS][:1, :1]})


def test_pooled_index_is_still_version_1_and_cells_count_is_checked(tmp_path):
    rng = np.random.default_rng(6)
    plain = RetrievalIndex({"model": "m", "embed_dim": 8})
    plain.add([{"id": "a"}, {"id": "b"}], {"audio": _unit(rng.normal(size=(2, 8))),
                                          "visual": _unit(rng.normal(size=(2, 8)))})
    plain.save(tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "index.json").read_text())["version"] == 1
    index, _ = _cells_index(rng)
    index.save(tmp_path / "idx")
    meta_path = tmp_path / "idx" / "index.json"
    meta = json.loads(meta_path.read_text())
    meta["modalities"][CELLS]["cells"] = 4  # says 2 x 4 vectors a clip; the file holds 2 x 3
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match=r"visual_cells.faiss: holds 72 vectors but .* 12 items of 8 vectors"):
        RetrievalIndex.load(tmp_path / "idx")
    meta["modalities"][CELLS]["cells"] = 0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="invalid modalities"):
        RetrievalIndex.load(tmp_path / "idx")
