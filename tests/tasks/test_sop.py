"""Sound of Pixels: model, mixtures, loss, evaluator, and train -> evaluate -> separate end to end."""

import json
import wave

import numpy as np
import pytest
import torch
import torchvision

from avcorr import evaluate, separate, train
from avcorr.config import load_config
from avcorr.data import decode
from avcorr.data.layout import load_split
from avcorr.data.separation import SeparationDataset, collate_mixtures
from avcorr.models import create_model, list_models
from avcorr.models.sop_audio import SpectrogramSettings, stft
from avcorr.models.sop import FrameNet, _scaled_resnet18, pool_space
from avcorr.tasks.separation import SeparationEvaluator, SeparationModule
from tests.media import make_nan_wav, make_wav

# Overrides that make sop.py train in seconds on the tiny dataset (2 s clips at 16 kHz, 8 fps, 48 px).
TINY_SOP = [
    "model.name=test_sop", "data.image_size=32", "data.audio.sample_rate=8000", "data.audio.seconds=1.0",
    "data.audio.n_fft=254", "data.audio.win_length=254", "data.audio.hop_length=128", "separation.warp_bins=32",
    "separation.frames_per_clip=2", "separation.frame_stride=0.5", "data.num_workers=0", "separation.train_mixtures_per_clip=1",
    "separation.eval_mixtures_per_clip=1", "train.batch_size=4", "train.eval_batch_size=4", "train.epochs=2",
    "optim.step_epochs=[1]", "train.eval_every=1", "train.report_gallery=0",
]
TINY_SETTINGS = SpectrogramSettings(n_fft=254, hop_length=128, warp_bins=32)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _read_wav(path):
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnframes(), w.getnchannels(), w.getsampwidth()


# -- model -----------------------------------------------------------------------------------


def test_registry_and_forward_backward():
    assert {"sop", "sop_small", "test_sop"} <= set(list_models("*sop*"))
    torch.manual_seed(0)
    m = create_model("test_sop")
    mag = torch.rand(2, 1, 32, 40) + 0.01  # sides not multiples of 2**levels: padded inside
    frames = torch.randn(2, 3, 3, 2, 32, 32)
    out = m(mag, frames)
    assert out["masks"].shape == (2, 3, 32, 40) and torch.isfinite(out["masks"]).all()
    assert out["visual_feats"].shape == (2, 3, 8) and ((out["visual_feats"] > 0) & (out["visual_feats"] < 1)).all()
    assert out["sound_feats"].shape == (2, 8, 32, 40)
    # a list of per-source frames is the same input
    listed = m(mag, [frames[:, i] for i in range(3)])["masks"]
    assert torch.allclose(listed, out["masks"])
    out["masks"].sigmoid().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in m.frame_net.parameters())
    assert any(p.grad.abs().sum() > 0 for p in m.sound_net.parameters())
    with pytest.raises(ValueError, match="frames"):
        m(mag, frames[:, 0])


def test_synthesizer_is_a_scaled_inner_product():
    m = create_model("test_sop").eval()
    visual, sound = torch.rand(1, 2, 8), torch.randn(1, 8, 4, 5)
    with torch.no_grad():
        m.synthesizer.scale.copy_(torch.arange(8.0))
        m.synthesizer.bias.fill_(0.25)
        z = m.synthesizer(visual, sound)
    want = (visual[0, 1] * torch.arange(8.0)) @ sound[0].reshape(8, -1) + 0.25
    assert torch.allclose(z[0, 1].reshape(-1), want, atol=1e-5)


