"""VGGish (Hershey et al., "CNN architectures for large-scale audio classification", ICASSP 2017).

The audio embedding network released with AudioSet, re-implemented in PyTorch with its front-end and
its PCA / 8-bit quantisation post-processing:

* :class:`VGGishFrontend` - the official ``vggish_input`` / ``mel_features`` arithmetic on 16 kHz mono
  audio: frames of 400 samples (25 ms) every 160 samples (10 ms) with no padding, a periodic Hann
  window, the magnitude of a 512-point real FFT, 64 mel bands 125-7500 Hz on the HTK mel scale
  (:func:`vggish_mel_matrix`: triangles linear in *mel*, DC bin zeroed - not the Hz-linear triangles
  of ``torchaudio.functional.melscale_fbanks(mel_scale='htk')``), ``log(mel + 0.01)``, then
  non-overlapping 0.96 s patches of 96 frames x 64 bands. A clip shorter than one patch
  (15600 samples) gives no patch, as the official code does.
* :class:`VGGish` - the VGG stack (conv 64, pool, 128, pool, 256, 256, pool, 512, 512, pool; 3x3 convs,
  ReLU, 2x2 max-pools) and fc 512*6*4 -> 4096 -> 4096 -> 128, in the state-dict layout of the PyTorch
  port ``harritaylor/torchvggish``::

      features.0  conv 1->64      features.3  conv 64->128
      features.6  conv 128->256   features.8  conv 256->256
      features.11 conv 256->512   features.13 conv 512->512
      embeddings.0 fc 12288->4096  embeddings.2 fc 4096->4096  embeddings.4 fc 4096->128

  (``.weight`` / ``.bias`` each; the other indices are ReLU / max-pool.) As that port does, the
  (C, 6, 4) conv map is flattened channels-last - in (time, mel, channel) order, as TensorFlow
  does - so its weights give the same embeddings. That port keeps a ReLU after the last fc layer
  (``final_relu=True``, the default); the 2020 TensorFlow release dropped it (``final_relu=False``).
* :class:`VGGishPostprocessor` - the official post-processing read from ``vggish_pca_params.npz``:
  ``(embedding - pca_means) @ pca_eigen_vectors.T``, clipped to ``[-2, 2]`` and quantised to uint8 as
  ``round((x + 2) * 255 / 4)`` (the format of the released AudioSet embeddings).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._pretrained import load_checked
from ._registry import register_model
from .input_spec import InputSpec

__all__ = [
    "VGGish",
    "VGGishFrontend",
    "VGGishPostprocessor",
    "load_vggish",
    "resample_to_vggish",
    "test_vggish",
    "vggish",
    "vggish_mel_matrix",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # next power of two of the window, as mel_features.log_mel_spectrogram
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96  # 0.96 s
QUANTIZE_MIN = -2.0
QUANTIZE_MAX = 2.0
EMBEDDING_SIZE = 128

_VGG_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


def hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``1127 * ln(1 + f / 700)``."""
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def vggish_mel_matrix(num_mel_bins: int = NUM_BANDS, num_spectrogram_bins: int = N_FFT // 2 + 1,
                      sample_rate: int = SAMPLE_RATE, lower_hz: float = MEL_MIN_HZ,
                      upper_hz: float = MEL_MAX_HZ) -> torch.Tensor:
    """The mel weight matrix of the official ``mel_features.spectrogram_to_mel_matrix``.

    Band edges are equally spaced on the HTK mel scale between ``lower_hz`` and ``upper_hz``; each
    band is a triangle that is linear in mel (not in Hz) over the FFT bin centre frequencies
    ``linspace(0, sample_rate / 2, num_spectrogram_bins)``; the DC bin gets weight zero; no area
    normalisation.

    Returns:
        (num_spectrogram_bins, num_mel_bins) float32 matrix that post-multiplies a magnitude spectrogram.

    Raises:
        ValueError: edges out of order or above Nyquist.
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= lower_hz < upper_hz <= nyquist:
        raise ValueError(f"mel band edges must satisfy 0 <= lower ({lower_hz}) < upper ({upper_hz}) <= "
                         f"Nyquist ({nyquist})")
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))[:, None]
    edges = np.linspace(hertz_to_mel(lower_hz), hertz_to_mel(upper_hz), num_mel_bins + 2)
    lo, centre, hi = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    weights = np.maximum(0.0, np.minimum((bins_mel - lo) / (centre - lo), (hi - bins_mel) / (hi - centre)))
    weights[0, :] = 0.0
    return torch.from_numpy(weights.astype(np.float32))


def resample_to_vggish(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Bring audio to VGGish's 16 kHz mono.

    Args:
        wave: (T,) mono, or (C, T) channels mixed down by averaging. Float audio in [-1, 1].
        sample_rate: rate of ``wave`` in Hz.

    Returns:
        (T',) float32 waveform at 16 kHz (``torchaudio.functional.resample`` when the rate differs).

    Raises:
        ValueError: a rate that is not positive or a tensor of more than two dimensions.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if wave.dim() == 2:
        wave = wave.mean(dim=0)
    elif wave.dim() != 1:
        raise ValueError(f"expected a (T,) or (C, T) waveform, got shape {tuple(wave.shape)}")
    wave = wave.float()
    if sample_rate != SAMPLE_RATE:
        import torchaudio

        wave = torchaudio.functional.resample(wave, int(sample_rate), SAMPLE_RATE)
    return wave


class VGGishFrontend(nn.Module):
    """16 kHz waveform -> VGGish log-mel patches (official ``waveform_to_examples`` arithmetic).

    Constants live in non-persistent buffers (not in any state dict). Runs in float32 with autocast off.
    """

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(WINDOW, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / WINDOW)  # periodic Hann
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("mel_matrix", vggish_mel_matrix(), persistent=False)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) 16 kHz waveform -> (B, F, 64) log-mel, ``F = 1 + (T - 400) // 160`` (0 if T < 400)."""
        if wave.dim() != 2:
            raise ValueError(f"expected a (B, T) waveform batch, got shape {tuple(wave.shape)}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            if wave.shape[1] < WINDOW:
                return wave.new_zeros(wave.shape[0], 0, NUM_BANDS)
            frames = wave.unfold(1, WINDOW, HOP) * self.window  # (B, F, 400)
            mag = torch.fft.rfft(frames, n=N_FFT).abs()  # (B, F, 257)
            return torch.log(mag @ self.mel_matrix + LOG_OFFSET)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) 16 kHz waveform -> (B, N, 1, 96, 64) patches, ``N = F // 96`` (trailing frames dropped)."""
        spec = self.log_mel(wave)
        n = spec.shape[1] // PATCH_FRAMES
        return spec[:, : n * PATCH_FRAMES].reshape(spec.shape[0], n, 1, PATCH_FRAMES, NUM_BANDS)


