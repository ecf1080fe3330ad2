"""``python -m avcorr.recognize FILE [FILE ...] --checkpoint CKPT [--top-k 5] [--json]``

Tags audio files with a tagging checkpoint written by ``avcorr.train`` (task ``tagging``): the
checkpoint holds the model, its class names and whether it is single- or multi-label.

Any file ffmpeg reads works (wav, flac, mp3, the audio track of an mp4 ...), at any sample rate
and channel count: channels are averaged and the audio is resampled to the model's rate. A clip
shorter than the model's window (``clip_samples``) is zero-padded at the end; a longer one is cut
into windows of ``clip_samples`` every ``hop`` seconds (default: half a window; the last window
ends at the end of the clip) whose class probabilities are pooled: ``mean`` (default: an estimate
of the clip's label distribution, right for single-label models and for sounds that last) or
``max`` (a class counts when any window hears it: better for short events in long recordings with
multi-label models). Probabilities are softmax outputs for single-label models (they sum to 1
over the classes) and sigmoid outputs for multi-label ones (each in [0, 1] independently).

A file that cannot be read is skipped and named with the reason on stderr (with ``--json``, also as
``{"file": ..., "skipped": reason}`` on stdout); the others are still tagged, and the exit status is 1.

Example:
    >>> from avcorr import recognize
    >>> recognize("dog.wav", "runs/ast_folder/checkpoints/best.pt", top_k=3)
    [('dog', 0.97), ('cat', 0.02), ('pig', 0.01)]
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # torch is imported where it is used, so that --help and input errors come at once
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["Tagger", "load_tagger", "recognize", "window_starts"]


@dataclass
class Tagger:
    """A tagging model ready for inference.

    Args:
        model: the model, in eval mode, on ``device``.
        classes: class names, in output order.
        multilabel: sigmoid (True) or softmax (False) outputs.
        device: where the model runs.
        name: where it was loaded from.
    """

    model: nn.Module
    classes: list[str]
    multilabel: bool
    device: torch.device
    name: str = ""
    vggish: nn.Module | None = None  # embedding heads: the VGGish that makes their input (set on first use)
    vggish_key: tuple | None = None  # the (weights, pca, arch) it was loaded from

    @property
    def is_embedding_head(self) -> bool:
        """The model tags sequences of VGGish embeddings, not waveforms."""
        from .tasks.tagging import is_embedding_model

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
            float32 (N, C) on the CPU.
        """
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, windows.shape[0], batch_size):
                logits = self.model(windows[i : i + batch_size].to(self.device))["logits"].float()
                out.append((logits.sigmoid() if self.multilabel else logits.softmax(-1)).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.classes))


def load_tagger(checkpoint: str | Path, device: str = "auto") -> Tagger:
    """Rebuild a tagging model from a training checkpoint (``weights_only=True``).

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` of a tagging run.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda[:i]``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a tagging checkpoint, or one without class names.
    """
    path = Path(checkpoint).expanduser().resolve()
    st = path.stat() if path.is_file() else None
    if st is None:
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return _load_cached(str(path), st.st_mtime_ns, device)


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, device: str) -> Tagger:
    from .config import config_from_dict
    from .engine.checkpoint import load_checkpoint
    from .engine.distributed import resolve_device
    from .tasks.tagging import build_tagging_model

    ckpt = load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"])
    if cfg.task != "tagging":
        raise ValueError(f"{path}: a {cfg.task!r} checkpoint, not a tagging one (task 'tagging')")
    classes = list(cfg.data.classes)
    if not classes:
        raise ValueError(f"{path}: the checkpoint's config has no class names (data.classes)")
    if cfg.data.label_mode not in ("single", "multi"):
        raise ValueError(f"{path}: unresolved data.label_mode {cfg.data.label_mode!r}")
    model = build_tagging_model(cfg, len(classes))
    model.load_state_dict(ckpt["model"])
    dev = resolve_device(device)
    model.to(dev).eval()
    return Tagger(model, classes, cfg.data.label_mode == "multi", dev, path)


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
              vggish_arch: str = "vggish") -> list[tuple[str, float]]:
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

    Returns:
        ``[(label, probability), ...]``, most probable first.

    Raises:
        avcorr.data.errors.DecodeError: the file cannot be read or has no audio (named in the message;
            checked before the model is loaded).
        ValueError: bad ``top_k`` / ``pool`` / ``hop_seconds``.
    """
    import torch

    from .data.decode import probe_audio, read_audio

    if pool not in ("mean", "max"):
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if not isinstance(checkpoint, Tagger):  # a picture, a silent video: said before the model loads
        probe_audio(audio_path)
    tagger = checkpoint if isinstance(checkpoint, Tagger) else load_tagger(checkpoint, device)
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

    from .data.decode import read_audio
    from .tag import load_vggish

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


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser

    p = ArgumentParser(prog="python -m avcorr.recognize", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="audio (or video) files to tag (a name starting with '-' may be written "
                                            "./-name.wav, or after --)")
    p.add_argument("--checkpoint", required=True, help="a tagging checkpoint written by avcorr.train")
    p.add_argument("--top-k", type=int, default=5, help="labels per file (default 5)")
    p.add_argument("--hop", type=float, default=None, help="seconds between windows of a long file (default: half a window)")
    p.add_argument("--pool", choices=("mean", "max"), default="mean", help="pooling of window probabilities (default mean)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument("--vggish", default=None, help="embedding heads: VGGish weights (torchvggish key layout)")
    p.add_argument("--pca", default=None, help="embedding heads: vggish_pca_params.npz")
    p.add_argument("--vggish-arch", default="vggish", help="registry name of the VGGish variant (default vggish)")
    args = p.parse_intermixed_args(argv)
    from ._cli import setup_logging
    from .data.decode import probe_audio
    from .data.errors import BadClipError

    setup_logging(quiet=True)
    status, files = 0, []
    for f in args.files:  # the inputs first: a picture or a silent video is said before the model loads
        try:
            probe_audio(f)
            files.append(f)
        except BadClipError as e:
            print(f"error: skipped {f}: {e.reason}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": os.fspath(f), "skipped": e.reason}))
            status = 1
    if not files:
        return status
    try:
        tagger = load_tagger(args.checkpoint, args.device)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    skipped = len(args.files) - len(files)  # the inputs refused above
    for f in files:
        try:
            top = recognize(f, tagger, args.top_k, hop_seconds=args.hop, pool=args.pool, vggish=args.vggish,
                            pca=args.pca, vggish_arch=args.vggish_arch)
        except (BadClipError, ValueError) as e:
            print(f"error: skipped {f}: {e}", file=sys.stderr)
            if args.json:
                reason = e.reason if isinstance(e, BadClipError) else str(e)
                print(json.dumps({"file": os.fspath(f), "skipped": reason}))
            skipped += 1
            continue
        if args.json:
            print(json.dumps({"file": os.fspath(f), "labels": [{"label": lab, "prob": round(pr, 6)} for lab, pr in top]}))
        else:
            print(f)
            width = max(len(lab) for lab, _ in top)
            for lab, pr in top:
                print(f"  {lab:<{width}}  {pr:.4f}")
    if skipped:
        print(f"{skipped} of {len(args.files)} file(s) skipped", file=sys.stderr)
    return 1 if skipped else 0


class _CallableModule(types.ModuleType):
    """Lets ``avcorr.recognize(...)`` work even where ``avcorr.recognize`` is this module."""

    def __call__(self, *args, **kwargs):
        return recognize(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
else:
    sys.modules[__name__].__class__ = _CallableModule
