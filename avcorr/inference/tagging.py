"""Tagging whole audio files: :func:`recognize` (also ``avcorr.recognize``) and :func:`load_tagger`.

The command ``python -m avcorr.recognize`` runs this on files. A tagging checkpoint written by
``avcorr.train`` (task ``tagging``) holds the model, its class names and whether it is single- or
multi-label.

Any file ffmpeg reads works (wav, flac, mp3, the audio track of an mp4 ...), at any sample rate
and channel count: channels are averaged and the audio is resampled to the model's rate. A clip
shorter than the model's window (``clip_samples``) is zero-padded at the end; a longer one is cut
into windows of ``clip_samples`` every ``hop`` seconds (default: half a window; the last window
ends at the end of the clip) whose class probabilities are pooled: ``mean`` (default: an estimate
of the clip's label distribution, right for single-label models and for sounds that last) or
``max`` (a class counts when any window hears it: better for short events in long recordings with
multi-label models). Probabilities are softmax outputs for single-label models (they sum to 1
over the classes) and sigmoid outputs for multi-label ones (each in [0, 1] independently).

``precision="bf16"`` (``--precision bf16``) runs the model's forward pass under bfloat16 autocast on
the CPU or CUDA; logits are cast to float32 before the sigmoid / softmax, so probabilities are
float32 either way. On a CPU with bf16 instructions (AVX512-BF16 or AMX) it is faster than fp32
(CNN14: figures in experiments/RESULTS.md); elsewhere it runs, emulated and slower, after a
warning (:func:`avcorr._amp.check_precision`). The VGGish that feeds an embedding head stays fp32:
its quantised embeddings must match the AudioSet release.

Example:
    >>> from avcorr import recognize
    >>> recognize("dog.wav", "runs/ast_folder/checkpoints/best.pt", top_k=3)
    [('dog', 0.97), ('cat', 0.02), ('pig', 0.01)]
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used, so that --help and input errors come at once
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["Tagger", "batch_probabilities", "load_tagger", "load_vggish", "recognize", "window_starts"]


@dataclass
class Tagger:
    """A tagging model ready for inference.

    Args:
        model: the model, in eval mode, on ``device``.
        classes: class names, in output order.
        multilabel: sigmoid (True) or softmax (False) outputs.
        device: where the model runs.
        name: where it was loaded from.
        precision: ``"fp32"``, or ``"bf16"`` for the forward pass under bfloat16 autocast (module docstring).
    """

    model: nn.Module
    classes: list[str]
    multilabel: bool
    device: torch.device
    name: str = ""
    precision: str = "fp32"
    vggish: nn.Module | None = None  # embedding heads: the VGGish that makes their input (set on first use)
    vggish_key: tuple | None = None  # the (weights, pca, arch) it was loaded from

    def __post_init__(self) -> None:
        import torch

        from .._amp import check_precision

        self.device = torch.device(self.device)
        check_precision(self.precision, self.device)

    @property
    def is_embedding_head(self) -> bool:
        """The model tags sequences of VGGish embeddings, not waveforms."""
        from ..tasks.tagging import is_embedding_model

        return is_embedding_model(self.model)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def clip_samples(self) -> int:
        return int(self.model.clip_samples)

    def probabilities(self, windows: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Class probabilities of waveform windows.

        Args:
            windows: float (N, T) mono windows at :attr:`sample_rate` (embedding heads: (N, T, 128)
                embedding sequences).
            batch_size: windows per forward pass.

        Returns:
            float32 (N, C) on the CPU (also with ``precision="bf16"``).
        """
        import torch

        out = [batch_probabilities(self.model, windows[i : i + batch_size], self.multilabel, self.device, self.precision)
               for i in range(0, windows.shape[0], batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(self.classes))


def batch_probabilities(model: nn.Module, batch: torch.Tensor, multilabel: bool, device: torch.device,
                        precision: str = "fp32") -> torch.Tensor:
    """One forward pass of a tagging model: class probabilities of a batch, without gradients.

    Args:
        model: a tagging model (``forward(x) -> {'logits' (B, C)}``) on ``device``.
        batch: (B, T) waveforms or (B, T, 128) embeddings, on any device.
        multilabel: sigmoid (True) or softmax (False).
        device: where the model runs.
        precision: ``"fp32"``, or ``"bf16"`` to run the model under bfloat16 autocast (logits are cast
            to float32 before the sigmoid / softmax).

    Returns:
        float32 (B, C) on the CPU.
    """
    import torch

    from .._amp import inference_autocast

    with torch.no_grad():
        with inference_autocast(device, precision):
            logits = model(batch.to(device))["logits"]
        logits = logits.float()
        return (logits.sigmoid() if multilabel else logits.softmax(-1)).cpu()


def load_tagger(checkpoint: str | Path, device: str = "auto", precision: str = "fp32") -> Tagger:
    """Rebuild a tagging model from a training checkpoint (``weights_only=True``).

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` of a tagging run.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda[:i]``.
        precision: ``"fp32"`` or ``"bf16"`` (the forward pass under bfloat16 autocast; module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a tagging checkpoint, or one without class names; an unknown ``precision``.
    """
    from .._amp import validate_precision

    validate_precision(precision)  # before the model loads
    path = Path(checkpoint).expanduser().resolve()
    st = path.stat() if path.is_file() else None
    if st is None:
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return _load_cached(str(path), st.st_mtime_ns, device, precision)


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, device: str, precision: str) -> Tagger:
    from ..runs import load_run

    run = load_run(path, device, expect="tagging")
    classes, mode = run.resolved["classes"], run.resolved["label_mode"]  # type: ignore[index]
    return Tagger(run.model, list(classes), mode == "multi", run.device, path, precision)


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Start samples of the windows that cover a clip (the last one ends at the clip's end).

    Args:
        num_samples: clip length.
        window: window length.
        hop: distance between window starts (> 0).

    Returns:
        ``[0]`` when the clip fits in one window, else ``0, hop, 2 hop, ...`` plus ``num_samples - window``.
    """
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    if num_samples <= window:
        return [0]
    last = num_samples - window
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return starts


def recognize(audio_path: str | Path, checkpoint: str | Path | Tagger, top_k: int = 5, device: str = "auto", *,
              hop_seconds: float | None = None, pool: str = "mean", batch_size: int = 16,
              vggish: str | Path | None = None, pca: str | Path | None = None,
              vggish_arch: str = "vggish", precision: str = "fp32") -> list[tuple[str, float]]:
    """The ``top_k`` labels of an audio file with their probabilities (see the module docstring).

    Args:
        audio_path: an audio file or a video with an audio track.
        checkpoint: a tagging checkpoint path, or a :class:`Tagger` from :func:`load_tagger`.
        top_k: number of labels returned (at most the number of classes).
        device: where to run the model (ignored for a :class:`Tagger`).
        hop_seconds: distance between windows of a long clip (default: half a window).
        pool: ``"mean"`` or ``"max"`` over the windows.
        batch_size: windows per forward pass.
        vggish, pca, vggish_arch: embedding heads (trained on AudioSet embedding packs) only: the
            VGGish weights, ``vggish_pca_params.npz`` and VGGish variant that make the embeddings
            (one per second); windows are then ``clip_frames`` seconds (10), every half window.
        precision: ``"fp32"`` or ``"bf16"`` (ignored for a :class:`Tagger`, which has its own).

    Returns:
        ``[(label, probability), ...]``, most probable first.

    Raises:
        avcorr.data.errors.DecodeError: the file cannot be read or has no audio (named in the message;
            checked before the model is loaded).
        ValueError: bad ``top_k`` / ``pool`` / ``hop_seconds`` / ``precision``.
    """
    import torch

    from ..data.decode import probe_audio, read_audio

    if pool not in ("mean", "max"):
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if not isinstance(checkpoint, Tagger):  # a picture, a silent video: said before the model loads
        probe_audio(audio_path)
    tagger = checkpoint if isinstance(checkpoint, Tagger) else load_tagger(checkpoint, device, precision)
    if tagger.is_embedding_head:
        probs = _embedding_head_probs(audio_path, tagger, hop_seconds, batch_size, vggish, pca, vggish_arch)
    else:
        wave = read_audio(audio_path, 0.0, None, tagger.sample_rate)  # (T,) mono at the model's rate
        clip = tagger.clip_samples
        hop = clip // 2 if hop_seconds is None else int(round(hop_seconds * tagger.sample_rate))
        if hop <= 0:
            raise ValueError(f"hop_seconds must be positive, got {hop_seconds}")
        if wave.numel() < clip:
            wave = torch.nn.functional.pad(wave, (0, clip - wave.numel()))
        starts = window_starts(wave.numel(), clip, hop)
        windows = torch.stack([wave[s : s + clip] for s in starts])
        probs = tagger.probabilities(windows, batch_size)
    pooled = probs.mean(0) if pool == "mean" else probs.amax(0)
    k = min(top_k, len(tagger.classes))
    values, idx = torch.topk(pooled, k)
    return [(tagger.classes[int(i)], float(v)) for v, i in zip(values, idx)]


def _embedding_head_probs(audio_path, tagger: Tagger, hop_seconds: float | None, batch_size: int,
                          vggish, pca, vggish_arch: str) -> torch.Tensor:
    """(N, C) probabilities of an embedding head over windows of ``clip_frames`` VGGish seconds."""
    import torch

    from ..data.decode import read_audio

    key = (str(vggish), str(pca), vggish_arch)
    if tagger.vggish is None or tagger.vggish_key != key:
        tagger.vggish = load_vggish(vggish, pca, vggish_arch, tagger.device,
                                    what=f"{tagger.name}: an embedding head ({type(tagger.model).__name__})")
        tagger.vggish_key = key
    wave = read_audio(audio_path, 0.0, None, 16000)
    frames = tagger.vggish.embed_seconds(wave.to(tagger.device))["quantized"]  # (S, 128) uint8, one per second
    clip = int(getattr(tagger.model, "clip_frames", 10))
    hop = max(1, clip // 2) if hop_seconds is None else int(round(hop_seconds))
    if hop <= 0:
        raise ValueError(f"hop_seconds must be >= 1 second for an embedding head, got {hop_seconds}")
    starts = window_starts(frames.shape[0], clip, hop)
    windows = torch.stack([frames[s : s + clip] for s in starts])  # fewer than `clip` seconds: one short window
    return tagger.probabilities(windows, batch_size)


def load_vggish(vggish: str | Path | None, pca: str | Path | None, arch: str = "vggish",
                device: torch.device | str = "cpu", *, what: str = "an embedding head") -> nn.Module:
    """VGGish with its PCA post-processing, in eval mode on ``device``, for an embedding head.

    Raises:
        ValueError: ``vggish`` not given, or no PCA parameters (neither ``pca`` nor ``pproc.*`` in the weights).
    """
    from ..models.vggish import load_vggish as _load

    if vggish is None:
        raise ValueError(f"{what} tags VGGish embeddings: pass --vggish (VGGish weights, torchvggish layout) "
                         "and --pca (vggish_pca_params.npz)")
    return _load(vggish, pca, arch, device)
