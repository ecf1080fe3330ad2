"""The ``precision`` option of tagging inference: fp32, or the forward pass under bfloat16 autocast.

bf16 autocast runs on any x86 CPU in torch (emulated, slowly, without bf16 instructions), so every
test here runs everywhere. The models are tiny and random: the tests compare bf16 against fp32 on
the same weights with a wide tolerance, check that the model really ran in bfloat16 (a forward hook
sees its activations' dtype) and that probabilities come out float32.
"""

import logging

import numpy as np
import pytest
import torch
from torch import nn

import avcorr._amp as amp
import avcorr.recognize_cli as recognize_cli
import avcorr.tag as tag_cli
from avcorr._cli import COMMON_ARGS
from avcorr.config import Config, config_to_dict
from avcorr.engine.checkpoint import save_checkpoint
from avcorr.inference.tagging import Tagger, load_tagger
from avcorr.inference.timeline import EmbeddingScorer, WaveScorer
from avcorr.models import create_model
from tests.media import make_wav

SR = 16000
CLASSES = ["a", "b", "c"]
CPU = torch.device("cpu")


def _tiny_panns(label_mode: str = "multi") -> tuple[Config, nn.Module]:
    cfg = Config(task="tagging")
    cfg.model.name = "test_panns"
    cfg.model.width = None
    cfg.model.kwargs = {"sample_rate": SR, "clip_seconds": 1.0, "n_fft": 512, "hop_length": 160, "f_max": 8000.0}
    cfg.tagging.classes = list(CLASSES)
    cfg.tagging.label_mode = label_mode
    torch.manual_seed(0)
    return cfg, create_model("test_panns", num_classes=len(CLASSES), **cfg.model.kwargs).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg, model = _tiny_panns()
    path = tmp_path_factory.mktemp("bf16") / "best.pt"
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict()}, path)
    return path


@pytest.fixture()
def quiet_bf16(monkeypatch):
    """This CPU counts as having bf16 instructions, and no warning was given yet in this process."""
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(amp, "_warned", set())


class DtypeSpy:
    """Records the dtype of the outputs of every module of ``kind`` inside ``model``."""

    def __init__(self, model: nn.Module, kind: type = nn.Conv2d):
        self.dtypes: set[torch.dtype] = set()
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, kind)]
        assert self.handles, f"no {kind.__name__} in the model"

    def _hook(self, module, inputs, output) -> None:
        self.dtypes.add(output.dtype)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _windows(n: int = 4, seconds: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * SR)) / SR
    tones = 0.3 * torch.sin(2 * torch.pi * (200 + 150 * torch.arange(n))[:, None] * t)
    return tones + 0.05 * torch.randn(n, t.numel(), generator=g)  # (n, T)


@pytest.mark.parametrize("label_mode", ["multi", "single"])
def test_bf16_probabilities_are_float32_and_close_to_fp32(label_mode, quiet_bf16):
    _, model = _tiny_panns(label_mode)
    windows = _windows()
    fp32 = Tagger(model, CLASSES, label_mode == "multi", CPU).probabilities(windows, batch_size=3)
    bf16_tagger = Tagger(model, CLASSES, label_mode == "multi", CPU, precision="bf16")
    spy = DtypeSpy(model)
    bf16 = bf16_tagger.probabilities(windows, batch_size=3)
    spy.close()
    assert spy.dtypes == {torch.bfloat16}  # the convolutions really ran in bfloat16
    assert bf16.dtype == fp32.dtype == torch.float32 and bf16.shape == fp32.shape == (4, 3)
    assert (bf16 - fp32).abs().max() < 0.05
    if label_mode == "single":
        torch.testing.assert_close(bf16.sum(-1), torch.ones(4))  # a softmax in float32
    spy = DtypeSpy(model)
    Tagger(model, CLASSES, True, CPU).probabilities(windows[:1])
    spy.close()
    assert spy.dtypes == {torch.float32}  # fp32 stays fp32 after a bf16 pass


def test_wave_scorer_takes_the_precision(quiet_bf16):
    _, model = _tiny_panns()
    contexts = [[w[i * 4000 : (i + 1) * 4000].numpy() for i in range(4)] for w in _windows(3)]  # 4 "seconds" each
    fp32 = WaveScorer(model, True, CPU, batch_size=2).score(contexts)
    spy = DtypeSpy(model)
    bf16 = WaveScorer(model, True, CPU, batch_size=2, precision="bf16").score(contexts)
    spy.close()
    assert spy.dtypes == {torch.bfloat16}
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (3, 3)
    assert np.abs(bf16 - fp32).max() < 0.05


