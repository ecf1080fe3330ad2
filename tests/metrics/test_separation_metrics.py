"""Separation metrics: BSS Eval through fast_bss_eval equals mir_eval; NSDR; silent signals."""

import numpy as np
import pytest

from avcorr.metrics.separation import MAX_DB, bss_eval, is_silent, separation_scores


def _sources(seed: int, n: int = 2, length: int = 6000, batch: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, length) if batch is None else (batch, n, length)
    # coloured noise: a random 8-tap filter per source, so the sources are not white
    x = rng.standard_normal(shape)
    taps = rng.standard_normal(shape[:-1] + (8,))
    return np.stack([np.convolve(a, t, mode="same") for a, t in zip(x.reshape(-1, length),
                                                                     taps.reshape(-1, 8))]).reshape(shape)


def test_fast_bss_eval_equals_mir_eval_on_random_signals():
    pytest.importorskip("fast_bss_eval")
    pytest.importorskip("mir_eval")
    rng = np.random.default_rng(1)
    ref = _sources(2)
    est = ref + 0.4 * rng.standard_normal(ref.shape) + 0.3 * ref[::-1]
    fast = bss_eval(ref, est, backend="fast_bss_eval")
    slow = bss_eval(ref, est, backend="mir_eval")
    for k in ("sdr", "sir", "sar"):
        assert fast[k].shape == (2,)
        np.testing.assert_allclose(fast[k], slow[k], atol=1e-4, err_msg=k)
    # batched input gives the same numbers as one example at a time
    batch = np.stack([est, ref + 0.1 * rng.standard_normal(ref.shape)])
    both = bss_eval(np.stack([ref, ref]), batch, backend="fast_bss_eval")
    np.testing.assert_allclose(both["sdr"][0], fast["sdr"], atol=1e-9)


def test_perfect_separation_scores_very_high():
    ref = _sources(3)
    scores = separation_scores(ref, ref.copy(), ref.sum(0))
    assert scores["sdr"][0] > 100 and scores["nsdr"][0] > 100 and scores["sdr"][0] <= MAX_DB
    assert np.isfinite(scores["nsdr"]).all()


def test_mixture_as_estimate_has_zero_nsdr():
    ref = _sources(4, batch=3)
    mix = ref.sum(1)
    scores = separation_scores(ref, np.stack([mix, mix], axis=1), mix)
    assert scores["valid"].all() and scores["nsdr"].shape == (3,)
    np.testing.assert_allclose(scores["nsdr"], 0.0, atol=1e-9)
    np.testing.assert_allclose(scores["sdr"], scores["sdr_mix"], atol=1e-9)
    assert (scores["sdr_mix"] < 5).all()  # two comparable sources: the mixture is a poor estimate


def test_better_estimates_score_higher():
    rng = np.random.default_rng(5)
    ref = _sources(6)
    good = separation_scores(ref, ref + 0.05 * rng.standard_normal(ref.shape), ref.sum(0))
    bad = separation_scores(ref, ref + 0.3 * ref[::-1], ref.sum(0))
    assert good["nsdr"][0] > bad["nsdr"][0] > 0


def test_silent_reference_is_skipped_without_nan():
    ref = _sources(7, batch=2)
    ref[1, 0] = 0.0  # the second mixture has a silent source
    est = ref + 0.1
    scores = separation_scores(ref, est, ref.sum(1))
    assert scores["valid"].tolist() == [True, False]
    assert scores["nsdr"].shape == (1,) and np.isfinite(scores["nsdr"]).all()
    with pytest.raises(ValueError, match="silent"):
        bss_eval(ref[1], est[1])
    none = separation_scores(ref[1:], est[1:], ref[1:].sum(1))
    assert none["nsdr"].shape == (0,) and not none["valid"].any()


def test_silent_estimate_is_scored_as_the_mixture():
    ref = _sources(8)
    mix = ref.sum(0)
    est = ref.copy()
    est[1] = 0.0  # e.g. an all-zero binary mask
    scores = separation_scores(ref, est, mix)
    assert scores["num_silent_estimates"] == 1
    solo = bss_eval(ref, np.stack([ref[0], mix]))  # what the convention promises
    np.testing.assert_allclose(scores["sdr"][0], solo["sdr"].mean(), atol=1e-9)
    assert np.isfinite(scores["sdr"]).all()
    np.testing.assert_allclose(scores["sar"][0], solo["sar"][0], atol=1e-9)  # only the real estimate's SAR
    both = separation_scores(ref, np.zeros_like(ref), mix)
    assert both["num_silent_estimates"] == 2 and abs(both["nsdr"][0]) < 1e-9 and np.isnan(both["sar"][0])


def test_is_silent():
    assert is_silent(np.zeros((2, 10))).all()
    assert not is_silent(np.full(10, 1e-3)).any()
