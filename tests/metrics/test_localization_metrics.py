"""cIoU / ciou@0.5 / auc_ciou on hand-made maps and boxes with known answers (LVS / EZ-VSL protocol)."""

import math

import numpy as np
import pytest
import torch

from avcorr.metrics.localization import (
    AUC_THRESHOLDS,
    auc_ciou,
    binarize,
    box_map,
    center_prior_map,
    ciou,
    ciou_at,
    localization_cious,
    localization_summary,
    normalize_map,
    resize_map,
)


def test_box_map_pixels_union_and_clamping():
    gt = box_map([[0.25, 0.25, 0.75, 0.75]], size=8)
    assert gt.shape == (8, 8) and gt.sum() == 16 and gt[2:6, 2:6].all()
    # two overlapping boxes: union, not a sum
    gt = box_map([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]], size=8)
    assert gt.max() == 1.0 and gt.sum() == 16 + 16 - 4
    # VGG-SS convention: int(size * max(v, 0)); a negative coordinate is clamped to 0
    gt = box_map([[-0.1, 0.0, 0.26, 0.13]], size=100)
    assert gt.sum() == 26 * 13
    assert box_map([], size=4).sum() == 0


def test_binarize_median_follows_lvs_strict_rule_and_ties():
    m = torch.arange(16.0).reshape(4, 4) / 15  # distinct values: sorted[8] = 8/15, strictly above -> 7 pixels
    on = binarize(m)
    assert on.sum() == 7 and on.flatten()[9:].all() and not on.flatten()[:9].any()
    ties = torch.zeros(4, 4)
    ties[0] = 1.0  # 12 zeros, 4 ones: sorted[8] = 0 -> only the ones are on (fewer than half)
    assert torch.equal(binarize(ties), ties.bool())
    mostly_one = 1 - ties  # 12 ones: sorted[8] = 1 -> nothing is strictly above
    assert binarize(mostly_one).sum() == 0
    assert torch.equal(binarize(m, 0.5), m >= 0.5)  # fixed threshold: >=
    with pytest.raises(ValueError, match="median"):
        binarize(m, "mean")


