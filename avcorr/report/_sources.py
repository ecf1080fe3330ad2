"""Where a gallery reads its clips: the split's files (``data.storage="files"``) or its shards (``"shards"``).

A gallery sees a clip through one small interface, the same for both storages:

* ``vid``, ``labels``;
* ``open()``: a reader with :class:`~avcorr.data.decode.VideoReader`'s ``fps``, ``num_frames`` and
  ``get_frames(times)`` (uint8 (N, 3, H, W)), for :class:`~avcorr.inference.separation.Separator`;
  times count from the start of :meth:`track`;
* ``picture(t)``: the frame at ``t`` seconds of the clip, uint8 (H, W, 3);
* ``track(seconds, sample_rate)``: the first ``seconds`` of the clip's sound, float32 (L,);
* ``sound(assets, stem)`` and ``thumbnail(assets, stem, t)``: the gallery assets of the clip's sound
  (first :data:`~avcorr.report._gallery.MAX_AUDIO_SECONDS`) and of its frame at ``t`` (None: the middle).

:class:`FileClip` wraps a :class:`~avcorr.data.layout.Clip` and decodes its files. :class:`ShardClip` wraps
a decoded shard sample (:mod:`avcorr.data.shards`): its frames are the stored ones, centre-cropped to a
square, so a frame "at ``t``" is the stored frame nearest to ``t``, boxes are moved into the crop
(:func:`~avcorr.data.localization_stream.crop_boxes`), and the sound is the stored audio at the shards'
rate (which make_shards set to the model's). :class:`ShardSource` lists a split's shard clips from the
manifest and decodes only the sampled ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ._gallery import MAX_AUDIO_SECONDS

if TYPE_CHECKING:
    import torch

    from ..data.layout import Clip
    from ..inference.retrieval import EmbeddingModel
    from ..retrieval import ClipEmbeddings
    from ._gallery import Assets

logger = logging.getLogger(__name__)


class FileClip:
    """A clip of a dataset root, read from its files.

    Args:
        clip: the clip (it has a video file).
        backend: video decoder backend (None: the default).
    """

    def __init__(self, clip: Clip, backend: str | None = None):
        self.clip, self.backend = clip, backend or None
        self.vid, self.labels = clip.vid, list(clip.labels)
        self.audio_path = clip.audio if clip.audio is not None else clip.video

    def open(self):
        """An open :class:`~avcorr.data.decode.VideoReader` of the clip's video (close it)."""
        from ..data import decode

        return decode.VideoReader(self.clip.video, self.backend)

    def picture(self, t: float) -> np.ndarray:
        """uint8 (H, W, 3): the video's frame at ``t`` seconds."""
        with self.open() as reader:
            return reader.get_frames([t])[0].permute(1, 2, 0).numpy()

    def track(self, seconds: float, sample_rate: int) -> torch.Tensor:
        """float32 (L,): the first ``seconds`` of the clip's sound at ``sample_rate`` (shorter clips: all of it)."""
        from ..data import decode

        return decode.read_audio(self.audio_path, 0.0, seconds, sample_rate, pad=False)

    def sound(self, assets: Assets, stem: str) -> dict[str, str]:
        """The WAV and spectrogram assets of the clip's sound."""
        return assets.audio_file(stem, self.audio_path)

    def thumbnail(self, assets: Assets, stem: str, t: float | None = None) -> str:
        """The frame asset at ``t`` seconds (None: the middle of the video)."""
        return assets.frame(stem, self.clip.video, t)


