"""Writing datasets in the avcorr layout: wav and mp4 files, the per-split json files, the class csv,
``meta.json``, a worker pool, and a folder that only appears under its name once complete.

Every dataset generator of avcorr (the embedded synthetic dataset, the benchmark families of
``data_tools``) writes through these functions, so their files follow one convention::

    ROOT/
      class_labels_indices.csv     index,mid,display_name
      meta.json                    written last: its presence marks the dataset complete
      train/ val/ test/
        vid2genre.json             {vid: label}
        boxes.json                 {vid: [[x1, y1, x2, y2], ...]} (when the generator draws objects)
        visible.json               {vid: [label, ...]} every object drawn, sounding first (idem)
        video/<vid>.mp4            H.264 yuv420p + AAC
        audio/<vid>.wav            16-bit PCM, mono or multi-channel

Example:
    >>> with building_folder(root) as tmp:          # tmp is renamed to root when the block ends
    ...     wav = tmp / "train" / "audio" / "x.wav"
    ...     write_wav(wav, audio, 16000)
    ...     encode_mp4(tmp / "train" / "video" / "x.mp4", frames, wav, fps=10)
    ...     write_json(tmp / "meta.json", {...})
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from .._atomic import atomic_open, atomic_path, move_into_place, write_text
from .._ffmpeg import ffmpeg
from .layout import BOXES_FILE, SPLITS, VID2GENRE_FILE, VISIBLE_FILE

__all__ = [
    "AUDIO_BITRATE",
    "add_missing_visible",
    "building_folder",
    "check_replayed_boxes",
    "encode_mp4",
    "pool_size",
    "progress_bar",
    "run_parallel",
    "write_class_csv",
    "write_json",
    "write_visible",
    "write_wav",
]

logger = logging.getLogger(__name__)

AUDIO_BITRATE = "64k"
"""AAC bit rate of the audio track of written mp4 files."""

T = TypeVar("T")
R = TypeVar("R")


def write_json(path: Path, obj: Any, *, one_line_per_key: bool = False) -> None:
    """Write ``obj`` as JSON atomically (temporary file, then rename).

    Args:
        path: destination.
        obj: a JSON-serialisable object.
        one_line_per_key: put each top-level entry of a dict on one line (readable and diffable
            ``vid2genre.json`` / ``boxes.json``).
    """
    if one_line_per_key:
        items = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in obj.items()]
        text = "{\n" + ",\n".join(items) + "\n}\n" if items else "{}\n"
    else:
        text = json.dumps(obj, indent=1) + "\n"
    write_text(path, text)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio as 16-bit PCM, atomically.

    Args:
        path: destination ``.wav``.
        audio: (N,) mono or (N, C) with C channels, float in [-1, 1] (clipped beyond).
        sample_rate: Hz.
    """
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise ValueError(f"{path}: audio must be (N,) or (N, C), got shape {audio.shape}")
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    pcm = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(np.ascontiguousarray(pcm).tobytes())


