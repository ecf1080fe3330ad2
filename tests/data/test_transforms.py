"""The OpenCV frame transform against torchvision's reference pipeline."""

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from avcorr.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize, frame_transform


def _smooth_frame(h: int, w: int) -> torch.Tensor:
    """uint8 (3, H, W) with low-frequency content, where interpolation methods agree closely."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 100 * np.sin(x / w * 2 * np.pi) * np.cos(y / h * np.pi)
    g = 255 * x / w
    b = 255 * y / h
    return torch.from_numpy(np.stack([r, g, b]).round().clip(0, 255).astype(np.uint8))


@pytest.mark.parametrize("shape", [(128, 128), (240, 320), (48, 64), (300, 200)])
def test_eval_transform_matches_torchvision(shape):
    frame = _smooth_frame(*shape)
    ref = v2.Compose([v2.Resize(96, antialias=True), v2.CenterCrop(96), v2.ToDtype(torch.float32, scale=True),
                      v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])(frame)
    out = frame_transform(96, train=False)(frame)
    assert out.shape == (3, 96, 96) and out.dtype == torch.float32
    diff = (denormalize(out) - denormalize(ref)).abs()  # in [0, 1] pixel units
    assert float(diff.mean()) < 0.01 and float(diff.max()) < 0.08


def test_train_transform_is_seeded_random_and_flips():
    frame = _smooth_frame(120, 160)
    tf = frame_transform(64, train=True)
    torch.manual_seed(3)
    a = tf(frame)
    torch.manual_seed(3)
    b = tf(frame)
    assert a.shape == (3, 64, 64) and torch.equal(a, b)  # torch's generator drives every draw
    outs = [tf(frame) for _ in range(40)]
    assert len({float(o.sum()) for o in outs}) > 30  # crops and jitter differ
    # the green channel rises left to right; a flipped output falls
    slopes = [float(denormalize(o)[1, :, -8:].mean() - denormalize(o)[1, :, :8].mean()) for o in outs]
    flipped = sum(s < 0 for s in slopes)
    assert 8 <= flipped <= 32


def test_train_transform_without_augment_is_the_eval_pipeline():
    frame = _smooth_frame(90, 120)
    assert torch.equal(frame_transform(64, train=True, augment=False)(frame), frame_transform(64, train=False)(frame))


def test_transform_accepts_hwc_arrays_and_gray_and_rejects_floats():
    frame = _smooth_frame(50, 70)
    tf = frame_transform(32, train=False)
    assert torch.equal(tf(frame), tf(frame.permute(1, 2, 0).numpy()))
    gray = tf(frame[:1])
    assert gray.shape == (3, 32, 32) and torch.allclose(denormalize(gray)[0], denormalize(gray)[2], atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        tf(frame.float())
    with pytest.raises(ValueError, match="shape"):
        tf(frame[0])


def test_frames_of_one_clip_share_the_random_draw():
    frames = torch.stack([_smooth_frame(60, 80), _smooth_frame(60, 80)])
    torch.manual_seed(1)
    out = frame_transform(32, train=True)(frames)
    assert out.shape == (2, 3, 32, 32) and torch.equal(out[0], out[1])  # same crop, flip and jitter
    torch.manual_seed(1)
    assert torch.equal(frame_transform(32, train=True)(frames[0]), out[0])


# -- frames finished on the device (data.device_transforms) -------------------------------------

from avcorr.data.transforms import device_frames  # noqa: E402


@pytest.mark.parametrize("shape", [(128, 128), (48, 64), (300, 200)])
def test_device_frames_equal_the_cpu_transform_in_evaluation(shape):
    frame = _smooth_frame(*shape)
    fields = frame_transform(40, train=False, on_device=True).fields(frame)
    assert fields["image"].dtype == torch.uint8 and fields["image"].shape == (3, 40, 40)
    assert fields["image_jitter"].tolist() == [1.0, 1.0, 0.0]
    out = device_frames(fields["image"][None], fields["image_jitter"][None])[0]
    torch.testing.assert_close(out, frame_transform(40, train=False)(frame), rtol=0, atol=1e-6)
    torch.testing.assert_close(device_frames(fields["image"][None])[0], out, rtol=0, atol=1e-6)


def test_device_frames_follow_the_cpu_training_draws():
    """Same seed, same crop, flip and jitter: the two paths agree to a couple of grey levels where nothing
    saturates (the CPU jitters before resizing and rounds to uint8 after each step)."""
    y, x = np.mgrid[0:72, 0:96].astype(np.float32)
    frame = torch.from_numpy(np.stack([80 + 60 * x / 96, 110 + 30 * np.sin(y / 9), 140 - 60 * y / 72])
                             .round().astype(np.uint8))
    cpu, dev = frame_transform(48, train=True), frame_transform(48, train=True, on_device=True)
    flips = set()
    for seed in range(8):
        torch.manual_seed(seed)
        want = cpu(frame)
        torch.manual_seed(seed)
        fields = dev.fields(frame)
        flips.add(float(fields["image_jitter"][2]))
        got = device_frames(fields["image"][None], fields["image_jitter"][None])[0]
        levels = (denormalize(got) - denormalize(want)).abs() * 255
        assert float(levels.max()) < 2.5 and float(levels.mean()) < 0.8, seed
    assert flips == {0.0, 1.0}


def test_on_device_fields_of_a_clips_frames_share_one_draw():
    """(N, 3, H, W) frames of one clip (Sound of Pixels' sources): one crop, flip and jitter for all N, as the
    CPU transform of the same frames under the same seed."""
    frames = torch.stack([_smooth_frame(60, 80), _smooth_frame(60, 80).flip(-1)])
    cpu, dev = frame_transform(32, train=True), frame_transform(32, train=True, on_device=True)
    for seed in range(4):
        torch.manual_seed(seed)
        want = cpu(frames)
        torch.manual_seed(seed)
        fields = dev.fields(frames)
        assert fields["image"].dtype == torch.uint8 and fields["image"].shape == (2, 3, 32, 32)
        assert fields["image_jitter"].shape == (3,)
        got = device_frames(fields["image"], fields["image_jitter"].expand(2, 3))
        assert float(((denormalize(got) - denormalize(want)).abs() * 255).max()) < 2.5, seed
    plain = frame_transform(32, train=False, on_device=True).fields(frames)
    assert plain["image_jitter"].tolist() == [1.0, 1.0, 0.0]
    torch.testing.assert_close(device_frames(plain["image"]), frame_transform(32, train=False)(frames), rtol=0,
                               atol=1e-6)


def test_device_frames_keep_channels_last_and_check_their_input():
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    jitter = torch.tensor([[1.2, 0.8, 1.0]] * 4)
    plain = device_frames(images, jitter)
    last = device_frames(images.contiguous(memory_format=torch.channels_last), jitter)
    assert last.is_contiguous(memory_format=torch.channels_last) and plain.is_contiguous()
    torch.testing.assert_close(last, plain)
    # a brightness of 1.2 saturates like the CPU path: nothing above 255 before normalising
    pixels = plain * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert float(pixels.max()) <= 1.0 + 1e-6 and float(pixels.max()) > 1.0 - 1e-6
    torch.testing.assert_close(device_frames(images, torch.tensor([[1.0, 1.0, 1.0]] * 4)),
                               device_frames(images).flip(-1))
    with pytest.raises(ValueError, match="uint8"):
        device_frames(images.float())
    with pytest.raises(ValueError, match=r"\(B, 3\) jitter"):
        device_frames(images, jitter[:2])


# -- audio as int16 to the device (data.device_transforms with int16 shards) --------------------

from avcorr.data.transforms import device_audio, to_pcm16  # noqa: E402


def test_pcm16_round_trip_is_exact_for_int16_audio_and_within_half_a_step_otherwise():
    rng = np.random.default_rng(0)
    stored = rng.integers(-32768, 32768, size=(3, 800)).astype(np.int16)
    wave = stored.astype(np.float32) * np.float32(1 / 32768)  # what the shard reader makes of int16 samples
    assert np.array_equal(to_pcm16(wave), stored)
    gain = torch.tensor([0.8, 1.0, 1.17], dtype=torch.float32)
    cpu = torch.from_numpy(wave) * gain[:, None]  # the CPU path: float32 samples times the gain
    assert torch.equal(device_audio(torch.from_numpy(stored), gain), cpu)
    other = rng.uniform(-1, 1, size=800).astype(np.float32)
    back = device_audio(torch.from_numpy(to_pcm16(other))[None])[0].numpy()
    assert back.dtype == np.float32 and np.abs(back - other).max() <= 1 / 65536 + 1e-9
    assert to_pcm16(np.array([1.0, 1.5, -1.0, -2.0], np.float32)).tolist() == [32767, 32767, -32768, -32768]


def test_device_audio_passes_float_audio_and_checks_the_gain():
    floats = torch.rand(2, 16)
    assert device_audio(floats, torch.ones(2)) is floats
    with pytest.raises(ValueError, match=r"\(B,\) gain"):
        device_audio(torch.zeros(2, 16, dtype=torch.int16), torch.ones(3))
    sources, gain = torch.randint(-32768, 32768, (2, 3, 16), dtype=torch.int16), torch.rand(2, 3)  # (B, N, T)
    assert torch.equal(device_audio(sources, gain), device_audio(sources.flatten(0, 1), gain.flatten()).view(2, 3, 16))
    with pytest.raises(ValueError, match=r"\(B, N\) gain"):
        device_audio(sources, gain[:, :2])
