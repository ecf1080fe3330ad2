"""Reading clip shards: tar files of pre-decoded frames and audio (``python -m data_tools.make_shards``).

A split's shards sit in one folder, ``<split>/shard-000000.tar``, ``shard-000001.tar`` ..., with
``manifest.json`` (written last: shard names, clip ids per shard, sizes, sha256, the options used)
and ``skipped.csv``. Each shard is a plain tar in the WebDataset convention: a sample is the run of
consecutive members sharing a key, the clip id (ids hold no dots; one may start with ``-``), and a
member's extension is everything after the key's dot::

    <vid>.json         labels, label_indices, boxes (normalised to the ORIGINAL frame, as boxes.json),
                       visible (the labels of every object drawn, as visible.json; only when the split has one),
                       crop (the normalised [x1, y1, x2, y2] of the original frame the stored frames
                       show), fps, num_frames, video_size, frame_indices, frame_times (s, frame
                       centres), audio_start (s: where the stored audio starts in the clip),
                       audio_duration, audio_samples, sample_rate, audio_dtype, frames {count, size,
                       format}, source {video, audio} (paths relative to the dataset root)
    <vid>.frames.npy   raw format: uint8 (N, S, S, 3) RGB
    <vid>.000.jpg ...  jpeg format: one RGB JPEG per frame, N of them, numbered from 000
    <vid>.audio.npy    mono audio at sample_rate: int16 (x / 32768), float16 or float32, (L,)

The json comes first, then the frames, then the audio. ``webdataset`` (``.decode("rgb8")``) and
``tarfile`` read these shards as they are; avcorr reads them with ``tarfile`` (:func:`iter_shard`), from
local paths, http(s) URLs (read with ``urllib``) or any fsspec URL (``s3://``, ``gs://`` ... with the
matching fsspec backend installed).

Sample dict yielded by :func:`iter_shard` and :class:`ShardDataset` (N frames of S x S, L samples)::

    vid          str
    labels       list[str]
    boxes        list[[x1, y1, x2, y2]]   normalised to the original frame
    frames       uint8   (N, S, S, 3)      RGB
    audio        float32 (L,)              mono, at sample_rate, starting at audio_start (s) of the clip
    frame_times  float64 (N,)              seconds in the clip
    sample_rate  int
    ...          the other fields of <vid>.json
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

__all__ = ["MANIFEST_FILE", "SHARD_PATTERN", "BadSample", "ShardDataset", "ShardError", "decode_sample", "file_sha256",
           "iter_shard", "read_manifest", "shard_name", "split_member", "verify_shards"]

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SHARD_PATTERN = "shard-{:06d}.tar"
_BLOCK = 1 << 20


class ShardError(ValueError):
    """A shard (or its manifest) cannot be read: names the file and the problem."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class BadSample:
    """What :class:`ShardDataset` (``skip_errors=True``) yields instead of a sample it could not read.

    Attributes:
        vid: the sample's key (the clip id), or the shard's file name when the rest of a shard is unreadable.
        reason: the problem, naming the shard.
    """

    vid: str
    reason: str


@dataclass(frozen=True)
class _RawSample:
    """A sample as read from its shard, not yet decoded (what :class:`ShardDataset`'s shuffle buffer holds).

    Attributes:
        key: the clip id.
        members: extension -> the member's bytes, as read.
        at: ``"<shard>: <key>"``, for error messages.
        sample: its parsed json.
        keep: positions of the frames to decode (picked as it was read); None = all.
    """

    key: str
    members: dict[str, bytes]
    at: str
    sample: dict[str, Any]
    keep: list[int] | None


def shard_name(i: int) -> str:
    """The file name of shard ``i``: ``shard-000000.tar``."""
    return SHARD_PATTERN.format(i)


