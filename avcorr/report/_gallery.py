"""The report's galleries: what a trained run does on a sample of a split, with pictures and sound.

:func:`gallery_section` loads the run's checkpoint (``best.pt``, else ``last.pt``) with
:func:`avcorr.runs.load_run`, runs the task's own inference code (:mod:`avcorr.inference`) on a
seeded sample of clips and writes the assets (JPEG frames, PNG spectrogram thumbnails and maps,
16-bit PCM WAV cut to :data:`MAX_AUDIO_SECONDS`) into ``report_files/<split>/g-<key>/`` beside the
page, with the gallery's content as ``gallery.json``; the page links them relatively, so it works
from a file URL and when the run folder is copied elsewhere.

``<key>`` hashes everything the gallery depends on (the checkpoint's path, size and time, the data
root, split, sample size, seed, and :data:`GALLERY_VERSION`): rebuilding a report whose inputs did
not change reuses the folder without loading the model; a new key writes a new folder under a
temporary name (renamed when complete), and the old folders are removed once the page that
links them has been replaced (:func:`remove_stale`).

Large samples are shown on one page in collapsed ``<details>`` blocks of :data:`PAGE_SIZE` clips,
images ``loading="lazy"`` and audio ``preload="none"``: a closed block loads nothing, so a page of
a thousand clips opens as fast as one of 24, and anchors, search and the navigation bar keep
working on a single file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .._atomic import atomic_path, stale_temporaries, write_bytes, write_json
from ._page import esc
from ..viz.spectrogram import spectrogram_thumbnail

logger = logging.getLogger(__name__)

ASSETS_DIR = "report_files"
GALLERY_FILE = "gallery.json"
GALLERY_VERSION = 2  # bump when what a gallery holds changes: old folders are then rebuilt
PAGE_SIZE = 24
MAX_AUDIO_SECONDS = 10.0
THUMB_HEIGHT = 96


@dataclass
class GalleryOptions:
    """What a gallery shows.

    Args:
        n: clips sampled (retrieval: queries per direction; separation: mixtures).
        split: the split to sample (None: ``test``, else ``val`` when the run's data has no test split).
        seed: the sample's seed (the same seed gives the same clips).
        device: where the model runs (``auto``, ``cpu``, ``cuda[:i]``).
        pool: retrieval: at most this many clips of the split are searched (the queries among them); separation of
            a shard run: partners are drawn among this many clips (and the sampled ones).
    """

    n: int = 24
    split: str | None = None
    seed: int = 0
    device: str = "auto"
    pool: int = 512


def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """A seeded sample of ``min(n, total)`` distinct positions of ``range(total)``, in increasing order.

    Args:
        total: how many there are.
        n: how many to take (<= 0: none).
        seed: the same seed (and total) gives the same sample.

    Returns:
        Sorted positions.
    """
    if n <= 0 or total <= 0:
        return []
    if n >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=n, replace=False))


def pages(items: Sequence[Any], size: int = PAGE_SIZE) -> list[list[Any]]:
    """``items`` in consecutive blocks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"page size must be >= 1, got {size}")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def find_checkpoint(run_dir: Path) -> Path | None:
    """``checkpoints/best.pt``, else ``checkpoints/last.pt``, else None."""
    for name in ("best.pt", "last.pt"):
        path = run_dir / "checkpoints" / name
        if path.is_file():
            return path
    return None


