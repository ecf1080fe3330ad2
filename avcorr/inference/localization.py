"""Where does the sound come from? Heatmaps of a localization checkpoint (AVOL-Net, EZ-VSL) over a
video (:func:`localize_video`) or over the clips of a split (:func:`localize_grid`); the library of
``python -m avcorr.localize`` (see that module for the files written).
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .._atomic import atomic_path
from .._ffmpeg import find_tool
from .._lazy import no_grad as _no_grad

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def load_localizer(checkpoint: str | Path, device: str = "auto"):
    """Rebuild a localization model from a training checkpoint.

    Args:
        checkpoint: ``last.pt`` / ``best.pt`` written by ``avcorr.train``.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.

    Returns:
        ``(model in eval mode on the device, config, device)``.

    Raises:
        FileNotFoundError: no such checkpoint.
        avcorr.runs.RunKindError: the checkpoint's model cannot localize (no ``localize`` method).
    """
    from ..runs import load_run

    run = load_run(checkpoint, device, expect="localize")
    return run.model, run.cfg, run.device


def _windows(wave: torch.Tensor, times: Sequence[float], sr: int, seconds: float, loop: bool) -> torch.Tensor:
    """(len(times), round(seconds * sr)) audio windows centred on ``times``, zero-padded past the ends
    (or taken from the looped audio when ``loop``)."""
    import torch
    n = int(round(seconds * sr))
    total = wave.shape[0]
    out = torch.zeros(len(times), n)
    for i, t in enumerate(times):
        start = int(round(t * sr)) - n // 2
        if loop:
            out[i] = wave[torch.arange(start, start + n) % total]
            continue
        a, b = max(start, 0), min(start + n, total)
        if b > a:
            out[i, a - start:b - start] = wave[a:b]
    return out


class _Localizer:
    """Batched frames + audio windows -> heatmaps with one model."""

    def __init__(self, model, cfg, device: torch.device):
        from ..data.localization import squash_transform

        self.model, self.device = model, device
        self.sr, self.seconds = cfg.data.audio.sample_rate, cfg.data.audio.seconds
        self.transform = squash_transform(cfg.data.image_size)

    @_no_grad
    def maps(self, frames: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) frames and (N, T) audio -> float (N, h, w) heatmaps on the CPU."""
        images = self.transform(frames).to(self.device)
        return self.model.localize(audio.to(self.device), images).float().cpu()


def _display(frame: torch.Tensor, min_side: int) -> np.ndarray:
    """uint8 (3, H, W) frame -> uint8 (H', W', 3), enlarged (bilinear) so that its short side is >= ``min_side``."""
    import cv2

    img = np.ascontiguousarray(frame.permute(1, 2, 0).numpy())
    h, w = img.shape[:2]
    if min(h, w) >= min_side:
        return img
    k = math.ceil(min_side / min(h, w))
    return cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_LINEAR)


def _ffmpeg() -> str:
    return find_tool("ffmpeg", needed_for="writing the MP4")


def _run(cmd: list[str], what: str, stdin: bytes | None = None) -> None:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-800:]
        raise RuntimeError(f"{what}: ffmpeg failed (exit {proc.returncode}): {err}")


def _mux(video_only: Path, audio_src: Path, out: Path, duration: float) -> None:
    """Put ``audio_src``'s first audio stream next to ``video_only``'s video in ``out`` (atomic).

    The audio is copied as it is when the mp4 container takes its codec, else encoded to AAC.
    """
    with atomic_path(out) as tmp:
        base = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(video_only), "-i", str(audio_src),
                "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-t", f"{duration:.6f}"]
        tail = ["-movflags", "+faststart", "-f", "mp4", str(tmp)]
        try:
            _run(base + ["-c:a", "copy"] + tail, str(out))
        except RuntimeError as e:
            logger.info("audio stream copy not possible (%s); encoding AAC", str(e)[-120:])
            _run(base + ["-c:a", "aac", "-b:a", "192k"] + tail, str(out))


