"""Tagging metrics against scikit-learn / scipy, ties included, and the per-class AP chart."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from avcorr.metrics.tagging import (
    accuracy,
    average_precision_and_auc,
    d_prime,
    d_prime_hear,
    mean_average_precision,
    per_class_counts,
    roc_auc,
    tagging_metrics,
    to_multi_hot,
)


def _sklearn_per_class(scores, targets):
    ap, auc = [], []
    for c in range(scores.shape[1]):
        y, s = targets[:, c], scores[:, c]
        ap.append(average_precision_score(y, s) if y.any() else math.nan)
        auc.append(roc_auc_score(y, s) if 0 < y.sum() < len(y) else math.nan)
    return np.array(ap), np.array(auc)


def _assert_close_nan(a, b, tol=1e-6):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    keep = ~np.isnan(a)
    np.testing.assert_allclose(a[keep], b[keep], rtol=0, atol=tol)


@pytest.mark.parametrize("levels", [2, 3, 7, 50, None])  # quantised scores = many ties; None = continuous
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ap_auc_equal_sklearn_with_ties(levels, dtype):
    rng = np.random.default_rng(levels or 0)
    for trial in range(15):
        n, c = int(rng.integers(2, 80)), int(rng.integers(1, 7))
        s = rng.random((n, c))
        if levels:
            s = np.round(s * levels) / levels
        s = s.astype(dtype)
        y = rng.random((n, c)) < rng.uniform(0.05, 0.7)
        ap, auc = average_precision_and_auc(s, y)
        ref_ap, ref_auc = _sklearn_per_class(s, y)
        _assert_close_nan(ap.numpy(), ref_ap)
        _assert_close_nan(auc.numpy(), ref_auc)


def test_large_matrix_both_tie_paths_and_torch_input():
    rng = np.random.default_rng(1)
    n, c = 3000, 12
    s = rng.standard_normal((n, c)).astype(np.float32)
    s[:, 0] = 0.0  # one class all tied
    s[:, 1] = np.round(s[:, 1])  # heavy ties
    s[:, 2] = np.where(s[:, 2] > 1.5, np.float32(1.0), s[:, 2])  # saturated scores tied at the top
    y = rng.random((n, c)) < 0.1
    y[:, 3] = False  # no positive: no AP, no AUC
    y[:, 4] = True  # no negative: AP 1, no AUC
    ap, auc = average_precision_and_auc(torch.from_numpy(s), torch.from_numpy(y))
    ref_ap, ref_auc = _sklearn_per_class(s, y)
    _assert_close_nan(ap.numpy(), ref_ap)
    _assert_close_nan(auc.numpy(), ref_auc)
    assert math.isnan(ap[3]) and ap[4] == pytest.approx(1.0) and math.isnan(auc[4])
    # macro means are over the defined classes only
    assert mean_average_precision(s, y) == pytest.approx(np.nanmean(ref_ap), abs=1e-9)
    assert roc_auc(s, y) == pytest.approx(np.nanmean(ref_auc), abs=1e-9)


def test_dense_ties_matrix_uses_group_ends():
    # more than half of all neighbours tied: the other tie path
    rng = np.random.default_rng(2)
    s = rng.integers(0, 4, size=(500, 5)).astype(np.float64)
    y = rng.random((500, 5)) < 0.3
    ap, auc = average_precision_and_auc(s, y)
    ref_ap, ref_auc = _sklearn_per_class(s, y)
    _assert_close_nan(ap.numpy(), ref_ap)
    _assert_close_nan(auc.numpy(), ref_auc)


def test_single_label_targets_and_accuracy():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((200, 6))
    labels = rng.integers(0, 6, 200)
    labels[:6] = np.arange(6)
    onehot = to_multi_hot(labels, 6).numpy()
    m1, m2 = tagging_metrics(logits, labels), tagging_metrics(logits, onehot)
    assert m1 == pytest.approx(m2)
    assert m1["acc"] == pytest.approx(float(np.mean(logits.argmax(1) == labels)))
    ref_ap, ref_auc = _sklearn_per_class(logits, onehot)
    assert m1["mAP"] == pytest.approx(ref_ap.mean(), abs=1e-9)
    assert m1["AUC"] == pytest.approx(ref_auc.mean(), abs=1e-9)
    # multi-label accuracy: the top class is one of the labels
    y = np.zeros((3, 4), bool)
    y[0, [1, 2]] = True
    y[1, 0] = True
    y[2, 3] = True
    s = np.array([[0, 0.1, 0.9, 0], [0.2, 0.9, 0, 0], [0, 0, 0, 1.0]])
    assert accuracy(s, y) == pytest.approx(2 / 3)
    assert per_class_counts(labels, 6).sum() == 200


def test_d_prime_conventions():
    rng = np.random.default_rng(4)
    s = rng.standard_normal((400, 5))
    y = rng.random((400, 5)) < 0.2
    s[:, 1] += 1.5 * y[:, 1]
    s[:, 2] += 3.0 * y[:, 2]
    m = tagging_metrics(s, y, per_class=True)
    auc = m["auc_per_class"].numpy()
    assert m["d_prime"] == pytest.approx(norm.ppf(np.mean(auc)) * np.sqrt(2), abs=1e-9)
    assert m["d_prime_hear"] == pytest.approx(np.mean(norm.ppf(auc) * np.sqrt(2)), abs=1e-9)
    assert m["d_prime"] != pytest.approx(m["d_prime_hear"], abs=1e-3)  # the two conventions differ
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime_hear([0.5, float("nan")]) == pytest.approx(0.0)
    assert math.isinf(d_prime(1.0))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN or Inf"):
        average_precision_and_auc(np.array([[0.1], [np.nan]]), np.array([[1], [0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        accuracy(np.array([[np.inf, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="0 or 1"):
        average_precision_and_auc(np.zeros((2, 2)), np.array([[0.5, 0], [1, 0]]))
    with pytest.raises(ValueError, match="different N"):
        average_precision_and_auc(np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        to_multi_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        average_precision_and_auc(np.zeros(3), np.zeros(3, dtype=int))


def test_ap_chart_written(tmp_path):
    pytest.importorskip("matplotlib")
    from avcorr.viz.ap_bars import plot_ap_per_class

    ap = np.array([0.9, np.nan, 0.3])
    out = plot_ap_per_class(ap, [10, 0, 4], ["a", "b", "c"], tmp_path / "sub" / "ap.png", title="val")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert not list((tmp_path / "sub").glob(".*tmp*"))  # the temporary file was renamed
    with pytest.raises(ValueError, match="differ in length"):
        plot_ap_per_class(ap, [1, 2], ["a", "b", "c"], tmp_path / "x.png")


def _runs(mask_cols):
    """(start, length) of the runs of True in a boolean column mask."""
    cols = np.flatnonzero(mask_cols)
    if not cols.size:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.r_[cols[0], cols[breaks + 1]]
    ends = np.r_[cols[breaks], cols[-1]]
    return list(zip(starts, ends - starts + 1))


def test_ap_chart_sorts_by_ap_and_marks_chance(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from avcorr.viz.ap_bars import ap_order, plot_ap_per_class

    ap = np.array([0.2, np.nan, 0.9, 0.5, 0.9])
    assert ap_order(ap).tolist() == [2, 4, 3, 0, 1]  # best first, ties in class order, undefined last
    out = plot_ap_per_class(ap, [3, 0, 5, 2, 1], list("abcde"), tmp_path / "ap.png", n_clips=10)
    with Image.open(out) as im:
        img = np.asarray(im.convert("RGB")).astype(int)
    blue = (np.abs(img - [31, 119, 180]).sum(-1) < 30)  # tab:blue bars
    bars = _runs(blue.sum(axis=0) > 5)
    heights = [int(blue[:, s:s + n].sum(axis=0).max()) for s, n in bars]
    assert len(heights) == 4 and heights[0] == pytest.approx(heights[1], abs=1)
    assert heights[0] > heights[2] > heights[3]  # 0.9, 0.9, 0.5, 0.2 from left to right
    assert heights[2] / heights[0] == pytest.approx(0.5 / 0.9, abs=0.03)
    # chance ticks (black) inside the bars at the positive rate, well below the AP of 0.9
    black = (img.sum(-1) < 60)
    s, n = bars[0]
    rows = np.flatnonzero(black[:, s + n // 2])
    bar_rows = np.flatnonzero(blue[:, s + n // 2])
    assert any(bar_rows.min() < r < bar_rows.max() for r in rows)
