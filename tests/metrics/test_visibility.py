"""Failure made visible: baselines beside every main metric, at-chance warnings, trivial separation masks."""

import itertools
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avcorr import evaluate, train
from avcorr.config import load_config
from avcorr.engine.trainer import TrainState, summary
from avcorr.metrics.chance import (
    binomial_margin,
    chance_map,
    db_test,
    majority_rate,
    proportion_test,
    random_ranking_ap,
)
from avcorr.metrics.separation import mask_statistics, separation_warnings
from avcorr.metrics.tagging import mean_average_precision
from avcorr.models import create_model
from avcorr.models.sop_audio import SpectrogramSettings
from avcorr.tasks import AVCTask, LocalizationTask, SeparationTask, TaggingTask
from avcorr.tasks.avc import AVCEvaluator
from avcorr.tasks.localization import LocalizationEvaluator
from avcorr.tasks.separation import SeparationEvaluator, SeparationModule
from avcorr.tasks.tagging import TaggingEvaluator
from tests.conftest import TINY_AVC

# -- chance levels and the significance rule ----------------------------------------------------


def test_random_ranking_ap_is_the_mean_over_every_ranking():
    n = 6
    for r in range(1, n + 1):
        y = np.zeros((n, 1), bool)
        y[:r] = True
        aps = [mean_average_precision(-np.array(perm, dtype=float)[:, None], y)
               for perm in itertools.permutations(range(n))]
        assert random_ranking_ap([r], n)[0] == pytest.approx(np.mean(aps), abs=1e-12), r
    assert np.isnan(random_ranking_ap([0], n)[0])
    # never below the prevalence that a constant score gets
    y = np.zeros((100, 2), bool)
    y[:2, 0] = y[:50, 1] = True
    assert chance_map(y) > y.mean(0).mean()
    assert random_ranking_ap([2], 100)[0] == pytest.approx(0.0615, abs=1e-4)


def test_majority_rate_single_and_multi_label():
    assert majority_rate(np.array([0, 0, 0, 1, 2, 0])) == pytest.approx(4 / 6)
    assert majority_rate(np.array([1, 1, 0, 0])) == 0.5
    multi = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert majority_rate(multi) == 0.75  # always answering class 1 is right for three clips of four


def test_binomial_rule_in_words():
    t = proportion_test("avc_acc", 0.503, 0.5, 320, count_unit="pairs")
    assert t.at_chance and t.describe() == "val avc_acc 0.503 is at chance (0.500 +- 0.056 for 320 pairs)"
    assert not proportion_test("avc_acc", 0.6, 0.5, 320).at_chance
    assert "above chance" in proportion_test("avc_acc", 0.6, 0.5, 320).describe("test")
    low = proportion_test("acc", 0.2, 0.5, 320)
    assert low.at_chance and low.below and "below chance" in low.describe()
    prior = proportion_test("auc_ciou", 0.31, 0.30, 20, baseline_name="the centre prior", count_unit="boxed clips")
    assert prior.at_chance and "no better than the centre prior" in prior.describe()
    # a baseline of 0 still needs more than one lucky item out of 20
    assert proportion_test("ciou@0.5", 1 / 20, 0.0, 20).at_chance
    assert not proportion_test("ciou@0.5", 4 / 20, 0.0, 20).at_chance
    # guessing at random over 320 pairs is called above chance about as often as z = 2 says (~2 %)
    rng = np.random.default_rng(0)
    guesses = rng.binomial(320, 0.5, size=4000) / 320
    assert np.mean(guesses > 0.5 + binomial_margin(0.5, 320)) < 0.05
    assert db_test("nsdr", 0.3).at_chance and not db_test("nsdr", 0.8).at_chance
    assert "worse than the mixture itself" in db_test("nsdr", -1.8).describe()


# -- each evaluator puts its baseline beside its main metric -------------------------------------


def test_avc_evaluator_baseline_from_label_balance():
    ev = AVCEvaluator()
    labels = torch.tensor([1, 1, 1, 0])
    ev.update({"label": labels}, {"logits": torch.tensor([[0.0, 1.0]] * 4), "loss": torch.tensor(0.7)})
    m = ev.compute()
    assert m["baseline/avc_acc"] == 0.75 and m["avc_acc"] == 0.75 and m["num_pairs"] == 4
    test = AVCTask(load_config("avenet.py")).chance_test(m)
    assert test.at_chance and test.count == 4 and "for 4 pairs" in test.describe()