def localize_video(checkpoint: str | Path, video: str | Path, out_dir: str | Path, *, audio: str | Path | None = None,
                   frames: int = 8, write_video: bool = True, mux_audio: str = "localized", device: str = "auto",
                   batch_size: int = 16, alpha: float = 0.45, min_side: int = 256,
                   progress: bool = False) -> dict[str, list[str]]:
    """Heatmap PNGs of sampled frames and an MP4 of the whole clip with the heatmap overlaid.

    Args:
        checkpoint: a localization training checkpoint.
        video: the clip.
        out_dir: output folder (created).
        audio: localize this sound instead of the clip's own track (looped when shorter).
        frames: number of PNG frames, evenly spaced over the clip.
        write_video: also write the MP4.
        mux_audio: ``"localized"`` (the sound the maps come from) or ``"original"`` (the clip's track).
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: frames per forward pass.
        alpha: opacity of the heatmap.
        min_side: small videos are enlarged by an integer factor so that the pictures' short side
            is at least this many pixels (0 = native size).
        progress: tqdm bar over the video frames.

    Returns:
        ``{"png": [...], "mp4": [...]}`` paths written.

    Raises:
        DecodeError: the video cannot be read, or the audio source has no audio.
        RuntimeError: ffmpeg is missing or failed.
    """
    from tqdm.auto import tqdm

    from ..data import decode
    from ..data.decode import frame_centre
    from ..viz import overlay_heatmap, save_png

    if mux_audio not in ("localized", "original"):
        raise ValueError(f"mux_audio must be 'localized' or 'original', got {mux_audio!r}")
    model, cfg, dev = load_localizer(checkpoint, device)
    loc = _Localizer(model, cfg, dev)
    # absolute paths: a name starting with '-' must never read as an ffmpeg option
    video = Path(video).absolute()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(audio).absolute() if audio is not None else video
    wave = decode.read_audio(source, 0.0, None, loc.sr)  # DecodeError (naming the file) when it has no audio
    written: dict[str, list[str]] = {"png": [], "mp4": []}
    with decode.VideoReader(video) as reader:
        # the decodable video's own duration and frames: an audio track that runs longer or stops
        # earlier (normal in real files) changes nothing here; the maps' audio is zero-padded
        info = reader.info
        duration, fps, n_frames = info.duration, info.fps, info.num_frames
        loop = audio is not None and wave.shape[0] < duration * loc.sr
        # PNGs: frames at the centres of N equal slices of the clip
        times = [(k + 0.5) * duration / max(1, frames) for k in range(max(0, frames))]
        for start in range(0, len(times), batch_size):
            ts = times[start:start + batch_size]
            fr = reader.get_frames(ts)
            maps = loc.maps(fr, _windows(wave, ts, loc.sr, loc.seconds, loop))
            for k, (t, f, m) in enumerate(zip(ts, fr, maps), start):
                path = out_dir / f"frame_{k:03d}_{t:08.3f}s.png"
                save_png(path, overlay_heatmap(_display(f, min_side), m, alpha=alpha))
                written["png"].append(str(path))
        if write_video:
            h, w = _display(reader.get_frames([0.0])[0], min_side).shape[:2]
            with tempfile.TemporaryDirectory(dir=out_dir, prefix=".localize-") as tmpdir:
                silent = Path(tmpdir) / "video.mp4"
                cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                       "-s", f"{w}x{h}", "-r", f"{fps:.6f}", "-i", "pipe:0",
                       "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # yuv420p needs even sides
                       "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(silent)]
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
                try:
                    bar = tqdm(total=n_frames, desc="video", unit="frame", disable=not progress, leave=False)
                    for start in range(0, n_frames, batch_size):
                        ts = [frame_centre(i, fps) for i in range(start, min(n_frames, start + batch_size))]
                        ts = [t for t in ts if t < duration]
                        if not ts:
                            break
                        fr = reader.get_frames(ts)
                        maps = loc.maps(fr, _windows(wave, ts, loc.sr, loc.seconds, loop))
                        for f, m in zip(fr, maps):
                            proc.stdin.write(overlay_heatmap(_display(f, min_side), m, alpha=alpha).tobytes())
                        bar.update(len(ts))
                    bar.close()
                    proc.stdin.close()
                    err = proc.stderr.read().decode("utf-8", "replace")
                    if proc.wait() != 0:
                        raise RuntimeError(f"{silent}: ffmpeg failed (exit {proc.returncode}): {err.strip()[-800:]}")
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                out = out_dir / f"{video.stem}_heatmap.mp4"
                mux_src = source if mux_audio == "localized" else video
                _mux(silent, mux_src, out, duration)
                written["mp4"].append(str(out))
    return written


