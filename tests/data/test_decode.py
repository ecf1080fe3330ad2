"""Tests of avcorr.data.decode: which frame comes back, exact audio slices, and every bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from avcorr.data.decode import (
    DEFAULT_VIDEO_BACKEND,
    VIDEO_BACKENDS,
    AudioInfo,
    VideoInfo,
    VideoReader,
    probe_audio,
    probe_video,
    read_audio,
    read_frames,
)
from avcorr.data.errors import BadClipError, DecodeError
from tests.media import (
    frame_index,
    make_audio,
    make_corrupt,
    make_empty,
    make_nan_wav,
    make_non_media,
    make_truncated,
    make_vfr_video,
    make_video,
    make_wav,
    render_frame,
    wav_expected,
)

pytestmark = pytest.mark.ffmpeg

HAS_DECORD = importlib.util.find_spec("decord") is not None
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(b == "decord" and not HAS_DECORD, reason="decord is not installed"))
    for b in VIDEO_BACKENDS
]
FPS, DURATION, SIZE, AUDIO_SR, TONE = 10, 2.0, (64, 48), 16000, 440.0


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("decode")
    clip = make_video(d / "clip.mp4", duration=DURATION, fps=FPS, size=SIZE, audio_sr=AUDIO_SR, tone_hz=TONE)
    return {
        "clip": clip,
        "noaudio": make_video(d / "noaudio.mp4", duration=1.0, fps=FPS, size=SIZE, audio_sr=None),
        "truncated": make_truncated(make_video(d / "long.mp4", duration=3.0, fps=FPS, audio_sr=AUDIO_SR),
                                    d / "truncated.mp4", 0.5),
        "dir": d,
    }


def _expected_index(t: float, fps: float = FPS) -> int:
    return int(np.floor(t * fps + 1e-9))


# ------------------------------------------------------------------------------------------ video


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_at_time_is_the_displayed_frame(media, backend):
    # Boundaries included: 0.1 exactly starts frame 1; 0.0999 is still frame 0.
    times = [0.0, 0.0999, 0.1, 0.15, 0.55, 1.0, 1.2345, 1.9, 1.9999, 0.55]
    frames = read_frames(media["clip"], times, backend)
    assert frames.dtype == torch.uint8 and frames.shape == (len(times), 3, SIZE[1], SIZE[0])
    assert [frame_index(f) for f in frames] == [_expected_index(t) for t in times]
    # The content, not only the index, is the source picture (lossy codec: small error).
    ref = torch.from_numpy(render_frame(5, SIZE)).permute(2, 0, 1).float()
    assert (frames[4].float() - ref).abs().mean() < 4


def test_backends_return_the_same_frames(media):
    if not HAS_DECORD:
        pytest.skip("decord is not installed")
    times = list(np.random.default_rng(0).uniform(0, DURATION, 12))
    a = read_frames(media["clip"], times, "torchcodec")
    b = read_frames(media["clip"], times, "decord")
    assert [frame_index(f) for f in a] == [frame_index(f) for f in b] == [_expected_index(t) for t in times]
    assert (a.int() - b.int()).abs().float().mean() < 2.0


@pytest.mark.parametrize("ext", [".mkv", ".webm", ".avi"])
def test_other_containers_pick_the_right_frame(tmp_path, ext):
    # .webm has its first frame at pts 0.007: times count from the stream start.
    path = make_video(tmp_path / f"v{ext}", duration=1.0, fps=FPS, audio_sr=48000 if ext == ".webm" else 16000)
    times = [0.0, 0.1, 0.35, 0.999]
    for backend in [b for b in VIDEO_BACKENDS if b != "decord" or HAS_DECORD]:
        info = probe_video(path, backend)
        assert info.num_frames == 10 and info.duration == pytest.approx(1.0, abs=1e-3)
        assert [frame_index(f) for f in read_frames(path, times, backend)] == [0, 1, 3, 9]


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate(tmp_path, backend):
    starts = [0.0, 0.1, 0.15, 0.4, 0.45, 0.5, 0.9, 1.0, 1.3, 1.35]
    path = make_vfr_video(tmp_path / "vfr.mp4", starts)
    times = [0.05, 0.12, 0.2, 0.42, 0.47, 0.7, 0.95, 1.2, 1.32]
    expected = [int(np.searchsorted(starts, t, side="right") - 1) for t in times]
    # One call per time, as a data loader does (a batch could hide a per-frame mistake).
    assert [frame_index(read_frames(path, [t], backend)[0]) for t in times] == expected
    assert [frame_index(f) for f in read_frames(path, times, backend)] == expected
    assert probe_video(path, backend).num_frames == len(starts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_video(media, backend):
    info = probe_video(media["clip"], backend)
    assert isinstance(info, VideoInfo)
    assert info.path == str(media["clip"])
    assert (info.num_frames, info.width, info.height, info.has_audio) == (20, 64, 48, True)
    assert info.fps == pytest.approx(FPS, rel=1e-3) and info.duration == pytest.approx(DURATION, abs=1e-3)
    assert probe_video(media["noaudio"], backend).has_audio is False


def test_video_reader_reuses_one_decoder(media):
    assert DEFAULT_VIDEO_BACKEND in VIDEO_BACKENDS
    with VideoReader(media["clip"]) as reader:
        assert reader.info == probe_video(media["clip"])
        first = reader.get_frames([1.5])
        again = reader.get_frames([0.2, 1.5])
        assert [frame_index(f) for f in again] == [2, 15]
        assert torch.equal(first[0], again[1])
        assert reader.get_frames([]).shape == (0, 3, 48, 64)


# ------------------------------------------------------------------------------------------ audio


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT", "PCM_24", "PCM_32", "PCM_U8"])
def test_wav_slice_is_exact(tmp_path, subtype):
    sr = 8000
    noise = np.random.default_rng(1).uniform(-0.9, 0.9, size=(2 * sr, 2))  # stereo, 2 s
    path = make_wav(tmp_path / "a.wav", noise, sr, subtype=subtype)
    expected = wav_expected(noise, sr, subtype=subtype).mean(axis=1)
    out = read_audio(path, start=0.3, duration=0.5)
    assert out.dtype == torch.float32 and out.shape == (4000,)
    np.testing.assert_allclose(out.numpy(), expected[2400:6400], atol=1e-6)
    np.testing.assert_allclose(read_audio(path).numpy(), expected, atol=1e-6)
    info = probe_audio(path)
    assert info == AudioInfo(str(path), sr, 2 * sr, 2, 2.0)


def test_padding_at_start_and_end(tmp_path):
    sr = 8000
    noise = np.random.default_rng(2).uniform(-0.5, 0.5, size=sr)  # 1 s mono
    path = make_wav(tmp_path / "a.wav", noise, sr)
    expected = wav_expected(noise, sr)[:, 0]
    head = read_audio(path, start=-0.25, duration=1.0)
    assert head.shape == (8000,)
    assert torch.all(head[:2000] == 0)
    np.testing.assert_allclose(head[2000:].numpy(), expected[:6000], atol=1e-6)
    tail = read_audio(path, start=0.5, duration=1.0)
    assert tail.shape == (8000,)
    np.testing.assert_allclose(tail[:4000].numpy(), expected[4000:], atol=1e-6)
    assert torch.all(tail[4000:] == 0)
    # Resampled and padded: still exactly round(duration * rate) samples.
    assert read_audio(path, start=0.7, duration=1.0, sample_rate=48000).shape == (48000,)
    assert read_audio(path, start=-0.25, duration=1.0, pad=False).shape == (6000,)
    assert read_audio(path, start=0.5, duration=1.0, pad=False).shape == (4000,)


def _peak_hz(x: torch.Tensor, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x.numpy() * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


@pytest.mark.parametrize("src_sr,dst_sr", [(16000, 48000), (44100, 48000), (48000, 16000)])
def test_resampling_keeps_length_and_frequency(tmp_path, src_sr, dst_sr):
    path = make_wav(tmp_path / "tone.wav", 1000.0, src_sr, channels=2, duration=2.0)
    out = read_audio(path, start=0.4, duration=1.0, sample_rate=dst_sr)
    assert out.shape == (dst_sr,)
    assert abs(_peak_hz(out, dst_sr) - 1000.0) <= 1.0
    # Amplitude kept: channels 0.5 and 0.25 peak average to 0.375.
    assert float(out[100:-100].abs().max()) == pytest.approx(0.375, abs=0.01)


def test_audio_from_mp4_track(media):
    info = probe_audio(media["clip"])
    assert (info.sample_rate, info.num_channels) == (AUDIO_SR, 1)
    assert info.duration == pytest.approx(DURATION, abs=0.03)
    out = read_audio(media["clip"], start=0.5, duration=1.0, sample_rate=48000)
    assert out.dtype == torch.float32 and out.shape == (48000,)
    assert abs(_peak_hz(out, 48000) - TONE) <= 2.0
    assert float(out.abs().max()) == pytest.approx(0.5, abs=0.05)
    # A window centred on the last frame runs past the end: padded to the exact length.
    assert read_audio(media["clip"], start=1.5, duration=1.0, sample_rate=48000).shape == (48000,)


def test_encoded_audio_file_slice_is_exact(tmp_path):
    # FLAC is lossless, so the torchcodec path must give the same samples as the WAV path.
    sr = 8000
    noise = np.random.default_rng(3).uniform(-0.8, 0.8, size=(sr, 2))
    flac = make_audio(tmp_path / "a.flac", noise, sr)
    expected = wav_expected(noise, sr).mean(axis=1)
    np.testing.assert_allclose(read_audio(flac, 0.3, 0.5).numpy(), expected[2400:6400], atol=1e-6)
    head = read_audio(flac, -0.1, 0.5)
    assert torch.all(head[:800] == 0)
    np.testing.assert_allclose(head[800:].numpy(), expected[:3200], atol=1e-6)
    assert probe_audio(flac) == AudioInfo(str(flac), sr, sr, 2, 1.0)


# ------------------------------------------------------------------------------------- bad inputs


def _raises_naming(path: Path, fn, *args, match: str | None = None, **kwargs) -> DecodeError:
    with pytest.raises(DecodeError) as err:
        fn(path, *args, **kwargs)
    assert path.name in str(err.value) and err.value.path == str(path)
    if match is not None:
        assert match in err.value.reason, err.value.reason
    assert isinstance(err.value, BadClipError)
    return err.value


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_video_inputs(media, tmp_path, backend):
    d = tmp_path
    _raises_naming(d / "missing.mp4", read_frames, [0.5], backend, match="no such file")
    _raises_naming(d / "missing.mp4", probe_video, backend, match="no such file")
    _raises_naming(make_empty(d / "empty.mp4"), read_frames, [0.0], backend, match="empty file")
    _raises_naming(make_non_media(d / "text.mp4"), read_frames, [0.0], backend)
    _raises_naming(make_non_media(d / "text.mp4"), probe_video, backend)
    _raises_naming(make_wav(d / "a.wav", 440.0, 8000), read_frames, [0.0], backend, match="no video stream")
    for t in (-0.01, DURATION, 5.0, float("nan")):
        _raises_naming(media["clip"], read_frames, [0.5, t], backend, match="outside the video")
    # Cut in half: frames past the cut cannot come back (decord refuses the file at open).
    _raises_naming(media["truncated"], read_frames, [2.5], backend)


def test_truncated_and_corrupt_mp4_torchcodec(media, tmp_path):
    # Header intact (faststart), data cut: early frames still decode, later ones raise.
    assert [frame_index(f) for f in read_frames(media["truncated"], [0.5], "torchcodec")] == [5]
    for mode in ("approximate", "exact"):
        _raises_naming(media["truncated"], read_frames, [2.5], "torchcodec", seek_mode=mode)
    err = _raises_naming(media["truncated"], read_frames, [2.5], "torchcodec")
    assert "truncated" in err.reason
    _raises_naming(make_truncated(media["clip"], tmp_path / "stub.mp4", 0.02), probe_video)
    corrupt = make_corrupt(media["noaudio"], tmp_path / "corrupt.mp4", at=0.5, nbytes=1500)
    with pytest.raises(DecodeError):
        for t in np.arange(0, 1.0, 0.1):
            read_frames(corrupt, [t], "torchcodec")


def test_bad_audio_inputs(media, tmp_path):
    d = tmp_path
    _raises_naming(d / "missing.wav", read_audio, 0.0, 1.0, match="no such file")
    _raises_naming(d / "missing.wav", probe_audio, match="no such file")
    _raises_naming(media["noaudio"], read_audio, 0.0, 1.0, match="no audio stream")
    _raises_naming(media["noaudio"], probe_audio, match="no audio stream")
    _raises_naming(make_empty(d / "empty.wav"), read_audio, match="empty file")
    _raises_naming(make_empty(d / "empty.wav"), probe_audio, match="empty file")
    _raises_naming(make_wav(d / "zero.wav", np.zeros((0, 1)), 8000), read_audio, match="zero length")
    _raises_naming(make_wav(d / "zero.wav", np.zeros((0, 1)), 8000), probe_audio, match="zero length")
    nan = make_nan_wav(d / "nan.wav", sr=8000, nan_at=0.5)
    _raises_naming(nan, read_audio, 0.0, 1.0, match="NaN")
    _raises_naming(nan, read_audio, 0.25, 0.5, sample_rate=16000, match="NaN")
    assert torch.isfinite(read_audio(nan, 0.0, 0.4)).all()  # the window before the NaN is fine
    _raises_naming(make_non_media(d / "text.wav"), read_audio)
    _raises_naming(make_non_media(d / "text.flac"), probe_audio)
    wav = make_wav(d / "one.wav", 440.0, 8000)
    _raises_naming(make_truncated(wav, d / "cut.wav", 0.5), read_audio, 0.0, 0.2, match="truncated")
    _raises_naming(make_truncated(wav, d / "cut.wav", 0.5), probe_audio, match="truncated")
    _raises_naming(wav, read_audio, 1.5, 1.0, match="no samples")
    _raises_naming(wav, read_audio, -3.0, 1.0, match="no samples")
    _raises_naming(media["clip"], read_audio, 5.0, 1.0, match="no samples")
    _raises_naming(media["truncated"], read_audio, 2.0, 1.0)


def test_bad_arguments_are_value_errors(media):
    with pytest.raises(ValueError):
        read_frames(media["clip"], [0.1], backend="ffmpeg-cli")
    with pytest.raises(ValueError):
        read_audio(media["clip"], 0.0, 0.0)
    with pytest.raises(ValueError):
        read_audio(media["clip"], 0.0, 1.0, sample_rate=0)