def split_member(name: str) -> tuple[str, str]:
    """``(key, extension)`` of a tar member: ``"-aB3.000.jpg"`` -> ``("-aB3", "000.jpg")`` (WebDataset's rule)."""
    directory, base = posixpath.split(name)
    key, dot, ext = base.partition(".")
    return posixpath.join(directory, key) if directory else key, ext


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a local file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _open(url: str | os.PathLike):
    """A binary file object for a local path, an http(s) URL (read with ``urllib``: no extra package) or
    any other fsspec URL."""
    text = os.fspath(url)
    if "://" not in text:
        return open(text, "rb")
    if text.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            return urllib.request.urlopen(text, timeout=120)  # noqa: S310 (the scheme is checked above)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise FileNotFoundError(f"{text}: HTTP 404") from e
            raise OSError(f"{text}: HTTP {e.code} {e.reason}") from e
    try:
        import fsspec
    except ImportError as e:  # pragma: no cover - fsspec comes with torch's dependencies here
        raise ImportError(f"reading {text} needs the `fsspec` package: pip install fsspec") from e
    return fsspec.open(text, "rb").open()


def _tar(f, remote: bool) -> tarfile.TarFile:
    """The tar reader of an open shard: a stream for remote files (no seeking), seeking for local ones
    (2.5x faster: the stream reader copies every byte through its buffer)."""
    if remote:
        return tarfile.open(fileobj=f, mode="r|", bufsize=1 << 16)
    return tarfile.open(fileobj=f, mode="r:")


def _decode_jpeg(data: bytes, where: str) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ShardError(where, "not a readable JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _load_npy(data: bytes, where: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ShardError(where, f"not a readable .npy array ({e})") from e


def decode_sample(key: str, members: dict[str, bytes], where: str = "", *,
                  frames: Sequence[int] | Callable[[dict[str, Any]], Sequence[int]] | None = None) -> dict[str, Any]:
    """Turn the members of one sample (extension -> bytes) into the sample dict of the module docstring.

    Args:
        key: the sample's key (the clip id).
        members: ``{"json": ..., "frames.npy" | "000.jpg" ...: ..., "audio.npy": ...}``.
        where: the shard, for error messages.
        frames: positions (0..N-1) of the frames to keep, or a function of the sample's json (a dict) that
            returns them (e.g. one random frame for a training pair); None = all. Only those JPEGs are
            decoded, and ``frame_times`` / ``frame_indices`` are cut to them.

    Returns:
        the sample dict.

    Raises:
        ShardError: a member is missing or unreadable, or the arrays disagree with the json.
    """
    at = f"{where}: {key}" if where else key
    sample = _sample_json(key, members, at)
    return _decode_arrays(key, sample, members, at, _frame_positions(sample, frames, at))


def _sample_json(key: str, members: dict[str, bytes], at: str) -> dict[str, Any]:
    """The parsed ``<key>.json`` member of a sample (``at`` names it in errors)."""
    if "json" not in members:
        raise ShardError(at, f"no {key}.json member (members: {sorted(members)})")
    try:
        return json.loads(members["json"])
    except (ValueError, UnicodeDecodeError) as e:
        raise ShardError(at, f"{key}.json is not valid JSON ({e})") from e


def _frame_positions(sample: dict[str, Any], frames: Sequence[int] | Callable[[dict[str, Any]], Sequence[int]] | None,
                     at: str) -> list[int] | None:
    """The positions of the frames to decode (``frames`` called on the json when it is a function); None = all.

    Raises:
        ValueError: a position outside the sample's frames.
    """
    if frames is None:
        return None
    count = sample.get("frames", {}).get("count") or 0
    keep = [int(i) for i in (frames(sample) if callable(frames) else frames)]
    if any(not 0 <= i < count for i in keep):
        raise ValueError(f"{at}: frame positions {keep} outside the sample's {count} frames")
    return keep


def _decode_arrays(key: str, sample: dict[str, Any], members: dict[str, bytes], at: str,
                   keep: list[int] | None) -> dict[str, Any]:
    """Decode the frames (those at ``keep``; None = all) and the audio of sample ``key`` into its json dict
    ``sample`` (``at`` names it in errors).

    Raises:
        ShardError: a member is missing or unreadable, or the arrays disagree with the json.
    """
    info = sample.get("frames", {})
    count, size = info.get("count"), info.get("size")
    positions = list(range(count or 0)) if keep is None else keep
    if "frames.npy" in members:
        images = _load_npy(members["frames.npy"], f"{at}.frames.npy")
        if images.dtype != np.uint8 or images.shape != (count, size, size, 3):
            raise ShardError(at, f"frames are {images.dtype} {images.shape}, the json says uint8 "
                                 f"({count}, {size}, {size}, 3)")
        images = images if keep is None else images[keep]
    else:
        jpgs = sorted(ext for ext in members if ext.endswith(".jpg"))
        if len(jpgs) != count:
            raise ShardError(at, f"{len(jpgs)} frame members (NNN.jpg or frames.npy), the json says {count}")
        images = np.stack([_decode_jpeg(members[jpgs[i]], f"{at}.{jpgs[i]}") for i in positions])
        if images.shape[1:] != (size, size, 3):
            raise ShardError(at, f"frames are {images.shape[1:]}, the json says ({size}, {size}, 3)")
    if "audio.npy" not in members:
        raise ShardError(at, f"no {key}.audio.npy member")
    audio = _load_npy(members["audio.npy"], f"{at}.audio.npy")
    if audio.ndim != 1 or audio.shape[0] != sample.get("audio_samples"):
        raise ShardError(at, f"audio has shape {audio.shape}, the json says ({sample.get('audio_samples')},)")
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) * np.float32(1 / 32768)
    else:
        audio = audio.astype(np.float32, copy=False)
    times = np.asarray(sample.get("frame_times", ()), dtype=np.float64)
    sample.update(vid=sample.get("vid", key), frames=images, audio=audio, frame_times=times[positions])
    if keep is not None and "frame_indices" in sample:
        sample["frame_indices"] = [sample["frame_indices"][i] for i in keep]
    return sample


