"""Exact top-k search of items made of several vectors ("best cell" matching) over one FAISS index.

A gallery item is G groups of C vectors (a clip's frames x cells; G = C = 1 for one pooled vector),
stored in a :class:`VectorIndex` item after item, group after group: vector ``p`` belongs to item
``p // (G C)``, group ``(p // C) % G``. A query is one vector or Gq groups of Cq vectors. The score of
a query and an item is the best-matching pair of vectors of every (query group, item group), pooled
over those pairs by ``mean`` or ``max`` (the definition and the numpy reference are
:func:`avcorr.metrics.multivector.max_sim_scores`).

Search: every query vector asks the index for its ``depth`` best vectors; the best score each
(query group, item group) reached among them is exact whenever it is at least the depth's last score
``b`` of the query vectors of that group, and every pair never reached is at most ``b``. So a clip
whose every pair is exact has its exact score, any other an upper bound; the items whose exact
score beats every bound are the true best, in the true order (ties in gallery order, as the metrics
rank). While fewer than ``k`` are certain, the query is searched again twice as deep; at the full
depth the search is exhaustive. The first depth, ``k G C + 1``, settles a query in one pass unless
scores tie or its best items' groups disagree much.
"""

from __future__ import annotations

import numpy as np

from ._embed import POOLINGS
from ._faiss import VectorIndex

__all__ = ["max_sim_search", "query_sets"]


def query_sets(queries, dim: int) -> np.ndarray:
    """float32 (Q, Gq, Cq, dim) sets from (dim,), (Q, dim) or (Q, Gq, Cq, dim) queries.

    Raises:
        ValueError: another shape.
    """
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None]
    if q.ndim == 2:
        q = q[:, None, None, :]
    if q.ndim != 4 or q.shape[-1] != dim or 0 in q.shape[1:3]:
        raise ValueError(f"queries must be (Q, {dim}) vectors or (Q, Gq, Cq, {dim}) sets, got shape "
                         f"{np.shape(queries)}")
    return q


def _settle(scores: np.ndarray, pos: np.ndarray, groups: int, cells: int, pool: str, k: int,
            complete: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The certain top-k of one query from its vectors' hits, or None when more depth is needed.

    Args:
        scores: float32 (Gq, Cq, depth) scores of the hits of each query vector, best first.
        pos: int64 (Gq, Cq, depth) their index positions (-1: none).
        groups, cells: the gallery's layout.
        pool: ``mean`` or ``max``.
        k: results wanted.
        complete: the depth covered the whole index (every result is then final).
    """
    found = pos >= 0
    # b: what any vector a query vector did not reach can score at most (its last hit; none when complete)
    last = scores[..., -1] if scores.shape[-1] else np.full(scores.shape[:2], -np.inf, np.float32)
    b = np.full(scores.shape[:2], -np.inf) if complete else np.where(found[..., -1], last, -np.inf)
    bound = b.max(axis=1).astype(np.float64)  # (Gq,)
    item = pos[found] // (groups * cells)
    cand, which = np.unique(item, return_inverse=True)
    best = np.full((len(cand), scores.shape[0], groups), -np.inf)
    qgroup = np.broadcast_to(np.arange(scores.shape[0])[:, None, None], pos.shape)[found]
    np.maximum.at(best, (which, qgroup, (pos[found] // cells) % groups), scores[found].astype(np.float64))
    reduce = np.mean if pool == "mean" else np.max
    value = reduce(best, axis=(1, 2))
    exact = (best >= bound[None, :, None]).all(axis=(1, 2))
    upper = reduce(np.maximum(best, bound[None, :, None]), axis=(1, 2))
    unseen = reduce(bound)  # bound of an item no query vector reached
    threshold = max(float(unseen), float(upper[~exact].max(initial=-np.inf)))
    sure = exact & (value > threshold) if not complete else value > -np.inf
    if not complete and int(sure.sum()) < k:
        return None
    order = np.lexsort((cand[sure], -value[sure]))[:k]
    return value[sure][order], cand[sure][order]


def max_sim_search(index: VectorIndex, queries, k: int, *, groups: int = 1, cells: int = 1,
                   pool: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of every query by the multi-vector score (module docstring).

    Exact, ties included, on a flat index (the same ranking as sorting
    :func:`avcorr.metrics.multivector.max_sim_scores` by descending score, ties in gallery order);
    approximate on IVF / HNSW indexes as far as their per-vector search is.

    Args:
        index: vectors of N items, ``groups * cells`` each, in item order.
        queries: (dim,), (Q, dim) or (Q, Gq, Cq, dim).
        k: results per query; clamped to N.
        groups: G, groups (frames) per item.
        cells: C, vectors (cells) per group.
        pool: ``"mean"`` or ``"max"`` over the (query group, item group) pairs.

    Returns:
        ``(scores, items)``: float64 (Q, k') scores, best first, and int64 (Q, k') item numbers
        (``k' = min(k, N)``; an approximate index may leave fewer, padded with -inf and -1).

    Raises:
        ValueError: a bad ``k``, ``pool`` or layout, or queries of another dimension.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if pool not in POOLINGS:
        raise ValueError(f"pool must be one of {POOLINGS}, got {pool!r}")
    per = int(groups) * int(cells)
    if groups < 1 or cells < 1 or index.ntotal % per:
        raise ValueError(f"an index of {index.ntotal} vectors does not hold items of {groups} x {cells} vectors")
    q = query_sets(queries, index.dim)
    n_items = index.ntotal // per
    k = min(int(k), n_items)
    out_s = np.full((len(q), k), -np.inf)
    out_i = np.full((len(q), k), -1, dtype=np.int64)
    depth, todo = min(index.ntotal, k * per + 1), np.arange(len(q))
    while todo.size and k:
        complete = depth >= index.ntotal
        s, p = index.search(q[todo].reshape(-1, index.dim), depth)
        s, p = s.reshape(len(todo), *q.shape[1:3], -1), p.reshape(len(todo), *q.shape[1:3], -1)
        left = []
        for i, row in enumerate(todo):
            got = _settle(s[i], p[i], groups, cells, pool, k, complete)
            if got is None:
                left.append(row)
                continue
            out_s[row, :len(got[0])], out_i[row, :len(got[1])] = got
        todo, depth = np.asarray(left, dtype=np.int64), min(index.ntotal, 2 * depth)
    return out_s, out_i