def test_tagging_evaluator_constant_predictor_sits_at_the_baseline():
    labels = torch.tensor([0, 0, 0, 1, 2, 0, 0, 1])
    target = torch.nn.functional.one_hot(labels, 3).float()
    ev = TaggingEvaluator(["a", "b", "c"], multilabel=False)
    ev.update({"target": target}, {"logits": torch.zeros(8, 3), "loss": torch.tensor(1.0)})
    m = ev.compute()
    assert m["baseline/acc"] == 5 / 8 == m["acc"]  # always the first (and most frequent) class
    assert m["baseline/mAP"] == pytest.approx(np.mean(random_ranking_ap([5, 2, 1], 8)))
    task = TaggingTask(load_config("panns_folder.py", ["tagging.classes=['a', 'b', 'c']", "tagging.label_mode='single'"]))
    assert task.chance_test(m).at_chance
    assert not task.chance_test({**m, "acc": 1.0}).at_chance


def test_localization_is_checked_against_the_centre_prior(tiny_root):
    size = 32
    boxes = [[[0.0, 0.0, 0.3, 0.3]]] * 8  # objects in the corner, away from the centre
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    on_box = torch.from_numpy(((yy < 0.3 * size) & (xx < 0.3 * size)).astype(np.float32))
    task = LocalizationTask(load_config("avolnet.py", [f"data.root={tiny_root}"]))
    assert task.main_metric == "fixed/auc_ciou" and task.baseline_key("fixed/auc_ciou") == "center/fixed/auc_ciou"
    results = {}
    for name, heat in (("model", on_box), ("prior", torch.from_numpy(LocalizationEvaluator().prior.numpy()))):
        ev = LocalizationEvaluator()
        ev.update({"vid": [str(i) for i in range(8)], "boxes": boxes},
                  {"loss": torch.tensor(0.5), "map": heat.expand(8, -1, -1),
                   "pos_logit": torch.ones(8), "neg_logit": -torch.ones(6)})
        results[name] = ev.compute()
    good, prior = results["model"], results["prior"]
    assert good["baseline/avc_acc"] == 8 / 14 and good["num_boxed"] == 8
    assert good["auc_ciou"] > good["center/auc_ciou"]
    assert not task.chance_test(good).at_chance
    assert prior["auc_ciou"] == pytest.approx(prior["center/auc_ciou"])  # the prior itself as the model
    test = task.chance_test(prior)
    assert test.at_chance and "no better than the centre prior" in test.describe()


# -- Sound of Pixels: trivial masks and sources worse than the mixture ----------------------------

SETTINGS = SpectrogramSettings(n_fft=254, hop_length=128, warp_bins=32)


@pytest.fixture(scope="module")
def two_tones():
    t = torch.arange(8000) / 8000
    audios = torch.stack([torch.stack([0.3 * torch.sin(2 * np.pi * 300 * t), 0.3 * torch.sin(2 * np.pi * f * t)])
                          for f in (1800, 2500)])  # (B=2, N=2, L)
    module = SeparationModule(create_model("test_sop"), SETTINGS, "binary")
    tg = module.targets(audios)
    return {"audios": audios}, tg


def _evaluate_masks(batch, tg, masks):
    ev = SeparationEvaluator(SETTINGS)
    ev.update(batch, {"loss": torch.tensor(0.1), "mix_spec": tg["mix_spec"], "masks": masks})
    return ev.compute()


def test_mask_statistics_values():
    masks = torch.zeros(1, 2, 2, 2)
    masks[0, 0] = 1.0
    masks[0, 1, 0] = 1.0
    stats = mask_statistics(masks)
    assert stats["mean"][0] == 0.75 and stats["on_fraction"][0] == 0.75 and stats["difference"][0] == 0.5
    assert np.isnan(mask_statistics(masks[:, :1])["difference"][0])  # one source: nothing to compare


@pytest.mark.parametrize("kind, words", [("ones", "all-pass"), ("zeros", "all-off"), ("same", "nearly identical")])
def test_trivial_masks_warn(two_tones, caplog, kind, words):
    batch, tg = two_tones
    gt = tg["gt"]
    masks = {"ones": torch.ones_like(gt), "zeros": torch.zeros_like(gt),
             "same": gt[:, :1].expand_as(gt).contiguous()}[kind]
    with caplog.at_level(logging.WARNING, logger="avcorr.tasks.separation"):
        m = _evaluate_masks(batch, tg, masks)
    assert any(words in r.getMessage() for r in caplog.records)
    assert {"mask_mean", "mask_on_fraction", "mask_difference", "baseline/nsdr"} <= set(m)
    assert any(words in w for w in SeparationTask(load_config("sop.py")).warnings(m))
    if kind != "same":
        assert m["mask_on_fraction"] == float(kind == "ones") and m["mask_difference"] == 0.0
        test = SeparationTask(load_config("sop.py")).chance_test(m)
        assert abs(m["nsdr"]) < 1e-3 and test.at_chance and "no better than the mixture itself" in test.describe()