def test_embedding_scorer_runs_the_head_in_bf16_and_vggish_in_fp32(tmp_path, quiet_bf16):
    from avcorr.models.vggish import VGGishPostprocessor

    torch.manual_seed(0)
    vggish = create_model("test_vggish").eval()
    np.savez(tmp_path / "pca.npz", pca_eigen_vectors=np.eye(128, dtype=np.float32),
             pca_means=np.zeros((128, 1), np.float32))
    vggish.set_postprocessor(VGGishPostprocessor.from_npz(tmp_path / "pca.npz"))
    head = create_model("audioset_feature_attention", num_classes=3, hidden=32, dropout=0.0).eval()
    seconds = list(_windows(5).numpy())  # five 1-s units

    def contexts(units):  # second t with one second of context each side
        return [[units[s] for s in range(max(0, t - 1), min(5, t + 2))] for t in range(5)]

    fp32 = EmbeddingScorer(vggish, head, True, CPU)
    bf16 = EmbeddingScorer(vggish, head, True, CPU, precision="bf16")
    units = fp32.units(seconds)
    want = fp32.score(contexts(units))
    vggish_spy, head_spy = DtypeSpy(vggish), DtypeSpy(head, nn.Conv1d)
    bf16_units = bf16.units(seconds)
    got = bf16.score(contexts(bf16_units))
    vggish_spy.close()
    head_spy.close()
    assert vggish_spy.dtypes == {torch.float32}
    assert head_spy.dtypes == {torch.bfloat16, torch.float32}  # the layers in bf16, the attention pooling in fp32
    assert all(np.array_equal(a, b) for a, b in zip(units, bf16_units))  # the same quantised embeddings
    assert got.dtype == np.float32 and got.shape == want.shape == (5, 3)
    assert np.abs(got - want).max() < 0.05


def test_recognize_cli_passes_the_precision(checkpoint, tmp_path, monkeypatch, capsys, quiet_bf16):
    import json

    wav = make_wav(tmp_path / "tone.wav", 440.0, 22050, duration=2.5)
    seen = []
    real = recognize_cli.load_tagger
    monkeypatch.setattr(recognize_cli, "load_tagger",
                        lambda ckpt, device, precision: seen.append(precision) or real(ckpt, device, precision))
    probs = {}
    for precision in ("fp32", "bf16"):
        args = [str(wav), "--checkpoint", str(checkpoint), "--device", "cpu", "--json", "--top-k", "3"]
        assert recognize_cli.main(args + (["--precision", precision] if precision == "bf16" else [])) == 0
        labels = json.loads(capsys.readouterr().out)["labels"]
        probs[precision] = {d["label"]: d["prob"] for d in labels}
    assert seen == ["fp32", "bf16"]  # fp32 is the default
    assert load_tagger(checkpoint, "cpu", "bf16").precision == "bf16"
    assert probs["bf16"].keys() == probs["fp32"].keys() == set(CLASSES)
    assert max(abs(probs["bf16"][c] - probs["fp32"][c]) for c in CLASSES) < 0.05


def test_tag_cli_passes_the_precision(checkpoint, tmp_path, monkeypatch, quiet_bf16):
    wav = make_wav(tmp_path / "film.wav", 330.0, SR, duration=4.0)
    seen = []
    real = tag_cli.load_second_tagger
    monkeypatch.setattr(tag_cli, "load_second_tagger", lambda ckpt, **kw: seen.append(kw["precision"]) or real(ckpt, **kw))
    for precision in ("fp32", "bf16"):
        assert tag_cli.main(["--checkpoint", str(checkpoint), "--input", str(wav), "--out", str(tmp_path / precision),
                             "--device", "cpu", "--precision", precision, "--no-plot", "--no-progress"]) == 0
    assert seen == ["fp32", "bf16"]
    fp32, bf16 = (np.load(tmp_path / p / "film.probs.npy") for p in ("fp32", "bf16"))
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (4, 3)
    assert np.abs(bf16 - fp32).max() < 0.05


def test_bad_precision_is_refused(checkpoint, capsys):
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, got 'fp16'"):
        load_tagger(checkpoint, "cpu", "fp16")
    _, model = _tiny_panns()
    with pytest.raises(ValueError, match="got 'fp16'"):
        Tagger(model, CLASSES, True, CPU, precision="fp16")
    with pytest.raises(ValueError, match="not on meta"):
        WaveScorer(model, True, torch.device("meta"), precision="bf16")
    with pytest.raises(SystemExit):
        recognize_cli.main(["x.wav", "--checkpoint", str(checkpoint), "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    assert COMMON_ARGS["precision"][1]["choices"] == amp.PRECISIONS  # the CLI stays torch-free, so says them itself


def test_bf16_on_a_cpu_without_bf16_warns_once(monkeypatch, caplog):
    """The documented choice: it runs (same results as elsewhere) after one warning per process."""
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(amp, "_warned", set())
    _, model = _tiny_panns()
    with caplog.at_level(logging.WARNING, logger="avcorr._amp"):
        Tagger(model, CLASSES, True, CPU)  # fp32: nothing to say
        assert not caplog.records
        tagger = Tagger(model, CLASSES, True, CPU, precision="bf16")
        WaveScorer(model, True, CPU, precision="bf16")
        probs = tagger.probabilities(_windows(2))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "no bf16 instructions" in caplog.text and "slower than fp32" in caplog.text
    assert probs.dtype == torch.float32 and probs.shape == (2, 3)


def test_the_cpu_check_reads_torch(monkeypatch):
    """x86: AVX512-BF16 or AMX tiles mean native bf16; neither means emulated."""
    monkeypatch.setattr(amp.platform, "machine", lambda: "x86_64")
    for avx512_bf16, amx, want in ((True, False, True), (False, True, True), (False, False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert amp.cpu_has_bf16() is want
        assert amp.bf16_is_native(CPU) is want
