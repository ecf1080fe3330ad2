"""avcorr.tag: second-by-second tagging of a long file into SRT / probability files / a picture.

The pipeline tests tag a file of 5 s Tone, 5 s silence and 5 s Noise with a checkpoint of
:class:`tests.oracle_tagger.ToneNoiseOracle`, a tagger whose answers are certain (it measures
energy and spectral flatness), so they test the windowing, decoding and cues, never how a model
converged on this CPU. One test fits a tiny PANNs model on the same task and checks that a learned
checkpoint runs through the same path (with a tolerant, relative assertion).
"""

import math
import re
import subprocess
import tracemalloc
import wave

import numpy as np
import pytest
import torch

from avcorr.config import Config, config_to_dict
from avcorr.data.errors import DecodeError
from avcorr.engine.checkpoint import save_checkpoint
from avcorr.models import create_model
from avcorr.tag import format_srt_time, load_second_tagger, main, probe_media, tag_file, write_outputs
from tests import oracle_tagger  # noqa: F401  (registers oracle_tone_noise)
from tests.media import make_wav

pytestmark = pytest.mark.ffmpeg

SR = 16000
CLASSES = ["Tone", "Noise"]
_CUE = re.compile(r"^(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)$")


def _segment(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    if kind == "Tone":
        f0 = rng.uniform(300, 500)
        return (0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))).astype(np.float32)
    if kind == "Noise":
        return rng.uniform(-0.4, 0.4, t.size).astype(np.float32)
    return np.zeros(t.size, np.float32)