def gallery_key(checkpoint: Path, data_root: str, split: str, opts: GalleryOptions) -> str:
    """12 hex digits that change when anything the gallery is computed from changes."""
    st = checkpoint.stat()
    key = {"checkpoint": str(checkpoint.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
           "data_root": data_root, "split": split, "version": GALLERY_VERSION,
           **{k: v for k, v in asdict(opts).items() if k not in ("split", "device")}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------
# assets


class Assets:
    """Writes a gallery's files into one folder; every method returns the file's name in it.

    Args:
        folder: the (temporary) asset folder, created.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def image(self, name: str, rgb: np.ndarray, *, height: int | None = THUMB_HEIGHT, jpeg: bool = True) -> str:
        """Write a uint8 (H, W, 3) RGB picture, scaled to ``height`` pixels (None: as it is), as JPEG or PNG."""
        import cv2

        from ..viz import to_uint8_hwc

        img = to_uint8_hwc(rgb)
        if height and img.shape[0] != height:
            w = max(1, round(img.shape[1] * height / img.shape[0]))
            img = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA if img.shape[0] > height
                             else cv2.INTER_LINEAR)
        ext = ".jpg" if jpeg else ".png"
        params = [cv2.IMWRITE_JPEG_QUALITY, 85] if jpeg else []
        ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise RuntimeError(f"{self.folder / name}: OpenCV could not encode the picture")
        write_bytes(self.folder / (name + ext), buf.tobytes())
        return name + ext

    def wav(self, name: str, wave: np.ndarray, sample_rate: int) -> str:
        """Write a float (T,) waveform, cut to :data:`MAX_AUDIO_SECONDS`, as 16-bit PCM WAV."""
        from ..inference.separation import write_wav

        x = np.asarray(wave, dtype=np.float32).reshape(-1)[: int(MAX_AUDIO_SECONDS * sample_rate)]
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak > 1.0:  # a sum of sources may pass full scale: scaled, never clipped
            x = x / peak
        write_wav(self.folder / (name + ".wav"), x, sample_rate)
        return name + ".wav"

    def sound(self, name: str, wave: np.ndarray, sample_rate: int) -> dict[str, str]:
        """The WAV and the spectrogram thumbnail of a sound: ``{"wav": file, "spec": file}``."""
        x = np.asarray(wave, dtype=np.float32).reshape(-1)[: int(MAX_AUDIO_SECONDS * sample_rate)]
        return {"wav": self.wav(name, x, sample_rate),
                "spec": self.image(name + "_spec", spectrogram_thumbnail(x, sample_rate), height=None, jpeg=False)}

    def audio_file(self, name: str, path: str | Path) -> dict[str, str]:
        """:meth:`sound` of the first :data:`MAX_AUDIO_SECONDS` of an audio file (or a video's track)."""
        from ..data.decode import probe_audio, read_audio

        rate = min(probe_audio(path).sample_rate, 48000)
        wave = read_audio(path, 0.0, MAX_AUDIO_SECONDS, rate, pad=False).numpy()
        return self.sound(name, wave, rate)

    def frame(self, name: str, video: str | Path, time: float | None = None) -> str:
        """A JPEG thumbnail of a video's frame at ``time`` seconds (None: the middle)."""
        from ..data import decode

        with decode.VideoReader(video) as reader:
            t = reader.duration / 2 if time is None else time
            pix = reader.get_frames([min(max(t, 0.0), max(reader.duration - 1e-3, 0.0))])[0]
        return self.image(name, pix.permute(1, 2, 0).numpy())


# ----------------------------------------------------------------------------------------------
# HTML pieces


def img(src: str, alt: str, *, title: str = "", cls: str = "") -> str:
    """A lazily loaded ``<img>``."""
    extra = (f' title="{esc(title)}"' if title else "") + (f' class="{cls}"' if cls else "")
    return f'<img src="{esc(src)}" alt="{esc(alt)}" loading="lazy"{extra}>'


def audio(src: str) -> str:
    """An ``<audio>`` player that loads nothing until asked (or played)."""
    return f'<audio controls preload="none" src="{esc(src)}"></audio>'


def paged(blocks: Sequence[str], what: str, size: int = PAGE_SIZE) -> str:
    """Items' HTML in ``<details>`` blocks of ``size``; the first one open."""
    out = []
    for k, block in enumerate(pages(blocks, size)):
        first, last = k * size + 1, k * size + len(block)
        out.append(f'<details{" open" if k == 0 else ""}><summary>{esc(what)} {first}-{last} of {len(blocks)}'
                   f'</summary><div class="gallery">{"".join(block)}</div></details>')
    return "".join(out)


def skipped_note(skipped: Sequence[Sequence[str]]) -> str:
    """A warning listing the clips a gallery could not read."""
    if not skipped:
        return ""
    rows = "".join(f"<li>{esc(vid)}: {esc(reason)}</li>" for vid, reason in skipped[:20])
    more = f"<li>... and {len(skipped) - 20} more</li>" if len(skipped) > 20 else ""
    return (f'<div class="warn">{len(skipped)} clip(s) could not be read and are not shown:'
            f"<ul>{rows}{more}</ul></div>")


# ----------------------------------------------------------------------------------------------
# the section


@dataclass
class Gallery:
    """A built gallery section and the asset folder it links (None when there is none)."""

    html: str
    folder: Path | None = None


def _config(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _failed(reason: str) -> Gallery:
    return Gallery('<section id="gallery"><h2>Gallery</h2>'
                   f'<p class="warn">No gallery: {esc(reason)}</p></section>')


def gallery_section(run_dir: Path, page_dir: Path, opts: GalleryOptions) -> Gallery:
    """The run's gallery section, computed (or reused, see the module docstring); never raises.

    Args:
        run_dir: the run folder.
        page_dir: the folder of the page that links the assets (``report_files/`` goes there).
        opts: what to show.

    Returns:
        The :class:`Gallery`; a gallery that cannot be built (no checkpoint, the data gone, a decoding
        failure) is a section that says why (also logged).
    """
    from ._tasks import COMPUTE, RENDER

    checkpoint = find_checkpoint(run_dir)
    if checkpoint is None:
        return _failed(f"no checkpoint in {run_dir / 'checkpoints'} (best.pt or last.pt)")
    cfg = _config(run_dir)
    data_root = str((cfg.get("data") or {}).get("root") or "")
    split = opts.split or _default_split(cfg)
    key = gallery_key(checkpoint, data_root, split, opts)
    split_dir = page_dir / ASSETS_DIR / _safe(split)
    folder = split_dir / f"g-{key}"
    data = _read(folder / GALLERY_FILE)
    if data is None:
        try:
            with atomic_path(folder) as tmp:
                data = _compute(checkpoint, cfg.get("task"), opts, split, Assets(tmp), COMPUTE)
                write_json(tmp / GALLERY_FILE, data)
        except Exception as e:  # noqa: BLE001 (the page stands without its gallery; the reason is shown)
            logger.warning("report gallery of %s not built: %s", run_dir, e, exc_info=logger.isEnabledFor(10))
            return _failed(f"{type(e).__name__}: {e}")
    else:
        logger.info("report gallery: reusing %s", folder)
    prefix = os.path.relpath(folder, page_dir).replace(os.sep, "/")
    try:
        body = RENDER[data["task"]](data, lambda name: f"{prefix}/{name}")
    except (KeyError, TypeError, ValueError) as e:
        return _failed(f"{folder / GALLERY_FILE} does not describe a gallery ({e}); delete the folder to rebuild")
    return Gallery(body, folder)


def _default_split(cfg: dict[str, Any]) -> str:
    """``test`` when the run's data has one, else ``val`` (read from the run's config, without the model; a shard
    run's from the manifests, which are read over http too)."""
    from ..data.storage import shard_splits

    data = cfg.get("data") or {}
    root = data.get("root") or ""
    if root and data.get("storage") == "shards":
        return "test" if shard_splits(root, ("test",)) else "val"
    if root and Path(root, "test").is_dir():
        return "test"
    if cfg.get("task") == "tagging" and data.get("format") not in (None, "layout", "folder"):
        return "test" if data.get("test_split") else "val"
    return "test" if not root else "val"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "split"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == GALLERY_VERSION else None


def _compute(checkpoint: Path, task: str | None, opts: GalleryOptions, split: str, assets: Assets,
             compute: dict[str, Callable[..., dict[str, Any]]]) -> dict[str, Any]:
    """Run the task's gallery; each loads the checkpoint once, the way its inference library does."""
    if task is None:  # no config.json: the checkpoint says
        from ..runs import load_run

        task = load_run(checkpoint, "cpu").kind
    if task not in compute:
        raise ValueError(f"no gallery for task {task!r}")
    data = compute[task](checkpoint, split, opts, assets)
    return {"version": GALLERY_VERSION, "task": task, "checkpoint": str(checkpoint), "seed": opts.seed, **data}


def remove_stale(page_dir: Path, keep: Sequence[Path]) -> None:
    """Remove the gallery folders under ``page_dir/report_files`` that the page no longer links, and the
    temporaries of killed writes."""
    root = page_dir / ASSETS_DIR
    if not root.is_dir():
        return
    keep_set = {Path(p).resolve() for p in keep}
    for split_dir in (p for p in root.iterdir() if p.is_dir()):
        for old in split_dir.glob("g-*"):
            if old.resolve() not in keep_set:
                shutil.rmtree(old, ignore_errors=True)
        for tmp in stale_temporaries(split_dir):
            shutil.rmtree(tmp, ignore_errors=True)
        if not any(split_dir.iterdir()):
            split_dir.rmdir()
