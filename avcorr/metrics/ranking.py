"""Per-query ranking primitives of the retrieval metrics: the gallery order, the rank of a query's hit,
recall, chance recall, median rank, AP@k and (n)DCG@k, each over (Q, G) score matrices or (Q, L)
ranked relevance.

The conventions (stable ranking, 1-based ranks, AP@k and nDCG@k with the ideal DCG of the whole
gallery, the chance recall) are those of :mod:`avcorr.metrics.retrieval`, which assembles these into
:func:`~avcorr.metrics.retrieval.retrieval_metrics` and re-exports them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "average_precision_at_k",
    "best_relevant_ranks",
    "chance_recall_at_k",
    "dcg_at_k",
    "first_relevant_ranks",
    "median_rank",
    "ndcg_at_k",
    "pair_ranks",
    "rank_gallery",
    "recall_at_k",
    "top_k",
]

def _as_scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a (Q, G) matrix, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s


def rank_gallery(scores) -> np.ndarray:
    """Gallery order of every query: descending score, ties in gallery order.

    Args:
        scores: (Q, G) query-to-gallery scores (higher = more similar).

    Returns:
        int64 (Q, G): ``order[q, r]`` is the gallery index ranked ``r + 1`` for query ``q``.
    """
    s = _as_scores(scores)
    return np.argsort(-s, axis=1, kind="stable")


def top_k(scores, k: int) -> np.ndarray:
    """The first ``k`` entries of :func:`rank_gallery`'s order, in O(G) per query.

    Args:
        scores: (Q, G) scores.
        k: how many (clamped to G).

    Returns:
        int64 (Q, min(k, G)) gallery indices, best first, ties in gallery order.
    """
    s = _as_scores(scores)
    k = min(int(k), s.shape[1])
    if k <= 0:
        return np.zeros((s.shape[0], 0), np.int64)
    if k == s.shape[1]:
        return rank_gallery(s)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(s, part, 1).min(1)
    # a tie across the k-th place may have let argpartition pick a later index: redo those rows
    tied = (s >= kth[:, None]).sum(1) > k
    out = np.empty((s.shape[0], k), np.int64)
    ok = ~tied
    if ok.any():
        p, sp = part[ok], np.take_along_axis(s[ok], part[ok], 1)
        order = np.lexsort((p, -sp), axis=1)
        out[ok] = np.take_along_axis(p, order, 1)
    if tied.any():
        out[tied] = rank_gallery(s[tied])[:, :k]
    return out


def best_relevant_ranks(scores, relevance) -> np.ndarray:
    """1-based rank of the best-ranked item with relevance > 0, in O(G) per query (``G + 1`` if none).

    Args:
        scores: (Q, G) scores (excluded items at ``-inf`` and relevance 0).
        relevance: (Q, G) relevance.

    Returns:
        int64 (Q,).
    """
    s = _as_scores(scores)
    rel = np.asarray(relevance) > 0
    has = rel.any(1)
    masked = np.where(rel, s, -np.inf)
    best = masked.max(1, initial=-np.inf)
    # the first (lowest-index) relevant item reaching the best score is the one ranked first
    first = np.argmax(rel & (s == best[:, None]), axis=1)
    ranks = pair_ranks(np.where(has[:, None], s, 0.0), np.where(has, first, 0))
    return np.where(has, ranks, s.shape[1] + 1).astype(np.int64)


def pair_ranks(scores, pairs) -> np.ndarray:
    """1-based rank of each query's paired gallery item (the instance-level hit).

    ``rank = 1 + #{j: s_j > s_p} + #{j < p: s_j == s_p}``, which is the position of ``p`` in
    :func:`rank_gallery`'s order. Excluded items must already carry a score of ``-inf``.

    Args:
        scores: (Q, G) scores.
        pairs: (Q,) gallery index of each query's pair.

    Returns:
        int64 (Q,) ranks in ``[1, G]``.
    """
    s = _as_scores(scores)
    p = np.asarray(pairs, dtype=np.int64)
    if p.shape != (s.shape[0],):
        raise ValueError(f"pairs must have shape ({s.shape[0]},), got {p.shape}")
    if p.size and (p.min() < 0 or p.max() >= s.shape[1]):
        raise ValueError(f"pair indices must be in [0, {s.shape[1]}), got range [{p.min()}, {p.max()}]")
    sp = s[np.arange(s.shape[0]), p][:, None]
    before = np.arange(s.shape[1])[None, :] < p[:, None]
    return 1 + (s > sp).sum(1) + ((s == sp) & before).sum(1)


def first_relevant_ranks(ranked_relevance) -> np.ndarray:
    """1-based rank of the first item with relevance > 0 (``G + 1`` when there is none).

    Args:
        ranked_relevance: (Q, L) relevance of each query's ranked list, best first.

    Returns:
        int64 (Q,).
    """
    r = np.asarray(ranked_relevance) > 0
    has = r.any(1)
    return np.where(has, r.argmax(1) + 1, r.shape[1] + 1).astype(np.int64)


def recall_at_k(ranks, k: int) -> float:
    """Fraction of queries whose hit is ranked ``<= k``.

    Args:
        ranks: (Q,) 1-based ranks of each query's hit.
        k: cut-off (>= 1).
    """
    r = np.asarray(ranks)
    if r.size == 0:
        raise ValueError("recall_at_k of no queries")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float((r <= k).mean())


def chance_recall_at_k(num_relevant, gallery_size: int, k: int) -> np.ndarray:
    """Probability that a uniformly random ranking puts a relevant item in the top ``k``.

    ``1 - C(G - R, k) / C(G, k) = 1 - prod_{i < k} (G - R - i) / (G - i)`` (a product of at most
    ``k`` factors, exact without big binomials).

    Args:
        num_relevant: (Q,) relevant items ``R`` in each query's gallery (``0 <= R <= G``).
        gallery_size: ``G``, items each query ranks (the query itself left out where it is excluded).
        k: cut-off (>= 1); ``k >= G`` gives 1 for every query with a relevant item.

    Returns:
        float64 (Q,) in [0, 1].
    """
    r = np.asarray(num_relevant, dtype=np.float64)
    g = int(gallery_size)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if g < 1 or (r < 0).any() or (r > g).any():
        raise ValueError(f"relevant counts must be in [0, gallery_size={g}] with gallery_size >= 1")
    i = np.arange(min(int(k), g), dtype=np.float64)
    miss = np.prod(np.clip(g - r[:, None] - i[None, :], 0.0, None) / (g - i)[None, :], axis=1)
    return 1.0 - miss


def median_rank(ranks) -> float:
    """Median of the (1-based) ranks of each query's hit (lower is better; 1 is perfect)."""
    r = np.asarray(ranks)
    if r.size == 0:
        raise ValueError("median_rank of no queries")
    return float(np.median(r))