def test_normalize_map_min_max_and_constant():
    m = torch.tensor([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    n = normalize_map(m)
    assert torch.allclose(n[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(n[1], m[1])  # a constant map is left as it is (LVS normalize_img)


def test_ciou_formula_by_hand():
    gt = torch.zeros(8, 8)
    gt[2:6, 2:6] = 1  # 16 pixels
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[3:5, 3:5] = True  # 4 on pixels, all inside
    assert ciou(inside, gt).item() == pytest.approx(4 / 16)
    assert ciou(gt.bool(), gt).item() == 1.0
    spill = gt.bool().clone()
    spill[0, :4] = True  # 4 on pixels outside the box add to the denominator
    assert ciou(spill, gt).item() == pytest.approx(16 / 20)
    batch = ciou(torch.stack([inside, spill]), torch.stack([gt, gt]))
    assert batch.shape == (2,) and batch[1].item() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="shape"):
        ciou(inside, gt[:4])


def test_full_protocol_on_maps_with_known_answers():
    # a map that is 1 on the box and 0 elsewhere: ties at 0 keep the background off -> cIoU 1
    box = [0.25, 0.5, 0.5, 0.75]
    exact = torch.from_numpy(box_map([box], 224))
    assert localization_cious(exact[None], [[box]])[0] == pytest.approx(1.0)
    # a ramp falling to the right: sorted[N / 2] is the value of column 111, columns 0..110 are on;
    # the box covers columns 0..133 (int(224 * 0.6) = 134) -> cIoU = 111 / 134
    ramp = -torch.arange(224.0).expand(224, 224)
    left = [0.0, 0.0, 0.6, 1.0]
    assert localization_cious(ramp[None], [[left]])[0] == pytest.approx(111 / 134)
    # same ramp under the fixed threshold: normalised value >= 0.5 <=> column <= 111 -> 112 columns
    assert localization_cious(ramp[None], [[left]], threshold=0.5)[0] == pytest.approx(112 / 134)
    # a constant map switches nothing on -> cIoU 0; a clip without boxes -> NaN
    out = localization_cious(torch.ones(2, 7, 7), [[left], []])
    assert out[0] == 0.0 and math.isnan(out[1])


def test_low_resolution_map_is_upsampled_to_the_frame():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = 1.0  # top-left cell
    up = resize_map(m, 224)
    assert up.shape == (1, 224, 224) and up[0, :56, :56].mean() > up[0, 56:, 56:].mean()
    top_left = [0.0, 0.0, 0.25, 0.25]
    bottom_right = [0.75, 0.75, 1.0, 1.0]
    c = localization_cious(m.expand(2, 4, 4), [[top_left], [bottom_right]], threshold=0.5)
    assert c[0] > 0.5 and c[1] == 0.0


def _lvs_reference(heatmap: np.ndarray, boxes) -> float:
    """LVS test.py, written out with numpy / OpenCV for comparison."""
    cv2 = pytest.importorskip("cv2")
    h = cv2.resize(heatmap.astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR)
    h = (h - h.min()) / (h.max() - h.min())
    thr = np.sort(h.flatten())[int(224 * 224 / 2)]
    pred = np.where(h > thr, 1.0, 0.0)
    gt = np.zeros((224, 224))
    for b in boxes:
        x1, y1, x2, y2 = (int(224 * max(v, 0)) for v in b)
        gt[y1:y2, x1:x2] = 1
    return float(np.sum(pred * gt) / (np.sum(gt) + np.sum(pred * (gt == 0))))


def test_matches_reference_code_on_random_maps():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 14, 14)).astype(np.float32)
    boxes = []
    for _ in range(6):
        x1, y1 = rng.uniform(0, 0.5, 2)
        w, h = rng.uniform(0.2, 0.5, 2)
        boxes.append([[x1, y1, x1 + w, y1 + h], [0.1, 0.1, 0.3, 0.2]])
    ours = localization_cious(torch.from_numpy(maps), boxes)
    ref = [_lvs_reference(m, b) for m, b in zip(maps, boxes)]
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_success_rate_and_auc():
    assert ciou_at([0.49, 0.5, 0.9]) == pytest.approx(2 / 3)
    assert auc_ciou([1.0, 1.0]) == pytest.approx(1.0)
    assert auc_ciou([0.0]) == pytest.approx(0.025)  # s(0) = 1, s(t > 0) = 0: one trapezoid
    assert auc_ciou([0.5]) == pytest.approx(0.525)  # s = 1 up to 0.5 (0.05 * 10 == 0.5), then 0
    # thresholds are 0.05 * i in floating point, as in the reference: 0.05 * 3 > 0.15
    assert AUC_THRESHOLDS[3] > 0.15 and AUC_THRESHOLDS[10] == 0.5 and len(AUC_THRESHOLDS) == 21
    metrics = pytest.importorskip("sklearn.metrics")
    c = np.random.default_rng(1).random(50)
    ys = [np.sum(c >= 0.05 * i) / len(c) for i in range(21)]
    assert auc_ciou(c) == pytest.approx(metrics.auc([0.05 * i for i in range(21)], ys))
    assert math.isnan(auc_ciou([])) and math.isnan(ciou_at([]))


def test_summary_ignores_clips_without_boxes():
    s = localization_summary([0.6, float("nan"), 0.2], prefix="center/")
    assert s["center/ciou@0.5"] == pytest.approx(0.5)
    assert s["center/ciou_mean"] == pytest.approx(0.4)
    assert set(s) == {"center/ciou@0.5", "center/auc_ciou", "center/ciou_mean"}


def test_center_prior_switches_on_the_central_half():
    prior = center_prior_map(224)
    on = binarize(normalize_map(torch.from_numpy(prior)))
    assert abs(on.float().mean().item() - 0.5) < 0.01
    assert on[112, 112] and not on[0, 0] and torch.equal(on, on.flip(0)) and torch.equal(on, on.T)
    centred = [0.3, 0.3, 0.7, 0.7]
    corner = [0.0, 0.0, 0.2, 0.2]
    c = localization_cious(torch.from_numpy(prior).expand(2, 224, 224), [[centred], [corner]])
    assert c[0] == pytest.approx(0.32, abs=0.01)  # box inside the disc: area(box) / area(on) = 0.16 / 0.5
    assert c[1] < 0.05
