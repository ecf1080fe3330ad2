"""Scores of items described by several vectors ("multi-vector", "best cell" matching), brute force.

An item is either one vector (D,) or a set of G groups of C vectors (G, C, D): a clip seen through G
frames, each cut into C cells. Two items score

    s(q, x) = pool over (a < Gq, b < Gx) of  max over (c < Cq, e < Cx) of  <q[a, c], x[b, e]>

that is, the best-matching pair of vectors of every pair of groups (the best cell of each frame),
then the groups' scores pooled by ``mean`` or ``max``. A one-vector item is one group of one
vector, so two one-vector items score their inner product. With L2-normalised vectors every term
is a cosine; ``max`` pooling is then the best cell over all frames.

This is the reference :mod:`avcorr.retrieval` checks its FAISS search against, and what
:func:`avcorr.metrics.retrieval.retrieval_metrics` ranks when given sets.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SET_POOLS", "as_sets", "max_sim_scores"]

SET_POOLS = ("mean", "max")


def as_sets(x, what: str = "embeddings") -> np.ndarray:
    """float32 (N, G, C, D) view of (N, D) vectors (one group of one vector each) or (N, G, C, D) sets.

    Raises:
        ValueError: another number of dimensions, or an empty group or cell axis.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 2:
        return a[:, None, None, :]
    if a.ndim != 4 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"{what} must be (N, D) vectors or (N, G, C, D) sets of G groups of C vectors, "
                         f"got shape {a.shape}")
    return a


def max_sim_scores(query, gallery, pool: str = "mean") -> np.ndarray:
    """Every query's score against every gallery item (module docstring), in one block.

    Args:
        query: (Q, D) vectors or (Q, Gq, Cq, D) sets.
        gallery: (N, D) vectors or (N, Gx, Cx, D) sets.
        pool: how the groups' best-pair scores are pooled: ``"mean"`` or ``"max"``.

    Returns:
        float64 (Q, N). Two (·, D) inputs give exactly ``(query @ gallery.T)`` in float32, cast.

    Raises:
        ValueError: unknown ``pool``, or dimensions that disagree.
    """
    if pool not in SET_POOLS:
        raise ValueError(f"pool must be one of {SET_POOLS}, got {pool!r}")
    q, g = as_sets(query, "query"), as_sets(gallery, "gallery")
    if q.shape[-1] != g.shape[-1]:
        raise ValueError(f"query vectors of dimension {q.shape[-1]} and gallery vectors of {g.shape[-1]}")
    n_q, gq, cq, d = q.shape
    n_g, gg, cg, _ = g.shape
    s = q.reshape(-1, d) @ g.reshape(-1, d).T  # (Q Gq Cq, N Gx Cx), float32 as a FAISS flat index computes it
    best = s.reshape(n_q, gq, cq, n_g, gg, cg).max(axis=(2, 5)).astype(np.float64)  # (Q, Gq, N, Gx)
    return best.mean(axis=(1, 3)) if pool == "mean" else best.max(axis=(1, 3))