def localize_grid(checkpoint: str | Path, out_dir: str | Path, *, data_root: str | None = None, split: str = "test",
                  max_clips: int = 16, columns: int = 4, device: str = "auto", batch_size: int = 16) -> Path:
    """A contact sheet of a split: middle frame with ground-truth boxes and heatmap overlay per clip.

    Args:
        checkpoint: a localization training checkpoint.
        out_dir: output folder; the sheet is ``grid_<split>.png``.
        data_root: dataset root (default: the checkpoint's ``data.root``).
        split: split folder name.
        max_clips: clips shown (the first ones of the split).
        columns: clips per row.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: clips per forward pass.

    Returns:
        The PNG's path. The clips that could not be read are logged and listed in ``out_dir/skipped.csv``
        (id, path, reason; a header only when none was skipped).
    """
    import torch
    from ..data.skipped import SKIPPED_FILE, clip_paths, skipped_rows, write_skipped_csv
    from ..data.layout import load_split
    from ..data.localization import LocalizationDataset
    from ..data.transforms import denormalize
    from ..metrics.localization import localization_cious
    from ..viz import save_contact_sheet

    model, cfg, dev = load_localizer(checkpoint, device)
    root = data_root or cfg.data.root
    index = load_split(root, split)
    ds = LocalizationDataset(index, sample_rate=cfg.data.audio.sample_rate, seconds=cfg.data.audio.seconds,
                             image_size=cfg.data.image_size, video_backend=cfg.data.video_backend or None)
    frames, maps, boxes, titles = [], [], [], []
    skipped = list(ds.init_skipped)
    i = 0
    while i < len(ds) and len(frames) < max_clips:
        items = []
        while i < len(ds) and len(items) < min(batch_size, max_clips - len(frames)):
            item = ds[i]
            i += 1
            if item.get("bad"):
                skipped += item["skipped"]
                logger.warning("skipped clip %s: %s", item["vid"], item["skipped"][0][1])
                continue
            items.append(item)
        if not items:
            continue
        with torch.no_grad():
            m = model.localize(torch.stack([it["audio"] for it in items]).to(dev),
                               torch.stack([it["image"] for it in items]).to(dev)).float().cpu()
        cious = localization_cious(m, [it["boxes"] for it in items])
        for it, mm, c in zip(items, m, cious):
            frames.append(denormalize(it["image"]))
            maps.append(mm)
            boxes.append(it["boxes"])
            titles.append(it["vid"] + ("" if math.isnan(c) else f"  cIoU {c:.2f}"))
    out_dir = Path(out_dir)
    rows = skipped_rows(skipped, clip_paths(index.clips))
    listed = write_skipped_csv(out_dir / SKIPPED_FILE, rows)
    if rows:
        logger.warning("%d clip(s) skipped, listed in %s", len(rows), listed)
    if not frames:
        raise ValueError(f"{root}/{split}: no clip could be read ({len(rows)} skipped, listed in {listed})")
    return save_contact_sheet(out_dir / f"grid_{split}.png", frames, maps, boxes=boxes, titles=titles,
                              columns=columns)


