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