def _training_batch(rng: np.random.Generator, n: int, seconds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of ``seconds`` s made of 1-s segments of Tone / silence / Noise; presence labels."""
    waves, targets = [], []
    for _ in range(n):
        kinds = rng.choice(["Tone", "silence", "Noise"], size=seconds, p=[0.35, 0.3, 0.35])
        waves.append(np.concatenate([_segment(k, 1.0, rng) for k in kinds]))
        targets.append([float(c in kinds) for c in CLASSES])
    return torch.from_numpy(np.stack(waves)), torch.tensor(targets)


def _config(model: str = "test_panns") -> Config:
    cfg = Config(task="tagging")
    cfg.model.name = model
    cfg.model.width = None
    cfg.model.kwargs = {"sample_rate": SR, "clip_seconds": 2.0}
    if model == "test_panns":
        cfg.model.kwargs.update({"n_fft": 512, "hop_length": 160, "f_max": 8000.0})
    cfg.tagging.classes = list(CLASSES)
    cfg.tagging.label_mode = "multi"
    return cfg


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of the certain-answer tagger (class 0 = Tone, 1 = Noise)."""
    cfg = _config("oracle_tone_noise")
    model = create_model(cfg.model.name, num_classes=2, **cfg.model.kwargs)
    path = tmp_path_factory.mktemp("oracle") / "best.pt"
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def fitted_checkpoint(tmp_path_factory):
    """A tiny PANNs fitted on windows of Tone / silence / Noise segments with presence labels."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = _config()
    model = create_model("test_panns", num_classes=2, **cfg.model.kwargs)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for step in range(90):
        x, y = _training_batch(rng, 12, int(rng.integers(1, 6)))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("fitted") / "best.pt"
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """15 s: Tone 0-5 s, silence 5-10 s, Noise 10-15 s, as a wav at 44.1 kHz stereo."""
    rng = np.random.default_rng(1)
    x = np.concatenate([_segment("Tone", 5, rng), _segment("silence", 5, rng), _segment("Noise", 5, rng)])
    folder = tmp_path_factory.mktemp("film")
    import torchaudio

    up = torchaudio.functional.resample(torch.from_numpy(x), SR, 44100).numpy()
    return make_wav(folder / "film.wav", np.stack([up, up], axis=1), 44100)


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Strict SRT reader: blocks separated by one blank line, numbered from 1."""
    if not text.strip():
        return []
    cues = []
    for i, block in enumerate(text.strip("\n").split("\n\n"), start=1):
        m = _CUE.match(block)
        assert m, f"not an SRT cue: {block!r}"
        assert int(m.group(1)) == i
        h, mi, s, ms, h2, mi2, s2, ms2 = (int(g) for g in m.groups()[1:9])
        start, end = h * 3600 + mi * 60 + s + ms / 1000, h2 * 3600 + mi2 * 60 + s2 + ms2 / 1000
        assert end > start
        cues.append((start, end, m.group(10)))
    return cues


def _labels_by_second(cues) -> dict[int, set[str]]:
    out = {}
    for start, end, text in cues:
        assert end - start == pytest.approx(1.0, abs=1e-3) or text  # one cue per second
        out[int(round(start))] = {re.sub(r" \([0-9.]+\)$", "", part) for part in text.split(", ")}
    return out


def test_srt_time_format():
    assert format_srt_time(0) == "00:00:00,000"
    assert format_srt_time(3725.5) == "01:02:05,500"
    assert format_srt_time(7199.9996) == "02:00:00,000"


def test_segments_named_in_the_right_seconds(checkpoint, film, tmp_path):
    tagger = load_second_tagger(checkpoint, device="cpu")
    # each second on its own: Tone in 0-4, nothing in 5-9, Noise in 10-14
    res = tag_file(film, tagger, left=0, right=0)
    assert res.probs.shape == (15, 2) and res.duration == pytest.approx(15.0, abs=1e-3)
    paths = write_outputs(res, tmp_path, "film", threshold=0.5)
    got = _labels_by_second(parse_srt(paths["srt"].read_text()))
    assert got == {**{t: {"Tone"} for t in range(5)}, **{t: {"Noise"} for t in range(10, 15)}}
    # the context window [t - 3, t + 2): a class is heard in second t's window when its segment overlaps it
    res = tag_file(film, tagger, left=3, right=1)
    got = _labels_by_second(parse_srt(write_outputs(res, tmp_path, "ctx", threshold=0.5)["srt"].read_text()))
    expected = {t: {c for c, (a, b) in (("Tone", (0, 5)), ("Noise", (10, 15))) if max(t - 3, a) < min(t + 2, b)}
                for t in range(15)}
    assert got == {t: s for t, s in expected.items() if s}
    assert 8 not in got  # [5, 10) is all silence


def test_a_fitted_model_runs_the_same_path(fitted_checkpoint, film):
    """A learned checkpoint (not an oracle) goes through tag_file; what it learned is checked only
    relatively (Tone seconds score Tone higher than Noise seconds do, and the reverse), with the wide
    margin any x86 machine's fit gives on tone vs white noise."""
    res = tag_file(film, load_second_tagger(fitted_checkpoint, device="cpu"), left=0, right=0)
    assert res.probs.shape == (15, 2) and np.isfinite(res.probs).all()
    tone, noise = res.probs[:5].mean(0), res.probs[10:].mean(0)
    assert tone[0] > noise[0] + 0.2 and noise[1] > tone[1] + 0.2


def test_output_files(checkpoint, film, tmp_path):
    tagger = load_second_tagger(checkpoint, device="cpu")
    res = tag_file(film, tagger, left=3, right=1)
    paths = write_outputs(res, tmp_path / "out", "film", threshold=0.3)
    probs = np.load(paths["npy"])
    assert probs.dtype == np.float32 and probs.shape == (15, 2)
    assert np.all((probs >= 0) & (probs <= 1))
    import csv

    rows = list(csv.reader(paths["csv"].open()))
    assert rows[0] == ["start_s", "end_s", "Tone", "Noise"]
    assert len(rows) == 16
    assert [float(r[0]) for r in rows[1:]] == list(range(15))
    np.testing.assert_allclose(np.array([[float(v) for v in r[2:]] for r in rows[1:]]), probs, atol=1e-5)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # temporary files renamed away
    # --hide drops a class from the subtitles (case-insensitive), not from the probabilities
    hidden = write_outputs(res, tmp_path / "hidden", "film", threshold=0.3, hide=["tone"])
    texts = [c[2] for c in parse_srt(hidden["srt"].read_text())]
    assert texts and not any("Tone" in t for t in texts)
    assert np.array_equal(np.load(hidden["npy"]), probs)
    # --max-labels 1 keeps the most probable class of each second
    one = parse_srt(write_outputs(res, tmp_path / "one", "film", threshold=0.0, max_labels=1, plot=False)["srt"].read_text())
    assert len(one) == 15
    for start, _, text in one:
        t = int(start)
        assert text.startswith(CLASSES[int(np.argmax(probs[t]))] + " (")


def test_streaming_is_chunk_and_batch_independent(checkpoint, film):
    ref = tag_file(film, load_second_tagger(checkpoint, device="cpu", batch_size=16), left=2, right=2)
    odd = tag_file(film, load_second_tagger(checkpoint, device="cpu", batch_size=1), left=2, right=2,
                   chunk_seconds=2.3)
    np.testing.assert_allclose(odd.probs, ref.probs, atol=2e-5)
    # the picture's waveform envelope (min / max per 50 ms) does not depend on the chunks either
    np.testing.assert_array_equal(odd.envelope, ref.envelope)
    assert ref.envelope.shape == (math.ceil(ref.duration * 20 - 1e-9), 2)
    assert (ref.envelope[:, 0] <= ref.envelope[:, 1]).all() and np.abs(ref.envelope).max() > 0


def test_memory_stays_bounded_on_longer_files(checkpoint, tmp_path):
    """numpy allocations of a 4x longer file peak at about the same (chunks + context), not 4x."""
    tagger = load_second_tagger(checkpoint, device="cpu", batch_size=4)
    peaks = {}
    for minutes in (1, 4):
        path = tmp_path / f"noise{minutes}.wav"
        rng = np.random.default_rng(minutes)
        make_wav(path, (0.1 * rng.standard_normal(minutes * 60 * SR)).astype(np.float32), SR)
        tracemalloc.start()
        res = tag_file(path, tagger, left=3, right=1, chunk_seconds=10.0)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert res.probs.shape == (minutes * 60, 2)
    audio_4min = 4 * 60 * SR * 4  # bytes of the decoded 4-minute file
    assert peaks[4] < 0.5 * audio_4min, peaks
    assert peaks[4] < 1.5 * peaks[1], peaks


def test_video_containers_and_cli(checkpoint, film, tmp_path, capsys):
    """mp4 (H.264 + AAC), mkv (+ Opus), mp3 and flac copies of the film tag like the wav."""
    ref = tag_file(film, load_second_tagger(checkpoint, device="cpu"), left=0, right=0).probs
    outs = {}
    for ext, acodec in (("mp4", "aac"), ("mkv", "libopus"), ("mp3", "libmp3lame"), ("flac", "flac")):
        path = tmp_path / f"film.{ext}"
        video = ["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10:d=15"] if ext in ("mp4", "mkv") else []
        maps = ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p"] if video else []
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *video, "-i", str(film), *maps,
                        "-c:a", acodec, *(["-b:a", "128k"] if ext != "flac" else []), "-shortest", str(path)], check=True)
        assert main(["--checkpoint", str(checkpoint), "--input", str(path), "--left", "0", "--right", "0",
                     "--threshold", "0.5", "--out", str(tmp_path / ext), "--quiet"]) == 0
        outs[ext] = np.load(tmp_path / ext / "film.probs.npy")
        got = _labels_by_second(parse_srt((tmp_path / ext / "film.srt").read_text()))
        assert {t for t, s in got.items() if s == {"Tone"}} == set(range(5))
        assert {t for t, s in got.items() if s == {"Noise"}} == set(range(10, 15))
        assert (tmp_path / ext / "film.png").is_file()
    np.testing.assert_allclose(outs["flac"], ref, atol=1e-4)  # lossless: the same samples
    for probs in outs.values():
        assert probs.shape[0] in (15, 16)  # an encoder may pad the last frame
        assert np.abs(probs[:15] - ref).max() < 0.2
    out = capsys.readouterr().out
    assert all(f"film.{ext}:" in out for ext in outs) and "film.srt" in out


