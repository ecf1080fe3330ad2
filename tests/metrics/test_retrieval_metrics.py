"""Retrieval metrics against a naive full-matrix reference and scikit-learn; the ontology relevance."""

import itertools
import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from avcorr.data.errors import LayoutError
from avcorr.data.ontology import Ontology, label_relevance, load_ontology
from avcorr.metrics.retrieval import (
    Relevance,
    average_precision_at_k,
    chance_recall_at_k,
    cross_modal_metrics,
    best_relevant_ranks,
    dcg_at_k,
    first_relevant_ranks,
    ndcg_at_k,
    pair_ranks,
    rank_gallery,
    retrieval_metrics,
    top_k,
)

# ------------------------------------------------------------------------------------------
# naive references: one query at a time, explicit loops over the full score matrix


def _naive_class_recall(scores, q_labels, g_labels, k, excluded=None):
    """Per query: is an item sharing a label among the top k (the query itself left out if excluded)?"""
    hits = []
    for q in range(scores.shape[0]):
        order = _naive_order(scores[q], None if excluded is None else excluded[q])
        hits.append(any(set(q_labels[q]) & set(g_labels[j]) for j in order[:k]))
    return float(np.mean(hits))


def _enumerated_chance(q_labels, g_labels, k, exclude_self=False):
    """Exact chance: the share of ALL k-subsets of the gallery holding an item sharing a label, per query."""
    out = []
    for q in range(len(q_labels)):
        items = [j for j in range(len(g_labels)) if not (exclude_self and j == q)]
        subsets = list(itertools.combinations(items, min(k, len(items))))
        out.append(np.mean([any(set(q_labels[q]) & set(g_labels[j]) for j in sub) for sub in subsets]))
    return float(np.mean(out))


def _naive_order(scores_row, excluded=None):
    items = [j for j in range(len(scores_row)) if j != excluded]
    return sorted(items, key=lambda j: (-scores_row[j], j))


def _naive(scores, rel, pairs=None, exclude_self=False, ks=(1, 5, 10), map_k=10, ndcg_k=10):
    """Per-query loops; returns the same keys as retrieval_metrics (binary rel for recall/map)."""
    ranks, aps, ndcgs = [], [], []
    for q in range(scores.shape[0]):
        excl = q if exclude_self else None
        order = _naive_order(scores[q], excl)
        gains = [rel[q, j] for j in order]
        if pairs is not None:
            ranks.append(order.index(pairs[q]) + 1)
        else:
            first = next((i + 1 for i, g in enumerate(gains) if g > 0), len(order) + 1)
            ranks.append(first)
        n_rel = sum(1 for g in gains if g > 0)
        if n_rel:
            hits, s = 0, 0.0
            for i, g in enumerate(gains[:map_k]):
                if g > 0:
                    hits += 1
                    s += hits / (i + 1)
            aps.append(s / min(map_k, n_rel))
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:ndcg_k]))
        ideal = sorted(gains, reverse=True)
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:ndcg_k]))
        if idcg > 0:
            ndcgs.append(dcg / idcg)
    out = {f"recall@{k}": float(np.mean([r <= k for r in ranks])) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out[f"map@{map_k}"] = float(np.mean(aps))
    out[f"ndcg@{ndcg_k}"] = float(np.mean(ndcgs))
    return out


def _data(n=60, d=8, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d))
    a = centres[labels] + 0.8 * rng.normal(size=(n, d))
    v = centres[labels] + 0.8 * rng.normal(size=(n, d))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return a.astype(np.float32), v.astype(np.float32), labels


def test_cross_modal_matches_naive_reference():
    a, v, labels = _data()
    rel = (labels[:, None] == labels[None, :]).astype(float)
    r = Relevance.from_labels([[str(x)] for x in labels], [[str(x)] for x in labels])
    got = retrieval_metrics(a, v, pairs=np.arange(len(a)), relevance=r, chunk_size=7)
    ref = _naive((a @ v.T).astype(np.float64), rel, pairs=np.arange(len(a)))
    for key, val in ref.items():
        assert got[key] == pytest.approx(val, abs=1e-9), key
    assert got["num_queries"] == got["num_gallery"] == len(a)


