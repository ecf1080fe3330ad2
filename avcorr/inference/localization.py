"""Where does the sound come from? Heatmaps of a localization checkpoint (AVOL-Net, EZ-VSL) over a
video (:func:`localize_video`) or over the clips of a split (:func:`localize_grid`); the library of
``python -m avcorr.localize`` (see that module for the files written).

Scales (``scale=``): ``"model"`` colours every map on the model's own output range (AVOL-Net's
sigmoid: 0..1; the contrastive localizer's cosine: -1..1, or 0..1 when it blends in its object
prior), so a sound that comes from nowhere in the picture leaves it dark; ``"clip"`` (a video) or
``"batch"`` (a grid) uses the joint minimum and maximum of all the maps drawn; ``"frame"`` stretches
each map from its own minimum to its maximum (the relative view: the best cell always looks hot).
``vrange=(lo, hi)`` gives the scale by hand.
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

SCALES = ("model", "clip", "batch", "frame")
PROTOCOLS = ("fixed", "lvs")
"""Contact-sheet protocols, as the evaluation reports them (``fixed/ciou@0.5`` and ``ciou@0.5``)."""


def ciou_protocol(name: str) -> tuple[float | str, str]:
    """A cIoU protocol of the evaluation by name.

    Args:
        name: ``"fixed"`` (pixels >= the evaluator's fixed threshold of the min-max normalised map) or
            ``"lvs"`` (pixels above the median).

    Returns:
        ``(threshold for avcorr.metrics.localization.binarize, a one-line description)``.
    """
    from ..tasks.localization import FIXED_THRESHOLD  # the evaluator's number, not a copy

    if name == "lvs":
        return "median", ("cIoU (LVS / EZ-VSL rule): map resized to 224x224 and min-max normalised, pixels above "
                          "its median on (half the frame)")
    if name == "fixed":
        return FIXED_THRESHOLD, (f"cIoU({FIXED_THRESHOLD:g}): map resized to 224x224 and min-max normalised, "
                                 f"pixels >= {FIXED_THRESHOLD:g} on (a fixed threshold on the relative scale)")
    raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")


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


def model_range(model) -> tuple[float, float] | None:
    """The range of a localization model's map values: 0..1 for AVOL-Net's sigmoid and for maps blended
    with an object prior (both parts min-max normalised), -1..1 for a cosine map; for AVOL-Net's
    calibrated logits (``map_logits``) on cosine cells, ``bias -+ |scale|``; None (each map on its own
    range) for logits of unbounded scalar products."""
    if getattr(model, "prior_alpha", 1.0) < 1.0:
        return 0.0, 1.0
    if getattr(model, "objective", "avol") == "avol":
        if not getattr(model, "map_logits", False):
            return 0.0, 1.0
        if not getattr(model, "normalized", False):
            return None
        w, b = float(model.calibration.weight.detach().abs().sum()), float(model.calibration.bias.detach().sum())
        return b - w, b + w
    return -1.0, 1.0


def clip_scores(model, out: dict) -> tuple[torch.Tensor, str]:
    """The clips' audio-visual correspondence from a localization model's ``forward`` output.

    Args:
        model: the model (its ``objective`` says how to read the logits).
        out: ``model(audio, image)``, with ``logits`` (B, 2) = ``[0, max cell logit]``.

    Returns:
        ``(float (B,) scores, name)``: AVOL-Net's match probability (``p(match)``, sigmoid of the best
        cell's logit) or, for the contrastive localizer, the best cell's cosine similarity (``max cos``).
    """
    import torch

    z = out["logits"][:, 1].float()
    if getattr(model, "objective", "avol") == "avol":
        return torch.sigmoid(z), score_name(model)
    return z / float(getattr(model, "logit_scale", 1.0)), score_name(model)


def score_name(model) -> str:
    """What :func:`clip_scores` returns for this model: ``p(match)`` or ``max cos``."""
    return "p(match)" if getattr(model, "objective", "avol") == "avol" else "max cos"


class _Localizer:
    """Batched frames + audio windows -> heatmaps and correspondence scores with one model."""

    def __init__(self, model, cfg, device: torch.device):
        from ..data.localization import squash_transform

        self.model, self.device = model, device
        spec = model.input_spec  # the audio the model takes
        self.sr, self.seconds = spec.sample_rate, spec.clip_seconds
        self.transform = squash_transform(cfg.data.image_size)
        self.score_name = score_name(model)

    @_no_grad
    def maps(self, frames: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 3, H, W) frames and (N, T) audio -> float (N, h, w) heatmaps and (N,) scores on the CPU."""
        images = self.transform(frames).to(self.device)
        return self.forward(audio, images)

    @_no_grad
    def forward(self, audio: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T) audio and float (N, 3, H, W) model-ready images -> (N, h, w) maps and (N,) scores on the CPU."""
        out = self.model(audio.to(self.device), images.to(self.device))
        return out["map"].float().cpu(), clip_scores(self.model, out)[0].cpu()


def _scale_range(scale: str, vrange: tuple[float, float] | None, model, maps) -> tuple[float, float] | None:
    """The colour scale: ``vrange`` when given, else per ``scale`` (None = per frame)."""
    from ..viz import value_range

    if vrange is not None:
        return float(vrange[0]), float(vrange[1])
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if scale == "frame":
        return None
    if scale == "model":
        return model_range(model)
    return value_range(maps)


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


def _video_times(n_frames: int, fps: float, duration: float) -> list[float]:
    """The centre times of the decodable frames (those that start before ``duration``)."""
    from ..data.decode import frame_centre

    return [t for t in (frame_centre(i, fps) for i in range(n_frames)) if t < duration]


def localize_video(checkpoint: str | Path, video: str | Path, out_dir: str | Path, *, audio: str | Path | None = None,
                   frames: int = 8, write_video: bool = True, mux_audio: str = "localized", device: str = "auto",
                   batch_size: int = 16, alpha: float = 0.45, min_side: int = 256, scale: str = "model",
                   vrange: tuple[float, float] | None = None, progress: bool = False) -> dict[str, list[str]]:
    """Heatmap PNGs of sampled frames and an MP4 of the whole clip with the heatmap overlaid.

    Every picture carries a colour bar (the scale), and a caption with the frame's time and the
    clip's correspondence score for the audio window centred on it (:func:`clip_scores`).

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
        scale: ``"model"``, ``"clip"`` (all frames of the video; one more pass of the model) or
            ``"frame"`` (see the module docstring).
        vrange: ``(lo, hi)``: this absolute scale instead of ``scale``.
        progress: tqdm bar over the video frames.

    Returns:
        ``{"png": [...], "mp4": [...]}`` paths written.

    Raises:
        DecodeError: the video cannot be read, or the audio source has no audio.
        RuntimeError: ffmpeg is missing or failed.
        ValueError: an unknown ``scale`` or mux mode, or an empty ``vrange``.
    """
    from tqdm.auto import tqdm

    from ..data import decode
    from ..viz import localization_frame, save_png

    if mux_audio not in ("localized", "original"):
        raise ValueError(f"mux_audio must be 'localized' or 'original', got {mux_audio!r}")
    if scale == "batch":
        scale = "clip"
    if vrange is None and scale not in SCALES:
        raise ValueError(f"scale must be one of model, clip, frame, got {scale!r}")
    model, cfg, dev = load_localizer(checkpoint, device)
    loc = _Localizer(model, cfg, dev)
    # absolute paths: a name starting with '-' must never read as an ffmpeg option
    video = Path(video).absolute()
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(audio).absolute() if audio is not None else video
    wave = decode.read_audio(source, 0.0, None, loc.sr)  # DecodeError (naming the file) when it has no audio
    written: dict[str, list[str]] = {"png": [], "mp4": []}

    def draw(f, m, score, t, vr):
        return localization_frame(_display(f, min_side), m, vrange=vr, time=t, score=float(score),
                                  score_name=loc.score_name, alpha=alpha)

    with decode.VideoReader(video) as reader:
        # the decodable video's own duration and frames: an audio track that runs longer or stops
        # earlier (normal in real files) changes nothing here; the maps' audio is zero-padded
        info = reader.info
        duration, fps, n_frames = info.duration, info.fps, info.num_frames
        loop = audio is not None and wave.shape[0] < duration * loc.sr

        def batches(times, desc=None):
            bar = tqdm(total=len(times), desc=desc, unit="frame", disable=not (progress and desc), leave=False)
            for start in range(0, len(times), batch_size):
                ts = times[start:start + batch_size]
                fr = reader.get_frames(ts)
                maps, scores = loc.maps(fr, _windows(wave, ts, loc.sr, loc.seconds, loop))
                yield ts, fr, maps, scores
                bar.update(len(ts))
            bar.close()

        video_times = _video_times(n_frames, fps, duration)
        clip_maps = None
        if vrange is None and scale == "clip":  # one pass for the range of the whole clip
            clip_maps = [m for _, _, maps, _ in batches(video_times, "range") for m in maps]
        vr = _scale_range(scale, vrange, model, clip_maps)
        # PNGs: frames at the centres of N equal slices of the clip
        times = [(k + 0.5) * duration / max(1, frames) for k in range(max(0, frames))]
        k = 0
        for ts, fr, maps, scores in batches(times):
            for t, f, m, sc in zip(ts, fr, maps, scores):
                path = out_dir / f"frame_{k:03d}_{t:08.3f}s.png"
                save_png(path, draw(f, m, sc, t, vr))
                written["png"].append(str(path))
                k += 1
        if write_video and video_times:
            h, w = draw(reader.get_frames([0.0])[0], np.zeros((2, 2), np.float32), 0.0, 0.0, vr).shape[:2]
            with tempfile.TemporaryDirectory(dir=out_dir, prefix=".localize-") as tmpdir:
                silent = Path(tmpdir) / "video.mp4"
                cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                       "-s", f"{w}x{h}", "-r", f"{fps:.6f}", "-i", "pipe:0",
                       "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # yuv420p needs even sides
                       "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(silent)]
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
                try:
                    for ts, fr, maps, scores in batches(video_times, "video"):
                        for t, f, m, sc in zip(ts, fr, maps, scores):
                            proc.stdin.write(draw(f, m, sc, t, vr).tobytes())
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
                  max_clips: int = 16, columns: int = 4, device: str = "auto", batch_size: int = 16,
                  scale: str = "model", vrange: tuple[float, float] | None = None, protocol: str = "fixed") -> Path:
    """A contact sheet of a split: middle frame with ground-truth boxes and heatmap overlay per clip.

    Each clip is captioned with its id, its cIoU under ``protocol`` and its correspondence score;
    the overlay outlines the pixels that protocol switches on; a legend, a colour bar and a line
    stating the protocol sit around the panels.

    Args:
        checkpoint: a localization training checkpoint.
        out_dir: output folder; the sheet is ``grid_<split>.png``.
        data_root: dataset root (default: the checkpoint's ``data.root``).
        split: split folder name.
        max_clips: clips shown (the first ones of the split).
        columns: clips per row.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        batch_size: clips per forward pass.
        scale: ``"model"``, ``"batch"`` (all the maps of the sheet) or ``"frame"`` (module docstring).
        vrange: ``(lo, hi)``: this absolute scale instead of ``scale``.
        protocol: ``"fixed"`` or ``"lvs"`` (:func:`ciou_protocol`), as the evaluation computes them.

    Returns:
        The PNG's path. The clips that could not be read are logged and listed in ``out_dir/skipped.csv``
        (id, path, reason; a header only when none was skipped).

    Raises:
        ValueError: the data root holds shards (:func:`~avcorr.data.storage.require_files`): the sheet reads files.
    """
    import torch

    from ..data.skipped import SKIPPED_FILE, clip_paths, skipped_rows, write_skipped_csv
    from ..data.layout import load_split
    from ..data.localization import LocalizationDataset
    from ..data.storage import require_files
    from ..data.transforms import denormalize
    from ..metrics.localization import binarize, localization_cious, normalize_map, resize_map
    from ..viz import save_contact_sheet

    threshold, described = ciou_protocol(protocol)
    if scale == "clip":
        scale = "batch"
    if vrange is None and scale not in SCALES:
        raise ValueError(f"scale must be one of model, batch, frame, got {scale!r}")
    model, cfg, dev = load_localizer(checkpoint, device)
    loc = _Localizer(model, cfg, dev)
    root = data_root or cfg.data.root
    require_files(root, "localize --grid")
    index = load_split(root, split)
    ds = LocalizationDataset(index, sample_rate=loc.sr, seconds=loc.seconds,
                             image_size=cfg.data.image_size, video_backend=cfg.data.video_backend or None)
    frames, maps, boxes, titles, regions = [], [], [], [], []
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
        m, scores = loc.forward(torch.stack([it["audio"] for it in items]), torch.stack([it["image"] for it in items]))
        cious = localization_cious(m, [it["boxes"] for it in items], threshold=threshold)
        on = binarize(normalize_map(resize_map(m)), threshold).numpy()
        for it, mm, c, sc, r in zip(items, m, cious, scores, on):
            frames.append(denormalize(it["image"]))
            maps.append(mm)
            boxes.append(it["boxes"])
            regions.append(r)
            titles.append(it["vid"] + ("" if math.isnan(c) else f"  cIoU {c:.2f}") + f"  {loc.score_name} {sc:.2f}")
    out_dir = Path(out_dir)
    rows = skipped_rows(skipped, clip_paths(index.clips))
    listed = write_skipped_csv(out_dir / SKIPPED_FILE, rows)
    if rows:
        logger.warning("%d clip(s) skipped, listed in %s", len(rows), listed)
    if not frames:
        raise ValueError(f"{root}/{split}: no clip could be read ({len(rows)} skipped, listed in {listed})")
    vr = _scale_range(scale, vrange, model, maps)
    scale_text = (f"colours: one scale {vr[0]:.3g}..{vr[1]:.3g} ({'given' if vrange else scale})" if vr
                  else "colours: each map min..max")
    text = (f"{described}; success = cIoU >= 0.5 (ciou@0.5).  {loc.score_name}: the clip's audio-visual "
            f"correspondence.  {scale_text}.")
    return save_contact_sheet(out_dir / f"grid_{split}.png", frames, maps, boxes=boxes, titles=titles,
                              columns=columns, vrange=vr, regions=regions, protocol=text,
                              region_label=f"pixels on ({protocol})")