def test_frame_net_space_pools():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 5.0]]]])  # (1, 1, 2, 2)
    assert pool_space(x, "max").item() == 5.0
    assert pool_space(x, "mean").item() == 2.0
    lse = pool_space(x, "lse", sharpness=1.0).item()
    assert lse == pytest.approx(np.log(np.exp([0.0, 1.0, 2.0, 5.0]).mean()), rel=1e-6)
    assert 2.0 < lse < 5.0
    assert pool_space(x, "lse", sharpness=200.0).item() == pytest.approx(5.0 - np.log(4) / 200, abs=1e-4)
    with pytest.raises(ValueError, match="visual pool"):
        pool_space(x, "median")
    with pytest.raises(ValueError, match="visual pool"):
        create_model("test_sop", visual_pool="median")
    # the model pools the frame-maxed map over space, then the sigmoid; the state dict is the paper's
    torch.manual_seed(0)
    frames = torch.randn(2, 3, 2, 64, 64)
    paper, mean = create_model("test_sop").eval(), create_model("test_sop", visual_pool="mean").eval()
    mean.load_state_dict(paper.state_dict())
    with torch.no_grad():
        fmap = paper.frame_net.feature_map(frames).amax(dim=2)
        assert torch.allclose(paper.encode_visual(frames), torch.sigmoid(fmap.amax(dim=(2, 3))), atol=1e-6)
        assert torch.allclose(mean.encode_visual(frames), torch.sigmoid(fmap.mean(dim=(2, 3))), atol=1e-6)


def test_paper_geometry():
    m = create_model("sop").eval()
    with torch.no_grad():
        sound = m.sound_net(torch.randn(1, 1, 256, 256))
        pix = m.frame_net.feature_map(torch.randn(1, 3, 1, 224, 224))
    assert sound.shape == (1, 32, 256, 256)
    assert pix.shape == (1, 32, 1, 14, 14)  # dilated last stage: output stride 16
    assert len(m.sound_net.downs) == 7 and m.sound_net.downs[0][0].out_channels == 64