class VGGishPostprocessor(nn.Module):
    """Official VGGish PCA / whitening and 8-bit quantisation.

    Args:
        eigen_vectors: (128, 128) ``pca_eigen_vectors`` (rows are output dimensions).
        means: (128,) or (128, 1) ``pca_means``.
    """

    def __init__(self, eigen_vectors: torch.Tensor, means: torch.Tensor):
        super().__init__()
        eigen_vectors = torch.as_tensor(eigen_vectors, dtype=torch.float32)
        means = torch.as_tensor(means, dtype=torch.float32).reshape(-1)
        if eigen_vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE,):
            raise ValueError(f"PCA parameters must be ({EMBEDDING_SIZE}, {EMBEDDING_SIZE}) eigenvectors and "
                             f"{EMBEDDING_SIZE} means, got {tuple(eigen_vectors.shape)} and {tuple(means.shape)}")
        self.register_buffer("eigen_vectors", eigen_vectors, persistent=False)
        self.register_buffer("means", means, persistent=False)

    @classmethod
    def from_npz(cls, path: str | Path) -> "VGGishPostprocessor":
        """Read the official ``vggish_pca_params.npz`` (``pca_eigen_vectors``, ``pca_means``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: a key is missing or a shape is wrong (the message names the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGGish PCA parameters not found: {path}")
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("pca_eigen_vectors", "pca_means") if k not in data.files]
            if missing:
                raise ValueError(f"{path}: missing {', '.join(missing)} (has {', '.join(data.files) or 'nothing'})")
            vecs, means = data["pca_eigen_vectors"], data["pca_means"]
        try:
            return cls(torch.from_numpy(np.asarray(vecs, dtype=np.float32)),
                       torch.from_numpy(np.asarray(means, dtype=np.float32)))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "VGGishPostprocessor":
        """Read PCA parameters from the official ``.npz`` or torchvggish's ``.pth`` (the same two arrays).

        Raises:
            FileNotFoundError: no such file.
            ValueError: a key is missing, a shape is wrong, or the file cannot be read safely.
        """
        path = Path(path)
        if path.suffix == ".npz":
            return cls.from_npz(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGGish PCA parameters not found: {path}")
        from .._torch_load import load_tensors_only
        from ._registry import _numpy_array_globals

        data = load_tensors_only(path, _numpy_array_globals())
        keys = ("pca_eigen_vectors", "pca_means")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            have = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path}: expected {' and '.join(keys)}, found {have or 'nothing'}")
        try:
            return cls(*(torch.as_tensor(np.asarray(data[k], dtype=np.float32)) for k in keys))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def pca(self, embedding: torch.Tensor) -> torch.Tensor:
        """(..., 128) raw embedding -> (..., 128) PCA-whitened float embedding (not clipped)."""
        return (embedding.float() - self.means) @ self.eigen_vectors.T

    @staticmethod
    def quantize(x: torch.Tensor) -> torch.Tensor:
        """(...) float -> (...) uint8: clip to [-2, 2], then ``round((x + 2) * 255 / 4)``."""
        x = x.clamp(QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((x - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))).to(torch.uint8)

    @staticmethod
    def dequantize(q: torch.Tensor) -> torch.Tensor:
        """(...) uint8 -> (...) float32 in [-2, 2]: the inverse of :meth:`quantize` (step 4 / 255)."""
        return q.float() * ((QUANTIZE_MAX - QUANTIZE_MIN) / 255.0) + QUANTIZE_MIN

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """(..., 128) raw embedding -> (..., 128) uint8, as the released AudioSet embeddings."""
        return self.quantize(self.pca(embedding))


def _make_features(cfg: Sequence[int | str]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 1
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish embedding network with its front-end (see the module docstring for the key layout).

    Args:
        cfg: conv channels and ``"M"`` (max-pool) entries; four pools are needed (96 x 64 -> 6 x 4).
        hidden: width of the two hidden fc layers (4096 in VGGish).
        embed_dim: embedding size (128).
        final_relu: ReLU after the last fc layer (the PyTorch port keeps it; TF since 2020 does not).
        pca_params: optional path to ``vggish_pca_params.npz``; when given, :meth:`forward` also
            returns the post-processed uint8 embeddings.
    """

    sample_rate = SAMPLE_RATE
    patch_seconds = PATCH_FRAMES * HOP / SAMPLE_RATE  # 0.96

    def __init__(self, cfg: Sequence[int | str] = _VGG_CFG, hidden: int = 4096, embed_dim: int = EMBEDDING_SIZE,
                 final_relu: bool = True, pca_params: str | Path | None = None):
        super().__init__()
        if sum(1 for v in cfg if v == "M") != 4:
            raise ValueError(f"VGGish needs four max-pools (96 x 64 -> 6 x 4), got cfg {list(cfg)}")
        self.frontend = VGGishFrontend()
        self.features = _make_features(cfg)
        c_last = [int(v) for v in cfg if v != "M"][-1]
        self.embeddings = nn.Sequential(
            nn.Linear(c_last * 6 * 4, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, embed_dim), nn.ReLU(inplace=True) if final_relu else nn.Identity())
        self.embed_dim = embed_dim
        self.num_features = embed_dim
        self.postprocessor: VGGishPostprocessor | None = None
        if pca_params is not None:
            self.set_postprocessor(VGGishPostprocessor.from_npz(pca_params))

    def set_postprocessor(self, postprocessor: VGGishPostprocessor | None) -> None:
        """Attach (or remove with ``None``) the PCA / quantisation post-processing used by :meth:`forward`."""
        if postprocessor is not None and self.embed_dim != EMBEDDING_SIZE:
            raise ValueError(f"PCA post-processing needs {EMBEDDING_SIZE}-d embeddings, model has {self.embed_dim}")
        self.postprocessor = postprocessor

    @property
    def input_spec(self) -> InputSpec:
        """Mono waveforms at 16 kHz (other rates are resampled in :meth:`forward`), one 0.96 s patch per
        embedding."""
        return InputSpec.wave(SAMPLE_RATE, clip_seconds=PATCH_FRAMES / 100)

    def forward_features(self, patches: torch.Tensor) -> torch.Tensor:
        """(M, 1, 96, 64) log-mel patches -> (M, embed_dim) raw embeddings."""
        if patches.dim() != 4 or patches.shape[1:] != (1, PATCH_FRAMES, NUM_BANDS):
            raise ValueError(f"expected (M, 1, {PATCH_FRAMES}, {NUM_BANDS}) patches, got {tuple(patches.shape)}")
        x = self.features(patches)  # (M, C, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # channels-last (time, mel, channel), as TF / torchvggish
        return self.embeddings(x)

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embed each 0.96 s patch of a batch of 16 kHz waveforms.

        Args:
            wave: (B, T) float waveform at 16 kHz (use :func:`resample_to_vggish` for other rates).

        Returns:
            ``embedding`` (B, N, embed_dim) raw embeddings, one per patch, ``N = (1 + (T - 400) // 160) // 96``
            (0 for clips shorter than 15600 samples); ``patch_times`` (N,) start of each patch in seconds;
            with a post-processor also ``quantized`` (B, N, 128) uint8 and ``pca`` (B, N, 128) float
            (clipped to [-2, 2], de-quantised values of ``quantized``).
        """
        patches = self.frontend(wave)  # (B, N, 1, 96, 64)
        b, n = patches.shape[:2]
        emb = self.forward_features(patches.reshape(b * n, 1, PATCH_FRAMES, NUM_BANDS)) if n else \
            patches.new_zeros(0, self.embed_dim)
        out = {"embedding": emb.reshape(b, n, self.embed_dim),
               "patch_times": torch.arange(n, device=wave.device, dtype=torch.float32) * self.patch_seconds}
        if self.postprocessor is not None:
            q = self.postprocessor(out["embedding"])
            out["quantized"] = q
            out["pca"] = VGGishPostprocessor.dequantize(q)
        return out

    @torch.no_grad()
    def embed_seconds(self, wave: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
        """One embedding per second of a 16 kHz waveform, as the released AudioSet features (1 Hz).

        Second ``k`` is embedded from the one patch of ``[k, k + 0.975)`` s (15600 samples: 96 frames
        of 10 ms plus the window), so embedding ``k`` stays aligned with second ``k`` however long the
        audio is (0.96 s hops would drift by 40 ms a second). The last, partial second is zero-padded.

        Args:
            wave: (T,) float waveform at 16 kHz.
            batch_size: patches per forward pass.

        Returns:
            ``embedding`` (S, embed_dim) float with ``S = ceil(T / 16000)`` (0 for empty audio) and, with a
            post-processor, ``quantized`` (S, 128) uint8 (the packs' format).
        """
        if wave.dim() != 1:
            raise ValueError(f"expected a (T,) waveform, got shape {tuple(wave.shape)}")
        n = -(-wave.shape[0] // SAMPLE_RATE)
        span = (PATCH_FRAMES - 1) * HOP + WINDOW  # 15600 samples
        need = (n - 1) * SAMPLE_RATE + span if n else 0
        w = torch.nn.functional.pad(wave.float(), (0, max(0, need - wave.shape[0])))[:need]
        embs = []
        for i in range(0, n, batch_size):
            seg = w[i * SAMPLE_RATE : (min(n, i + batch_size) - 1) * SAMPLE_RATE + span]
            windows = seg.unfold(0, span, SAMPLE_RATE)  # (b, 15600)
            patches = self.frontend(windows)  # (b, 1, 1, 96, 64)
            embs.append(self.forward_features(patches.flatten(0, 1)))
        emb = torch.cat(embs) if embs else wave.new_zeros(0, self.embed_dim)
        out = {"embedding": emb}
        if self.postprocessor is not None:
            out["quantized"] = self.postprocessor(emb)
        return out

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Load a state dict in the ``harritaylor/torchvggish`` layout (``features.*``, ``embeddings.*``).

        Post-processor entries of a whole-module torchvggish save (``pproc.pca_matrix``,
        ``pproc.pca_means``) are used to set :attr:`postprocessor`; every other key must match exactly.

        Raises:
            ValueError: missing / unexpected keys or shape mismatches (named in the message).
        """
        state = dict(state_dict)
        pca = {k: state.pop(k) for k in ("pproc.pca_matrix", "pproc.pca_means") if k in state}
        load_checked(self, state, source=source)
        if len(pca) == 2:
            self.set_postprocessor(VGGishPostprocessor(pca["pproc.pca_matrix"], pca["pproc.pca_means"]))
            logger.info("%s: PCA post-processing taken from pproc.* entries", source)
        elif pca:
            raise ValueError(f"{source}: has {', '.join(pca)} but not both pproc.pca_matrix and pproc.pca_means")

    def load_companion(self, role: str, path: str | Path) -> None:
        """Load a file released beside the weights: ``role="pca"`` sets the PCA post-processor.

        Raises:
            ValueError: an unknown role.
        """
        if role != "pca":
            raise ValueError(f"VGGish has no use for a {role!r} file ({path})")
        self.set_postprocessor(VGGishPostprocessor.from_file(path))


def load_vggish(weights: str | Path, pca: str | Path | None = None, arch: str = "vggish",
                device: torch.device | str = "cpu") -> VGGish:
    """A VGGish variant with ``weights`` and its PCA post-processing, in eval mode on ``device``.

    Args:
        weights: a weights file in the torchvggish layout (a whole-module save with ``pproc.*``
            entries also brings the PCA parameters).
        pca: ``vggish_pca_params.npz``; needed unless ``weights`` holds ``pproc.*``.
        arch: the registry name of the variant (``vggish``; ``test_vggish`` in tests).
        device: where it runs.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: not a VGGish variant, weights that do not fit, or no PCA parameters anywhere.
    """
    from ._registry import create_model

    net = create_model(arch, checkpoint_path=str(weights))
    if not isinstance(net, VGGish):
        raise ValueError(f"{arch!r} is not a VGGish variant")
    if pca is not None:
        net.set_postprocessor(VGGishPostprocessor.from_file(pca))
    if net.postprocessor is None:
        raise ValueError(f"{weights}: no PCA parameters in the weights file; pass --pca vggish_pca_params.npz")
    return net.to(device).eval()


@register_model
def vggish(**kwargs: Any) -> VGGish:
    """VGGish as released (conv 64-128-256-256-512-512, fc 4096-4096-128)."""
    return VGGish(**kwargs)


@register_model
def test_vggish(**kwargs: Any) -> VGGish:
    """A tiny VGGish for tests (same front-end, layout and 128-d output; 8-16-16-16-32-32 convs, fc 64)."""
    kwargs.setdefault("cfg", (8, "M", 16, "M", 16, 16, "M", 32, 32, "M"))
    kwargs.setdefault("hidden", 64)
    return VGGish(**kwargs)