def test_within_modality_excludes_self_matches_naive():
    a, _, labels = _data(seed=3)
    rel = (labels[:, None] == labels[None, :]).astype(float)
    r = Relevance.from_labels([[str(x)] for x in labels], [[str(x)] for x in labels])
    got = retrieval_metrics(a, a, relevance=r, exclude_self=True, chunk_size=16)
    ref = _naive((a @ a.T).astype(np.float64), rel, exclude_self=True)
    for key, val in ref.items():
        assert got[key] == pytest.approx(val, abs=1e-9), key
    assert got["num_gallery"] == len(a) - 1
    # the query itself (score 1.0, relevant) would otherwise make every recall@1 perfect
    with_self = retrieval_metrics(a, a, relevance=r, exclude_self=False)
    assert with_self["recall@1"] == 1.0 and got["recall@1"] < 1.0


def test_tied_scores_match_naive_reference():
    a, v, labels = _data(n=50, d=4, seed=5)
    scores = np.round(a @ v.T, 1)  # many exact ties: the gallery order must break them
    rel = (labels[:, None] == labels[None, :]).astype(float)
    lab = [[str(x)] for x in labels]
    for exclude_self in (False, True):
        r = Relevance.from_labels(lab, lab)
        # feed the rounded scores through embeddings: q = scores, g = identity
        got = retrieval_metrics(scores, np.eye(50, dtype=np.float32), relevance=r, exclude_self=exclude_self,
                                pairs=None if exclude_self else np.arange(50), chunk_size=9)
        ref = _naive(scores.astype(np.float32).astype(np.float64), rel,
                     pairs=None if exclude_self else np.arange(50), exclude_self=exclude_self)
        for key, val in ref.items():
            assert got[key] == pytest.approx(val, abs=1e-9), (exclude_self, key)


def test_top_k_and_best_relevant_rank_agree_with_full_sort():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, size=(40, 30)).astype(float)  # heavy ties
    rel = (rng.random((40, 30)) < 0.2).astype(float)
    rel[0] = 0  # a query without relevant items
    order = rank_gallery(scores)
    for k in (1, 3, 10, 30):
        np.testing.assert_array_equal(top_k(scores, k), order[:, :k])
    ranked = np.take_along_axis(rel, order, axis=1)
    np.testing.assert_array_equal(best_relevant_ranks(scores, rel), first_relevant_ranks(ranked))
    assert best_relevant_ranks(scores, rel)[0] == 31


def test_ndcg_matches_sklearn_with_whole_gallery_idcg():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 50))
    graded = rng.integers(0, 4, size=(20, 50)).astype(float)
    graded[:, 0] = 3  # every query has a relevant item
    order = rank_gallery(scores)
    ranked = np.take_along_axis(graded, order, axis=1)
    for k in (1, 5, 10, 50):
        ours = ndcg_at_k(ranked, graded, k)
        theirs = [ndcg_score(graded[i:i + 1], scores[i:i + 1], k=k) for i in range(20)]
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
        assert ours.mean() == pytest.approx(ndcg_score(graded, scores, k=k), abs=1e-12)


def test_ndcg_idcg_is_not_the_resorted_retrieved_list():
    # 10 relevant items, the ranking puts only 1 of them in the top 5, first: re-sorting the
    # retrieved list would give nDCG@5 = 1; the whole-gallery ideal (5 relevant on top) does not.
    rel = np.zeros((1, 30))
    rel[0, :10] = 1
    scores = np.zeros((1, 30))
    scores[0, 0] = 10
    scores[0, 10:14] = 5  # four irrelevant items next
    order = rank_gallery(scores)
    ranked = np.take_along_axis(rel, order, axis=1)
    v = ndcg_at_k(ranked, rel, 5)[0]
    expected = 1.0 / sum(1 / math.log2(i + 2) for i in range(5))
    assert v == pytest.approx(expected)
    assert v == pytest.approx(ndcg_score(rel, scores, k=5))
    assert v < 0.5