def test_resnet_keys_match_torchvision_and_load_imagenet_style_weights(tmp_path):
    tv = torchvision.models.resnet18(weights=None)
    keys = {k for k in tv.state_dict() if not k.startswith("fc.")}
    small = _scaled_resnet18(0.5)
    assert {k for k in small.state_dict() if not k.startswith("fc.")} == keys
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    net = FrameNet(32, width=1.0, weights=str(tmp_path / "resnet18.pth"))
    assert torch.equal(net.features.conv1.weight, tv.conv1.weight)
    assert torch.equal(net.features.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        FrameNet(32, weights=str(tmp_path / "bad.pth"))
    with pytest.raises(ValueError, match="full-width"):
        FrameNet(32, width=0.5, weights=str(tmp_path / "resnet18.pth"))
    # through the registry, as configs do it (model.checkpoint_path=...)
    m = create_model("sop", checkpoint_path=tmp_path / "resnet18.pth")
    assert torch.equal(m.frame_net.features.layer2[0].conv1.weight, tv.layer2[0].conv1.weight)
    with pytest.raises(ValueError, match="vision_width"):
        create_model("sop_small", checkpoint_path=tmp_path / "resnet18.pth")
    # and a whole Sound-of-Pixels state dict still loads strictly
    tiny = create_model("test_sop")
    torch.save(tiny.state_dict(), tmp_path / "sop.pt")
    again = create_model("test_sop", checkpoint_path=tmp_path / "sop.pt")
    assert torch.equal(again.synthesizer.scale, tiny.synthesizer.scale)


def test_pixel_sound_map():
    torch.manual_seed(1)
    m = create_model("test_sop").eval()
    mag = torch.rand(2, 1, 32, 16)
    frames = torch.randn(2, 3, 2, 64, 64)
    energy = m.pixel_sound_map(mag, frames, chunk=5)
    assert energy.shape == (2, 4, 4) and (energy >= 0).all()
    assert (energy <= mag.sum(dim=(1, 2, 3))[:, None, None] + 1e-4).all()  # masks are <= 1
    # pixel (1, 2) of example 0, by hand
    with torch.no_grad():
        v = torch.sigmoid(m.frame_net.feature_map(frames).amax(dim=2))[0, :, 1, 2]
        mask = torch.sigmoid(m.synthesizer(v[None, None], m.encode_audio(mag[:1])))
    assert torch.allclose(energy[0, 1, 2], (mask[0, 0] * mag[0, 0]).sum(), rtol=1e-4)


# -- data ------------------------------------------------------------------------------------


def test_mixtures_are_deterministic_padded_and_of_different_classes(tiny_root):
    index = load_split(tiny_root, "val")
    kw = dict(num_mix=2, sample_rate=8000, num_samples=24000, frames_per_clip=2, frame_stride=0.5, image_size=32,
              train=False)
    a, b = SeparationDataset(index, **kw), SeparationDataset(index, **kw)
    assert len(a) == 6
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert x["vid"] == y["vid"] and torch.equal(x["audios"], y["audios"]) and torch.equal(x["frames"], y["frames"])
        assert x["label"][0] != x["label"][1] and x["vid"][0] == index.clips[i].vid
    item = a[0]
    assert item["audios"].shape == (2, 24000) and item["frames"].shape == (2, 3, 2, 32, 32)
    # 2 s clips in a 3 s window: read from the start, zero-padded tail, lengths say so
    assert item["lengths"].tolist() == [16000, 16000] and item["start"].tolist() == [0.0, 0.0]
    assert float(item["audios"][:, 16064:].abs().max()) == 0.0  # (a few samples of resampler ringing at the edge)
    clip = next(c for c in index.clips if c.vid == item["vid"][1])
    raw = decode.read_audio(clip.audio, 0.0, 2.0, 8000)
    assert torch.allclose(item["audios"][1, :16000], raw / 2)  # each source scaled by 1 / N
    batch = collate_mixtures([a[0], a[1]])
    assert batch["audios"].shape == (2, 2, 24000) and batch["label"].shape == (2, 2) and len(batch["vid"]) == 2


def test_bad_clip_is_skipped_and_counted(tiny_copy):
    split = tiny_copy / "val"
    index = load_split(tiny_copy, "val")
    bad = index.clips[0].vid
    make_nan_wav(split / "audio" / f"{bad}.wav", sr=16000, duration=2.0, nan_at=1.0)  # inside the window
    ds = SeparationDataset(load_split(tiny_copy, "val"), sample_rate=8000, num_samples=8000, frames_per_clip=1,
                           image_size=32, train=False)
    item = ds[0]
    assert [v for v, _ in item["skipped"]] == [bad] and "non-finite" in item["skipped"][0][1]
    assert bad not in item["vid"] and float(item["audios"].abs().max()) > 0
    seen = {v for i in range(len(ds)) for v in ds[i]["vid"]}
    assert bad not in seen


# -- loss and evaluator ----------------------------------------------------------------------


def _batch(tiny_root, n=4):
    ds = SeparationDataset(load_split(tiny_root, "val"), sample_rate=8000, num_samples=8000, frames_per_clip=2,
                           frame_stride=0.5, image_size=32, train=False)
    return collate_mixtures([ds[i] for i in range(n)])


def test_targets_and_padding_mask(tiny_root):
    module = SeparationModule(create_model("test_sop"), TINY_SETTINGS, "binary")
    batch = _batch(tiny_root)
    tg = module.targets(batch["audios"], torch.tensor([[8000, 8000], [3000, 1000], [8000, 100], [8000, 8000]]))
    t = tg["mix_mag"].shape[-1]
    assert tg["gt"].shape == (4, 2, 32, t) and set(tg["gt"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(tg["mix_spec"], stft(batch["audios"].sum(1), TINY_SETTINGS))
    w = tg["weight"][:, 0, 0]  # (B, T): frames whose window holds no real sample of any source get no loss
    starts = torch.arange(t) * 128 - 127
    assert (w[1, starts >= 3000] == 0).all() and (w[1, starts < 3000] > 0).all()
    assert (w[0] > 0).all()
    ratio = SeparationModule(create_model("test_sop"), TINY_SETTINGS, "ratio").targets(batch["audios"])
    assert float(ratio["gt"].min()) >= 0 and float(ratio["gt"].max()) <= 5
    for mask in ("binary", "ratio"):
        out = SeparationModule(create_model("test_sop"), TINY_SETTINGS, mask)(batch)
        assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
        out["loss"].backward()
    with pytest.raises(ValueError, match="mask"):
        SeparationModule(create_model("test_sop"), TINY_SETTINGS, "soft")


def test_correspondence_objective(tiny_root):
    torch.manual_seed(0)
    model = create_model("test_sop", correspondence_dim=6)
    module = SeparationModule(model, TINY_SETTINGS, "binary", correspondence_weight=0.5, temperature=0.1).train()
    batch = _batch(tiny_root)
    out = module(batch)
    assert torch.allclose(out["loss"], out["mask_loss"] + 0.5 * out["correspondence_loss"])
    # by hand: the B * N sources, each scored against every source's frames by the best cell, both directions
    tg = module.targets(batch["audios"], batch.get("lengths"))
    fwd = model(tg["mix_mag"], batch["frames"])
    assert fwd["visual_map"].shape[:3] == (4, 2, 8)
    audio = model.encode_source_audio(tg["source_mag"].flatten(0, 1).unsqueeze(1) + 1e-10)
    cells = model.correspondence_cells(fwd["visual_map"].flatten(0, 1))
    assert audio.shape == (8, 6) and torch.allclose(audio.norm(dim=1), torch.ones(8), atol=1e-5)
    assert cells.shape[:2] == (8, 6) and torch.allclose(cells.norm(dim=1), torch.ones_like(cells[:, 0]), atol=1e-5)
    sim = torch.stack([torch.stack([(cells[i] * audio[j][:, None, None]).sum(0).max() for j in range(8)])
                       for i in range(8)]) / 0.1  # frames i x sounds j
    target = torch.arange(8)
    want = (torch.nn.functional.cross_entropy(sim, target) + torch.nn.functional.cross_entropy(sim.t(), target)) / 2
    assert out["correspondence_loss"].item() == pytest.approx(want.item(), rel=1e-4)
    out["loss"].backward()
    for part in (model.source_encoder, model.cell_head, model.frame_net):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    # evaluation: the masks' loss alone; the paper's network has no head and says what to set
    assert "correspondence_loss" not in module.eval()(batch)
    with pytest.raises(ValueError, match="correspondence_dim"):
        SeparationModule(create_model("test_sop"), TINY_SETTINGS, correspondence_weight=1.0)
    with pytest.raises(ValueError, match="correspondence_dim"):
        create_model("test_sop").encode_source_audio(tg["source_mag"][:, :1])


def test_evaluator_oracle_and_mixture_masks(tiny_root):
    module = SeparationModule(create_model("test_sop"), TINY_SETTINGS, "binary").eval()
    batch = _batch(tiny_root)
    tg = module.targets(batch["audios"], batch["lengths"])
    base = {"loss": torch.tensor(0.5), "mix_spec": tg["mix_spec"]}
    ones = SeparationEvaluator(TINY_SETTINGS)
    ones.update(batch, {**base, "masks": torch.ones_like(tg["gt"])})
    m = ones.compute()
    assert m["num_mixtures"] == 4 and abs(m["nsdr"]) < 1e-3 and set(m) >= {"sdr", "sir", "sar", "nsdr", "loss"}
    oracle = SeparationEvaluator(TINY_SETTINGS)
    oracle.update(batch, {**base, "masks": tg["gt"]})
    assert oracle.compute()["nsdr"] > 3.0  # ideal binary masks of different timbres separate well
    # another rank's mixtures merged in: the metrics of one evaluator that scored both batches
    both = SeparationEvaluator(TINY_SETTINGS)
    for masks in (torch.ones_like(tg["gt"]), tg["gt"]):
        both.update(batch, {**base, "masks": masks})
    ones.merge(oracle)
    merged, want = ones.compute(), both.compute()
    assert merged.keys() == want.keys() and merged["num_mixtures"] == 8
    assert all(merged[k] == want[k] or (np.isnan(merged[k]) and np.isnan(want[k])) for k in want)
    assert ones.pictures()["sample"]["masks"].min() == 1.0  # the first evaluator's mixture stays the pictured one


# -- end to end ------------------------------------------------------------------------------


def test_configs_load():
    quick, paper = load_config("sop.py"), load_config("sop_paper.py")
    assert quick.task == paper.task == "separation"
    assert paper.model.name == "sop" and round(paper.data.audio.seconds * paper.data.audio.sample_rate) == 65535
    assert paper.optim.lr_mult == {"frame_net.features.": 0.1} and paper.optim.schedule == "step"
    assert quick.model.name == "sop_small"


def test_train_evaluate_separate(tiny_root, tmp_path):
    run = tmp_path / "run"
    assert train.main(["--config", "sop.py", "--no-progress", f"data.root={tiny_root}", f"train.out_dir={run}",
                       *TINY_SOP]) == 0
    val = [r for r in _rows(run) if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    for r in val:
        assert all(np.isfinite(r[k]) for k in ("sdr", "sir", "sar", "nsdr")) and r["num_mixtures"] == 6
    best = run / "checkpoints" / "best.pt"
    assert torch.load(best, weights_only=True)["best"] == max(r["nsdr"] for r in val)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"images": 0, "audio": 0}).Reload()
    assert {"val/separation/mixture", "val/separation/estimate_0", "val/separation/source_1"} <= \
        set(events.Tags()["audio"])  # stems to listen to in TensorBoard
    assert {"val/separation/mask_0", "val/separation/mask_1"} <= set(events.Tags()["images"])
    assert events.Audio("val/separation/mixture")[0].sample_rate == 8000

    assert evaluate.main(["--checkpoint", str(best), "--split", "test", "--workers", "0", "--no-progress"]) == 0
    first = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert first["num_mixtures"] == 6 and {"sdr", "sir", "sar", "nsdr"} <= set(first)
    assert evaluate.main(["--checkpoint", str(best), "--split", "test", "--workers", "0", "--no-progress"]) == 0
    again = json.loads((run / "checkpoints" / "eval_test.json").read_text())
    assert again["nsdr"] == first["nsdr"]  # mixtures drawn deterministically

    clips = load_split(tiny_root, "test").clips
    videos = [str(clips[0].video), str(clips[2].video)]
    out = tmp_path / "sep"
    assert separate.main(["--checkpoint", str(best), "--videos", *videos, "--out", str(out), "--pixels"]) == 0
    length = max(decode.read_audio(v, sample_rate=8000).numel() for v in videos)  # 2 s: two model windows
    names = [clips[0].vid, clips[2].vid]
    for name in ["mixture", *names]:
        assert _read_wav(out / f"{name}.wav") == (8000, length, 1, 2)
        assert decode.read_audio(out / f"{name}.wav").numel() == length  # our own reader plays it
    for png in ["separation.png", *(f"{n}_pixels.png" for n in names)]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --mix: a recording at another rate and length, separated with the videos' frames
    mix = make_wav(tmp_path / "mix.wav", 440.0, 16000, duration=1.3)
    out2 = tmp_path / "sep2"
    assert separate.main(["--checkpoint", str(best), "--videos", *videos, "--mix", str(mix), "--out", str(out2)]) == 0
    for name in ["mixture", *names]:
        assert _read_wav(out2 / f"{name}.wav") == (8000, 10400, 1, 2)

    # a missing checkpoint is a clear error, not a traceback
    assert separate.main(["--checkpoint", str(tmp_path / "missing.pt"), "--videos", *videos,
                          "--out", str(out2)]) == 2