def test_oracle_masks_are_not_trivial_and_swapped_ones_are_worse_than_the_mixture(two_tones, caplog):
    batch, tg = two_tones
    with caplog.at_level(logging.WARNING, logger="avcorr.tasks.separation"):
        oracle = _evaluate_masks(batch, tg, tg["gt"])
    assert not caplog.records and separation_warnings(oracle) == []
    assert 0.05 < oracle["mask_on_fraction"] < 0.95 and oracle["mask_difference"] > 0.05
    assert not SeparationTask(load_config("sop.py")).chance_test(oracle).at_chance
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avcorr.tasks.separation"):
        swapped = _evaluate_masks(batch, tg, tg["gt"][:, [1, 0]])
    assert swapped["nsdr"] < 0
    assert any("worse than the mixture itself" in r.getMessage() for r in caplog.records)


def test_evaluation_table_puts_each_baseline_beside_its_metric():
    result = {"split": "test", "avc_acc": 0.61, "baseline/avc_acc": 0.5, "num_pairs": 320, "auc_ciou": 0.4,
              "center/auc_ciou": 0.3, "center/ciou_mean": 0.2, "nsdr": -1.8, "baseline/nsdr": 0.0,
              "a2v/class_recall@10": 0.9, "baseline/a2v/class_recall@10": 0.8, "at_chance": False}
    lines = evaluate.baseline_table(result)
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"avc_acc", "auc_ciou", "nsdr", "a2v/class_recall@10"}  # ciou_mean: no model value
    assert rows["avc_acc"][1:] == ["0.6100", "0.5000", "+0.1100", "chance"]
    assert rows["auc_ciou"][3:] == ["+0.1000", "centre", "prior"]
    assert rows["nsdr"][2:] == ["0.0000", "-1.8000", "the", "mixture"]
    assert evaluate.baseline_table({"loss": 0.3}) == []


# -- the trainer's summary and an end-to-end run that cannot learn --------------------------------


def _fake_trainer(at_chance, last_val, config="avenet.py", task=AVCTask):
    cfg = load_config(config)
    state = TrainState(epoch=len(at_chance), step=10, best=0.5, best_epoch=1, last_val=last_val, at_chance=at_chance)
    return SimpleNamespace(state=state, cfg=cfg, task=task(cfg), out_dir=Path("run"), ckpt_dir=Path("run/ckpt"),
                           device="cpu", world_size=1, skips=[], elapsed=1.0)


def test_summary_states_the_epochs_at_chance():
    last = {"avc_acc": 0.8, "baseline/avc_acc": 0.5, "num_pairs": 320}
    text = summary(_fake_trainer({1: True, 2: True, 3: False}, last))
    assert "at chance      epochs 1, 2 (2 of 3 validations)" in text
    assert "last val avc_acc 0.800 is above chance (0.500 +- 0.056 for 320 pairs)" in text
    text = summary(_fake_trainer({1: False}, last))
    assert "at chance      none" in text
    flat = {**last, "avc_acc": 0.5}
    assert "never above chance: this run did not learn" in summary(_fake_trainer({1: True, 2: True}, flat))
    # a main metric without a baseline (localization without boxes selects on loss): no line
    assert "at chance" not in summary(_fake_trainer({}, {"loss": 0.7}))


def test_summary_repeats_the_separation_warnings():
    last = {"nsdr": -1.8, "baseline/nsdr": 0.0, "mask_on_fraction": 0.99, "mask_difference": 0.01,
            "num_mixtures": 6}
    text = summary(_fake_trainer({1: True}, last, "sop.py", SeparationTask))
    assert "never above chance: this run did not learn" in text
    assert "last val nsdr -1.80 dB is worse than the mixture itself" in text
    assert "WARNING        the masks are all-pass" in text
    assert "WARNING        nsdr -1.80 dB is below 0: the separated sources are worse than the mixture itself" in text


def test_a_run_that_cannot_learn_says_so(tiny_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--config", "avenet.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}", *TINY_AVC,
            "optim.lr=0.0", "optim.schedule=constant"]
    assert train.main(args) == 0
    val = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    assert [r["at_chance"] for r in val] == [True, True]
    assert all(r["baseline/avc_acc"] == pytest.approx(0.5, abs=0.2) for r in val)
    log = (run / "train.log").read_text()
    assert "WARNING" in log and ("val avc_acc 0.500 is at chance" in log or "is below chance" in log)
    assert "after epoch 1 of 2: the model has not learned yet" in log
    assert "after epoch 2 of 2: the run ends without having learned" in log
    assert "never above chance: this run did not learn" in log

    capsys.readouterr()
    ckpt = run / "checkpoints" / "best.pt"
    assert evaluate.main(["--checkpoint", str(ckpt), "--split", "test", "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    res = json.loads((ckpt.parent / "eval_test.json").read_text())
    assert res["at_chance"] is True and res["warnings"] and "test avc_acc" in res["warnings"][0]
    row = next(line for line in out.splitlines() if line.startswith("avc_acc ") and "chance" in line)
    assert f"{res['baseline/avc_acc']:.4f}" in row
    assert "WARNING: test avc_acc" in out
