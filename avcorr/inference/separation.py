"""Sound-of-Pixels separation with a ``separation`` checkpoint: :class:`Separator` separates a mixture
into one waveform per video; :func:`separate_videos` writes the files of ``python -m avcorr.separate``
(see that module for what they are).

Audio longer than the model's window is processed window by window (frames around each window's
centre) and the pieces are joined; the last window is zero-padded and cropped.
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .._atomic import atomic_path
from .._lazy import no_grad as _no_grad

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples as 16-bit PCM WAV (atomically); values beyond [-1, 1] are clipped (logged).

    Args:
        path: output file.
        samples: float (L,) waveform.
        sample_rate: Hz.
    """
    path = Path(path)
    x = np.asarray(samples, dtype=np.float64)
    clipped = int(np.sum(np.abs(x) > 1.0))
    if clipped:
        logger.warning("%s: %d samples beyond [-1, 1] were clipped", path, clipped)
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


class Separator:
    """A Sound-of-Pixels checkpoint ready to separate mixtures.

    Args:
        checkpoint: a ``best.pt`` / ``last.pt`` of a ``separation`` run.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.

    Raises:
        FileNotFoundError: no such checkpoint.
        avcorr.runs.RunKindError: the checkpoint is not from a ``separation`` run.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto"):
        from ..data.transforms import frame_transform
        from ..runs import load_run

        run = load_run(checkpoint, device, expect="separation")
        cfg = run.cfg
        self.cfg, self.task, self.device, self.model = cfg, run.task, run.device, run.model
        self.settings = self.task.settings
        self.sample_rate = cfg.data.audio.sample_rate
        self.window = self.task.num_samples
        self.transform = frame_transform(cfg.data.image_size, train=False)
        self.binary = cfg.data.mask == "binary"

    def frames(self, reader: Any, centre: float) -> torch.Tensor:
        """float (3, Tf, S, S) frames of an open :class:`~avcorr.data.decode.VideoReader` around ``centre`` (s)."""
        from ..data.separation import frame_times

        d = self.cfg.data
        times = frame_times(reader.fps, reader.num_frames, centre, d.frames_per_clip, d.frame_stride)
        return self.transform(reader.get_frames(times)).transpose(0, 1)

    @_no_grad
    def separate(self, mixture: torch.Tensor, readers: Sequence[Any], *, pixels: bool = False) -> dict[str, Any]:
        """Separate one mixture into one waveform per video.

        Args:
            mixture: float (L,) at ``sample_rate``.
            readers: one open VideoReader per source.
            pixels: also compute each video's pixel energy map over the middle window.

        Returns:
            dict: ``sources`` float (N, L); ``masks`` float (N, n_bins, T') the (thresholded) linear masks
            joined over windows; ``pixel_maps`` list of N (h, w) maps and ``pixel_frames`` (N, 3, S, S)
            normalised frames when ``pixels``.
        """
        import torch
        from ..models.sop_audio import apply_masks, stft, warp

        s, win = self.settings, self.window
        total = int(mixture.numel())
        n_windows = max(1, -(-total // win))
        pieces, masks = [], []
        pixel_maps, pixel_frames = [], []
        for j in range(n_windows):
            chunk = mixture[j * win:(j + 1) * win]
            real = int(chunk.numel())
            chunk = torch.nn.functional.pad(chunk, (0, win - real)).to(self.device)
            centre = (j * win + real / 2) / self.sample_rate
            frames = torch.stack([self.frames(r, centre) for r in readers]).unsqueeze(0).to(self.device)
            mix_spec = stft(chunk[None], s)
            mix_mag = warp(mix_spec.abs().unsqueeze(1) + 1e-10, s.warp_bins)
            probs = torch.sigmoid(self.model(mix_mag, frames)["masks"].float())
            waves, lin = apply_masks(probs, mix_spec, s, win, threshold=0.5 if self.binary else None)
            pieces.append(waves[0, :, :real].cpu())
            masks.append(lin[0, :, :, : 1 + (real - 1) // s.hop_length].cpu())
            if pixels and j == n_windows // 2:
                for n in range(len(readers)):
                    pixel_maps.append(self.model.pixel_sound_map(mix_mag, frames[:, n])[0].cpu())
                    pixel_frames.append(frames[0, n, :, frames.shape[3] // 2].cpu())
        out: dict[str, Any] = {"sources": torch.cat(pieces, dim=-1), "masks": torch.cat(masks, dim=-1)}
        if pixels:
            out["pixel_maps"], out["pixel_frames"] = pixel_maps, torch.stack(pixel_frames)
        return out


def _output_names(videos: Sequence[str]) -> list[str]:
    names, seen = [], set()
    for i, v in enumerate(videos):
        stem = Path(v).stem or f"source{i}"
        name = stem if stem not in seen and stem != "mixture" else f"{stem}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _spectrogram_db(x: torch.Tensor, settings: Any) -> np.ndarray:
    import torch
    from ..models.sop_audio import stft

    return (20 * torch.log10(stft(x.float(), settings).abs() + 1e-6)).numpy()


def plot_separation(path: Path, mixture: torch.Tensor, sources: torch.Tensor, masks: torch.Tensor, names: list[str],
                    settings: Any, sample_rate: int) -> None:
    """PNG: the mixture spectrogram, then per source its predicted mask and separated spectrogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = sources.shape[0]
    seconds, nyquist = mixture.numel() / sample_rate, sample_rate / 2 / 1000
    extent = (0, seconds, 0, nyquist)
    mix_db = _spectrogram_db(mixture, settings)
    vmax = float(mix_db.max())
    fig, axes = plt.subplots(n + 1, 2, figsize=(11, 2.6 * (n + 1)), squeeze=False)
    kw = dict(origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=vmax - 80, vmax=vmax)
    axes[0, 0].imshow(mix_db, **kw)
    axes[0, 0].set_title("mixture")
    axes[0, 1].axis("off")
    for i in range(n):
        axes[i + 1, 0].imshow(masks[i].numpy(), origin="lower", aspect="auto", extent=extent, cmap="gray", vmin=0, vmax=1)
        axes[i + 1, 0].set_title(f"predicted mask: {names[i]}")
        axes[i + 1, 1].imshow(_spectrogram_db(sources[i], settings), **kw)
        axes[i + 1, 1].set_title(f"separated: {names[i]}")
    for ax in axes.flat:
        ax.set_xlabel("time (s)")
        ax.set_ylabel("kHz")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def plot_pixel_map(path: Path, frame: torch.Tensor, energy: torch.Tensor, title: str) -> None:
    """PNG: a frame and its per-pixel sound energy map (bilinearly upsampled, overlaid)."""
    import torch
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..data.transforms import denormalize

    image = denormalize(frame).permute(1, 2, 0).numpy()
    h, w = image.shape[:2]
    heat = torch.nn.functional.interpolate(energy[None, None].float(), size=(h, w), mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(image)
    axes[0].set_title("frame")
    axes[1].imshow(image)
    lo, hi = float(heat.min()), float(heat.max())
    im = axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=lo, vmax=max(hi, lo + 1e-12))
    axes[1].set_title(title)
    fig.colorbar(im, ax=axes[1], fraction=0.046, label="energy")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)




