"""The run report (avcorr.report): built from a run folder, checked in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from avcorr.report import baseline_rows, build_report, main
from tests.browser import open_page, screenshot


def _run_folder(root: Path) -> Path:
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"name": "avenet", "task": "avc", "model": {"name": "avenet"},
                                                 "data": {"root": "/data/<odd & name>"}}))
    rows = []
    for epoch in (1, 2, 3):
        rows.append({"epoch": epoch, "step": 10 * epoch, "split": "train", "loss": 1.0 / epoch,
                     "avc_acc": 0.5 + 0.1 * epoch, "samples_per_s": 100.0 + epoch, "skipped_clips": 1})
        rows.append({"epoch": epoch, "step": 10 * epoch, "split": "val", "avc_acc": 0.5 + 0.05 * epoch,
                     "baseline/avc_acc": 0.5, "ceiling/avc_acc": 0.9, "num_pairs": 240, "at_chance": epoch == 1})
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, '{"epoch": 2, "split": "val", "avc')  # a line cut by a kill mid-write
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "checkpoints" / "eval_test.json").write_text(json.dumps({
        "split": "test", "epoch": 3, "checkpoint": str(run / "checkpoints" / "best.pt"), "avc_acc": 0.8125,
        "baseline/avc_acc": 0.5, "ceiling/avc_acc": 0.91, "a2v/ndcg@10": 0.2, "baseline/a2v/ndcg@10": 0.25,
        "loss": 0.47, "skipped_clips": 2, "warnings": ["test a2v/ndcg@10 0.200 is below chance <0.250>"]}))
    (run / "checkpoints" / "eval_test_skipped.csv").write_text("id,path,reason\na,a.mp4,bad\nb,b.mp4,bad\n")
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[:, :30] = (0, 0, 255)
    cv2.imwrite(str(run / "ap_by_class.png"), picture)
    (run / "train.log").write_text("2026 INFO x: fine\n2026 WARNING x: val avc_acc 0.55 is at chance\n")
    return run


def test_report_content(tmp_path):
    run = _run_folder(tmp_path)
    path = build_report(run)
    assert path == run / "report.html"
    text = path.read_text()
    assert "&lt;odd &amp; name&gt;" in text and "<odd & name>" not in text  # values are escaped
    assert "below chance &lt;0.250&gt;" in text and "is at chance" in text  # eval and log warnings
    assert "0.8125" in text and "+0.3125" in text and "-0.0500" in text  # model, difference to chance
    assert 'aria-label="avc_acc"' in text and 'aria-label="loss"' in text  # curves
    for counter in ("num_pairs", "samples_per_s", "skipped_clips"):
        assert f'aria-label="{counter}"' not in text and f"<td>{counter}</td>" in text  # numbers, not curves
    assert "eval_test_skipped.csv" in text and 'src="ap_by_class.png"' in text
    assert "<script" not in text and "http" not in text  # nothing to fetch
    assert baseline_rows({"avc_acc": 0.8, "baseline/avc_acc": 0.5, "loss": 1.0, "x": True}) == \
        [("avc_acc", 0.8, 0.5, "chance", None)]


def test_report_in_headless_chromium(tmp_path):
    run = _run_folder(tmp_path)
    path = build_report(run)
    seen = open_page(path)
    assert seen.console_errors == []
    assert seen.title.startswith("avcorr run") and seen.images == 1 and seen.broken == [] and seen.text > 500
    shot = cv2.imread(str(screenshot(path, tmp_path / "shot.png")))
    assert shot is not None and shot.shape[0] > 500
    assert shot.std() > 20  # not blank: header, tables, charts
    assert (shot[:40].mean(axis=(0, 1)) < 120).all()  # the dark header is drawn


def test_browser_check_catches_broken_pages(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><img src="missing.png">'
                   "<script>notDefined()</script></body></html>")
    seen = open_page(bad)
    assert seen.broken == ["missing.png"] and any("notDefined" in e for e in seen.console_errors)


def test_cli_and_not_a_run(tmp_path, capsys):
    run = _run_folder(tmp_path)
    out = tmp_path / "elsewhere" / "r.html"
    assert main([str(run), "--out", str(out)]) == 0 and out.is_file()
    assert 'src="../run/ap_by_class.png"' in out.read_text()  # links stay relative to where the page is
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "elsewhere")])
    assert e.value.code == 2 and "not a run folder" in capsys.readouterr().err
