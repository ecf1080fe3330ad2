"""Writing synthetic clips to disk: wav and mp4 files, the per-split json files (``vid2genre.json``,
``boxes.json``, ``visible.json``), the class csv and ``meta.json`` of a dataset folder, the worker pool that renders and encodes the clips, and the lock
file of the cache.

Used by :func:`avcorr.data.synthetic.make_synthetic` and :func:`~avcorr.data.synthetic.ensure_default_dataset`,
which own the "complete dataset" rules (``meta.json`` last, rename when done).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from avcorr.data._synthetic_render import _SPLIT_CODES, CLASSES, SPLITS, clip_id, render_clip, visible_names
from avcorr.data._synthetic_video import _shape_extent
from avcorr.data.layout import VISIBLE_FILE
from avcorr.data.writer import encode_mp4, pool_size, run_parallel, write_class_csv, write_json, write_wav

# The generic writers live in avcorr.data.writer (shared with the benchmark families).
_pool_size = pool_size


def _generate_one(task: tuple[str, str, int, dict[str, Any]]) -> tuple[str, int, str, str, list[float], list[str]]:
    """Pool worker: render clip ``index`` of ``split`` and write its wav and mp4 under ``root``; return its
    split, index, id, label, box and the classes drawn (``visible.json``)."""
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
    write_wav(wav, clip.audio, params["sample_rate"])
    encode_mp4(folder / "video" / f"{clip.vid}.mp4", clip.frames, wav, params["fps"])
    return (split, index, clip.vid, clip.label, [round(float(x), 6) for x in clip.box],
            visible_names(clip.class_index, clip.distractors))


def generate_into(tmp: Path, params: dict[str, Any], workers: int, progress: bool, *, generator: str,
                  version: int) -> None:
    """Render and write every clip of ``params`` into the empty folder ``tmp``, then the json files
    (``visible.json``: the sounding class, then the silent objects'), the class csv and, last,
    ``meta.json`` (which names ``generator`` and ``version``).

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

    for cls in classes:  # measure the shapes once here; forked workers inherit the cache
        _shape_extent(cls.shape)
    results = run_parallel(_generate_one, tasks, workers, progress=progress, desc="synthetic dataset")

    results.sort(key=lambda r: (_SPLIT_CODES[r[0]], r[1]))
    for split in SPLITS:
        rows = [r for r in results if r[0] == split]
        genre = {vid: label for _, _, vid, label, _, _ in rows}
        boxes = {vid: [box] for _, _, vid, _, box, _ in rows}
        write_json(tmp / split / "vid2genre.json", genre, one_line_per_key=True)
        write_json(tmp / split / "boxes.json", boxes, one_line_per_key=True)
        write_json(tmp / split / VISIBLE_FILE, {vid: drawn for _, _, vid, _, _, drawn in rows}, one_line_per_key=True)
    write_class_csv(tmp / "class_labels_indices.csv", [(c.mid, c.display_name) for c in classes])
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
    write_json(tmp / "meta.json", meta)  # last: its presence marks the dataset complete


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