def test_no_audio_track_is_a_clear_error(checkpoint, tmp_path, capsys):
    silent_video = tmp_path / "no_audio.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(silent_video)], check=True)
    with pytest.raises(DecodeError, match=r"no_audio\.mp4.*no audio track"):
        tag_file(silent_video, load_second_tagger(checkpoint, device="cpu"))
    capsys.readouterr()
    assert main(["--checkpoint", str(checkpoint), "--input", str(silent_video), "--out", str(tmp_path), "--quiet"]) == 1
    assert "no audio track" in capsys.readouterr().err
    assert not (tmp_path / "no_audio.srt").exists()
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        probe_media(tmp_path / "missing.wav")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(DecodeError, match=r"text\.mp4"):
        tag_file(tmp_path / "text.mp4", load_second_tagger(checkpoint, device="cpu"))


def test_zero_second_file_gives_empty_outputs(checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(b"")
    assert main(["--checkpoint", str(checkpoint), "--input", str(empty), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "empty.srt").read_text() == ""
    assert parse_srt((tmp_path / "o" / "empty.srt").read_text()) == []
    assert np.load(tmp_path / "o" / "empty.probs.npy").shape == (0, 2)
    assert (tmp_path / "o" / "empty.probs.csv").read_text().strip() == "start_s,end_s,Tone,Noise"
    assert (tmp_path / "o" / "empty.png").read_bytes()[:4] == b"\x89PNG"


def test_partial_last_second_and_short_files(checkpoint, tmp_path):
    tagger = load_second_tagger(checkpoint, device="cpu")
    rng = np.random.default_rng(5)
    path = make_wav(tmp_path / "short.wav", _segment("Noise", 2.25, rng), SR)
    res = tag_file(path, tagger, left=3, right=1)
    assert res.probs.shape == (3, 2) and res.duration == pytest.approx(2.25, abs=1e-3)
    cues = parse_srt(write_outputs(res, tmp_path, "short", threshold=0.5, plot=False)["srt"].read_text())
    assert cues[-1][1] == pytest.approx(2.25, abs=1e-3)  # the last cue ends with the audio
    assert all("Noise" in c[2] for c in cues) and len(cues) == 3
    tiny = make_wav(tmp_path / "tiny.wav", _segment("Noise", 0.05, rng), SR)  # shorter than the model's minimum
    assert tag_file(tiny, tagger, left=0, right=0).probs.shape == (1, 2)
    with pytest.raises(ValueError, match="left and right"):
        tag_file(path, tagger, left=-1, right=0)


def test_not_a_tagging_checkpoint(tmp_path, capsys):
    cfg = Config(task="avc")
    cfg.model.name = "test_avenet"
    save_checkpoint({"config": config_to_dict(cfg), "model": {}}, tmp_path / "avc.pt")
    wav = make_wav(tmp_path / "x.wav", 440.0, SR, duration=1.0)  # inputs are probed before the checkpoint is read
    assert main(["--checkpoint", str(tmp_path / "avc.pt"), "--input", str(wav), "--quiet"]) == 2
    assert "not a tagging one" in capsys.readouterr().err


@pytest.fixture(scope="module")
def embedding_tagger(tmp_path_factory):
    """A tiny VGGish (random weights, saved in the torchvggish layout), PCA parameters fitted to its
    embeddings, and a feature-level attention head fitted on 1-10 s sequences of their per-second
    quantised embeddings (presence labels), saved as a tagging checkpoint."""
    from avcorr.models.vggish import VGGishPostprocessor

    folder = tmp_path_factory.mktemp("vggish")
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    vggish = create_model("test_vggish").eval()
    torch.save(vggish.state_dict(), folder / "vggish.pth")
    kinds = rng.choice(["Tone", "silence", "Noise"], size=240)
    wave = torch.from_numpy(np.concatenate([_segment(k, 1.0, rng) for k in kinds]))
    raw = vggish.embed_seconds(wave)["embedding"]  # (240, 128)
    mean, std = raw.mean(0), raw.std(0) + 1e-6
    np.savez(folder / "pca.npz", pca_eigen_vectors=np.diag(0.5 / std.numpy()).astype(np.float32),
             pca_means=mean.numpy()[:, None].astype(np.float32))
    vggish.set_postprocessor(VGGishPostprocessor.from_npz(folder / "pca.npz"))
    q = vggish.embed_seconds(wave)["quantized"]  # (240, 128) uint8
    cfg = _config()
    cfg.model.name = "audioset_feature_attention"
    cfg.model.kwargs = {"hidden": 32, "dropout": 0.0}
    cfg.tagging.format = "embeddings"
    head = create_model(cfg.model.name, num_classes=2, **cfg.model.kwargs)
    opt = torch.optim.Adam(head.parameters(), 3e-3)
    head.train()
    for step in range(150):
        t = int(rng.integers(1, 11))
        starts = rng.integers(0, 240 - t, 32)
        x = torch.stack([q[s : s + t] for s in starts])
        y = torch.tensor([[float(c in kinds[s : s + t]) for c in CLASSES] for s in starts])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x)["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint({"config": config_to_dict(cfg), "model": head.state_dict()}, folder / "head.pt")
    return folder


def test_vggish_attention_head_tags_the_segments(embedding_tagger, film, tmp_path, capsys):
    f = embedding_tagger
    flags = ["--checkpoint", str(f / "head.pt"), "--vggish", str(f / "vggish.pth"), "--pca", str(f / "pca.npz"),
             "--vggish-arch", "test_vggish", "--quiet", "--threshold", "0.5"]
    assert main([*flags, "--input", str(film), "--left", "0", "--right", "0", "--out", str(tmp_path / "a")]) == 0
    got = _labels_by_second(parse_srt((tmp_path / "a" / "film.srt").read_text()))
    assert got == {**{t: {"Tone"} for t in range(5)}, **{t: {"Noise"} for t in range(10, 15)}}
    assert main([*flags, "--input", str(film), "--left", "3", "--right", "1", "--out", str(tmp_path / "b")]) == 0
    got = _labels_by_second(parse_srt((tmp_path / "b" / "film.srt").read_text()))
    assert {t for t, s in got.items() if "Tone" in s} == set(range(8))
    assert {t for t, s in got.items() if "Noise" in s} == set(range(9, 15))
    assert np.load(tmp_path / "b" / "film.probs.npy").shape == (15, 2)
    # streaming in odd chunks gives the same probabilities
    tagger = load_second_tagger(f / "head.pt", vggish=f / "vggish.pth", pca=f / "pca.npz", vggish_arch="test_vggish",
                                device="cpu")
    np.testing.assert_allclose(tag_file(film, tagger, 3, 1, chunk_seconds=3.7).probs,
                               np.load(tmp_path / "b" / "film.probs.npy"), atol=1e-5)
    # recognize() takes the same flags: windows of 10 embeddings, every 5 s
    import avcorr

    top = avcorr.recognize(film, f / "head.pt", top_k=2, pool="max", vggish=f / "vggish.pth", pca=f / "pca.npz",
                           vggish_arch="test_vggish")
    assert {lab for lab, p in top if p > 0.5} == {"Tone", "Noise"}
    # without VGGish files: a clear error naming the missing flags
    capsys.readouterr()
    assert main(["--checkpoint", str(f / "head.pt"), "--input", str(film), "--quiet"]) == 2
    assert "--vggish" in capsys.readouterr().err
    assert main(["--checkpoint", str(f / "head.pt"), "--vggish", str(f / "vggish.pth"), "--vggish-arch",
                 "test_vggish", "--input", str(film), "--quiet"]) == 2
    assert "--pca" in capsys.readouterr().err


def test_any_tagging_checkpoint_ast_single_label(film, tmp_path):
    """An AST trained single-label on a folder per class (softmax): rows are distributions over its classes."""
    cfg = Config(task="tagging")
    cfg.model.name = "test_ast"
    cfg.model.width = None
    cfg.model.embed_dim = None
    cfg.tagging.format = "folder"
    cfg.tagging.classes = ["chirp", "noise", "tone"]
    cfg.tagging.label_mode = "single"
    torch.manual_seed(0)
    model = create_model("test_ast", num_classes=3)
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict()}, tmp_path / "ast.pt")
    assert main(["--checkpoint", str(tmp_path / "ast.pt"), "--input", str(film), "--out", str(tmp_path),
                 "--threshold", "0.0", "--max-labels", "2", "--quiet", "--no-plot"]) == 0
    probs = np.load(tmp_path / "film.probs.npy")
    assert probs.shape == (15, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    cues = parse_srt((tmp_path / "film.srt").read_text())
    assert len(cues) == 15 and all(len(c[2].split(", ")) == 2 for c in cues)
    assert not (tmp_path / "film.png").exists()
