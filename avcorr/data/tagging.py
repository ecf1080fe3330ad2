"""Labelled audio clips for supervised tagging (PANNs, AST): four sources, one dataset, two samplers.

Sources - each returns a :class:`~avcorr.data.records.Manifest`: the clips as
:class:`~avcorr.data.records.Clip` records (labels as class names; the sound is read from
``Clip.media``, or from ``Clip.h5`` for HDF5 packs) and the :class:`~avcorr.data.records.LabelSpace`
that maps the names to indices:

* :func:`layout_source` - a split of the vid2genre layout (``vid2genre.json``; the clip's
  ``audio/<vid>.wav``, else the audio track of ``video/<vid>.mp4``).
* :func:`folder_source` - a folder per class, ``ROOT/<class>/<file>`` (audio files, or videos whose
  audio track is used; sub-folders inside a class folder are searched too). A clip that sits in two
  class folders has both labels: two files are the same clip when their CONTENTS are identical (same
  bytes; a copy keeps its label however it is named, and two different recordings that happen to
  share a name, e.g. ``cat/001.wav`` and ``dog/001.wav``, stay two clips). Splits: when ``ROOT`` has
  ``train/`` (and ``val/``, ``test/``) sub-folders, each is a folder-per-class tree and IS the split
  (classes are the union over them, so indices agree); otherwise a clip goes to ``val`` when the
  first 8 bytes of the BLAKE2b hash of its contents, read as a fraction of 2**64, are below
  ``val_fraction``, else to ``train``. The split depends only on the clip's bytes: adding or removing
  other files never moves a clip between splits.
* :func:`hdf5_source` - PANNs HDF5 packs (``audio_name`` S20, ``waveform`` int16 (N, samples),
  ``target`` bool (N, C), attribute ``sample_rate``; written by ``data_tools/pack_waveforms_to_hdf5.py``
  or the reference code) or PANNs index files (``hdf5_path``, ``index_in_hdf5``) that point into packs.
  Rows with an empty ``audio_name`` (files the packer did not find) are skipped and counted.
* :func:`ast_json_source` - AST datafiles ``{"data": [{"wav": path, "labels": "/m/a,/m/b"}]}`` with the
  ``class_labels_indices.csv`` that maps the mids to indices.

:class:`TaggingDataset` turns clips into fixed-length model inputs: in training a random window of
``clip_samples`` (the model's clip length) when the clip is longer, zero-padded on both sides at a
random place when it is shorter; in evaluation (zero-padded at the end) the centre window (``eval_crop="center"``) or the whole clip
(``eval_crop="full"``, padded to the batch's longest clip by :func:`collate_tagging`). Audio is read
at (resampled to) the model's rate, channels averaged. A clip that cannot be read is logged, counted
(``batch['skipped']``) and never replaced by zeros: in training another clip is drawn, in
evaluation it is left out of the batch.

Batch dict of :func:`collate_tagging` (B clips, T samples, C classes)::

    wave     float32 (B, T)  mono waveforms at the model's sample rate
    target   float32 (B, C)  multi-hot labels
    label    int64   (B,)    the class index for single-label data, -1 for multi-label data
    vid      list[str]       clip ids
    skipped  list[(vid, reason)]

Samplers: :class:`BalancedClassSampler` (PANNs' balanced sampling: cycle over the classes in
shuffled order and draw the next clip of each) and :class:`WeightedClipSampler` (AST: clips drawn
with replacement by weight, :func:`label_rarity_weights` or an AST weight file). Both reseed with
``set_epoch`` and shard by rank under DDP.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from . import decode
from ._clip_media import ClipFailed, draw_with_retries
from ._tag_samplers import BalancedClassSampler, WeightedClipSampler, label_rarity_weights, read_weight_file
from ._tag_sources import (  # re-exported: the public names, and the constants other modules use
    FOLDER_SPLITS as FOLDER_SPLITS,
    FORMATS as FORMATS,
    MEDIA_EXTENSIONS as MEDIA_EXTENSIONS,
    _h5py,
    ast_json_source,
    folder_source,
    hdf5_source,
    layout_source,
    layout_to_folders,
    open_source,
    read_label_csv,
)
from .errors import BadClipError, LayoutError
from .records import Clip, Manifest

logger = logging.getLogger(__name__)

__all__ = [
    "BalancedClassSampler",
    "TaggingDataset",
    "WeightedClipSampler",
    "ast_json_source",
    "collate_tagging",
    "folder_source",
    "hdf5_source",
    "label_rarity_weights",
    "layout_source",
    "layout_to_folders",
    "open_source",
    "read_label_csv",
    "read_weight_file",
]


# ---------------------------------------------------------------------------------------------- dataset


class TaggingDataset(Dataset):
    """Fixed-length waveforms and multi-hot targets for a tagging model (see the module docstring).

    Args:
        source: clips and label space from one of the source functions.
        sample_rate: the model's rate; audio is resampled to it.
        clip_samples: the model's clip length in samples (training windows, evaluation centre windows).
        train: random windows and bad-clip replacement (training) or deterministic windows (evaluation).
        multilabel: multi-label data (``label`` is -1) or single-label (every clip must have one label;
            unlabelled clips are skipped).
        eval_crop: ``"center"`` or ``"full"`` (evaluation only).
        min_samples: the shortest input the model accepts (shorter clips are padded to it).
        max_bad_retries: training: bad clips in a row tolerated while drawing one example.
    """

    def __init__(self, source: Manifest, *, sample_rate: int, clip_samples: int, train: bool,
                 multilabel: bool, eval_crop: str = "center", min_samples: int = 1, max_bad_retries: int = 20):
        if eval_crop not in ("center", "full"):
            raise ValueError(f"eval_crop must be 'center' or 'full', got {eval_crop!r}")
        if sample_rate <= 0 or clip_samples <= 0:
            raise ValueError(f"sample_rate and clip_samples must be positive, got {sample_rate}, {clip_samples}")
        self.name = source.name
        self.label_space = source.label_space
        self.classes = list(source.classes)
        self.sample_rate, self.clip_samples, self.train = int(sample_rate), int(clip_samples), train
        self.multilabel, self.eval_crop = multilabel, eval_crop
        self.min_samples = max(1, int(min_samples))
        self.max_bad_retries = max_bad_retries
        self.init_skipped: list[tuple[str, str]] = list(source.skipped)
        clips = []
        for c in source.clips:
            if not multilabel and len(c.labels) != 1:
                if len(c.labels) == 0:
                    self.init_skipped.append((c.vid, "no label (single-label training needs one)"))
                    continue
                raise LayoutError(f"{source.name}: clip {c.vid!r} has {len(c.labels)} labels but label_mode is "
                                  f"'single'; use tagging.label_mode='multi' (or 'auto')")
            clips.append(c)
        self.clips = clips
        for vid, reason in self.init_skipped:
            logger.warning("%s: skipped clip %s: %s", self.name, vid, reason)
        if not self.clips:
            raise BadClipError(self.name, f"no usable clip ({len(self.init_skipped)} skipped)")
        self._bad: dict[str, str] = {}
        self._durations: dict[int, float] = {}
        self._h5: dict[str, Any] = {}
        self._h5_pid = os.getpid()
        self._h5_rates: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def targets(self) -> np.ndarray:
        """bool (N, C) labels of the clips (for samplers and weights)."""
        return self.label_space.multi_hot(self.clips, self.name)

    def class_indices(self) -> list[np.ndarray]:
        """C int64 arrays: the indices of each class's clips, ascending (for the balanced sampler)."""
        from ._tag_samplers import group_by_class

        rows, cols = self.label_space.pairs(self.clips, self.name)
        return group_by_class(rows, cols, len(self.classes))

    # -- reading -----------------------------------------------------------------------------
    def _window(self, total: int, rng: np.random.Generator | None) -> tuple[int, int | None]:
        """(start, length or None = to the end) in samples of a clip of ``total`` samples."""
        if self.train:
            if total > self.clip_samples:
                return int(rng.integers(0, total - self.clip_samples + 1)), self.clip_samples  # type: ignore[union-attr]
            return 0, None
        if self.eval_crop == "full" or total <= self.clip_samples:
            return 0, None
        return (total - self.clip_samples) // 2, self.clip_samples

    def _read_file(self, i: int, clip: Clip, rng: np.random.Generator | None) -> torch.Tensor:
        path = str(clip.media)
        dur = self._durations.get(i)
        if dur is None:
            dur = decode.probe_audio(path).duration
            self._durations[i] = dur
        sr = self.sample_rate
        start, length = self._window(int(math.floor(dur * sr)), rng)
        if length is None:
            return decode.read_audio(path, 0.0, None, sr)
        return decode.read_audio(path, start / sr, length / sr, sr)

    def _pack(self, file: str):
        if self._h5_pid != os.getpid():  # h5py handles must not cross a fork
            self._h5, self._h5_pid = {}, os.getpid()
        f = self._h5.get(file)
        if f is None:
            try:
                f = _h5py().File(file, "r")
            except OSError as err:
                raise BadClipError(file, f"cannot open HDF5 pack ({err})") from err
            if "waveform" not in f:
                raise BadClipError(file, "not a PANNs waveform pack (no 'waveform' dataset)")
            if "sample_rate" not in f.attrs:
                raise BadClipError(file, "pack has no 'sample_rate' attribute")
            self._h5[file] = f
            self._h5_rates[file] = int(f.attrs["sample_rate"])
        return f

    def _read_h5(self, clip: Clip, rng: np.random.Generator | None) -> torch.Tensor:
        file, row = clip.h5  # type: ignore[misc]
        f = self._pack(file)
        if not 0 <= row < f["waveform"].shape[0]:
            raise BadClipError(file, f"row {row} outside the pack's {f['waveform'].shape[0]} rows")
        rate = self._h5_rates[file]
        total = f["waveform"].shape[1]
        want = int(round(self.clip_samples * rate / self.sample_rate))
        # the window in the pack's samples; resampled afterwards
        if self.train and total > want:
            a = int(rng.integers(0, total - want + 1))  # type: ignore[union-attr]
            b = a + want
        elif not self.train and self.eval_crop == "center" and total > want:
            a = (total - want) // 2
            b = a + want
        else:
            a, b = 0, total
        x = torch.from_numpy(np.asarray(f["waveform"][row, a:b], dtype=np.float32) / 32767.0)
        if rate != self.sample_rate:
            x = decode._resampler(rate, self.sample_rate)(x)
        return x

    def load(self, i: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """The (cropped, resampled, padded) float32 (T,) waveform of clip ``i``.

        Raises:
            BadClipError: the clip cannot be read (missing, undecodable, NaN ...).
        """
        clip = self.clips[i]
        wave = self._read_h5(clip, rng) if clip.h5 is not None else self._read_file(i, clip, rng)
        where = str(clip.media) if clip.media is not None else clip.vid
        if wave.numel() == 0:
            raise BadClipError(where, "no audio samples")
        if not bool(torch.isfinite(wave).all()):
            raise BadClipError(where, "NaN or Inf samples")
        want = self.clip_samples if (self.train or self.eval_crop == "center") else max(wave.numel(), self.min_samples)
        if self.train or self.eval_crop == "center":
            wave = wave[: self.clip_samples]
        if wave.numel() < want:
            # training: a short clip lands at a random place in the window (a time shift, so the model
            # does not learn that sounds start at 0); evaluation: at the start
            left = int(rng.integers(0, want - wave.numel() + 1)) if (self.train and rng is not None) else 0
            wave = torch.nn.functional.pad(wave, (left, want - wave.numel() - left))
        return wave.contiguous()

    def _item(self, i: int, rng: np.random.Generator | None) -> dict[str, Any]:
        clip = self.clips[i]
        try:
            wave = self.load(i, rng)
        except BadClipError as e:
            raise ClipFailed(clip.vid, str(e)) from e
        labels = self.label_space.indices(clip.labels, f"{self.name}: id {clip.vid!r}")
        target = torch.zeros(len(self.classes), dtype=torch.float32)
        target[list(labels)] = 1.0
        label = labels[0] if not self.multilabel else -1
        return {"wave": wave, "target": target, "label": label, "vid": clip.vid}

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not self.train:
            clip = self.clips[i]
            if clip.vid in self._bad:
                return {"wave": None, "vid": clip.vid, "skipped": [(clip.vid, self._bad[clip.vid])]}
            try:
                item = self._item(i, None)
            except ClipFailed as e:
                self._bad[e.vid] = e.reason
                return {"wave": None, "vid": e.vid, "skipped": [(e.vid, e.reason)]}
            item["skipped"] = []
            return item
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        n = len(self.clips)
        return draw_with_retries(lambda j: self._item(j, rng), lambda j: self.clips[j].vid, n, i,
                                 lambda j: int(rng.integers(0, n)),
                                 self._bad, max_bad_retries=self.max_bad_retries, name=self.name,
                                 failure="failed to load")


def collate_tagging(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate :class:`TaggingDataset` items; clips that failed (evaluation) are left out.

    Waveforms of different lengths (``eval_crop="full"``) are zero-padded at the end to the longest.
    See the module docstring for the batch layout; with every clip of the batch failed, ``wave`` is
    (0, 0) and ``target`` (0, 0).
    """
    skipped = [s for b in batch for s in b.get("skipped", ())]
    good = [b for b in batch if b.get("wave") is not None]
    if not good:
        return {"wave": torch.zeros(0, 0), "target": torch.zeros(0, 0), "label": torch.zeros(0, dtype=torch.long),
                "vid": [], "skipped": skipped}
    t = max(b["wave"].numel() for b in good)
    wave = torch.zeros(len(good), t)
    for k, b in enumerate(good):
        wave[k, : b["wave"].numel()] = b["wave"]
    return {"wave": wave, "target": torch.stack([b["target"] for b in good]),
            "label": torch.tensor([b["label"] for b in good], dtype=torch.long),
            "vid": [b["vid"] for b in good], "skipped": skipped}
