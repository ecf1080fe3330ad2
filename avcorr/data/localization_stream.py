"""Sound-localization evaluation from shards (``data.storage="shards"``): a frame, its audio and its boxes.

The streaming counterpart of :class:`~avcorr.data.localization.LocalizationDataset`, with the same items
(collate them with :func:`~avcorr.data.localization.collate_localization`); training from shards uses
:class:`~avcorr.data.avc_stream.AVCShardStream` with positives only, as the per-sample path uses
:class:`~avcorr.data.avc.AVCPairDataset`. One item per clip:

* the frame is the stored frame nearest to the clip's middle time (``num_frames / fps / 2``, where
  ``boxes.json`` applies; make the shards with an odd ``--frames-per-clip`` so that one sits there),
  resized to ``image_size`` without cropping;
* the audio is the ``seconds`` centred on that frame's time;
* the boxes are the clip's, moved from the ORIGINAL frame (where ``boxes.json`` and the shard's json
  normalise them) into the stored square, which is a centre crop of it (the json's ``crop``): see
  :func:`crop_boxes`. A box partly outside the crop is cut to the part inside; a box wholly outside
  is dropped, and a clip left with no box counts as unboxed (no cIoU). Both are counted and logged
  at the end of the pass. The per-sample path squashes the whole frame instead, so on videos that are
  not square the two score different pictures of the same clip.

Clips are read in shard order, every shard in one process by default (evaluation; split across ranks
with ``split_across_ranks``, one item per clip whoever reads it); a corrupt member
is skipped and reported in the next item's ``skipped`` list, as in every shard stream
(:class:`~avcorr.data._shard_stream.ClipShardStream`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ._shard_stream import ClipShardStream, audio_window, nearest_frames
from .localization import squash_transform
from .shards import ShardDataset, ShardError, iter_shard
from .transforms import to_pcm16

logger = logging.getLogger(__name__)

__all__ = ["LocalizationShardStream", "crop_boxes", "shards_have_boxes"]


def crop_boxes(boxes: Sequence[Sequence[float]], crop: Sequence[float]) -> tuple[list[list[float]], int, int]:
    """Move boxes normalised to an original frame into a crop of it, normalised to the crop.

    Args:
        boxes: ``[x1, y1, x2, y2]`` boxes in ``[0, 1]`` of the original frame.
        crop: ``[x1, y1, x2, y2]`` of the crop in the same coordinates (a shard json's ``crop``).

    Returns:
        ``(boxes, cut, dropped)``: the boxes in ``[0, 1]`` of the crop, in order, each cut to the crop;
        how many were cut (partly outside the crop); how many were dropped (nothing of them inside).

    Raises:
        ValueError: a crop of no width or height.
    """
    cx1, cy1, cx2, cy2 = (float(v) for v in crop)
    w, h = cx2 - cx1, cy2 - cy1
    if not (w > 0 and h > 0):
        raise ValueError(f"crop {list(crop)} has no area")
    out, cut, dropped = [], 0, 0
    for box in boxes:
        x1, y1, x2, y2 = ((float(box[0]) - cx1) / w, (float(box[1]) - cy1) / h,
                          (float(box[2]) - cx1) / w, (float(box[3]) - cy1) / h)
        c = [min(max(x1, 0.0), 1.0), min(max(y1, 0.0), 1.0), min(max(x2, 0.0), 1.0), min(max(y2, 0.0), 1.0)]
        if c[2] <= c[0] or c[3] <= c[1]:
            dropped += 1
            continue
        cut += c != [x1, y1, x2, y2]
        out.append(c)
    return out, cut, dropped


def _middle(meta: dict[str, Any]) -> float:
    """The clip's middle time (s), where ``boxes.json`` applies: half the video's duration."""
    fps, count = float(meta.get("fps") or 0), int(meta.get("num_frames") or 0)
    if fps > 0 and count > 0:
        return count / fps / 2
    times = meta.get("frame_times") or [0.0]
    return (float(times[0]) + float(times[-1])) / 2


def shards_have_boxes(folder: str) -> bool:
    """Whether any clip of a split's shards has a box inside its stored crop (reads the shards' json members,
    stopping at the first such clip; an unreadable shard is passed over with a warning).

    Args:
        folder: a split's shard folder, local or a URL.

    Raises:
        ShardError: no readable manifest.
    """
    def meta(key: str, members: dict[str, bytes], where: str) -> dict[str, Any]:
        try:
            return json.loads(members["json"])
        except (KeyError, ValueError, UnicodeDecodeError):
            return {}

    for url in ShardDataset.from_manifest(folder).urls:
        try:
            for m in iter_shard(url, decode=meta):
                if m.get("boxes") and m.get("crop") and crop_boxes(m["boxes"], m["crop"])[0]:
                    return True
        except ShardError as e:
            logger.warning("looking for boxes: %s", e)
    return False


class LocalizationShardStream(ClipShardStream):
    """One evaluation example per clip of a split's shards: middle frame, its audio, boxes in the crop.

    Items are those of :class:`~avcorr.data.localization.LocalizationDataset`: ``image`` float32 (3, S, S),
    ``audio`` float32 (T,), ``label`` int64 () (1), ``time`` and ``audio_time`` float32 (), ``vid``,
    ``audio_vid`` (= ``vid``), ``boxes`` (list of normalised ``[x1, y1, x2, y2]``, in the stored crop)
    and ``skipped``.

    Args:
        folder: a split's shard folder (``OUT/<split>`` of make_shards), local or a URL.
        sample_rate: the model's rate; the shards must hold audio at this rate.
        seconds: audio window length, centred on the frame.
        image_size: frame side after the (non-cropping) resize.
        seed: unused (evaluation items are fixed); taken as the other shard streams take it.
        rank, world_size: split the shards across processes (default: one reads them all; see
            :meth:`~avcorr.data._shard_stream.ClipShardStream.split_across_ranks`).
        device_transforms: hand over the squashed frame as uint8 (``image`` uint8 (3, S, S)), normalised on the
            device; with shards of int16 audio the audio as int16 too (``audio`` int16 (T,), the stored samples),
            turned into float32 there (:func:`~avcorr.data.transforms.device_audio`).

    Raises:
        ShardError: no readable manifest, no clip, or audio stored at another rate.
    """

    def __init__(self, folder: str, *, sample_rate: int, seconds: float = 1.0, image_size: int = 224, seed: int = 0,
                 rank: int | None = 0, world_size: int | None = 1, device_transforms: bool = False):
        super().__init__(folder, sample_rate=sample_rate, image_size=image_size, window=float(seconds), train=False,
                         per_clip=1, seed=seed, shuffle=0, buffer=1, batch_size=1, rank=rank, world_size=world_size)
        self.seconds = float(seconds)
        self.transform = squash_transform(image_size, on_device=device_transforms)
        self.pcm16 = self.audio_as_pcm16(device_transforms)

    def _frames_of(self, rng: np.random.Generator):
        """The stored frame nearest to the clip's middle time."""
        def pick(meta: dict[str, Any]) -> list[int]:
            times = meta.get("frame_times") or []
            return nearest_frames(times, [_middle(meta)]) if times else []
        return pick

    def _draw(self, sample: dict[str, Any], window: deque, rng: np.random.Generator,
              notes: Counter) -> Iterator[tuple]:
        """The clip's one example: ``(sample, boxes in the crop)``; counts cut and dropped boxes in ``notes``."""
        boxes = sample.get("boxes") or []
        if boxes:
            if "crop" not in sample:
                raise ShardError(f"{self.folder}: {sample['vid']}.json", "boxes but no 'crop' (shards of an older "
                                                                         "make_shards: make them again)")
            boxes, cut, dropped = crop_boxes(boxes, sample["crop"])
            notes["cut"] += cut
            notes["dropped"] += dropped
            notes["unboxed"] += not boxes
        yield sample, boxes

    def _build(self, spec: tuple) -> dict[str, Any]:
        sample, boxes = spec
        t = float(sample["frame_times"][0])
        frame = torch.from_numpy(np.ascontiguousarray(sample["frames"][0])).permute(2, 0, 1)
        wave = audio_window(sample, t, self.seconds)
        return {
            "image": self.transform(frame),
            "audio": torch.from_numpy(to_pcm16(wave) if self.pcm16 else wave),
            "label": torch.tensor(1),
            "time": torch.tensor(t, dtype=torch.float32),
            "audio_time": torch.tensor(t, dtype=torch.float32),
            "vid": sample["vid"],
            "audio_vid": sample["vid"],
            "boxes": boxes,
        }

    def _report(self, worker: int, notes: Counter) -> None:
        if notes["cut"] or notes["dropped"]:
            logger.warning("%s: %d box(es) lay partly outside the stored centre crop and were cut to it, %d wholly "
                           "outside were dropped (%d clip(s) left without a box count as unboxed)", self.folder,
                           notes["cut"], notes["dropped"], notes["unboxed"])
