"""Retrieval metrics: pure functions over score matrices, embeddings and relevance tables.

Conventions (shared by every function here and by the ranking primitives of :mod:`avcorr.metrics.ranking`,
re-exported here):

* **Ranking.** A query ranks the gallery by descending score; equal scores keep gallery order
  (a stable sort), so results never depend on the sort algorithm. Ranks are 1-based.
* **Excluded items.** Within-modality retrieval (``a2a``, ``v2v``) excludes the query itself from
  its gallery: it is removed from the ranking, from the relevant counts and from the ideal ranking.
* **Instance level** (``recall@k``, ``median_rank`` when a pair is given): the paired item (the same
  clip in the other modality) is the one hit; ``recall@k`` is the fraction of queries whose pair is
  ranked ``<= k``, ``median_rank`` the median of the pair's rank.
* **Class level** (``map@k``, ``ndcg@k``, and ``recall@k`` / ``median_rank`` when no pair exists):
  item relevance comes from the labels. Binary relevance is 1 when the query and the item share a
  label; graded relevance is any non-negative number (e.g. from the AudioSet ontology, see
  :mod:`avcorr.data.ontology`). Without a pair, a "hit" is the first item with relevance > 0.
* ``AP@k = (1 / min(k, R)) * sum_{i <= k} P@i * rel_i`` with binary ``rel_i`` and ``R`` the number
  of relevant items in the whole gallery. With ``k >= len(gallery)`` it is the usual average
  precision (scikit-learn's ``average_precision_score`` for untied scores).
* ``DCG@k = sum_{i <= k} g_i / log2(i + 1)`` with linear gains ``g_i`` (the relevance), and
  ``nDCG@k = DCG@k / IDCG@k`` where **IDCG@k is the DCG of the ideal ranking of the WHOLE gallery**
  (its k largest relevances), not of the retrieved list re-sorted; this is scikit-learn's
  ``ndcg_score(..., k=k)``.
* A query with no relevant item in its gallery has no defined AP or nDCG: it is left out of the
  mean (scikit-learn would count it as 0); :func:`retrieval_metrics` reports how many were left out.
* **Class-level recall beside instance recall** (``class_recall@k``, when both a pair and labels
  exist): the fraction of queries with at least one relevant item in the top k. Where the two
  modalities are paired only by class, instance ``recall@k`` has a ceiling far below 1 (any of the
  query's class could be "the" match) and ``class_recall@k`` says whether the class is found.
* **Chance** (``baseline/recall@k``, ``baseline/class_recall@k``): the expected value under a
  uniformly random ranking, ``1 - C(G - R_q, k) / C(G, k)`` averaged over queries, with ``R_q``
  the query's relevant items in its gallery of ``G`` (``R_q = 1`` at instance level, so ``k / G``);
  see :func:`chance_recall_at_k`.

Example:
    >>> rel = Relevance.from_labels([["dog"], ["cat"]], [["dog"], ["cat"], ["dog"]])
    >>> m = retrieval_metrics(query_emb, gallery_emb, pairs=np.array([0, 1]), relevance=rel)
    >>> m["recall@1"], m["ndcg@10"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import ranking
from .multivector import max_sim_scores
from .ranking import (  # noqa: F401 (all re-exported)
    average_precision_at_k, best_relevant_ranks, chance_recall_at_k, dcg_at_k, first_relevant_ranks, median_rank,
    ndcg_at_k, pair_ranks, rank_gallery, recall_at_k, top_k)

__all__ = ["DIRECTIONS", "Relevance", "class_level_ceiling", "cross_modal_metrics", "retrieval_metrics",
           *ranking.__all__]


@dataclass
class Relevance:
    """Query-to-gallery relevance through labels, never materialised as a (Q, G) matrix.

    ``relevance[q, g] = max_{c in labels(g)} gain[group(q), c]`` where ``gain[u, c]`` is the best
    relevance of label set ``u``'s labels to class ``c``; :meth:`block` computes rows on demand,
    so a gallery of a million multi-label clips costs ``O(G * L)`` memory (L = most labels per item).

    Args:
        query_groups: (Q,) index of each query's label set into ``gain``.
        gain: (U, C + 1) relevance of each distinct query label set to each class; the last
            column is the padding class and must be 0.
        gallery_classes: (G, L) class indices of each gallery item's labels, padded with ``C``.
    """

    query_groups: np.ndarray
    gain: np.ndarray
    gallery_classes: np.ndarray

    def __post_init__(self):
        self.query_groups = np.asarray(self.query_groups, dtype=np.int64)
        self.gain = np.asarray(self.gain, dtype=np.float64)
        self.gallery_classes = np.asarray(self.gallery_classes, dtype=np.int64)
        if self.gain.ndim != 2 or self.gallery_classes.ndim != 2:
            raise ValueError(f"gain {self.gain.shape} and gallery_classes {self.gallery_classes.shape} must be 2-d")
        if (self.gain < 0).any() or np.isnan(self.gain).any():
            raise ValueError("relevance must be finite and >= 0")
        if self.gain.shape[1] and (self.gain[:, -1] != 0).any():
            raise ValueError("the last (padding) column of gain must be 0")

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.query_groups), len(self.gallery_classes)

    def block(self, rows) -> np.ndarray:
        """float64 (len(rows), G) relevance of the queries ``rows`` to the whole gallery."""
        g = self.gain[self.query_groups[rows]]  # (R, C + 1)
        if self.gallery_classes.shape[1] == 0:
            return np.zeros((g.shape[0], self.shape[1]))
        return g[:, self.gallery_classes].max(-1)  # (R, G, L) -> (R, G)

    @classmethod
    def from_labels(cls, query_labels: Sequence[Sequence[str]], gallery_labels: Sequence[Sequence[str]],
                    label_relevance: Mapping[tuple[str, str], float] | None = None,
                    default: float | None = None) -> "Relevance":
        """Relevance from label sets.

        Binary (``label_relevance`` None): 1 when the two items share a label, else 0.
        Graded: the relevance of two items is the largest ``label_relevance[(a, b)]`` over their
        label pairs (``a`` a query label, ``b`` an item label); pairs absent from the mapping get
        ``default`` (the mapping's maximum for ``a == b`` and 0 otherwise when ``default`` is None).

        Args:
            query_labels: Q label sets (an unlabelled item is an empty set: relevant to nothing).
            gallery_labels: G label sets.
            label_relevance: optional graded relevance of label pairs.
            default: relevance of label pairs the mapping does not cover.
        """
        qsets = [tuple(sorted(set(ls))) for ls in query_labels]
        gsets = [tuple(sorted(set(ls))) for ls in gallery_labels]
        vocab = sorted({lab for s in qsets + gsets for lab in s})
        col = {lab: i for i, lab in enumerate(vocab)}
        c = len(vocab)
        if label_relevance is None:  # class-to-class relevance (C, C)
            rel = np.eye(c)
        else:
            top = max(label_relevance.values(), default=1.0)
            rel = np.full((c, c), 0.0 if default is None else float(default))
            if default is None:
                np.fill_diagonal(rel, top)
            for (a, b), v in label_relevance.items():
                if a in col and b in col:
                    rel[col[a], col[b]] = float(v)
        uq = list(dict.fromkeys(qsets))
        gain = np.zeros((len(uq), c + 1))
        for i, s in enumerate(uq):
            if s:
                gain[i, :c] = rel[[col[a] for a in s]].max(0)
        groups = {s: i for i, s in enumerate(uq)}
        width = max((len(s) for s in gsets), default=0)
        gallery = np.full((len(gsets), width), c, dtype=np.int64)
        for j, s in enumerate(gsets):
            gallery[j, :len(s)] = [col[b] for b in s]
        return cls(np.array([groups[s] for s in qsets], dtype=np.int64), gain, gallery)


def retrieval_metrics(query, gallery, *, pairs=None, relevance: Relevance | Mapping[str, Relevance] | None = None,
                      exclude_self: bool = False, ks: Sequence[int] = (1, 5, 10), map_k: int = 10,
                      ndcg_ks: Sequence[int] = (10,), chunk_size: int = 256, set_pool: str = "mean") -> dict[str, float]:
    """Every retrieval metric of one direction (queries of one modality against a gallery).

    Scores are inner products (cosine similarities for L2-normalised embeddings), computed in
    chunks of queries, so memory stays ``O(chunk_size * G)``. Either side may be sets of vectors
    (a clip's frames x cells): the score is then :func:`~avcorr.metrics.multivector.max_sim_scores`
    (the best pair of vectors of each pair of groups, pooled over the groups by ``set_pool``), with
    chunks small enough that one holds about 2**24 vector pairs.

    Args:
        query: (Q, D) query embeddings, or (Q, Gq, Cq, D) sets.
        gallery: (G, D) gallery embeddings, or (G, Gx, Cx, D) sets.
        pairs: (Q,) gallery index of each query's paired item (instance level), or None.
        relevance: a :class:`Relevance` of shape (Q, G), or a mapping ``{name: Relevance}``;
            the first (or the one named ``""``/``"binary"``) gives ``map@k`` and the hits of
            ``recall@k`` when there are no pairs; every one gives ``ndcg<name>@k``.
        exclude_self: Q == G and query ``i`` is gallery item ``i``; it is removed from its gallery.
        ks: cut-offs of ``recall@k``.
        map_k: cut-off of ``map@k``.
        ndcg_ks: cut-offs of ``ndcg@k``.
        chunk_size: queries scored at once (at most).
        set_pool: ``"mean"`` or ``"max"``: how sets pool their groups' scores (unused for two (·, D) inputs).

    Returns:
        ``recall@k`` for each k and ``median_rank`` (instance level with ``pairs``, else the rank
        of the first relevant item), ``map@{map_k}``, ``ndcg{name}@k`` for each relevance and k
        (``name`` is ``""`` for the first / binary one, ``"_graded"`` etc. for the others as given
        in the mapping), and ``num_queries``, ``num_gallery``, ``queries_without_relevant``. With
        both ``pairs`` and ``relevance`` also ``class_recall@k`` (a relevant item in the top k).
        ``baseline/recall@k`` (and ``baseline/class_recall@k``) are their chance values (module
        docstring).

    Raises:
        ValueError: shapes disagree, or neither ``pairs`` nor ``relevance`` is given.
    """
    q = np.asarray(query, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    if q.ndim not in (2, 4) or g.ndim not in (2, 4) or q.shape[-1] != g.shape[-1]:
        raise ValueError(f"query {q.shape} and gallery {g.shape} must be (Q, D) and (G, D) vectors (or (Q, Gq, Cq, D) "
                         "and (G, Gx, Cx, D) sets) with the same D")
    sets = q.ndim == 4 or g.ndim == 4
    if sets:  # one chunk scores about 2**24 vector pairs
        pairs_per_query = int(np.prod(q.shape[1:-1])) * int(np.prod(g.shape[:-1]))
        chunk_size = max(1, min(chunk_size, (1 << 24) // max(1, pairs_per_query)))
    n_q, n_g = q.shape[0], g.shape[0]
    if n_q == 0 or n_g == 0:
        raise ValueError("retrieval_metrics needs at least one query and one gallery item")
    if exclude_self and n_q != n_g:
        raise ValueError(f"exclude_self needs as many queries as gallery items, got {n_q} and {n_g}")
    if exclude_self and n_g < 2:
        raise ValueError("exclude_self needs a gallery of at least 2 items")
    if pairs is None and relevance is None:
        raise ValueError("retrieval_metrics needs pairs (instance level) or relevance (class level)")
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=np.int64)
        if pairs.shape != (n_q,):
            raise ValueError(f"pairs must have shape ({n_q},), got {pairs.shape}")
        if exclude_self and (pairs == np.arange(n_q)).any():
            raise ValueError("a query's pair cannot be the query itself when exclude_self=True")
    rels: dict[str, Relevance] = {}
    if isinstance(relevance, Relevance):
        rels[""] = relevance
    elif relevance is not None:
        rels = {("" if k in ("", "binary") else k): v for k, v in relevance.items()}
    for name, r in rels.items():
        if r.shape != (n_q, n_g):
            raise ValueError(f"relevance{name} has shape {r.shape}, expected ({n_q}, {n_g})")
    main_rel = rels.get("", next(iter(rels.values()), None))
    main_name = "" if "" in rels else next(iter(rels), None)

    max_k = max([*ks, map_k, *ndcg_ks])
    ranks, aps, class_ranks, n_rels = [], [], [], []
    ndcgs: dict[tuple[str, int], list[np.ndarray]] = {(n, k): [] for n in rels for k in ndcg_ks}
    for start in range(0, n_q, chunk_size):
        rows = np.arange(start, min(start + chunk_size, n_q))
        s = max_sim_scores(q[rows], g, set_pool) if sets else (q[rows] @ g.T).astype(np.float64)
        if exclude_self:
            s[np.arange(len(rows)), rows] = -np.inf
        n_list = n_g - 1 if exclude_self else n_g  # the excluded item is ranked last: cut it off
        top = top_k(s, min(max_k, n_list))
        if pairs is not None:
            ranks.append(pair_ranks(s, pairs[rows]))
        for name, r in rels.items():
            full = r.block(rows)
            if exclude_self:
                full[np.arange(len(rows)), rows] = 0.0
            ranked = np.take_along_axis(full, top, axis=1)
            if name == main_name:
                (class_ranks if pairs is not None else ranks).append(best_relevant_ranks(s, full))
                n_rels.append((full > 0).sum(1))
                aps.append(average_precision_at_k(ranked, n_rels[-1], map_k))
            for k in ndcg_ks:
                ndcgs[(name, k)].append(ndcg_at_k(ranked, full, k))
    out: dict[str, float] = {}
    rank_arr = np.concatenate(ranks)
    n_list = n_g - 1 if exclude_self else n_g
    n_rel = np.concatenate(n_rels) if n_rels else None
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(rank_arr, k)
        if class_ranks:
            out[f"class_recall@{k}"] = recall_at_k(np.concatenate(class_ranks), k)
    out["median_rank"] = median_rank(rank_arr)
    for k in ks:
        hits = np.ones(n_q) if pairs is not None else n_rel
        out[f"baseline/recall@{k}"] = float(chance_recall_at_k(hits, n_list, k).mean())
        if class_ranks:
            out[f"baseline/class_recall@{k}"] = float(chance_recall_at_k(n_rel, n_list, k).mean())
    if main_rel is not None:
        ap = np.concatenate(aps)
        out[f"map@{map_k}"] = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
        out["queries_without_relevant"] = int(np.isnan(ap).sum())
    for (name, k), parts in ndcgs.items():
        v = np.concatenate(parts)
        out[f"ndcg{name}@{k}"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    out["num_queries"] = n_q
    out["num_gallery"] = n_g - 1 if exclude_self else n_g
    return out


DIRECTIONS = ("a2v", "v2a", "a2a", "v2v")
"""Retrieval directions: query modality -> gallery modality (a = audio, v = visual)."""


def cross_modal_metrics(audio, visual, labels: Sequence[Sequence[str]] | None = None, *,
                        label_relevance: Mapping[tuple[str, str], float] | None = None,
                        ks: Sequence[int] = (1, 5, 10), map_k: int = 10, ndcg_ks: Sequence[int] = (10, 30),
                        chunk_size: int = 256, directions: Sequence[str] = DIRECTIONS, visual_sets=None,
                        set_pool: str = "mean") -> dict[str, float]:
    """The four retrieval directions (or those in ``directions``) over N clips embedded in both modalities.

    Clip ``i`` of ``audio`` and clip ``i`` of ``visual`` are the same clip. With ``visual_sets`` (each
    clip's frames x cells, for a model that matches a sound to a frame's best cell) ``a2v`` and ``v2a``
    score a sound against a clip's cells (:func:`~avcorr.metrics.multivector.max_sim_scores`: the best
    cell of each frame, pooled over the frames by ``set_pool``); ``a2a`` and ``v2v`` compare the
    pooled embeddings as without.

    * ``a2v`` / ``v2a``: every clip queries the other modality's N clips; ``recall@k`` and
      ``median_rank`` are instance level (the same clip is the hit).
    * ``a2a`` / ``v2v``: every clip queries the other N - 1 clips of its own modality (itself
      excluded); there is no paired instance, so ``recall@k`` is the fraction of queries with a
      same-label clip in the top k and ``median_rank`` the median rank of the first one.
    * ``a2v`` / ``v2a`` with labels: ``class_recall@k``, the fraction of queries with a clip of a
      shared label in the top k (the query's own clip included).
    * Every direction: ``map@{map_k}`` and ``ndcg@k`` with binary class relevance (a shared
      label), and ``ndcg_graded@k`` when ``label_relevance`` is given (e.g. from the ontology,
      :func:`avcorr.data.ontology.label_relevance`); the chance value of each recall under
      ``baseline/<direction>/<metric>`` (e.g. ``baseline/a2v/class_recall@10``).

    Args:
        audio: (N, D) clip audio embeddings.
        visual: (N, D) clip visual embeddings.
        labels: N label sets; None (or all empty) gives only the instance-level cross-modal metrics.
        label_relevance: graded relevance of label pairs.
        ks: ``recall@k`` cut-offs.
        map_k: ``map@k`` cut-off.
        ndcg_ks: ``ndcg@k`` cut-offs.
        chunk_size: queries scored at once.
        directions: which of :data:`DIRECTIONS` to compute.
        visual_sets: (N, F, C, D) unit vectors, the C cells of F frames of each clip, or None.
        set_pool: ``"mean"`` or ``"max"`` over the frames' best-cell scores (with ``visual_sets``).

    Returns:
        ``{"<direction>/<metric>": value}`` and ``{"baseline/<direction>/<metric>": chance}``, plus
        ``<direction>/queries_without_relevant`` where some query had no relevant clip (those are
        left out of its map / ndcg means).
    """
    a = np.asarray(audio, dtype=np.float32)
    v = np.asarray(visual, dtype=np.float32)
    if a.shape != v.shape or a.ndim != 2:
        raise ValueError(f"audio {a.shape} and visual {v.shape} embeddings must both be (N, D)")
    n = a.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} label sets for {n} clips")
    has_labels = labels is not None and any(len(ls) for ls in labels)
    rel: dict[str, Relevance] = {}
    if has_labels:
        rel[""] = Relevance.from_labels(labels, labels)
        if label_relevance is not None:
            rel["_graded"] = Relevance.from_labels(labels, labels, label_relevance)
    emb = {"a": a, "v": v}
    cross = dict(emb)
    if visual_sets is not None:
        cross["v"] = np.asarray(visual_sets, dtype=np.float32)
        if cross["v"].ndim != 4 or cross["v"].shape[0] != n or cross["v"].shape[-1] != a.shape[1]:
            raise ValueError(f"visual_sets must be (N={n}, F, C, D={a.shape[1]}), got shape {cross['v'].shape}")
    out: dict[str, float] = {}
    for d in directions:
        same = d[0] == d[2]
        if same and not has_labels:
            continue
        pick = emb if same else cross
        m = retrieval_metrics(pick[d[0]], pick[d[2]], pairs=None if same else np.arange(n),
                              relevance=rel or None, exclude_self=same, ks=ks, map_k=map_k,
                              ndcg_ks=ndcg_ks if has_labels else (), chunk_size=chunk_size, set_pool=set_pool)
        for key, val in m.items():
            if key in ("num_queries", "num_gallery") or (key == "queries_without_relevant" and not val):
                continue
            if key.startswith("baseline/"):
                out[f"baseline/{d}/{key[len('baseline/'):]}"] = val
            else:
                out[f"{d}/{key}"] = val
    return out


_CLASS_LEVEL = ("class_recall@", "map@", "ndcg@", "ndcg_graded@")


def class_level_ceiling(labels: Sequence[Sequence[str]], visible: Sequence[Sequence[str]], *, repeats: int = 4,
                        seed: int = 0, **kwargs: Any) -> dict[str, float]:
    """The cross-modal class-level metrics of a model that knows every clip's classes and nothing finer.

    Its audio embedding of clip ``i`` is the normalised multi-hot vector of ``labels[i]``; its visual
    embedding that of ``visible[i]``, the labels of EVERY object drawn in the frame (sounding or
    silent: a ``visible.json``). Where frames show silent objects of other classes, nothing tells it
    which one sounds, so it ranks them alike: ties are broken at random (``repeats`` draws, averaged;
    deterministic for a ``seed``). With ``visible == labels`` single-label metrics are 1.

    Args:
        labels: N label sets (what the clip's sound is).
        visible: N label sets (what its frame shows), each holding its ``labels``.
        repeats: random tie-breaks averaged.
        seed: seed of the tie-breaks.
        **kwargs: passed to :func:`cross_modal_metrics` (``label_relevance``, ``ks``, ``ndcg_ks``...).

    Returns:
        ``{"ceiling/a2v/<metric>": value, "ceiling/v2a/<metric>": ...}`` for the class-level metrics
        (``class_recall@k``, ``map@k``, ``ndcg@k``, ``ndcg_graded@k``).
    """
    if len(labels) != len(visible):
        raise ValueError(f"{len(labels)} label sets but {len(visible)} visible sets")
    classes = {c: i for i, c in enumerate(sorted({c for ls in (*labels, *visible) for c in ls}))}

    def multi_hot(sets: Sequence[Sequence[str]]) -> np.ndarray:
        m = np.zeros((len(sets), max(1, len(classes))), dtype=np.float64)
        for i, ls in enumerate(sets):
            m[i, [classes[c] for c in ls]] = 1.0
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    audio, frames = multi_hot(labels), multi_hot(visible)
    sums: dict[str, float] = {}
    for r in range(repeats):
        g = np.random.default_rng([seed, r])
        # ties broken independently for every (query, item) pair: 64 extra random dimensions on both sides add
        # about N(0, 1e-4) to each score, far below any class-level difference and above float32 steps
        noise = 3.5e-3 * g.standard_normal((2, audio.shape[0], 64))
        m = cross_modal_metrics(np.hstack([audio, noise[0]]).astype(np.float32),
                                np.hstack([frames, noise[1]]).astype(np.float32), labels, directions=("a2v", "v2a"),
                                **kwargs)
        for key, value in m.items():
            if key.startswith(("a2v/", "v2a/")) and key.split("/", 1)[1].startswith(_CLASS_LEVEL):
                sums[key] = sums.get(key, 0.0) + value / repeats
    return {f"ceiling/{k}": v for k, v in sums.items()}
