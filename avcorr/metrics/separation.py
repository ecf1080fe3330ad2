"""Source-separation metrics: SDR, SIR, SAR (BSS Eval v3) and NSDR, the SDR gain over the mixture.

The numbers are those of ``mir_eval.separation.bss_eval_sources(reference, estimate,
compute_permutation=False)`` (512-tap distortion filters), as the Sound-of-Pixels code reports them.
They are computed with ``fast_bss_eval`` (same definitions; equal to mir_eval to ~1e-6 dB in
``tests/metrics/test_separation_metrics.py``, and batched), through its torch backend: its numpy backend
fails under numpy >= 2 (``np.linalg.solve`` no longer broadcasts a vector right-hand side). Without
fast_bss_eval, mir_eval is used.

Edge cases, decided here once:

* a SILENT REFERENCE (energy <= ``SILENT_ENERGY``) makes the example unscoreable (BSS Eval divides by
  the reference energy; mir_eval refuses it): the example is skipped and counted, never NaN;
* a SILENT ESTIMATE (e.g. an all-zero binary mask) is scored as the unseparated mixture: BSS Eval
  is scale-invariant, so this is the limit of a vanishing uniform mask ``eps * mixture``; it counts
  an NSDR of 0 (and the mixture's SIR) for that source, is left out of the SAR average (the mixture
  has no artifacts, so its SAR says nothing), and is counted in ``num_silent_estimates``.

Trivial masks: :func:`mask_statistics` summarises the masks a model applied (the share of
time-frequency bins switched on, how much the sources' masks differ) and
:func:`separation_warnings` turns those and ``nsdr`` into plain sentences when the model passes
everything (every source is the mixture), passes nothing, gives every source the same mask, or
makes the sources worse than the mixture itself (``nsdr < 0``).

Example:
    >>> scores = separation_scores(reference, estimate, mixture)   # (N, L), (N, L), (L,)
    >>> scores["nsdr"][0], scores["sdr"][0]  # per-example arrays
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["ALL_OFF", "ALL_PASS", "MASK_ON", "MAX_DB", "SAME_MASKS", "SILENT_ENERGY", "bss_eval", "is_silent",
           "mask_statistics", "separation_scores", "separation_warnings"]

MAX_DB = 300.0
"""Metrics are clipped to [-MAX_DB, MAX_DB]: a perfect estimate gives +inf in fast_bss_eval and ~300 dB
(float64 rounding) in mir_eval; the clip keeps means and differences finite."""

MASK_ON = 0.5
"""A time-frequency bin of a mask is "on" where the mask is above this (the paper's binary threshold)."""

ALL_PASS = 0.95
"""Masks with at least this share of their bins on pass (nearly) everything: each source is the mixture."""

ALL_OFF = 0.05
"""Masks with at most this share of their bins on pass (nearly) nothing."""

SAME_MASKS = 0.05
"""Sources whose masks differ by at most this (mean absolute difference) are not told apart."""

SILENT_ENERGY = 1e-10
"""A signal whose sum of squares is at most this is silent (over 65535 samples: an RMS below 4e-8, -148 dBFS)."""


def is_silent(x: np.ndarray) -> np.ndarray:
    """Silence test along the last axis.

    Args:
        x: float (..., L).

    Returns:
        bool (...,), True where ``sum(x ** 2) <= SILENT_ENERGY``.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.sum(x * x, axis=-1) <= SILENT_ENERGY


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block.

    ``torch.linalg.solve`` on a BATCH of matrices hangs after "Intel oneMKL ERROR: Parameter 6 was
    incorrect on entry to DLASWP" when torch uses 2+ threads (seen with torch 2.13 + oneMKL 2024.2);
    BSS Eval's 512 x 512 solves are small, so they lose little on one thread.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _bss_eval_fast(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import fast_bss_eval
    import torch

    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float64))
    est = torch.from_numpy(np.ascontiguousarray(estimate, dtype=np.float64))
    with _one_torch_thread():
        sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref, est, compute_permutation=False)[:3]
    return sdr.numpy(), sir.numpy(), sar.numpy()


def _bss_eval_mir(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        from mir_eval.separation import bss_eval_sources
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("separation metrics need `fast_bss_eval` or `mir_eval`: pip install fast_bss_eval") from e
    lead = reference.shape[:-2]
    out = np.empty((3, *reference.shape[:-1]))
    for idx in np.ndindex(*lead):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is "deprecated" in mir_eval 0.8
            sdr, sir, sar, _ = bss_eval_sources(reference[idx], estimate[idx], compute_permutation=False)
        out[(slice(None), *idx)] = np.stack([sdr, sir, sar])
    return out[0], out[1], out[2]


def bss_eval(reference: np.ndarray, estimate: np.ndarray, backend: str = "auto") -> dict[str, np.ndarray]:
    """BSS Eval v3 SDR / SIR / SAR with estimate ``n`` matched to reference ``n`` (no permutation).

    Args:
        reference: float (..., N, L) true sources (none silent).
        estimate: float (..., N, L) estimates (none silent).
        backend: ``"auto"`` (fast_bss_eval, else mir_eval), ``"fast_bss_eval"`` or ``"mir_eval"``.

    Returns:
        ``{'sdr', 'sir', 'sar'}``, each float64 (..., N) in dB, clipped to ``[-MAX_DB, MAX_DB]``.

    Raises:
        ValueError: shapes differ, or a reference or an estimate is silent (see the module docstring
            for how :func:`separation_scores` handles those).
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape or reference.ndim < 2:
        raise ValueError(f"reference and estimate must both be (..., N, L); got {reference.shape} and {estimate.shape}")
    if is_silent(reference).any() or is_silent(estimate).any():
        raise ValueError("bss_eval: a reference or an estimate is silent; BSS Eval is undefined for it")
    if backend not in ("auto", "fast_bss_eval", "mir_eval"):
        raise ValueError(f"backend must be 'auto', 'fast_bss_eval' or 'mir_eval', got {backend!r}")
    if backend in ("auto", "fast_bss_eval"):
        try:
            sdr, sir, sar = _bss_eval_fast(reference, estimate)
        except ImportError:
            if backend == "fast_bss_eval":
                raise
            sdr, sir, sar = _bss_eval_mir(reference, estimate)
    else:
        sdr, sir, sar = _bss_eval_mir(reference, estimate)
    return {k: np.clip(v, -MAX_DB, MAX_DB) for k, v in (("sdr", sdr), ("sir", sir), ("sar", sar))}


def separation_scores(reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray,
                      backend: str = "auto") -> dict[str, Any]:
    """Scores of a batch of separated mixtures, averaged over sources per example.

    Args:
        reference: float (B, N, L) or (N, L) true sources (as mixed, i.e. after the 1/N scaling).
        estimate: float, same shape, the separated sources.
        mixture: float (B, L) or (L,) the mixture (the "no separation" estimate of every source).
        backend: see :func:`bss_eval`.

    Returns:
        dict with per-example arrays ``sdr``, ``sir``, ``sar``, ``sdr_mix`` and ``nsdr`` (``sdr - sdr_mix``),
        each float64 (B_valid,) over the scoreable examples; ``valid`` bool (B,) (False = skipped: a
        silent reference or mixture); ``num_silent_estimates`` int. Unbatched input counts as B = 1.
        ``sar`` averages the non-silent estimates only (NaN for a mixture whose estimates are all silent).
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    mixture = np.asarray(mixture, dtype=np.float64)
    if reference.ndim == 2:
        reference, estimate, mixture = reference[None], estimate[None], mixture[None]
    if reference.ndim != 3 or estimate.shape != reference.shape or mixture.shape != (reference.shape[0], reference.shape[2]):
        raise ValueError(f"expected reference/estimate (B, N, L) and mixture (B, L); got {reference.shape}, "
                         f"{estimate.shape}, {mixture.shape}")
    valid = ~is_silent(reference).any(axis=-1) & ~is_silent(mixture)
    ref = reference[valid]
    mix = np.broadcast_to(mixture[valid][:, None, :], ref.shape)
    est = estimate[valid].copy()
    silent_est = is_silent(est)
    est[silent_est] = mix[silent_est]
    out: dict[str, Any] = {"valid": valid, "num_silent_estimates": int(silent_est.sum())}
    if ref.shape[0]:
        both = bss_eval(np.concatenate([ref, ref]), np.concatenate([est, mix]), backend)
        n = ref.shape[0]
        for k in ("sdr", "sir"):
            out[k] = both[k][:n].mean(axis=-1)
        # the mixture has no artifacts (SAR ~ +inf): a silent estimate's SAR would say nothing; leave it out
        sar = np.where(silent_est, 0.0, both["sar"][:n])
        kept = (~silent_est).sum(axis=-1)
        out["sar"] = np.where(kept > 0, sar.sum(axis=-1) / np.maximum(kept, 1), np.nan)
        out["sdr_mix"] = both["sdr"][n:].mean(axis=-1)
    else:
        for k in ("sdr", "sir", "sar", "sdr_mix"):
            out[k] = np.zeros(0)
    out["nsdr"] = out["sdr"] - out["sdr_mix"]
    return out


def mask_statistics(masks) -> dict[str, np.ndarray]:
    """Per-mixture statistics of the masks a separation model applied.

    Args:
        masks: float (B, N, F, T) masks as applied to the mixture's spectrogram, N >= 1 sources
            (binary masks in {0, 1}, ratio masks in [0, 1]); a torch tensor or an array.

    Returns:
        float64 arrays (B,): ``mean`` mask value; ``on_fraction``, the share of bins above
        :data:`MASK_ON` over all sources; ``difference``, the mean absolute difference between the
        masks of two sources, averaged over the source pairs (for binary masks, the share of bins
        where they disagree; NaN for one source).
    """
    m = masks.detach().float().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks, dtype=np.float32)
    if m.ndim != 4:
        raise ValueError(f"masks must be (B, N, F, T), got shape {m.shape}")
    b, n = m.shape[:2]
    flat = m.reshape(b, n, -1).astype(np.float64)
    diffs = [np.abs(flat[:, i] - flat[:, j]).mean(-1) for i in range(n) for j in range(i + 1, n)]
    return {"mean": flat.mean((1, 2)), "on_fraction": (flat > MASK_ON).mean((1, 2)),
            "difference": np.mean(diffs, axis=0) if diffs else np.full(b, np.nan)}


def separation_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Plain sentences for the signs of a separation model that does not separate.

    Args:
        metrics: an evaluation's metrics; uses ``mask_on_fraction``, ``mask_difference`` (see
            :func:`mask_statistics`) and ``nsdr`` where present and finite.

    Returns:
        One sentence per sign: all-pass, all-off or identical masks, and ``nsdr < 0``.
    """

    def num(key: str) -> float | None:
        v = metrics.get(key)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    out = []
    on, diff, nsdr = num("mask_on_fraction"), num("mask_difference"), num("nsdr")
    if on is not None and on >= ALL_PASS:
        out.append(f"the masks are all-pass: {on:.1%} of the time-frequency bins are on, so every separated "
                   f"source is (nearly) the mixture itself")
    elif on is not None and on <= ALL_OFF:
        out.append(f"the masks are all-off: only {on:.1%} of the time-frequency bins are on, so the separated "
                   f"sources are (nearly) silent")
    elif diff is not None and diff <= SAME_MASKS:
        out.append(f"the sources' masks are nearly identical (they differ by {diff:.3f} on average): the model "
                   f"does not tell the sources apart")
    if nsdr is not None and nsdr < 0:
        out.append(f"nsdr {nsdr:.2f} dB is below 0: the separated sources are worse than the mixture itself")
    return out
