"""Writing synthetic clips to disk: wav and mp4 files, the per-split json files, the class csv and
``meta.json`` of a dataset folder, the worker pool that renders and encodes the clips, and the lock
file of the cache.

Used by :func:`avcorr.data.synthetic.make_synthetic` and :func:`~avcorr.data.synthetic.ensure_default_dataset`,
which own the "complete dataset" rules (``meta.json`` last, rename when done).
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avcorr.data._synthetic_render import _SPLIT_CODES, CLASSES, SPLITS, clip_id, render_clip
from avcorr.data._synthetic_video import _shape_extent

_AUDIO_BITRATE = "64k"


def _write_json(path: Path, obj: Any, *, one_line_per_key: bool = False) -> None:
    """Write ``obj`` as JSON atomically; ``one_line_per_key`` puts each top-level entry on one line."""
    if one_line_per_key:
        items = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in obj.items()]
        text = "{\n" + ",\n".join(items) + "\n}\n" if items else "{}\n"
    else:
        text = json.dumps(obj, indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio (N,) as 16-bit PCM mono, atomically."""
    pcm = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype("<i2")
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def _encode_mp4(path: Path, frames: np.ndarray, wav: Path, fps: float) -> None:
    """Encode frames (T, H, W, 3) uint8 + the wav into an H.264/AAC mp4 with one ffmpeg call."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the synthetic dataset needs the `ffmpeg` binary on PATH (e.g. apt-get install ffmpeg)")
    _, height, width, _ = frames.shape
    gop = max(1, int(round(fps)))
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{width}x{height}", "-framerate", str(fps),
        "-i", "pipe:0",
        "-i", str(wav),
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop),
        "-c:a", "aac", "-aac_coder", "fast", "-b:a", _AUDIO_BITRATE,
        "-threads", "1", "-movflags", "+faststart", "-f", "mp4", str(tmp),
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        err = proc.stderr.decode("utf-8", "replace").strip()[-800:]
        raise RuntimeError(f"{path}: ffmpeg failed (exit {proc.returncode}): {err}")
    os.replace(tmp, path)


def _generate_one(task: tuple[str, str, int, dict[str, Any]]) -> tuple[str, int, str, str, list[float]]:
    """Pool worker: render clip ``index`` of ``split`` and write its wav and mp4 under ``root``."""
    root, split, index, params = task
    clip = render_clip(
        params["seed"],
        split,
        index,
        num_classes=params["num_classes"],
        duration=params["duration"],
        fps=params["fps"],
        size=params["size"],
        sample_rate=params["sample_rate"],
        max_distractors=params["max_distractors"],
        distractor_prob=params["distractor_prob"],
    )
    folder = Path(root) / split
    wav = folder / "audio" / f"{clip.vid}.wav"
    _write_wav(wav, clip.audio, params["sample_rate"])
    _encode_mp4(folder / "video" / f"{clip.vid}.mp4", clip.frames, wav, params["fps"])
    return split, index, clip.vid, clip.label, [round(float(x), 6) for x in clip.box]


def _pool_size(workers: int | None) -> int:
    if workers is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(2, cores))
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return int(workers)


def generate_into(tmp: Path, params: dict[str, Any], workers: int, progress: bool, *, generator: str,
                  version: int) -> None:
    """Render and write every clip of ``params`` into the empty folder ``tmp``, then the json files, the
    class csv and, last, ``meta.json`` (which names ``generator`` and ``version``).

    Args:
        tmp: the folder being filled (renamed by the caller when this returns).
        params: checked parameters (``_validate``).
        workers: processes rendering and encoding (1 = in this process).
        progress: show a tqdm progress bar.
        generator, version: written to ``meta.json``; :func:`~avcorr.data.synthetic.is_synthetic_dataset` checks them.
    """
    classes = CLASSES[: params["num_classes"]]
    tasks = []
    for split, per_class in zip(SPLITS, params["clips_per_class"]):
        (tmp / split / "video").mkdir(parents=True)
        (tmp / split / "audio").mkdir(parents=True)
        tasks += [(str(tmp), split, i, params) for i in range(per_class * len(classes))]
    ids = [clip_id(params["seed"], split, i) for _, split, i, _ in tasks]
    if len(set(ids)) != len(ids):  # 66-bit hashes: never expected
        raise RuntimeError(f"clip id collision for seed {params['seed']}; choose another seed")

    results: list[tuple[str, int, str, str, list[float]]] = []
    with _progress_bar(len(tasks), progress) as bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                results.append(_generate_one(task))
                bar.update(1)
        else:
            for cls in classes:  # measure the shapes once here; forked workers inherit the cache
                _shape_extent(cls.shape)
            with multiprocessing.get_context().Pool(min(workers, len(tasks))) as pool:
                for result in pool.imap_unordered(_generate_one, tasks, chunksize=4):
                    results.append(result)
                    bar.update(1)

    results.sort(key=lambda r: (_SPLIT_CODES[r[0]], r[1]))
    for split in SPLITS:
        rows = [r for r in results if r[0] == split]
        genre = {vid: label for _, _, vid, label, _ in rows}
        boxes = {vid: [box] for _, _, vid, _, box in rows}
        _write_json(tmp / split / "vid2genre.json", genre, one_line_per_key=True)
        _write_json(tmp / split / "boxes.json", boxes, one_line_per_key=True)
    csv_tmp = tmp / ".class_labels_indices.csv.tmp"
    with open(csv_tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        for i, cls in enumerate(classes):
            writer.writerow([i, cls.mid, cls.display_name])
    os.replace(csv_tmp, tmp / "class_labels_indices.csv")
    meta = {
        "generator": generator,
        "version": version,
        "params": params,
        "splits": {split: sum(r[0] == split for r in results) for split in SPLITS},
        "classes": [
            {
                "index": i,
                "mid": c.mid,
                "display_name": c.display_name,
                "shape": c.shape,
                "colour": list(c.colour),
                "sound": c.sound,
            }
            for i, c in enumerate(classes)
        ],
        "video": {
            "codec": "h264",
            "pix_fmt": "yuv420p",
            "keyframe_interval": max(1, int(round(params["fps"]))),
            "audio_codec": "aac",
        },
        "audio": {"format": "wav", "encoding": "pcm_s16le", "channels": 1},
        "boxes": "sounding object's bounding box at duration / 2, normalised [x1, y1, x2, y2]",
    }
    _write_json(tmp / "meta.json", meta)  # last: its presence marks the dataset complete


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    if not enabled:

        class _Silent:
            def update(self, n: int = 1) -> None:
                pass

        yield _Silent()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc="synthetic dataset", unit="clip") as bar:
        yield bar


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """Exclusive inter-process lock on ``path``; yields False where ``fcntl`` is unavailable."""
    try:
        import fcntl
    except ImportError:  # Windows: rely on the rename race handling alone
        yield False
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