def test_map_at_full_depth_is_sklearn_average_precision():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(15, 40))
    rel = (rng.random((15, 40)) < 0.3).astype(float)
    rel[:, 0] = 1
    order = rank_gallery(scores)
    ranked = np.take_along_axis(rel, order, axis=1)
    ap = average_precision_at_k(ranked, rel.sum(1), 40)
    theirs = [average_precision_score(rel[i], scores[i]) for i in range(15)]
    np.testing.assert_allclose(ap, theirs, atol=1e-12)


def test_ap_at_k_denominator_and_no_relevant():
    ranked = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0]], float)
    ap = average_precision_at_k(ranked, np.array([4, 0, 2]), 3)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3) / 3)  # min(k=3, R=4) = 3
    assert np.isnan(ap[1])
    assert ap[2] == pytest.approx(1.0)  # min(3, 2) = 2


def test_pair_ranks_ties_follow_gallery_order():
    s = np.array([[0.5, 0.9, 0.5, 0.5]])
    assert pair_ranks(s, [0])[0] == 2 and pair_ranks(s, [2])[0] == 3 and pair_ranks(s, [3])[0] == 4
    assert list(rank_gallery(s)[0]) == [1, 0, 2, 3]


def test_perfect_and_reversed_rankings():
    n = 12
    eye = np.eye(n, dtype=np.float32)
    labels = [[str(i // 3)] for i in range(n)]
    r = Relevance.from_labels(labels, labels)
    perfect = retrieval_metrics(eye, eye, pairs=np.arange(n), relevance=r)
    assert perfect["recall@1"] == 1.0 and perfect["median_rank"] == 1.0
    worst = retrieval_metrics(eye, -eye, pairs=np.arange(n), relevance=r)
    assert worst["median_rank"] == n and worst["recall@10"] == 0.0


def test_queries_without_relevant_are_left_out_and_counted():
    a, v, labels = _data(n=20)
    lab = [[str(x)] for x in labels]
    lab[0] = []  # unlabelled: relevant to nothing
    r = Relevance.from_labels(lab, lab)
    m = retrieval_metrics(a, v, pairs=np.arange(20), relevance=r)
    assert m["queries_without_relevant"] == 1 and 0 <= m["map@10"] <= 1


def test_dcg_definition():
    assert dcg_at_k(np.array([[3.0, 2.0, 0.0, 1.0]]), 4)[0] == pytest.approx(3 + 2 / math.log2(3) + 1 / math.log2(5))


def test_bad_inputs_raise():
    a, v, _ = _data(n=5)
    with pytest.raises(ValueError, match="pairs .* or relevance"):
        retrieval_metrics(a, v)
    with pytest.raises(ValueError, match="same D"):
        retrieval_metrics(a, v[:, :3], pairs=np.arange(5))
    with pytest.raises(ValueError, match="pair indices"):
        pair_ranks(a @ v.T, [0, 1, 2, 3, 9])


# ------------------------------------------------------------------------------------------
# the four directions


def test_cross_modal_metrics_keys_and_values():
    a, v, labels = _data(n=40, classes=4)
    lab = [[f"c{x}"] for x in labels]
    graded = {(f"c{i}", f"c{j}"): (2.0 if i == j else 1.0 if i // 2 == j // 2 else 0.0)
              for i in range(4) for j in range(4)}
    m = cross_modal_metrics(a, v, lab, label_relevance=graded)
    for d in ("a2v", "v2a", "a2a", "v2v"):
        for key in ("recall@1", "recall@5", "recall@10", "median_rank", "map@10", "ndcg@10", "ndcg@30",
                    "ndcg_graded@10", "ndcg_graded@30"):
            assert f"{d}/{key}" in m, f"{d}/{key}"
    # a2v agrees with a direct call; v2a is the transposed problem
    direct = retrieval_metrics(a, v, pairs=np.arange(40), relevance=Relevance.from_labels(lab, lab))
    assert m["a2v/recall@5"] == direct["recall@5"] and m["a2v/ndcg@10"] == direct["ndcg@10"]
    direct_v = retrieval_metrics(v, a, pairs=np.arange(40), relevance=Relevance.from_labels(lab, lab))
    assert m["v2a/median_rank"] == direct_v["median_rank"]
    graded_direct = retrieval_metrics(a, v, pairs=np.arange(40), ndcg_ks=(10,),
                                      relevance=Relevance.from_labels(lab, lab, graded))
    assert m["a2v/ndcg_graded@10"] == graded_direct["ndcg@10"] != m["a2v/ndcg@10"]
    # a2a excludes the query: it equals a direct call with exclude_self
    direct_a = retrieval_metrics(a, a, exclude_self=True, relevance=Relevance.from_labels(lab, lab))
    assert m["a2a/recall@1"] == direct_a["recall@1"] and m["a2a/map@10"] == direct_a["map@10"]
    # without labels: only the instance-level cross-modal metrics
    bare = cross_modal_metrics(a, v)
    assert set(bare) == {f"{p}{d}/{k}" for d in ("a2v", "v2a") for p, ks in (("", ("recall@1", "recall@5", "recall@10",
                                                                                    "median_rank")),
                                                                               ("baseline/", ("recall@1", "recall@5",
                                                                                              "recall@10")))
                         for k in ks}
    assert bare["baseline/a2v/recall@5"] == pytest.approx(5 / 40)


def test_graded_relevance_max_over_label_pairs():
    rel = {("a", "a"): 3.0, ("a", "b"): 1.0, ("b", "a"): 1.0, ("b", "b"): 3.0}
    r = Relevance.from_labels([["a"], ["a", "b"], []], [["b"], ["c"], ["a", "c"]], rel)
    full = r.block(np.arange(3))
    np.testing.assert_array_equal(full, [[1, 0, 3], [3, 0, 3], [0, 0, 0]])


# ------------------------------------------------------------------------------------------
# ontology

_ONTOLOGY = [  # root categories Music and Animal; Violin/Cello siblings; Dog under Animal > Pets
    {"id": "/m/music", "name": "Music", "child_ids": ["/m/instr"]},
    {"id": "/m/instr", "name": "Musical instrument", "child_ids": ["/m/bowed", "/m/drum"]},
    {"id": "/m/bowed", "name": "Bowed string instrument", "child_ids": ["/m/violin", "/m/cello"]},
    {"id": "/m/violin", "name": "Violin, fiddle", "child_ids": []},
    {"id": "/m/cello", "name": "Cello", "child_ids": []},
    {"id": "/m/drum", "name": "Drum", "child_ids": []},
    {"id": "/m/animal", "name": "Animal", "child_ids": ["/m/pets"]},
    {"id": "/m/pets", "name": "Domestic animals, pets", "child_ids": ["/m/dog"]},
    {"id": "/m/dog", "name": "Dog", "child_ids": []},
]


def test_ontology_distances_and_relevance(tmp_path):
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(_ONTOLOGY))
    onto = load_ontology(tmp_path)
    assert onto is not None and load_ontology(tmp_path / "nowhere") is None
    assert onto.distance("Violin, fiddle", "Violin, fiddle") == 0
    assert onto.distance("Violin, fiddle", "Cello") == 2  # siblings
    assert onto.distance("/m/violin", "Drum") == 3  # mid or name; up two, down one
    assert onto.distance("Violin, fiddle", "Bowed string instrument") == 1
    assert onto.distance("Violin, fiddle", "Dog") == 4 + 3  # through the virtual root: depths 4 and 3
    assert onto.depth("Music") == 1 and onto.depth("dog") == 3  # case-insensitive names
    table, d_max = label_relevance(onto, ["Violin, fiddle", "Cello", "Drum", "Dog", "Unknown"])
    assert d_max == 7
    assert table[("Violin, fiddle", "Violin, fiddle")] == 7
    assert table[("Violin, fiddle", "Cello")] == 5
    assert table[("Cello", "Drum")] == 4
    assert table[("Drum", "Dog")] == 7 - 6
    assert table[("Violin, fiddle", "Dog")] == 0
    assert table[("Unknown", "Unknown")] == 7 and table[("Unknown", "Dog")] == 0


def test_ontology_dag_takes_the_shortest_path(tmp_path):
    data = [dict(c) for c in _ONTOLOGY]
    data[6] = {"id": "/m/animal", "name": "Animal", "child_ids": ["/m/pets", "/m/cello"]}  # a second parent
    (tmp_path / "ontology.json").write_text(json.dumps(data))
    onto = Ontology.load(tmp_path / "ontology.json")
    assert onto.distance("Cello", "Dog") == 3  # cello - animal - pets - dog


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    (json.dumps({"id": "x"}), "expected a JSON list"),
    (json.dumps([{"id": "/m/a"}]), "non-empty string 'id' and 'name'"),
    (json.dumps([{"id": "/m/a", "name": "A", "child_ids": "b"}]), "child_ids"),
    (json.dumps([{"id": "/m/a", "name": "A"}, {"id": "/m/a", "name": "B"}]), "more than once"),
])
def test_bad_ontology_names_the_file(tmp_path, content, message):
    path = tmp_path / "ontology.json"
    path.write_text(content)
    with pytest.raises(LayoutError, match=message) as e:
        Ontology.load(path)
    assert str(path) in str(e.value)


# ------------------------------------------------------------------------------------------
# class-level cross-modal recall and the chance of every recall


def _multilabel(n=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = []
    for _ in range(n):
        k = int(rng.integers(0, 3))  # 0, 1 or 2 labels (an unlabelled clip is relevant to nothing)
        labels.append([f"c{c}" for c in rng.choice(classes, size=k, replace=False)])
    return labels


@pytest.mark.parametrize("multi", [False, True])
def test_class_recall_and_chance_match_naive_reference(multi):
    a, v, lab_idx = _data(n=12, d=6, classes=3, seed=2)
    labels = _multilabel() if multi else [[f"c{x}"] for x in lab_idx]
    scores = (a @ v.T).astype(np.float64)
    got = retrieval_metrics(a, v, pairs=np.arange(12), relevance=Relevance.from_labels(labels, labels),
                            ks=(1, 3, 12), chunk_size=5)
    for k in (1, 3, 12):
        assert got[f"class_recall@{k}"] == pytest.approx(_naive_class_recall(scores, labels, labels, k)), k
        assert got[f"baseline/class_recall@{k}"] == pytest.approx(_enumerated_chance(labels, labels, k)), k
        assert got[f"baseline/recall@{k}"] == pytest.approx(k / 12)
        if not multi:  # every clip labelled: the own clip is one of the class, so class >= instance
            assert got[f"class_recall@{k}"] >= got[f"recall@{k}"]
    # within a modality the query is left out of its gallery, and of its chance
    within = retrieval_metrics(a, a, relevance=Relevance.from_labels(labels, labels), exclude_self=True, ks=(1, 3))
    for k in (1, 3):
        assert within[f"recall@{k}"] == pytest.approx(
            _naive_class_recall((a @ a.T).astype(np.float64), labels, labels, k, excluded=list(range(12))))
        assert within[f"baseline/recall@{k}"] == pytest.approx(_enumerated_chance(labels, labels, k, exclude_self=True))
    assert "class_recall@1" not in within  # a2a recall@k is class level already


def test_class_recall_when_pictures_and_sounds_share_only_the_class():
    """Audio and pictures paired by class only: instance recall stays near chance, class recall reaches 1."""
    rng = np.random.default_rng(7)
    n, classes = 40, 4
    labels = np.repeat(np.arange(classes), n // classes)
    centres = rng.normal(size=(classes, 16)) * 5
    a = centres[labels] + rng.normal(size=(n, 16))
    v = centres[labels] + rng.normal(size=(n, 16))  # the same class, an unrelated instance
    m = cross_modal_metrics(a, v, [[f"c{x}"] for x in labels], ks=(1, 5))
    for d in ("a2v", "v2a"):
        assert m[f"{d}/class_recall@1"] == 1.0 and m[f"{d}/recall@1"] < 0.3
        assert m[f"baseline/{d}/recall@1"] == pytest.approx(1 / n)
        assert m[f"baseline/{d}/class_recall@1"] == pytest.approx(10 / 40)
        # 1 - C(30, 5) / C(40, 5): five random picks from 40 miss all ten of the class
        assert m[f"baseline/{d}/class_recall@5"] == pytest.approx(1 - math.comb(30, 5) / math.comb(40, 5))
    assert m["baseline/a2a/recall@1"] == pytest.approx(9 / 39)  # the query itself left out


def test_chance_recall_at_k_edges():
    np.testing.assert_allclose(chance_recall_at_k([0, 1, 2, 5], 5, 2), [0.0, 0.4, 1 - 3 / 10, 1.0])
    np.testing.assert_allclose(chance_recall_at_k([1, 3], 4, 10), [1.0, 1.0])  # k beyond the gallery
    big = chance_recall_at_k([100], 1_000_000, 30)[0]  # no overflow with large galleries
    assert big == pytest.approx(1 - math.comb(999_900, 30) / math.comb(1_000_000, 30), rel=1e-9)
    with pytest.raises(ValueError):
        chance_recall_at_k([6], 5, 1)
    with pytest.raises(ValueError):
        chance_recall_at_k([1], 5, 0)


def test_class_level_ceiling_of_frames_that_show_only_their_sound_is_one():
    from avcorr.metrics.retrieval import class_level_ceiling

    labels = [["a"], ["b"], ["c"], ["a"], ["b"], ["c"]]
    out = class_level_ceiling(labels, labels)
    assert set(out) >= {"ceiling/a2v/ndcg@10", "ceiling/v2a/ndcg@10", "ceiling/a2v/class_recall@1", "ceiling/v2a/map@10"}
    assert not any("/recall@" in k or "median_rank" in k or "a2a" in k for k in out)  # class level, cross-modal only
    assert all(v == pytest.approx(1.0) for v in out.values())


def test_class_level_ceiling_when_every_frame_shows_both_classes_is_a_coin_toss():
    """Two classes, every frame showing both: no model that knows only classes can rank a frame's sound
    above the other class's, so class_recall@1 is 1/2 in expectation (checked over 400 clips)."""
    from avcorr.metrics.retrieval import class_level_ceiling

    labels = [["a"] if i % 2 else ["b"] for i in range(400)]
    out = class_level_ceiling(labels, [["a", "b"]] * 400, ks=(1,))
    assert out["ceiling/a2v/class_recall@1"] == pytest.approx(0.5, abs=0.08)
    assert out["ceiling/v2a/class_recall@1"] == pytest.approx(0.5, abs=0.08)
    assert out == class_level_ceiling(labels, [["a", "b"]] * 400, ks=(1,))  # seeded: the same every time
    with pytest.raises(ValueError, match="visible sets"):
        class_level_ceiling(labels, labels[:3])


def test_ranking_primitives_stay_importable_from_the_retrieval_metrics():
    from avcorr.metrics import ranking, retrieval

    assert set(ranking.__all__) <= set(retrieval.__all__)
    for name in ranking.__all__:
        assert getattr(retrieval, name) is getattr(ranking, name), name
