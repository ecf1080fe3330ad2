"""End-to-end tagging: main([...]) fits a tiny folder dataset of generated sounds, then recognize() tags a file."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from avcorr import evaluate, train
from avcorr.engine.checkpoint import load_checkpoint
from tests.media import make_wav

SR = 16000


def _sound(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """'tone': a steady sine; 'chirp': fast up-sweeps; 'noise': white noise (random pitch / level)."""
    t = np.arange(int(seconds * sr)) / sr
    amp = rng.uniform(0.2, 0.5)
    if kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(500, 2000) * t)
    elif kind == "chirp":
        period = rng.uniform(0.08, 0.12)
        f = 300 + 3000 * ((t + rng.uniform(0, period)) % period) / period
        x = np.sin(2 * np.pi * np.cumsum(f) / sr)
    else:
        x = rng.uniform(-1, 1, t.size)
    return (amp * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def _make_folder_dataset(root, per_class=(6, 3), seed=0):
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "val"), per_class):
        for kind in ("chirp", "noise", "tone"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                make_wav(root / split / kind / f"{kind}{i}.wav", _sound(kind, 1.0, SR, rng), SR)
    return root


@pytest.fixture(scope="module")
def sounds_root(tmp_path_factory):
    return _make_folder_dataset(tmp_path_factory.mktemp("tagging") / "sounds")


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


PANNS_TINY = ["model.name=test_panns", "model.width=None", 'model.kwargs={"clip_seconds": 1.0}',
              "train.batch_size=6", "train.eval_batch_size=9", "data.num_workers=0", "optim.warmup_steps=0",
              "optim.lr=0.003", "optim.schedule=constant", "train.epochs=8", "train.eval_every=4",
              "train.report_gallery=0"]


def test_fit_folder_then_recognize(sounds_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--config", "panns_folder.py", "--no-progress", f"data.root={sounds_root}",
                       f"train.out_dir={run}", *PANNS_TINY]) == 0
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [4, 8]
    for key in ("acc", "mAP", "AUC", "d_prime", "d_prime_hear", "loss", "num_clips"):
        assert key in val[-1]
    assert val[-1]["num_clips"] == 9
    assert max(r["acc"] for r in val) >= 0.8
    assert (run / "ap_per_class_val.png").read_bytes()[:4] == b"\x89PNG"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Images("val/ap_per_class")] == [r["step"] for r in val]  # the chart in TensorBoard
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["resolved"]["classes"] == ["chirp", "noise", "tone"]
    assert ckpt["resolved"]["label_mode"] == "single" and ckpt["config"]["task"] == "tagging"
    assert ckpt["best"] == max(r["acc"] for r in val)  # single-label: best.pt selected on acc

    import avcorr
    from avcorr.inference.tagging import load_tagger

    best = run / "checkpoints" / "best.pt"
    tagger = load_tagger(best, "cpu")
    # What recognize() adds around the model (resampling, stereo mixdown, sliding windows, padding) is
    # checked against the model applied by hand to the same signal: the fitted weights can be anything.
    import torchaudio

    from avcorr.inference.tagging import window_starts

    rate, clip = tagger.sample_rate, tagger.clip_samples
    rng = np.random.default_rng(5)
    t44 = np.arange(int(2.7 * 44100)) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t44) + 0.01 * rng.standard_normal(t44.size)).astype(np.float32)
    make_wav(tmp_path / "long_tone.wav", np.stack([tone, tone], axis=1), 44100)  # stereo, another rate

    def by_hand(x: np.ndarray, sr: int) -> torch.Tensor:
        wave = torchaudio.functional.resample(torch.from_numpy(x), sr, rate)
        wave = torch.nn.functional.pad(wave, (0, max(0, clip - wave.numel())))
        windows = torch.stack([wave[s : s + clip] for s in window_starts(wave.numel(), clip, clip // 2)])
        with torch.no_grad():
            return tagger.model(windows)["logits"].softmax(-1).mean(0)

    classes = ckpt["resolved"]["classes"]
    direct = by_hand(tone, 44100)
    top = avcorr.recognize(tmp_path / "long_tone.wav", best, top_k=3)
    assert len(top) == 3 and sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)  # softmax over the 3 classes
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    for label, prob in top:
        assert prob == pytest.approx(float(direct[classes.index(label)]), abs=0.02)
    noise = rng.uniform(-0.3, 0.3, int(0.6 * 22050)).astype(np.float32)
    make_wav(tmp_path / "short_noise.wav", noise, 22050)  # shorter than the window: zero-padded at the end
    direct = by_hand(noise, 22050)
    (label, prob), = avcorr.recognize(tmp_path / "short_noise.wav", best, top_k=1)
    assert label == classes[int(direct.argmax())] and prob == pytest.approx(float(direct.max()), abs=0.02)
    mx = avcorr.recognize(tmp_path / "long_tone.wav", tagger, top_k=3, pool="max", hop_seconds=0.25)
    assert sum(p for _, p in mx) >= 1.0 - 1e-6  # max-pooled probabilities
    assert all(p >= dict(top)[lab] - 0.02 for lab, p in mx)  # the max over windows is at least their mean
    # the CLI
    from avcorr.recognize_cli import main as recognize_main

    capsys.readouterr()
    assert recognize_main([str(tmp_path / "long_tone.wav"), "--checkpoint", str(best), "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert [x["label"] for x in out["labels"]] == [lab for lab, _ in top[:2]] and len(out["labels"]) == 2
    assert recognize_main([str(tmp_path / "missing.wav"), "--checkpoint", str(best)]) == 1
    # evaluate needs only the checkpoint
    assert evaluate.main(["--checkpoint", str(best), "--split", "val", "--workers", "0", "--no-progress"]) == 0
    res = json.loads((run / "checkpoints" / "eval_val.json").read_text())
    assert res["num_clips"] == 9 and 0 <= res["acc"] <= 1
    assert (run / "checkpoints" / "ap_per_class_val.png").read_bytes()[:4] == b"\x89PNG"  # beside the checkpoint
    assert evaluate.main(["--checkpoint", str(best), "--split", "val", "--workers", "0", "--no-progress",
                          "--out", str(tmp_path / "ev")]) == 0
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["ap_per_class_val.png", "eval_val.json",
                                                                   "eval_val_skipped.csv"]


def test_the_evaluator_returns_values_and_the_task_draws_the_chart(tmp_path, monkeypatch):
    """compute() writes nothing; write_pictures names the chart after the split it is given."""
    from avcorr.config import Config
    from avcorr.tasks.tagging import TaggingEvaluator, TaggingTask

    monkeypatch.chdir(tmp_path)
    ev = TaggingEvaluator(["a", "b", "c"], multilabel=False)
    target = torch.eye(3)[[0, 1, 2, 0]]
    ev.update({"target": target}, {"logits": 4 * target + 0.1 * torch.arange(3.0), "loss": torch.tensor(0.5)})
    assert ev.compute()["acc"] == 1.0
    assert list(tmp_path.iterdir()) == []
    pictures = ev.pictures()
    assert pictures["counts"].tolist() == [2, 1, 1] and pictures["ap_per_class"].tolist() == [1.0, 1.0, 1.0]
    assert pictures["classes"] == ["a", "b", "c"]
    cfg = Config(task="tagging")
    cfg.tagging.format, cfg.tagging.classes, cfg.tagging.label_mode = "folder", ["a", "b", "c"], "single"
    task = TaggingTask(cfg)
    out = tmp_path / "out"
    assert task.write_pictures(pictures, out, "lists/my val.json") == [out / "ap_per_class_my_val.png"]
    assert (out / "ap_per_class_my_val.png").read_bytes()[:4] == b"\x89PNG"
    assert task.write_pictures(TaggingEvaluator(["a"], multilabel=True).pictures(), out, "test") == []
    assert task.train_metrics({"label": torch.tensor([0, 2])}, {"loss": torch.tensor(1.0),
                                                                "logits": torch.eye(3)[[0, 1]]}) == {"acc": (1, 2)}
    assert task.train_metrics({"label": torch.tensor([0, 2])}, {"loss": torch.tensor(1.0)}) == {}  # mixup: no logits


def test_ast_mixup_balanced_multilabel(sounds_root, tmp_path):
    root = tmp_path / "multi"
    shutil.copytree(sounds_root, root)
    # one clip in two class folders: two labels, so label_mode 'auto' becomes 'multi'
    shutil.copyfile(root / "train" / "tone" / "tone0.wav", root / "train" / "chirp" / "tone0_also_chirp.wav")
    run = tmp_path / "run"
    assert train.main(["--config", "ast_folder.py", "--no-progress", f"data.root={root}", f"train.out_dir={run}",
                       "model.name=test_ast", "model.kwargs={}", "train.batch_size=6", "train.eval_batch_size=9",
                       "data.num_workers=0", "optim.warmup_steps=0", "train.epochs=2", "tagging.mixup_alpha=1.0",
                       "tagging.sampler=balanced"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["resolved"]["label_mode"] == "multi"
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert ckpt["best"] == max(r["mAP"] for r in val)  # multi-label: best.pt selected on mAP
    train_rows = [r for r in _rows(run) if r["split"] == "train"]
    assert all(math.isfinite(r["loss"]) for r in train_rows) and "acc" not in train_rows[0]  # mixed rows: no acc

    from avcorr.inference.tagging import recognize

    make_wav(tmp_path / "t.wav", _sound("tone", 0.5, SR, np.random.default_rng(5)), SR)
    top = recognize(tmp_path / "t.wav", run / "checkpoints" / "best.pt", top_k=5)
    assert len(top) == 3 and all(0.0 <= p <= 1.0 for _, p in top)  # sigmoid outputs, top_k capped at C


def test_bad_settings_and_non_tagging_checkpoint(sounds_root, tmp_path):
    from avcorr.config import load_config

    with pytest.raises(ValueError, match="tagging.sampler"):  # checked when the config is loaded
        load_config("ast_folder.py", [f"data.root={sounds_root}", "tagging.sampler=nope"])
    ckpt = tmp_path / "avc.pt"
    torch.save({"model": {}, "config": {"task": "avc"}}, ckpt)
    from avcorr.inference.tagging import load_tagger

    with pytest.raises(ValueError, match="not a tagging one"):
        load_tagger(ckpt)


def test_shipped_tagging_configs_load():
    from avcorr.config import load_config
    from avcorr.models import is_model
    from avcorr.tasks.tagging import FORMATS, LABEL_MODES, SAMPLERS

    for name in ("ast_folder.py", "panns_folder.py", "ast_ags.py", "panns_cnn14_ags.py", "panns_cnn14_audioset.py"):
        cfg = load_config(name)
        assert cfg.task == "tagging" and is_model(cfg.model.name), name
        assert cfg.tagging.format in FORMATS and cfg.tagging.sampler in SAMPLERS and cfg.tagging.label_mode in LABEL_MODES


def test_window_starts():
    from avcorr.inference.tagging import window_starts

    assert window_starts(100, 100, 50) == [0]
    assert window_starts(60, 100, 50) == [0]
    assert window_starts(250, 100, 50) == [0, 50, 100, 150]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]  # the last window ends at the end
    with pytest.raises(ValueError):
        window_starts(10, 5, 0)


def test_auto_window_fits_short_clips(tmp_path):
    from avcorr.models import create_model
    from avcorr.tasks.tagging import auto_window

    rng = np.random.default_rng(0)
    durations = rng.uniform(0.2, 0.8, 200)  # 95 % last at most ~0.77 s -> a 0.8 s window
    ast = create_model("test_ast", num_classes=3, n_frames=300, timem=48)
    assert auto_window(ast, durations) == {"n_frames": 80, "timem": 13}
    panns = create_model("test_panns", num_classes=3, clip_seconds=3.0)
    assert auto_window(panns, durations) == {"clip_seconds": 0.8, "time_drop_width": 17}
    assert auto_window(panns, rng.uniform(3.5, 5.0, 50)) == {}  # long clips: the model's window stays
    assert auto_window(panns, np.full(10, 0.1)) == {"clip_seconds": 0.5, "time_drop_width": 11}  # at least 0.5 s
    with pytest.raises(ValueError, match="no training clip"):
        auto_window(panns, np.zeros(0))
    with pytest.raises(ValueError, match="PANNs and AST"):
        auto_window(create_model("test_avenet"), durations)


def test_auto_window_resolved_into_the_checkpoint(tmp_path):
    root = tmp_path / "short"
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("val", 3)):
        for kind in ("chirp", "noise", "tone"):
            (root / split / kind).mkdir(parents=True)
            for i in range(n):
                make_wav(root / split / kind / f"{kind}{i}.wav", _sound(kind, float(rng.uniform(0.3, 0.6)), SR, rng), SR)
    run = tmp_path / "run"
    assert train.main(["--config", "panns_folder.py", "--no-progress", f"data.root={root}", f"train.out_dir={run}",
                       *PANNS_TINY, 'model.kwargs={"clip_seconds": 3.0}', "tagging.window=auto", "train.epochs=1",
                       "train.eval_every=1"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    cfg, window = ckpt["config"], ckpt["resolved"]["window"]
    assert cfg["tagging"]["window"] == "auto" and cfg["model"]["kwargs"] == {"clip_seconds": 3.0}  # as asked
    assert window["clip_seconds"] == 0.6 and window["time_drop_width"] == 13
    assert json.loads((run / "resolved.json").read_text())["window"] == window
    # the stored config and resolved window rebuild the same model without reading the data
    assert evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--split", "val", "--workers", "0",
                          "--no-progress"]) == 0
