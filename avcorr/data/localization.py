"""Sound-localization evaluation data: the frame at each clip's middle time, its audio and its boxes.

``boxes.json`` gives the sounding object(s) at the clip's middle time (``duration / 2`` of the
video), so evaluation uses exactly that frame, and the ``seconds`` of audio centred on it (padded
with zeros where the window runs past the audio). Following the LVS / EZ-VSL evaluation, the frame
is resized to ``image_size x image_size`` without cropping, so normalised boxes stay valid on it
(training uses :class:`~avcorr.data.avc.AVCPairDataset`'s crops; see :mod:`avcorr.metrics.localization`).

A clip that cannot be decoded is not replaced: its item is marked bad, :func:`collate_localization`
drops it from the batch and reports it in ``batch['skipped']``, so metrics are computed over the
clips that could be read and the skipped ones are counted.

Batch dict produced by :func:`collate_localization` (B = good items, S = image size,
T = seconds * rate)::

    image      float32 (B, 3, S, S)  ImageNet-normalised frame at the middle time (squashed to S x S);
               uint8 (B, 3, S, S)    with ``device_transforms``: the squashed frame, normalised on the device
                                     by the localization task's ``device_transform``
    audio      float32 (B, T)        mono waveform centred on that frame (from a shard stream of int16
               int16 (B, T)          shards with ``device_transforms``: the stored samples, x 32768)
    label      int64   (B,)          1 (the audio belongs to the frame)
    time       float32 (B,)          the frame's time in its clip (s)
    audio_time float32 (B,)          centre of the audio window (s)
    vid        list[str]             clip ids
    audio_vid  list[str]             = vid
    boxes      list[list[box]]       normalised [x1, y1, x2, y2] boxes per clip (may be empty)
    skipped    list[(vid, reason)]   clips that could not be read

The same collate function also accepts :class:`~avcorr.data.avc.AVCPairDataset` items (training).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from . import decode
from .errors import BadClipError
from .layout import Clip, SplitIndex
from .transforms import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)

__all__ = ["LocalizationDataset", "collate_localization", "squash_transform"]

_LIST_KEYS = ("vid", "audio_vid", "boxes", "skipped", "bad")


def squash_transform(image_size: int, on_device: bool = False) -> torch.nn.Module:
    """uint8 (3, H, W) frame -> float (3, S, S) ImageNet-normalised, resized WITHOUT cropping (LVS evaluation).

    Args:
        image_size: S.
        on_device: stop after the resize: uint8 (3, S, S), the normalisation left to
            :func:`~avcorr.data.transforms.device_frames` (``data.device_transforms``).
    """
    from torchvision.transforms import v2  # here: torchvision takes about a second to import

    resize = v2.Resize((image_size, image_size), antialias=True)
    if on_device:
        return resize
    return v2.Compose([resize, v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class LocalizationDataset(Dataset):
    """One example per clip with video: middle frame, centred audio, ground-truth boxes.

    Args:
        index: the split, from :func:`avcorr.data.layout.load_split`.
        sample_rate: audio is resampled to this rate.
        seconds: audio window length, centred on the frame.
        image_size: frame side after the (non-cropping) resize.
        video_backend: decoder (``None`` = default).
        boxed_only: keep only the clips that have boxes.
        device_transforms: hand over the squashed frame as uint8, normalised on the device (see the module
            docstring).
    """

    def __init__(self, index: SplitIndex, *, sample_rate: int = 48000, seconds: float = 1.0, image_size: int = 224,
                 video_backend: str | None = None, boxed_only: bool = False, device_transforms: bool = False):
        self.split = f"{index.root}/{index.split}"
        self.sample_rate, self.seconds = sample_rate, seconds
        self.video_backend = video_backend or None
        self.transform = squash_transform(image_size, on_device=device_transforms)
        self.init_skipped: list[tuple[str, str]] = []
        self.clips: list[Clip] = []
        for clip in index.clips:
            if clip.video is None:
                self.init_skipped.append((clip.vid, "no video file"))
            elif not (boxed_only and not clip.boxes):
                self.clips.append(clip)
        for vid, reason in self.init_skipped:
            logger.warning("%s: skipped clip %s: %s", self.split, vid, reason)
        if not self.clips:
            raise BadClipError(self.split, f"no usable clip with video ({len(self.init_skipped)} skipped)")

    @property
    def has_boxes(self) -> bool:
        """Whether any clip of the split has ground-truth boxes."""
        return any(c.boxes for c in self.clips)

    def __len__(self) -> int:
        return len(self.clips)

    def _make(self, clip: Clip) -> dict[str, Any]:
        with decode.VideoReader(clip.video, self.video_backend) as reader:
            t = reader.duration / 2
            frame = reader.get_frames([t])[0]
        source = clip.audio if clip.audio is not None else clip.video
        wave = decode.read_audio(source, t - self.seconds / 2, self.seconds, self.sample_rate)
        return {
            "image": self.transform(frame),
            "audio": wave,
            "label": torch.tensor(1),
            "time": torch.tensor(t, dtype=torch.float32),
            "audio_time": torch.tensor(t, dtype=torch.float32),
            "vid": clip.vid,
            "audio_vid": clip.vid,
            "boxes": [list(b) for b in clip.boxes],
            "skipped": [],
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip = self.clips[i]
        try:
            return self._make(clip)
        except BadClipError as e:  # decode problems, NaN audio, no audio stream ...
            return {"vid": clip.vid, "bad": True, "skipped": [(clip.vid, str(e))]}


def collate_localization(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate :class:`LocalizationDataset` (or :class:`~avcorr.data.avc.AVCPairDataset`) items.

    Bad items are dropped and listed in ``skipped``; tensors are stacked; ids and boxes stay lists.
    A batch whose items were all bad has only ``skipped`` and an empty ``vid`` list.
    """
    good = [b for b in batch if not b.get("bad")]
    skipped = [s for b in batch for s in b.get("skipped", ())]
    out: dict[str, Any] = {}
    if good:
        out = default_collate([{k: v for k, v in b.items() if k not in _LIST_KEYS} for b in good])
    for key in ("vid", "audio_vid", "boxes"):
        if good and key in good[0]:
            out[key] = [b[key] for b in good]
    out.setdefault("vid", [])
    out["skipped"] = skipped
    return out
