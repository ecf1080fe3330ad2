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
        self.binary = cfg.separation.mask == "binary"

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
            joined over windows; ``model_masks`` float (N, model_bins, T') the model's mask
            probabilities on its own (log-frequency) rows, joined over windows; with ``pixels``,
            ``pixel_maps`` list of N (h, w) maps, ``pixel_totals`` float (N,) the magnitude sum of the
            window those maps select from (a map divided by it is the share of the mixture each
            pixel claims, 0..1), and ``pixel_frames`` (N, 3, S, S) normalised frames.
        """
        import torch
        from ..models.sop_audio import apply_masks, stft, warp

        s, win = self.settings, self.window
        total = int(mixture.numel())
        n_windows = max(1, -(-total // win))
        pieces, masks, model_masks = [], [], []
        pixel_maps, pixel_frames, pixel_totals = [], [], []
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
            n_frames = 1 + (real - 1) // s.hop_length
            masks.append(lin[0, :, :, :n_frames].cpu())
            model_masks.append(probs[0, :, :, :n_frames].cpu())
            if pixels and j == n_windows // 2:
                for n in range(len(readers)):
                    pixel_maps.append(self.model.pixel_sound_map(mix_mag, frames[:, n])[0].cpu())
                    pixel_frames.append(frames[0, n, :, frames.shape[3] // 2].cpu())
                    pixel_totals.append(float(mix_mag[0].sum()))
        out: dict[str, Any] = {"sources": torch.cat(pieces, dim=-1), "masks": torch.cat(masks, dim=-1),
                               "model_masks": torch.cat(model_masks, dim=-1)}
        if pixels:
            out["pixel_maps"], out["pixel_frames"] = pixel_maps, torch.stack(pixel_frames)
            out["pixel_totals"] = torch.tensor(pixel_totals)
        return out


def _output_names(videos: Sequence[str]) -> list[str]:
    names, seen = [], set()
    for i, v in enumerate(videos):
        stem = Path(v).stem or f"source{i}"
        name = stem if stem not in seen and stem != "mixture" else f"{stem}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _figure():
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("separation figures need matplotlib: pip install matplotlib") from e
    return Figure


def model_rows_hz(settings: Any, sample_rate: int) -> np.ndarray:
    """The frequency (Hz) of each row the model sees: its log-frequency warp (``warp_grid``), or the linear
    STFT bins when it does not warp.

    Args:
        settings: the run's :class:`~avcorr.models.sop_audio.SpectrogramSettings`.
        sample_rate: Hz.

    Returns:
        float (model_bins,) increasing frequencies, row 0 first.
    """
    from ..models.sop_audio import warp_grid

    nyquist = sample_rate / 2.0
    if not settings.warp_bins:
        return np.linspace(0.0, nyquist, settings.n_bins)
    gy = warp_grid(settings.warp_bins, 1, inverse=False)[0, :, 0, 1].double().numpy()  # -1..1 over the linear rows
    return (gy + 1.0) / 2.0 * (settings.n_bins - 1) * sample_rate / settings.n_fft


def _warped_db(x: torch.Tensor, settings: Any) -> np.ndarray:
    """float (L,) waveform -> float (model_bins, T) magnitude in dB on the model's frequency rows."""
    import torch
    from ..models.sop_audio import stft, warp

    mag = stft(x.float()[None], settings).abs().unsqueeze(1)
    return (20 * torch.log10(warp(mag, settings.warp_bins) + 1e-6))[0, 0].numpy()


def plot_separation(path: Path, mixture: torch.Tensor, sources: torch.Tensor, masks: torch.Tensor, names: list[str],
                    settings: Any, sample_rate: int, *, db_range: float = 80.0,
                    threshold: float | None = None) -> None:
    """PNG: the mixture spectrogram, then per source the model's predicted mask and the separated spectrogram.

    Every panel is drawn on the model's frequency rows (its log-frequency warp), labelled in Hz at
    the right heights; masks on a fixed 0..1 colour scale (so an all-pass mask, an all-zero mask and
    an empty panel look different), spectrograms in dB over ``db_range`` below the mixture's peak,
    each with its colour bar.

    Args:
        path: the PNG (written atomically).
        mixture: float (L,) waveform.
        sources: float (N, L) separated waveforms.
        masks: float (N, model_bins, T) the model's mask values in [0, 1] on its rows.
        names: N source names.
        settings: STFT / warp sizes.
        sample_rate: Hz.
        db_range: decibels shown below the mixture's peak.
        threshold: the binary masks' threshold, stated in the mask titles; None for ratio masks.
    """
    from ..viz.spectrogram import frequency_ticks

    Figure = _figure()
    n = sources.shape[0]
    seconds = mixture.numel() / sample_rate
    ticks, labels = frequency_ticks(model_rows_hz(settings, sample_rate))
    mix_db = _warped_db(mixture, settings)
    vmax = float(mix_db.max())
    fig = Figure(figsize=(11, 2.6 * (n + 1)), layout="constrained")
    axes = fig.subplots(n + 1, 2, squeeze=False)
    rows = settings.model_bins
    extent = (0, seconds, -0.5, rows - 0.5)
    kw = dict(origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=vmax - db_range, vmax=vmax)
    im = axes[0, 0].imshow(mix_db, **kw)
    fig.colorbar(im, ax=axes[0, 0], label=f"dB (top {db_range:g} dB)")
    axes[0, 0].set_title("mixture")
    axes[0, 1].axis("off")
    rule = f", separated at > {threshold:g}" if threshold is not None else " (ratio mask)"
    for i in range(n):
        mask_im = axes[i + 1, 0].imshow(masks[i].float().numpy(), origin="lower", aspect="auto", extent=extent,
                                        cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        fig.colorbar(mask_im, ax=axes[i + 1, 0], label="mask value")
        axes[i + 1, 0].set_title(f"predicted mask: {names[i]}{rule}")
        im = axes[i + 1, 1].imshow(_warped_db(sources[i], settings), **kw)
        fig.colorbar(im, ax=axes[i + 1, 1], label=f"dB (top {db_range:g} dB)")
        axes[i + 1, 1].set_title(f"separated: {names[i]}")
    warped = " (log-frequency warp)" if settings.warp_bins else ""
    for ax in axes.flat:
        if not ax.axison:
            continue
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"Hz{warped}")
        ax.set_yticks(ticks, labels)
    _save_figure(fig, path)


def plot_pixel_map(path: Path, frame: torch.Tensor, energy: torch.Tensor, title: str, total: float | None = None) -> None:
    """PNG: a frame and its per-pixel sound energy map (bilinearly upsampled, overlaid) with its colour bar.

    Args:
        path: the PNG (written atomically).
        frame: float (3, S, S) normalised frame.
        energy: float (h, w) energy per pixel (:meth:`~avcorr.models.sop.SoundOfPixels.pixel_sound_map`).
        title: the overlay's title.
        total: the mixture magnitude the map selects from: the map is drawn as ``energy / total`` on a
            fixed 0..1 scale (the share of the mixture a pixel claims). None: on 0..max(energy), so
            that a +-1 % variation still reads as flat.
    """
    import torch
    from ..data.transforms import denormalize

    Figure = _figure()
    image = denormalize(frame).permute(1, 2, 0).numpy()
    h, w = image.shape[:2]
    heat = torch.nn.functional.interpolate(energy[None, None].float(), size=(h, w), mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
    if total is not None and total > 0:
        heat, vmax, label = heat / total, 1.0, "share of the mixture's magnitude"
    else:
        vmax, label = max(float(heat.max()), 1e-12), "energy (0 .. max)"
    fig = Figure(figsize=(8, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    axes[0].imshow(image)
    axes[0].set_title("frame")
    axes[1].imshow(image)
    im = axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=0.0, vmax=vmax)
    axes[1].set_title(f"{title}\nmin {heat.min():.3g}, max {heat.max():.3g}", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, label=label)
    for ax in axes:
        ax.axis("off")
    _save_figure(fig, path)


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
    plot_separation(written[-1], mixture, result["sources"], result["model_masks"], names, sep.settings, sr,
                    threshold=0.5 if sep.binary else None)
    if pixels:
        for name, frame, energy, total in zip(names, result["pixel_frames"], result["pixel_maps"],
                                              result["pixel_totals"]):
            written.append(out / f"{name}_pixels.png")
            plot_pixel_map(written[-1], frame, energy, f"sound energy per pixel: {name}", float(total))
    return {"written": written, "sources": len(names), "seconds": mixture.numel() / sr, "sample_rate": sr}
