"""The run report (avcorr.report): built from a run folder, checked in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from avcorr.report import baseline_rows, build_report, main
from avcorr.report._gallery import PAGE_SIZE, GalleryOptions, paged, pages, sample_indices
from tests.browser import open_page, screenshot
from tests.conftest import TINY_AVC
from tests.media import make_wav


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


# -- galleries: the run's checkpoint on a sample of a split ------------------------------------------------------

TINY_LOC = [o for o in TINY_AVC if not o.startswith(("model.name=", "model.width=", "model.embed_dim="))] + [
    "model.name=test_avolnet", "model.width=null", "model.embed_dim=null", "localization.train_pairs_per_clip=2"]
TINY_SOP = ["model.name=test_sop", "data.image_size=32", "data.audio.sample_rate=8000", "data.audio.seconds=1.0",
            "data.audio.n_fft=254", "data.audio.win_length=254", "data.audio.hop_length=128", "separation.warp_bins=32",
            "separation.frames_per_clip=2", "separation.frame_stride=0.5", "data.num_workers=0"]
TINY_PANNS = ["model.name=test_panns", "model.width=None", 'model.kwargs={"clip_seconds": 1.0}', "data.num_workers=0"]


def _untrained_run(folder: Path, config: str, overrides: list[str]) -> Path:
    """A run folder holding the checkpoint of an untrained model (what training writes, minus the training)."""
    from avcorr.config import config_to_dict, load_config, save_config
    from avcorr.engine.checkpoint import save_checkpoint
    from avcorr.tasks import build_task

    cfg = load_config(config, [*overrides, f"train.out_dir={folder}"])
    task = build_task(cfg)  # the task resolves what it reads from the data (tagging's classes)
    model = task.build_model()
    (folder / "checkpoints").mkdir(parents=True)
    save_config(cfg, folder / "config.json")
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "resolved": task.resolved,
                     "epoch": 1}, folder / "checkpoints" / "best.pt")
    return folder


@pytest.fixture(scope="module")
def sounds_root(tmp_path_factory) -> Path:
    """A folder-per-class tagging dataset; one validation clip lasts 5 s (it gets a timeline)."""
    root = tmp_path_factory.mktemp("sounds")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for split in ("train", "val"):
        for k, kind in enumerate(("hum", "hiss")):
            (root / split / kind).mkdir(parents=True)
            for i in range(2):
                seconds = 5 if (split, k, i) == ("val", 0, 0) else 1
                x = np.tile(np.sin(2 * np.pi * 440 * t), seconds) if kind == "hum" else rng.uniform(-1, 1, 16000 * seconds)
                make_wav(root / split / kind / f"{kind}{i}.wav", (0.3 * x).astype(np.float32), 16000)
    return root


FAMILIES = {"avc": ("avenet.py", TINY_AVC), "localization": ("avolnet.py", TINY_LOC), "separation": ("sop.py", TINY_SOP),
            "tagging": ("panns_folder.py", TINY_PANNS)}


@pytest.mark.parametrize("task", list(FAMILIES))
def test_gallery_in_headless_chromium(task, tiny_root, sounds_root, tmp_path):
    config, overrides = FAMILIES[task]
    root = sounds_root if task == "tagging" else tiny_root
    run = _untrained_run(tmp_path / "run", config, [*overrides, f"data.root={root}"])
    path = build_report(run, gallery=GalleryOptions(n=2, device="cpu"))
    text = path.read_text()
    assert 'id="gallery"' in text and "No gallery" not in text, text[text.find("gallery"):][:600]
    assert {"avc": "audio -&gt; video", "localization": "cIoU", "separation": "separated:",
            "tagging": "timeline of hum/hum0.wav"}[task] in text
    folders = list((run / "report_files").glob("*/g-*"))
    assert len(folders) == 1 and (folders[0] / "gallery.json").is_file()
    moved = tmp_path / "elsewhere" / "copied"  # the links are relative: the page works where the run folder goes
    shutil.copytree(run, moved)
    seen = open_page(moved / "report.html")
    assert seen.console_errors == [] and seen.broken == [] and seen.images >= 3
    assert seen.audio and all(a["ok"] and a["duration"] > 0 for a in seen.audio), seen.audio
    assert all(a["src"].startswith((moved / "report_files").as_uri()) for a in seen.audio)
    if task == "avc":  # 2 queries x 2 directions x (query + top 5 of 6): every clip with frame, spectrogram, player
        assert len(seen.audio) == 2 * 2 * (1 + 5) and text.count("<audio controls preload=\"none\"") == 24
        shot = cv2.imread(str(screenshot(moved / "report.html", tmp_path / "shot.png", size=(1280, 1400))))
        assert shot.std() > 20 and (shot[600:1400].std(axis=(0, 1)) > 10).all()  # the gallery is drawn


def test_sample_and_pages():
    a = sample_indices(1000, 24, seed=3)
    assert a == sample_indices(1000, 24, seed=3) and a == sorted(set(a)) and len(a) == 24
    assert a != sample_indices(1000, 24, seed=4) and all(0 <= i < 1000 for i in a)
    assert sample_indices(5, 24, 0) == [0, 1, 2, 3, 4] and sample_indices(5, 0, 0) == [] == sample_indices(0, 3, 0)
    assert [len(p) for p in pages(list(range(50)), PAGE_SIZE)] == [24, 24, 2]
    html = paged([f"<i>{i}</i>" for i in range(50)], "clips")
    assert html.count("<details") == 3 and html.count("<details open>") == 1 and "clips 49-50 of 50" in html


def test_gallery_is_reused_rebuilt_and_explains_failures(tiny_root, tmp_path, monkeypatch, capsys):
    from avcorr.report import _tasks

    run = _untrained_run(tmp_path / "run", "avenet.py", [*TINY_AVC, f"data.root={tiny_root}"])
    opts = GalleryOptions(n=1, device="cpu", pool=3)
    build_report(run, gallery=opts)
    (folder,) = list((run / "report_files" / "test").iterdir())
    first = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    calls = []
    real = _tasks.COMPUTE["avc"]
    monkeypatch.setitem(_tasks.COMPUTE, "avc", lambda *a: calls.append(1) or real(*a))
    build_report(run, gallery=opts)  # same checkpoint, data and sample: nothing is computed
    assert calls == [] and {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == first
    build_report(run, gallery=GalleryOptions(n=1, device="cpu", pool=3, seed=1))  # another sample: a new folder
    (new,) = list((run / "report_files" / "test").iterdir())
    assert calls == [1] and new != folder and new.name.startswith("g-")  # the old one is gone with its page
    assert not list((run / "report_files" / "test").glob(".*"))  # no temporary left
    # a failing gallery leaves no folder and the page says why
    monkeypatch.setitem(_tasks.COMPUTE, "avc", lambda *a: 1 / 0)
    text = build_report(run, gallery=GalleryOptions(n=2, device="cpu")).read_text()
    assert "No gallery: ZeroDivisionError" in text and 'id="config"' in text
    assert not (run / "report_files" / "test").exists()  # nothing half-written; the unlinked folder removed
    # no checkpoint, then no data: the page stands and says so
    (run / "checkpoints" / "best.pt").rename(run / "checkpoints" / "other.pt")
    assert "No gallery: no checkpoint in" in build_report(run).read_text()
    # --no-gallery loads no model and writes no assets
    shutil.rmtree(run / "report_files", ignore_errors=True)
    assert main([str(run), "--no-gallery"]) == 0
    assert not (run / "report_files").exists() and 'id="gallery"' not in (run / "report.html").read_text()


def test_gallery_without_its_data(tiny_copy, tmp_path):
    run = _untrained_run(tmp_path / "run", "avenet.py", [*TINY_AVC, f"data.root={tiny_copy}"])
    shutil.rmtree(tiny_copy)
    text = build_report(run, gallery=GalleryOptions(n=2, device="cpu")).read_text()
    assert "No gallery:" in text and str(tiny_copy) in text and 'id="config"' in text


@pytest.mark.parametrize("visual_pool", ["cells", "max"])
def test_retrieval_gallery_scores_as_evaluate_does(visual_pool, tiny_root, tmp_path):
    """A cells model's gallery ranks by the best cell (as evaluate --retrieval), a pooled model's by pooled vectors."""
    from avcorr.inference.retrieval import embed_split, load_embedding_model
    from avcorr.metrics.multivector import max_sim_scores

    run = _untrained_run(tmp_path / "run", "avenet.py", [*TINY_AVC, f"data.root={tiny_root}",
                                                         f"model.kwargs={{'visual_pool': '{visual_pool}'}}"])
    text = build_report(run, gallery=GalleryOptions(n=2, device="cpu")).read_text()
    (folder,) = list((run / "report_files" / "test").glob("g-*"))
    data = json.loads((folder / "gallery.json").read_text())
    scoring = "best_cell" if visual_pool == "cells" else "pooled"
    assert data["scoring"] == scoring and f"(scoring: {scoring})" in text
    assert ("best-cell scoring" in text) == (visual_pool == "cells")
    # the reference: every clip of the split (the tiny split is smaller than the searched pool), brute force
    emb = embed_split(load_embedding_model(run / "checkpoints" / "best.pt", "cpu"), tiny_root, "test",
                      cells=visual_pool == "cells")
    assert data["searched"] == len(emb.items)
    ids = emb.ids
    visual = emb.visual_cells if visual_pool == "cells" else emb.visual
    for d, (queries, gallery) in zip(data["directions"], ((emb.audio, visual), (visual, emb.audio))):
        for q in d["queries"]:
            ref = max_sim_scores(queries[[ids.index(q["id"])]], gallery, "mean")[0]
            order = np.argsort(-ref, kind="stable")[:5]
            assert [h["id"] for h in q["hits"]] == [ids[j] for j in order], d["title"]
            np.testing.assert_allclose([h["score"] for h in q["hits"]], ref[order], atol=1e-5)