class ShardClip:
    """A decoded shard sample (the dict of :func:`~avcorr.data.shards.decode_sample`), seen as a clip.

    It is its own reader (``open()`` returns it): ``get_frames(times)`` gives the stored frames nearest to
    ``times`` counted from the stored audio's start (``audio_start`` of the clip).

    Args:
        sample: the decoded sample, with all its stored frames.
    """

    def __init__(self, sample: dict[str, Any]):
        self.sample = sample
        self.vid, self.labels = str(sample["vid"]), list(sample.get("labels") or [])
        self.sample_rate = int(sample["sample_rate"])
        self.fps, self.num_frames = float(sample.get("fps") or 0.0), int(sample.get("num_frames") or 0)
        self.audio_start = float(sample.get("audio_start", 0.0))

    def open(self) -> ShardClip:
        return self

    def close(self) -> None:
        """Nothing to close (the reader API)."""

    def __enter__(self) -> ShardClip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def duration(self) -> float:
        """The clip's video length (s)."""
        if self.fps > 0 and self.num_frames > 0:
            return self.num_frames / self.fps
        times = self.sample["frame_times"]  # no video facts: twice the stored frames' middle
        return float(times[-1] + times[0]) if len(times) else 0.0

    def frames_at(self, times: Sequence[float]) -> torch.Tensor:
        """uint8 (N, 3, S, S): the stored frames nearest to ``times`` (s of the clip; the earlier on a tie)."""
        import torch

        stored = np.asarray(self.sample["frame_times"], dtype=np.float64)
        picks = np.abs(stored[None, :] - np.asarray(times, dtype=np.float64)[:, None]).argmin(axis=1)
        return torch.from_numpy(np.ascontiguousarray(self.sample["frames"][picks])).permute(0, 3, 1, 2)

    def get_frames(self, times: Sequence[float]) -> torch.Tensor:
        """The reader API: :meth:`frames_at` of ``times`` counted from the start of :meth:`track`."""
        return self.frames_at([t + self.audio_start for t in times])

    def picture(self, t: float) -> np.ndarray:
        """uint8 (S, S, 3): the stored frame nearest to ``t`` seconds of the clip."""
        return self.frames_at([t])[0].permute(1, 2, 0).numpy()

    def track(self, seconds: float, sample_rate: int) -> torch.Tensor:
        """float32 (L,): the first ``seconds`` of the stored audio, which must be at ``sample_rate``."""
        import torch

        if sample_rate != self.sample_rate:
            raise ValueError(f"{self.vid}: the shards hold audio at {self.sample_rate} Hz, the model takes "
                             f"{sample_rate} Hz")
        return torch.from_numpy(self.sample["audio"][: round(seconds * sample_rate)].copy())

    def sound(self, assets: Assets, stem: str) -> dict[str, str]:
        """The WAV and spectrogram assets of the stored audio (first :data:`MAX_AUDIO_SECONDS`)."""
        return assets.sound(stem, self.sample["audio"], self.sample_rate)

    def thumbnail(self, assets: Assets, stem: str, t: float | None = None) -> str:
        """The asset of the stored frame nearest to ``t`` (None: the middle of the clip)."""
        return assets.image(stem, self.picture(self.duration / 2 if t is None else t))

    def boxes(self) -> list[list[float]]:
        """The clip's boxes moved into the stored crop (normalised ``[x1, y1, x2, y2]``; those outside dropped).

        Raises:
            ValueError: boxes but no ``crop`` in the sample's json (shards of an older make_shards).
        """
        from ..data.localization_stream import crop_boxes

        boxes = self.sample.get("boxes") or []
        if not boxes:
            return []
        if "crop" not in self.sample:
            raise ValueError(f"{self.vid}.json: boxes but no 'crop' (make the shards again)")
        return crop_boxes(boxes, self.sample["crop"])[0]

    def localization_item(self, seconds: float, transform: Any) -> dict[str, Any]:
        """The item :class:`~avcorr.data.localization_stream.LocalizationShardStream` makes of the clip: the
        stored frame nearest to the middle, ``transform`` ed (``image`` float (3, S', S')), the ``seconds`` of
        audio centred on its time (``audio`` float (T,)), ``time`` (s) and ``boxes`` in the crop."""
        import torch

        from ..data.avc_stream import audio_window

        times = np.asarray(self.sample["frame_times"], dtype=np.float64)
        t = float(times[np.abs(times - self.duration / 2).argmin()])
        return {"image": transform(self.frames_at([t])[0]), "time": t, "boxes": self.boxes(),
                "audio": torch.from_numpy(audio_window(self.sample, t, seconds))}


