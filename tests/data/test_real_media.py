"""Real-media timing: audio tracks that run past the video's last frame, or stop before it.

Real files are like that (an Opus/AAC encoder's tail of tens of ms, a longer or a cut recording), and
Matroska records no per-stream duration, so a container-wide duration is not the video's. Every
command that picks frame times must pick them inside the decodable video and say nothing alarming.
"""

import json

import numpy as np
import pytest
import torch

from avcorr import localize, retrieve, separate
from avcorr.config import config_to_dict, load_config
from avcorr.data import decode
from avcorr.data._clip_media import window_frames
from avcorr.data.avc import AVCPairDataset
from avcorr.data.embed import ClipEmbedDataset
from avcorr.data.errors import DecodeError
from avcorr.data.layout import load_split
from avcorr.data.localization import LocalizationDataset
from avcorr.data.separation import SeparationDataset
from avcorr.engine.checkpoint import save_checkpoint
from avcorr.tasks import build_task
from tests.conftest import TINY_AVC
from tests.media import frame_index, make_video, make_wav

pytestmark = pytest.mark.ffmpeg

VIDEO_S, FPS = 2.0, 10
OPUS = ["-c:a", "libopus", "-b:a", "48k"]
# name: (container, audio seconds, audio codec args or None for the container's default)
CLIPS = {
    "opus_tail": (".mkv", VIDEO_S + 0.048, OPUS),  # the public mkv of the report: H.264 + Opus, 48 ms longer
    "aac_tail": (".mp4", VIDEO_S + 0.048, None),
    "aac_long": (".mp4", VIDEO_S + 0.5, None),
    "opus_short": (".mkv", 1.4, OPUS),
    "aac_short": (".mp4", 1.4, None),
}


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    """A dataset root whose test split holds the CLIPS as videos only (audio from their own tracks)."""
    root = tmp_path_factory.mktemp("real_media") / "root"
    video_dir = root / "test" / "video"
    video_dir.mkdir(parents=True)
    for i, (name, (ext, audio_s, codec)) in enumerate(CLIPS.items()):
        make_video(video_dir / f"{name}{ext}", duration=VIDEO_S, fps=FPS, size=(64, 48), audio_seconds=audio_s,
                   audio_codec=codec, tone_hz=300.0 + 150 * i)
    labels = {name: ["tone_a", "tone_b"][i % 2] for i, name in enumerate(CLIPS)}
    (root / "test" / "vid2genre.json").write_text(json.dumps(labels))
    return root


def _video(root, name):
    return root / "test" / "video" / f"{name}{CLIPS[name][0]}"


@pytest.mark.parametrize("name", list(CLIPS))
def test_reader_and_probes_describe_the_video_not_the_container(media_root, name):
    path = _video(media_root, name)
    with decode.VideoReader(path) as reader:
        assert reader.duration == pytest.approx(VIDEO_S, abs=1e-6) and reader.num_frames == VIDEO_S * FPS
        frames = reader.get_frames([decode.frame_centre(k, reader.fps) for k in range(reader.num_frames)])
    assert [frame_index(f) for f in frames] == list(range(int(VIDEO_S * FPS)))
    info = decode.probe_video(path)
    assert info.duration == pytest.approx(VIDEO_S, abs=1e-6) and info.num_frames == VIDEO_S * FPS
    assert decode.probe_audio(path).duration == pytest.approx(CLIPS[name][1], abs=0.025)


def test_a_window_past_a_short_track_is_named_as_such(media_root):
    path = _video(media_root, "opus_short")
    assert decode.read_audio(path, 1.3, 0.3).numel() == round(0.3 * 48000)  # Opus decodes at 48 kHz; tail padded
    with pytest.raises(DecodeError, match="has no samples: the audio spans") as err:
        decode.read_audio(path, 1.6, 0.2)
    assert "truncated" not in str(err.value)


def test_window_frames_stay_inside_the_video():
    # a 2 s video at 10 fps, 1 s windows centred on frame centres (k + 0.5) / 10
    assert window_frames(10.0, 20, 2.048, 1.0) == (5, 14)  # the window of frame 14 ends at 1.95 s, of 15 at 2.05 s
    assert window_frames(10.0, 20, 60.0, 1.0) == (5, 19)
    assert window_frames(10.0, 20, 0.7, 1.0) == (0, 6)  # shorter than a window: frames inside the audio
    assert window_frames(10.0, 3, 60.0, 1.0) == (0, 2)  # video shorter than a window: every frame
    assert window_frames(10.0, 20, 0.01, 1.0) == (0, 0)


def _untrained(path, config, overrides, root):
    cfg = load_config(config, [f"data.root={root}", *overrides])
    torch.manual_seed(0)
    model = build_task(cfg).build_model()
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict(), "epoch": 0}, path)
    return path


@pytest.fixture(scope="module")
def avol_ckpt(media_root, tmp_path_factory):
    from tests.commands.test_localize import TINY_LOC

    return _untrained(tmp_path_factory.mktemp("ckpt") / "avol.pt", "avolnet.py", [*TINY_LOC, "model.name=test_avolnet"],
                      media_root)