def iter_shard(url: str | os.PathLike, *, frames: Callable[[dict[str, Any]], Sequence[int]] | None = None,
               decode: Callable[[str, dict[str, bytes], str], Any] | None = None) -> Iterator[Any]:
    """The samples of one shard, in order; a URL is read as a stream (no seeking: works over HTTP and object stores).

    Args:
        url: a local path or an fsspec URL (``file://``, ``memory://``, ``s3://`` ...).
        frames: picks the frames to decode from a sample's json (see :func:`decode_sample`); None = all.
        decode: instead of :func:`decode_sample`, turns ``(key, {extension: bytes}, shard)`` into a sample
            (``lambda k, m, w: (k, m)`` gives the raw members).

    Yields:
        decoded samples (see the module docstring).

    Raises:
        ShardError: the file is not a readable tar, is cut short, or a sample is broken.
    """
    where = os.fspath(url)
    if decode is None:
        decode = functools.partial(decode_sample, frames=frames)
    elif frames is not None:
        raise ValueError("give frames= or decode=, not both")
    try:
        with _open(url) as f, _tar(f, remote="://" in where) as tar:
            key, members = None, {}
            for info in tar:
                if not info.isfile():
                    continue
                k, ext = split_member(info.name)
                if k != key:  # the previous sample is whole: yield it before reading on (a cut shard keeps it)
                    if key is not None:
                        yield decode(key, members, where)
                    key, members = k, {}
                data = tar.extractfile(info).read()
                if ext in members:
                    raise ShardError(where, f"member {info.name} appears twice")
                members[ext] = data
            if key is not None:
                yield decode(key, members, where)
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise ShardError(where, "no such shard") from e
        raise ShardError(where, f"not a readable tar shard ({type(e).__name__}: {e}); it may be truncated "
                                "or corrupt") from e


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of a shard folder (a local folder or an fsspec URL).

    Raises:
        ShardError: no manifest, or not valid JSON.
    """
    url = f"{os.fspath(folder).rstrip('/')}/{MANIFEST_FILE}"
    try:
        with _open(url) as f:
            manifest = json.loads(f.read())
    except FileNotFoundError as e:
        raise ShardError(url, "no manifest (the shards were not finished, or this is not a shard folder)") from e
    except ValueError as e:
        raise ShardError(url, f"not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise ShardError(url, "not a shard manifest (no 'shards' list)")
    return manifest


def verify_shards(folder: str | os.PathLike) -> list[str]:
    """Check every shard of a local folder against its manifest (presence, size, sha256).

    Args:
        folder: a split's shard folder, e.g. ``OUT/train``.

    Returns:
        one line per problem (``"<shard>: <problem>"``); empty when every shard matches.

    Raises:
        ShardError: no readable manifest.
    """
    folder = Path(folder)
    problems = []
    for entry in read_manifest(folder)["shards"]:
        path = folder / entry["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {entry['bytes']}")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest (the shard changed or is corrupt)")
    return problems


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(IterableDataset):
    """Samples of a list of shards, split across DDP ranks and DataLoader workers, optionally shuffled.

    Each epoch the shard list is permuted (when shuffling, with the same seed on every rank), then rank
    ``r`` of ``R`` takes shards ``r, r + R, ...`` of it and DataLoader worker ``w`` of ``W`` takes every
    ``W``-th of those: the ranks and workers read disjoint shards that together cover the list once.
    A rank with no shard (fewer shards than ranks) yields nothing and logs a warning: make at least
    ``ranks x workers`` shards (``--clips-per-shard``). Samples then pass through a shuffle buffer of
    ``shuffle`` samples (0 = shard order), seeded by ``(seed, epoch, rank, worker)``. The buffer holds
    samples as read (their members' bytes: int16 audio is half the size of the float32 it decodes to,
    JPEG frames a fraction of theirs) and a sample is decoded as it leaves; the frames to decode are
    picked as it is read, so the samples and their order are those of decoding first.

    The epoch is the one given to :meth:`set_epoch` plus the number of passes started since in this
    process, so persistent DataLoader workers (which never see a later ``set_epoch``) still reshuffle.

    Args:
        urls: shard paths or fsspec URLs.
        shuffle: shuffle-buffer size in samples; 0 keeps the order (and the shard order) fixed.
        seed: seed of the shard permutation and the buffer.
        rank, world_size: this process's DDP rank and the number of ranks; None = from
            ``torch.distributed`` when initialised (build the dataset after ``init_process_group``), else 0 and 1.
        transform: applied to each sample dict (in the worker).
        frames: picks the frames to decode from each sample's json (see :func:`decode_sample`); None = all.
        skip_errors: a sample that cannot be decoded (a corrupt member) becomes a :class:`BadSample` and the
            reading goes on with the next sample; a shard that cannot be read on (cut short, not a tar,
            unreachable) yields one :class:`BadSample` named after the shard and the reading goes on with
            the next shard. Both are logged as warnings. ``transform`` is not applied to them. Off: such
            errors raise :class:`ShardError`.
    """

    def __init__(self, urls: Sequence[str | os.PathLike], *, shuffle: int = 0, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, transform: Callable[[dict[str, Any]], Any] | None = None,
                 frames: Callable[[dict[str, Any]], Sequence[int]] | None = None, skip_errors: bool = False):
        super().__init__()
        self.urls = [os.fspath(u) for u in urls]
        if not self.urls:
            raise ValueError("ShardDataset needs at least one shard")
        auto_rank, auto_world = _distributed()
        self.rank = auto_rank if rank is None else int(rank)
        self.world_size = auto_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, world_size={self.world_size})")
        self.shuffle, self.seed, self.transform, self.frames = int(shuffle), int(seed), transform, frames
        self.skip_errors = bool(skip_errors)
        self._epoch, self._passes = 0, 0

    @classmethod
    def from_manifest(cls, folder: str | os.PathLike, **kwargs: Any) -> "ShardDataset":
        """The shards listed in ``folder``'s manifest (a local folder or an fsspec URL); ``kwargs`` as the class."""
        base = os.fspath(folder).rstrip("/")
        return cls([f"{base}/{entry['name']}" for entry in read_manifest(base)["shards"]], **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (the shard permutation and buffer seed) of the next pass."""
        self._epoch, self._passes = int(epoch), 0

    def shards_for(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[str]:
        """The shards one worker of this rank reads in ``epoch``, in reading order."""
        order = list(range(len(self.urls)))
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        mine = order[self.rank::self.world_size]
        return [self.urls[i] for i in mine[worker::num_workers]]

    def samples(self, epoch: int, worker: int = 0, num_workers: int = 1, *,
                frames: Callable[[dict[str, Any]], Sequence[int]] | None = None) -> Iterator[Any]:
        """The decoded samples one worker of this rank reads in ``epoch`` (after the shuffle buffer, before ``transform``).

        The shuffle buffer holds samples as read (their members' bytes, the json parsed, the frames to keep
        picked); a sample is decoded when it leaves the buffer, so a corrupt member is found then (and becomes
        a :class:`BadSample` there, with ``skip_errors``).

        Args:
            epoch: the epoch (shard permutation and buffer seed).
            worker, num_workers: this DataLoader worker and their number.
            frames: picks the frames to decode (see :func:`decode_sample`), called as each sample is read, in
                reading order; None = the dataset's ``frames``.

        Yields:
            sample dicts (see the module docstring), and :class:`BadSample` items with ``skip_errors``.
        """
        frames = self.frames if frames is None else frames
        raw = self._raw(self.shards_for(epoch, worker, num_workers), frames)
        if self.shuffle > 1:
            raw = _buffer_shuffle(raw, self.shuffle, np.random.default_rng([self.seed, epoch, self.rank, worker]))
        return map(self._decode, raw)

    def read(self, urls: Sequence[str], *, frames: Callable[[dict[str, Any]], Sequence[int]] | None = None
             ) -> Iterator[Any]:
        """The decoded samples of ``urls``, in order (no shuffling): as :meth:`samples`, for shards chosen by the caller.

        Args:
            urls: shards of this dataset (or any others), read one after the other.
            frames: picks the frames to decode (see :func:`decode_sample`); None = the dataset's ``frames``.
        """
        return map(self._decode, self._raw(urls, self.frames if frames is None else frames))

    def _raw(self, urls: Sequence[str], frames: Callable[[dict[str, Any]], Sequence[int]] | None) -> Iterator[Any]:
        """The samples of ``urls`` as read: :class:`_RawSample` items (and :class:`BadSample` ones with ``skip_errors``)."""
        def stage(key: str, members: dict[str, bytes], where: str) -> Any:
            at = f"{where}: {key}"
            try:
                sample = _sample_json(key, members, at)
            except ShardError as e:
                if not self.skip_errors:
                    raise
                logger.warning("skipped sample %s: %s", key, e)
                return BadSample(key, str(e))
            return _RawSample(key, members, at, sample, _frame_positions(sample, frames, at))

        for url in urls:
            if not self.skip_errors:
                yield from iter_shard(url, decode=stage)
                continue
            try:
                yield from iter_shard(url, decode=stage)
            except ShardError as e:
                logger.warning("skipped the rest of shard %s: %s", url, e.reason)
                yield BadSample(posixpath.basename(url.rstrip("/")), str(e))

    def _decode(self, item: Any) -> Any:
        """A sample as read, decoded (a :class:`BadSample` passes; one that cannot be decoded becomes one with
        ``skip_errors``)."""
        if not isinstance(item, _RawSample):
            return item
        try:
            return _decode_arrays(item.key, dict(item.sample), item.members, item.at, item.keep)
        except ShardError as e:
            if not self.skip_errors:
                raise
            logger.warning("skipped sample %s: %s", item.key, e)
            return BadSample(item.key, str(e))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self._epoch + self._passes
        self._passes += 1
        if self.rank >= len(self.urls) and worker == 0:
            logger.warning("rank %d of %d has no shard to read (%d shards): make at least one shard per rank "
                           "and worker", self.rank, self.world_size, len(self.urls))
        for sample in self.samples(epoch, worker, num_workers):
            yield self.transform(sample) if self.transform is not None and not isinstance(sample, BadSample) else sample


def _buffer_shuffle(items: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Yield ``items`` in an order drawn from a buffer of ``size``: each arriving item replaces a random one."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(len(buffer)))
        buffer[j], item = item, buffer[j]
        yield item
    rng.shuffle(buffer)
    buffer.reverse()
    while buffer:  # in the shuffled order, each item let go of as it leaves
        yield buffer.pop()
