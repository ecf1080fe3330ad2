"""FAISS wrapper and the on-disk retrieval index: exactness, approximate recall, knobs, files, errors."""

import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")
faiss.omp_set_num_threads(1)

from avcorr.retrieval import (  # noqa: E402
    IndexConfig,
    IndexFormatError,
    IndexMismatchError,
    RetrievalIndex,
    VectorIndex,
    pool_embeddings,
)


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n, d=32, clusters=50, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    return _unit(centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, d)))


def _brute(x, q, k):
    s = q @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), order


def _recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)])


def test_flat_is_exact_and_normalises():
    x = _clustered(500)
    q = _clustered(20, seed=1)
    index = VectorIndex(32)
    index.add(x[:300] * 7.0)  # unnormalised input: scores are still cosines
    index.add(x[300:])
    assert index.ntotal == len(index) == 500
    scores, ids = index.search(q * 0.1, 10)
    ref_s, ref_i = _brute(x, q, 10)
    np.testing.assert_array_equal(ids, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)
    s1, i1 = index.search(q[0], 3)  # a single vector is one query
    assert s1.shape == (1, 3) and list(i1[0]) == list(ref_i[0, :3])


def test_k_larger_than_index():
    index = VectorIndex(4)
    index.add(np.eye(4)[:3])
    s, i = index.search(np.eye(4)[:1], 10)
    assert i.shape == (1, 3) and i[0, 0] == 0


@pytest.mark.parametrize("kind, kw", [("ivf", {"nlist": 40, "nprobe": 8}), ("hnsw", {"hnsw_m": 16, "ef_search": 64}),
                                      ("ivfpq", {"nlist": 40, "nprobe": 8, "pq_m": 8})])
def test_approximate_indexes_recall(kind, kw):
    x = _clustered(4000)
    q = _clustered(50, seed=2)
    index = VectorIndex(32, IndexConfig(kind=kind, **kw))
    index.add(x)
    _, ids = index.search(q, 10)
    _, exact = _brute(x, q, 10)
    floor = 0.6 if kind == "ivfpq" else 0.9  # PQ codes are lossy
    assert _recall(ids, exact) >= floor


def test_ivf_nprobe_knob_reaches_exact_search():
    x = _unit(np.random.default_rng(0).normal(size=(3000, 16)))  # no clusters: IVF is hard here
    q = _unit(np.random.default_rng(1).normal(size=(40, 16)))
    index = VectorIndex(16, IndexConfig(kind="ivf", nlist=50, nprobe=1))
    index.add(x)
    assert index.nlist == 50
    _, exact = _brute(x, q, 10)
    low = _recall(index.search(q, 10)[1], exact)
    index.nprobe = 50  # every cell: exact
    full = _recall(index.search(q, 10)[1], exact)
    assert full == 1.0 and low < 0.9


def test_hnsw_ef_search_knob():
    x = _unit(np.random.default_rng(0).normal(size=(3000, 32)))
    q = _unit(np.random.default_rng(1).normal(size=(40, 32)))
    index = VectorIndex(32, IndexConfig(kind="hnsw", hnsw_m=4, ef_search=1))
    index.add(x)
    _, exact = _brute(x, q, 10)
    low = _recall(index.search(q, 10)[1], exact)
    index.ef_search = 400
    high = _recall(index.search(q, 10)[1], exact)
    assert high > low and high >= 0.95


def test_ivf_trains_on_first_add_and_accepts_more():
    x = _clustered(2000)
    index = VectorIndex(32, IndexConfig(kind="ivf"))  # nlist automatic
    assert not index.is_trained and index.ntotal == 0
    index.add(x[:1500])
    assert index.is_trained and index.nlist == min(round(4 * 1500 ** 0.5), 1500 // 39)
    index.add(x[1500:])  # adding to an existing trained index
    assert index.ntotal == 2000
    _, ids = index.search(x[1900:1901], 1)
    assert ids[0, 0] == 1900


def test_too_few_vectors_for_ivf():
    with pytest.raises(ValueError, match="needs at least 100 training vectors"):
        VectorIndex(8, IndexConfig(kind="ivf", nlist=100)).add(np.random.default_rng(0).normal(size=(50, 8)))


def test_bad_config_and_shapes():
    with pytest.raises(ValueError, match="index kind"):
        IndexConfig(kind="lsh")
    with pytest.raises(ValueError, match="must divide"):
        VectorIndex(30, IndexConfig(kind="ivfpq", pq_m=8))
    index = VectorIndex(8)
    with pytest.raises(IndexMismatchError, match=r"\(N, 8\)"):
        index.add(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 8), np.nan))


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_vector_index_save_load(tmp_path, kind):
    x = _clustered(2000)
    index = VectorIndex(32, IndexConfig(kind=kind, nlist=20, nprobe=20))
    index.add(x)
    digest = index.save(tmp_path / "a.faiss")
    loaded = VectorIndex.load(tmp_path / "a.faiss", IndexConfig(kind=kind, nlist=20, nprobe=20), dim=32, sha256=digest)
    q = x[:5]
    np.testing.assert_array_equal(loaded.search(q, 5)[1], index.search(q, 5)[1])
    with pytest.raises(IndexMismatchError, match="dimension 32, expected 16"):
        VectorIndex.load(tmp_path / "a.faiss", IndexConfig(kind=kind), dim=16)
    other = "hnsw" if kind != "hnsw" else "flat"
    with pytest.raises(IndexFormatError, match="metadata says"):
        VectorIndex.load(tmp_path / "a.faiss", IndexConfig(kind=other), dim=32)