def average_precision_at_k(ranked_relevance, num_relevant, k: int) -> np.ndarray:
    """AP@k per query: ``(1 / min(k, R)) * sum_{i <= k} P@i * rel_i`` (binary ``rel_i``).

    Args:
        ranked_relevance: (Q, L) relevance of each query's ranked list, best first, ``L >= k``
            or the whole gallery; only ``> 0`` matters.
        num_relevant: (Q,) ``R``, relevant items in each query's whole gallery.
        k: cut-off.

    Returns:
        float64 (Q,); NaN where ``R == 0``.
    """
    rel = (np.asarray(ranked_relevance)[:, :k] > 0).astype(np.float64)
    n_rel = np.asarray(num_relevant, dtype=np.float64)
    if rel.shape[0] != n_rel.shape[0]:
        raise ValueError(f"{rel.shape[0]} ranked lists but {n_rel.shape[0]} relevant counts")
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)[None, :]
    denom = np.minimum(float(k), n_rel)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (precision * rel).sum(1) / denom
    ap[n_rel == 0] = np.nan
    return ap


def dcg_at_k(gains, k: int) -> np.ndarray:
    """DCG@k per row: ``sum_{i <= k} g_i / log2(i + 1)``.

    Args:
        gains: (Q, L) gains in ranked order (linear gains: the relevance itself).
        k: cut-off; rows shorter than ``k`` are summed as they are.

    Returns:
        float64 (Q,).
    """
    g = np.asarray(gains, dtype=np.float64)[:, :k]
    discount = 1.0 / np.log2(np.arange(2, g.shape[1] + 2))
    return g @ discount


def ndcg_at_k(ranked_gains, all_gains, k: int) -> np.ndarray:
    """nDCG@k per query, the ideal DCG taken over the WHOLE gallery.

    Args:
        ranked_gains: (Q, L) gains of each query's ranked list, best first (``L >= k`` or the
            whole gallery).
        all_gains: (Q, G) gains of every gallery item of each query, in any order (excluded items
            set to 0). The ideal ranking sorts these.
        k: cut-off.

    Returns:
        float64 (Q,) in [0, 1]; NaN where every gain is 0.
    """
    allg = np.asarray(all_gains, dtype=np.float64)
    kk = min(k, allg.shape[1])
    ideal = -np.sort(-np.partition(allg, allg.shape[1] - kk, axis=1)[:, allg.shape[1] - kk:], axis=1)
    idcg = dcg_at_k(ideal, k)
    dcg = dcg_at_k(ranked_gains, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = dcg / idcg
    out[idcg <= 0] = np.nan
    return out