class ShardSource:
    """A split's shard clips: listed from ``<root>/<split>/manifest.json``, decoded on demand.

    Args:
        root: the make_shards output folder (``data.root``), a path or URL.
        split: the split's name.
        sample_rate: the model's audio rate; the shards must hold audio at it.

    Raises:
        ShardError: no readable manifest, or audio stored at another rate.
    """

    def __init__(self, root: str, split: str, sample_rate: int):
        from ..data.shards import ShardError, read_manifest

        self.folder = f"{str(root).rstrip('/')}/{split}"
        manifest = read_manifest(self.folder)
        rate = manifest.get("settings", {}).get("sample_rate")
        if rate != sample_rate:
            raise ShardError(f"{self.folder}/manifest.json", f"the shards hold audio at {rate} Hz, the model takes "
                                                             f"{sample_rate} Hz")
        self.shards = [(f"{self.folder}/{e['name']}", list(e.get("clips", ()))) for e in manifest["shards"]]
        self.ids = [vid for _, clips in self.shards for vid in clips]

    def load(self, positions: Iterable[int]) -> tuple[dict[int, ShardClip], list[list[str]]]:
        """Decode the clips at ``positions`` of :attr:`ids` (only their shards are read).

        Returns:
            ``({position: clip}, skipped)``: ``skipped`` holds ``[vid, reason]`` of clips that could not be read
            (a corrupt member, an unreadable shard, a clip missing from its shard), each logged.
        """
        from ..data.shards import ShardError, decode_sample, iter_shard

        wanted = {self.ids[i]: i for i in positions}
        out: dict[int, ShardClip] = {}
        skipped: list[list[str]] = []

        def decode(key: str, members: dict[str, bytes], where: str) -> Any:
            if key not in wanted:
                return None
            try:
                return decode_sample(key, members, where)
            except (ShardError, ValueError) as e:
                return key, e

        for url, clips in self.shards:
            mine = [vid for vid in clips if vid in wanted]
            if not mine:
                continue
            try:
                for got in iter_shard(url, decode=decode):
                    if isinstance(got, tuple):
                        skipped.append([got[0], str(got[1])])
                    elif got is not None:
                        out[wanted[got["vid"]]] = ShardClip(got)
            except ShardError as e:
                skipped += [[vid, str(e)] for vid in mine if wanted[vid] not in out]
        seen = {s[0] for s in skipped}
        skipped += [[vid, f"{self.folder}: not in its shard"] for vid, i in wanted.items()
                    if i not in out and vid not in seen]
        for vid, reason in skipped:
            logger.warning("report gallery: skipped clip %s: %s", vid, reason)
        return out, skipped


def embed_shard_clips(em: EmbeddingModel, clips: Sequence[ShardClip], *, frames: int = 3,
                      batch_size: int = 16, cells: bool = False) -> ClipEmbeddings:
    """Pooled embeddings of shard clips, as :func:`~avcorr.inference.retrieval.embed_split` makes of files: F frame
    times spread over the clip (:func:`avcorr.data.embed.frame_times`), the stored frame nearest to each, and the
    model's audio window centred on it.

    Args:
        em: from :func:`~avcorr.inference.retrieval.load_embedding_model`.
        clips: the clips.
        frames: F, frames per clip.
        batch_size: clips per batch.
        cells: also keep every frame's cells (``visual_cells`` (N, F, C, D)).

    Returns:
        :class:`~avcorr.retrieval.ClipEmbeddings`; the items' ``video`` and ``audio`` are the clip ids.
    """
    import torch

    from ..data.avc_stream import audio_window
    from ..data.embed import frame_times
    from ..data.transforms import frame_transform
    from ..retrieval import encode_clips

    transform = frame_transform(em.image_size, train=False)

    def inputs(c: ShardClip) -> dict[str, Any]:
        audio_seconds = c.audio_start + len(c.sample["audio"]) / c.sample_rate
        times = frame_times(c.fps, c.num_frames, audio_seconds, em.seconds, frames) if c.fps > 0 and c.num_frames \
            else list(c.sample["frame_times"][[0] * frames])
        return {"frames": torch.stack([transform(f) for f in c.frames_at(times)]), "times": torch.tensor(times),
                "audio": torch.stack([torch.from_numpy(audio_window(c.sample, t, em.seconds)) for t in times])}

    def batches():
        for start in range(0, len(clips), batch_size):
            part = clips[start:start + batch_size]
            made = [inputs(c) for c in part]
            yield {**{k: torch.stack([m[k] for m in made]) for k in ("frames", "audio", "times")},
                   "vid": [c.vid for c in part], "labels": [tuple(c.labels) for c in part],
                   "video": [c.vid for c in part], "audio_path": [c.vid for c in part], "skipped": []}

    return encode_clips(em.model, batches(), device=em.device, amp=em.amp, desc="embed shards", cells=cells)