def test_pooling():
    x = np.array([[[1.0, 0.0], [0.0, 1.0]], [[3.0, 0.0], [3.0, 0.0]]], np.float32)
    import torch

    p = pool_embeddings(torch.from_numpy(x), "mean").numpy()
    np.testing.assert_allclose(p, [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]], atol=1e-6)
    m = pool_embeddings(torch.from_numpy(x), "max").numpy()
    np.testing.assert_allclose(m, [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="pool"):
        pool_embeddings(torch.from_numpy(x), "median")


# ------------------------------------------------------------------------------------------
# RetrievalIndex


def _items(n, prefix="v"):
    return [{"id": f"{prefix}{i:03d}", "labels": [f"c{i % 3}"], "video": f"/data/{prefix}{i}.mp4", "time": 1.5}
            for i in range(n)]


def _info(dim=16, **kw):
    return {"model": "test_avenet", "embed_dim": dim, "config_hash": "abc", "weights_sha256": "w1", **kw}


def test_retrieval_index_round_trip_and_append(tmp_path):
    a, v = _clustered(30, d=16, seed=1), _clustered(30, d=16, seed=2)
    idx = RetrievalIndex(_info())
    assert idx.add(_items(30), {"audio": a, "visual": v}) == 30
    hits = idx.search(a[4], "visual", k=5)[0]
    assert len(hits) == 5 and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(h1.score >= h2.score for h1, h2 in zip(hits, hits[1:]))
    assert idx.search(v[7], "visual", k=1)[0][0].id == "v007"
    idx.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["info"]["model"] == "test_avenet" and len(meta["items"]) == 30
    assert meta["modalities"]["audio"]["ntotal"] == 30

    loaded = RetrievalIndex.load(tmp_path / "idx")
    assert loaded.ids == idx.ids and loaded.info["config_hash"] == "abc"
    h = loaded.search(v[7], "visual", k=1)[0][0]
    assert (h.id, h.labels, h.video, h.time) == ("v007", ["c1"], "/data/v7.mp4", 1.5)
    # add to an existing index: new ids appended, known ids skipped
    a2, v2 = _clustered(5, d=16, seed=3), _clustered(5, d=16, seed=4)
    more = {"audio": np.vstack([a2, a[:2]]), "visual": np.vstack([v2, v[:2]])}
    assert loaded.add(_items(5, "w") + _items(2), more) == 5
    assert len(loaded) == 35 and loaded.position("w004") == 34
    loaded.save(tmp_path / "idx")
    again = RetrievalIndex.load(tmp_path / "idx")
    assert again.search(a2[4], "audio", k=1)[0][0].id == "w004"


def test_retrieval_index_compatibility():
    idx = RetrievalIndex(_info())
    idx.check_compatible({"model": "test_avenet", "config_hash": "abc", "weights_sha256": "w1"})
    with pytest.raises(IndexMismatchError, match="model: index has 'test_avenet', the model has 'test_l3net'"):
        idx.check_compatible({"model": "test_l3net", "config_hash": "abc"})
    with pytest.raises(IndexMismatchError, match="weights_sha256"):
        idx.check_compatible({"model": "test_avenet", "weights_sha256": "w2"})
    with pytest.raises(IndexMismatchError, match="dimension 8, the index holds 16"):
        idx.add(_items(2), {"audio": np.ones((2, 8)), "visual": np.ones((2, 8))})
    with pytest.raises(ValueError, match="visual"):
        idx.add(_items(2), {"audio": np.ones((2, 16))})


def _saved(tmp_path):
    idx = RetrievalIndex(_info())
    idx.add(_items(10), {"audio": _clustered(10, d=16), "visual": _clustered(10, d=16, seed=5)})
    return idx.save(tmp_path / "idx")


def test_corrupt_faiss_file_is_a_clear_error(tmp_path):
    folder = _saved(tmp_path)
    data = bytearray((folder / "visual.faiss").read_bytes())
    data[len(data) // 2: len(data) // 2 + 16] = b"\xff" * 16
    (folder / "visual.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=r"visual\.faiss: checksum does not match"):
        RetrievalIndex.load(folder)


def test_garbage_faiss_file_without_checksum(tmp_path):
    folder = _saved(tmp_path)
    meta = json.loads((folder / "index.json").read_text())
    del meta["modalities"]["audio"]["sha256"]
    (folder / "index.json").write_text(json.dumps(meta))
    (folder / "audio.faiss").write_bytes(b"not an index at all")
    with pytest.raises(IndexFormatError, match=r"audio\.faiss: not a readable FAISS index"):
        RetrievalIndex.load(folder)


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "index.json").write_text('{"format": "avcorr-retri'), "not valid JSON"),
    (lambda p: (p / "index.json").unlink(), "is not an avcorr retrieval index"),
    (lambda p: (p / "index.json").write_text(json.dumps({"hello": 1})), "format tag missing"),
    (lambda p: (p / "audio.faiss").unlink(), "index file missing"),
])
def test_damaged_index_folder(tmp_path, damage, message):
    folder = _saved(tmp_path)
    damage(folder)
    with pytest.raises(IndexFormatError, match=message):
        RetrievalIndex.load(folder)


def test_metadata_disagreeing_with_files(tmp_path):
    folder = _saved(tmp_path)
    meta = json.loads((folder / "index.json").read_text())
    meta["items"] = meta["items"][:-1]  # one item fewer than vectors
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="holds 10 vectors but .* lists 9 items"):
        RetrievalIndex.load(folder)
    meta = json.loads((folder / "index.json").read_text())
    meta["items"] = _items(10)
    meta["embed_dim"] = meta["info"]["embed_dim"] = 8  # other dimension than the FAISS files
    (folder / "index.json").write_text(json.dumps(meta))
    with pytest.raises(IndexMismatchError, match="dimension 16, expected 8"):
        RetrievalIndex.load(folder)