def encode_mp4(path: Path, frames: np.ndarray, wav: Path | None, fps: float, *, crf: int = 20) -> None:
    """Encode frames and (optionally) a wav into an H.264/AAC mp4 with one ffmpeg call, atomically.

    The key-frame interval is one second. Frame sides must be even (yuv420p).

    Args:
        path: destination ``.mp4``.
        frames: (T, H, W, 3) uint8 RGB.
        wav: the audio track, or None for a silent video.
        fps: frame rate.
        crf: x264 quality (lower is better).

    Raises:
        RuntimeError: ffmpeg is missing or fails (the message names ``path`` and ends with ffmpeg's error).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    _, height, width, _ = frames.shape
    gop = max(1, int(round(fps)))
    cmd = [
        ffmpeg("writing mp4 files"), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{width}x{height}", "-framerate", str(fps),
        "-i", "pipe:0",
    ]  # fmt: skip
    if wav is not None:
        cmd += ["-i", str(wav), "-map", "0:v:0", "-map", "1:a:0"]
    cmd += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop),
    ]  # fmt: skip
    if wav is not None:
        cmd += ["-c:a", "aac", "-aac_coder", "fast", "-b:a", AUDIO_BITRATE]
    with atomic_path(path, mkdir=False) as tmp:
        cmd += ["-threads", "1", "-movflags", "+faststart", "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[-800:]
            raise RuntimeError(f"{path}: ffmpeg failed (exit {proc.returncode}): {err}")


def write_class_csv(path: Path, classes: Sequence[tuple[str, str]]) -> None:
    """Write an AudioSet-style ``class_labels_indices.csv`` atomically.

    Args:
        path: destination.
        classes: ``(mid, display_name)`` per class, in index order.
    """
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        for i, (mid, name) in enumerate(classes):
            writer.writerow([i, mid, name])


def pool_size(workers: int | None) -> int:
    """Worker processes to use: ``workers``, or by default ``min(2, usable cores)``."""
    if workers is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(2, cores))
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return int(workers)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool, desc: str = "dataset", unit: str = "clip") -> Iterator[Any]:
    """A tqdm bar, or an object whose ``update`` does nothing when ``enabled`` is False."""
    if not enabled:

        class _Silent:
            def update(self, n: int = 1) -> None:
                pass

        yield _Silent()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit) as bar:
        yield bar


def run_parallel(fn: Callable[[T], R], tasks: Sequence[T], workers: int, *, progress: bool = False,
                 desc: str = "dataset", chunksize: int = 4) -> list[R]:
    """``[fn(t) for t in tasks]`` over a process pool (in this process when ``workers`` is 1).

    Results come back in completion order: give each task what is needed to sort them.

    Args:
        fn: a picklable top-level function.
        tasks: its arguments.
        workers: processes.
        progress: show a tqdm bar.
        desc: the bar's label.
        chunksize: tasks sent to a worker at a time.
    """
    results: list[R] = []
    with progress_bar(len(tasks), progress, desc) as bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                results.append(fn(task))
                bar.update(1)
        else:
            with multiprocessing.get_context().Pool(min(workers, len(tasks))) as pool:
                for result in pool.imap_unordered(fn, tasks, chunksize=chunksize):
                    results.append(result)
                    bar.update(1)
    return results


@contextlib.contextmanager
def building_folder(root: str | os.PathLike[str], *, exist_ok: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Build a dataset in a temporary folder beside ``root``; rename it to ``root`` when the block ends.

    A run killed midway leaves only a hidden ``.<name>.tmp-*`` folder, never a ``root`` that looks
    finished; an exception inside the block removes the temporary folder.

    Args:
        root: the folder to create. It must not exist or be empty.
        exist_ok: when ``root`` is taken at rename time, called with ``root``: True keeps the existing
            folder (another process finished the same dataset first), False raises.

    Yields:
        The temporary folder to fill.

    Raises:
        FileExistsError: ``root`` exists and is not empty.
    """
    root = Path(root).expanduser().absolute()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: exists and is not empty; remove it or choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        yield tmp
        with contextlib.suppress(OSError):
            root.rmdir()  # only succeeds on an empty folder
        try:
            move_into_place(tmp, root)
        except OSError:
            if exist_ok is None or not exist_ok(root):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_visible(root: str | Path, visible: Callable[[dict[str, Any]], dict[str, dict[str, list[str]]]], *,
                  missing_only: bool = False) -> list[Path]:
    """Write ``ROOT/<split>/visible.json`` of a built dataset from its ``meta.json`` (no media touched).

    Args:
        root: the dataset's folder.
        visible: the generator's ``{split: {vid: [class, ...]}}`` from the ``meta.json`` object.
        missing_only: leave a split's existing ``visible.json`` as it is.

    Returns:
        the files written.

    Raises:
        FileNotFoundError: ``root/meta.json`` or a split's ``vid2genre.json`` is missing.
        ValueError: ``meta.json`` is not valid JSON or does not describe the clips of ``vid2genre.json``.
    """
    root = Path(root).expanduser().absolute()
    meta_path = root / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{meta_path}: not valid JSON ({err})") from None
    try:
        drawn = visible(meta)
    except ValueError as err:
        raise ValueError(f"{meta_path}: {err}") from None
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{meta_path}: not the meta.json of this generator ({type(err).__name__}: {err})") from None
    written = []
    for split, clips in drawn.items():
        path = root / split / VISIBLE_FILE
        if missing_only and path.is_file():
            continue
        listed = json.loads((root / split / VID2GENRE_FILE).read_text(encoding="utf-8"))
        if set(listed) != set(clips):
            raise ValueError(f"{meta_path}: its {split} clips are not those of {root / split / VID2GENRE_FILE}")
        write_json(path, clips, one_line_per_key=True)
        logger.info("wrote %s (%d clips)", path, len(clips))
        written.append(path)
    return written


def check_replayed_boxes(root: str | Path, split: str, boxes: dict[str, np.ndarray]) -> None:
    """Check that a generator's replay of a split gives the boxes its ``boxes.json`` holds.

    A dataset whose clips are re-derived from ``meta.json`` (to add ``visible.json`` without
    rendering) is checked this way: a folder made by other generator code with the same version
    has other boxes.

    Args:
        root: the dataset's folder.
        split: the split.
        boxes: ``{vid: (4,) [x1, y1, x2, y2]}`` replayed, compared rounded to 6 decimals as the generators
            write them.

    Raises:
        FileNotFoundError: the split's ``boxes.json`` is missing.
        ValueError: it is not valid JSON, or a clip's box there is not the replayed one (the first is named).
    """
    path = Path(root) / split / BOXES_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    for vid, replayed in boxes.items():
        box = [round(float(x), 6) for x in replayed]
        found = stored.get(vid) if isinstance(stored, dict) else None
        if found != [box]:
            raise ValueError(f"{path}: clip {vid!r} has box {found!r}, the generator's replay of meta.json gives "
                             f"{[box]!r}: the dataset was not made by this generator code")


def add_missing_visible(root: str | Path, visible: Callable[[dict[str, Any]], dict[str, dict[str, list[str]]]]
                        ) -> list[Path]:
    """Give a complete dataset made before its generator wrote ``visible.json`` the files it lacks.

    Nothing else is touched. A failure (a folder that cannot be written, a ``meta.json`` that cannot
    be replayed) is logged as a warning: the dataset stays usable without ``visible.json``.

    Args:
        root: the dataset's folder.
        visible: as for :func:`write_visible`.

    Returns:
        the files written (none when every split has one, or on failure).
    """
    root = Path(root)
    if all((root / split / VISIBLE_FILE).is_file() for split in SPLITS):
        return []
    try:
        return write_visible(root, visible, missing_only=True)
    except (OSError, ValueError) as err:
        logger.warning("%s: visible.json not added (%s); the AVC ceiling counts each frame's own labels only",
                       root, err)
        return []