def separate_videos(checkpoint: str | Path, videos: Sequence[str | Path], out_dir: str | Path, *,
                    mix: str | Path | None = None, pixels: bool = False, device: str = "auto",
                    video_backend: str | None = None) -> dict[str, Any]:
    """Separate the sound of each video from a mixture and write the files of ``python -m avcorr.separate``.

    Args:
        checkpoint: a ``separation`` checkpoint.
        videos: one video per source.
        out_dir: output folder (created): ``mixture.wav``, ``<video stem>.wav`` per video, ``separation.png``
            and, with ``pixels``, ``<video stem>_pixels.png``.
        mix: separate this recording instead of the mean of the videos' own audio tracks (zero-padded).
        pixels: also write each video's per-pixel sound energy map.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        video_backend: ``torchcodec`` (default) or ``decord``.

    Returns:
        ``{"written": [paths], "sources": N, "seconds": mixture length, "sample_rate": Hz}``.

    Raises:
        FileNotFoundError, ValueError, avcorr.data.errors.BadClipError: a missing or unreadable input
            or checkpoint (nothing is written then).
    """
    import torch

    from ..data import decode

    out = Path(out_dir)
    sep = Separator(checkpoint, device)
    sr = sep.sample_rate
    readers = [decode.VideoReader(v, video_backend) for v in videos]
    if mix:
        mixture = decode.read_audio(mix, sample_rate=sr)
    else:
        tracks = [decode.read_audio(v, sample_rate=sr) for v in videos]
        length = max(t.numel() for t in tracks)
        mixture = sum(torch.nn.functional.pad(t, (0, length - t.numel())) for t in tracks) / len(tracks)
    result = sep.separate(mixture, readers, pixels=pixels)
    out.mkdir(parents=True, exist_ok=True)
    names = _output_names([str(v) for v in videos])
    written = [out / "mixture.wav"]
    write_wav(written[0], mixture.numpy(), sr)
    for name, source in zip(names, result["sources"]):
        written.append(out / f"{name}.wav")
        write_wav(written[-1], source.numpy(), sr)
    written.append(out / "separation.png")
    plot_separation(written[-1], mixture, result["sources"], result["masks"], names, sep.settings, sr)
    if pixels:
        for name, frame, energy in zip(names, result["pixel_frames"], result["pixel_maps"]):
            written.append(out / f"{name}_pixels.png")
            plot_pixel_map(written[-1], frame, energy, f"sound energy per pixel: {name}")
    return {"written": written, "sources": len(names), "seconds": mixture.numel() / sr, "sample_rate": sr}