def _quiet_run(capsys, fn, args):
    """Run a CLI; return (exit code, stdout, stderr) after checking stderr raises no alarm."""
    rc = fn(args)
    out, err = capsys.readouterr()
    assert "truncated" not in err and "WARNING" not in err and "error" not in err, err
    return rc, out, err


@pytest.mark.parametrize("name", list(CLIPS))
def test_localize_writes_everything_whatever_the_audio_length(avol_ckpt, media_root, tmp_path, capsys, name):
    video = _video(media_root, name)
    out = tmp_path / "out"
    rc, stdout, _ = _quiet_run(capsys, localize.main, ["--checkpoint", str(avol_ckpt), "--video", str(video), "--out",
                                                       str(out), "--frames", "3", "--no-progress", "--device", "cpu"])
    assert rc == 0 and len(list(out.glob("frame_*.png"))) == 3
    mp4 = out / f"{video.stem}_heatmap.mp4"
    assert f"wrote {mp4}" in stdout
    with decode.VideoReader(mp4) as reader:
        assert reader.num_frames == VIDEO_S * FPS
    assert decode.probe_audio(mp4).duration == pytest.approx(min(VIDEO_S, CLIPS[name][1]), abs=0.05)


def test_localize_another_sound_in_the_mkv(avol_ckpt, media_root, tmp_path, capsys):
    other = make_wav(tmp_path / "other.wav", 880.0, 16000, duration=0.7)
    out = tmp_path / "out"
    rc, _, _ = _quiet_run(capsys, localize.main, ["--checkpoint", str(avol_ckpt), "--video",
                                                  str(_video(media_root, "opus_tail")), "--audio", str(other),
                                                  "--out", str(out), "--frames", "2", "--no-progress"])
    assert rc == 0 and len(list(out.glob("frame_*.png"))) == 2 and (out / "opus_tail_heatmap.mp4").is_file()


def test_datasets_sample_frames_inside_the_video(media_root):
    index = load_split(media_root, "test")
    avc = AVCPairDataset(index, sample_rate=16000, seconds=1.0, image_size=32, train=False, pairs_per_clip=4)
    for i in range(len(avc)):
        item = avc[i]
        assert item["skipped"] == [] and 0 <= float(item["time"]) < VIDEO_S
    avc_train = AVCPairDataset(index, sample_rate=16000, seconds=1.0, image_size=32, train=True, pairs_per_clip=8)
    torch.manual_seed(0)
    assert all(avc_train[i]["skipped"] == [] for i in range(len(avc_train)))

    emb = ClipEmbedDataset(index, frames=4, sample_rate=16000, seconds=1.0, image_size=32)
    for i in range(len(emb)):
        item = emb[i]
        assert item["skipped"] == [] and float(item["times"].max()) < VIDEO_S
        assert item["audio"].shape == (4, 16000) and bool(torch.isfinite(item["audio"]).all())

    loc = LocalizationDataset(index, sample_rate=16000, seconds=1.0, image_size=32)
    for i in range(len(loc)):
        item = loc[i]
        assert not item.get("bad") and float(item["time"]) == pytest.approx(VIDEO_S / 2)

    sep = SeparationDataset(index, num_mix=2, sample_rate=8000, num_samples=8000, frames_per_clip=3, frame_stride=0.9,
                            image_size=32, train=False, mixes_per_clip=2)
    for i in range(len(sep)):
        assert sep[i]["skipped"] == []


def test_retrieve_and_separate_on_such_clips(media_root, tmp_path, capsys):
    pytest.importorskip("faiss")
    ckpt = _untrained(tmp_path / "avenet.pt", "avenet.py", TINY_AVC, media_root)
    idx = tmp_path / "idx"
    rc, stdout, _ = _quiet_run(capsys, retrieve.main, ["index", "--checkpoint", str(ckpt), "--data", str(media_root),
                                                       "--split", "test", "--out", str(idx), "--frames", "3",
                                                       "--no-progress", "--device", "cpu"])
    assert rc == 0 and f"indexed {len(CLIPS)} clips (0 skipped" in stdout
    rc, stdout, _ = _quiet_run(capsys, retrieve.main, ["query", "--index", str(idx), "--video",
                                                       str(_video(media_root, "opus_tail")), "--k", "2",
                                                       "--device", "cpu"])
    assert rc == 0 and "rank" in stdout

    from tests.tasks.test_sop import TINY_SOP

    sop = _untrained(tmp_path / "sop.pt", "sop.py", TINY_SOP, media_root)
    out = tmp_path / "sep"
    videos = [str(_video(media_root, n)) for n in ("opus_tail", "opus_short", "aac_long")]
    rc, stdout, _ = _quiet_run(capsys, separate.main, ["--checkpoint", str(sop), "--videos", *videos, "--out",
                                                       str(out), "--device", "cpu"])
    assert rc == 0 and (out / "opus_short.wav").is_file()
    mixture = decode.read_audio(out / "mixture.wav")
    assert mixture.numel() == pytest.approx((VIDEO_S + 0.5) * 8000, abs=80) and np.isfinite(mixture.numpy()).all()
