"""Second-by-second tagging of long recordings (the library of ``python -m avcorr.tag``).

Every second ``t`` of a recording is judged from its context window ``[t - left, t + right + 1)``
seconds (cut to the recording): :func:`tag_file` gives a :class:`TagResult` of float32 (seconds,
classes) probabilities, :func:`write_outputs` writes them as subtitles (``.srt``: the classes at or
above a threshold), ``.probs.npy`` / ``.probs.csv`` and a heat-map PNG.

Any tagging checkpoint of ``avcorr.train`` works (:func:`load_second_tagger`):

* waveform taggers (PANNs, AST, a model trained on a folder per class): each context window is one
  forward pass of the model on that stretch of audio (resampled to the model's rate by ffmpeg);
* embedding heads trained on AudioSet embedding packs (``audioset_*_attention``, avg/max pooling):
  the audio goes through VGGish (weights in the torchvggish layout and ``vggish_pca_params.npz``)
  once, one quantised embedding per second as the released AudioSet features, and each second's
  context window of embeddings goes through the head.

It streams: ffmpeg decodes the input (any container or codec ffmpeg reads, the first audio track,
channels averaged) into chunks; only the chunk and the context window are kept in memory, and
windows are batched through the model. A file with no audio track is an error that names it; a
file of 0 seconds gives an empty subtitle file.

Example:
    >>> from avcorr.inference.timeline import load_second_tagger, tag_file
    >>> result = tag_file("film.mp4", load_second_tagger("runs/panns/checkpoints/best.pt"), left=3, right=1)
    >>> result.probs.shape  # (seconds, classes)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from .._atomic import atomic_open, write_text
from .._ffmpeg import find_tool
from ..data.errors import DecodeError
from ..viz.timeline import envelope, plot_timeline

if TYPE_CHECKING:  # torch is imported where it is used, so that --help comes at once
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "EmbeddingScorer",
    "TagResult",
    "WaveScorer",
    "format_srt_time",
    "load_second_tagger",
    "probe_media",
    "stream_audio",
    "tag_file",
    "write_outputs",
]


# -- decoding ------------------------------------------------------------------------------------


def _ffmpeg_input(path: Path) -> str:
    # "file:" keeps ffmpeg from reading a name such as "a:b.mp4" or "-x.wav" as a protocol or option
    return "file:" + str(path.resolve())


def probe_media(path: str | Path) -> float | None:
    """Check that ``path`` has an audio track and return its duration.

    Returns:
        the duration in seconds as ffprobe reports it (audio stream, else container), or None when
        the file does not say (a stream being written, some raw formats).

    Raises:
        FileNotFoundError: no such file.
        DecodeError: ffprobe cannot read the file, or it has no audio track (both named).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"input not found: {p}")
    cmd = [find_tool("ffprobe", needed_for="avcorr.tag"), "-v", "error", "-print_format", "json", "-show_entries",
           "stream=codec_type,duration:format=duration", _ffmpeg_input(p)]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DecodeError(p, "ffprobe cannot read it" + (f" ({err[-1]})" if err else ""))
    try:
        info = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as e:
        raise DecodeError(p, f"unreadable ffprobe output ({e})") from None
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise DecodeError(p, "has no audio track")
    for d in (audio[0].get("duration"), info.get("format", {}).get("duration")):
        try:
            if d is not None and math.isfinite(float(d)):
                return max(0.0, float(d))
        except ValueError:
            continue
    return None


def stream_audio(path: str | Path, sample_rate: int, chunk_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Decode the first audio track of ``path`` as mono float32 at ``sample_rate``, chunk by chunk.

    ffmpeg runs as a child process (argument list, no shell) and writes raw samples into a pipe;
    at most one chunk is held at a time.

    Yields:
        float32 (n,) arrays of ``round(chunk_seconds * sample_rate)`` samples (the last one shorter).

    Raises:
        DecodeError: ffmpeg failed (its last message is quoted).
    """
    p = Path(path)
    n = max(1, int(round(chunk_seconds * sample_rate)))
    cmd = [find_tool("ffmpeg", needed_for="avcorr.tag"), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", _ffmpeg_input(p),
           "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(int(sample_rate)),
           "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: ffmpeg can never block on stderr
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        try:
            eof = False
            while not eof:
                data = bytearray()
                while len(data) < 4 * n:  # read in pieces: one read of a huge chunk would allocate it all
                    piece = proc.stdout.read(min(4 * n - len(data), 1 << 24))
                    if not piece:
                        eof = True
                        break
                    data += piece
                usable = len(data) - len(data) % 4
                if usable:
                    yield np.frombuffer(data, dtype="<f4", count=usable // 4).copy()
            rc = proc.wait()
            if rc != 0:
                err.seek(0)
                msg = err.read().decode("utf-8", "replace").strip().splitlines()
                raise DecodeError(p, f"ffmpeg failed (exit {rc})" + (f": {msg[-1]}" if msg else ""))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


# -- scorers: per-second units -> context windows -> probabilities --------------------------------


class WaveScorer:
    """A waveform tagger: a second's unit is its audio; a context is the audio of its seconds.

    Args:
        model: a tagging model (``forward(wave (B, T)) -> {'logits'}``, ``sample_rate``, optional ``min_samples``).
        multilabel: sigmoid (True) or softmax (False) probabilities.
        device: where the model runs.
        batch_size: context windows per forward pass.
        precision: ``"fp32"``, or ``"bf16"`` for the forward pass under bfloat16 autocast
            (:mod:`avcorr.inference.tagging`); probabilities are float32 either way.
    """

    def __init__(self, model: nn.Module, multilabel: bool, device: torch.device, batch_size: int = 16,
                 precision: str = "fp32"):
        from .._amp import check_precision

        check_precision(precision, device)
        self.model, self.multilabel, self.device, self.batch_size = model, multilabel, device, batch_size
        self.precision = precision
        self.sample_rate = int(model.sample_rate)
        self.min_samples = max(1, int(getattr(model, "min_samples", 1)))

    def units(self, seconds: list[np.ndarray]) -> list[np.ndarray]:
        return seconds

    def score(self, contexts: list[list[np.ndarray]]) -> np.ndarray:
        """Contexts (lists of consecutive seconds of audio) -> float32 (N, C) probabilities."""
        waves = [np.concatenate(c) for c in contexts]
        waves = [np.pad(w, (0, self.min_samples - w.size)) if w.size < self.min_samples else w for w in waves]
        return _batched_by_length(waves, self._forward, self.batch_size)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from .tagging import batch_probabilities

        return batch_probabilities(self.model, torch.from_numpy(batch), self.multilabel, self.device,
                                   self.precision).numpy()


class EmbeddingScorer:
    """VGGish + an embedding head: a second's unit is its quantised VGGish embedding.

    Args:
        vggish: a :class:`avcorr.models.vggish.VGGish` with its PCA post-processor attached.
        head: an embedding tagger (``input_kind == 'embedding'``; input (B, T, 128) uint8 values).
        multilabel: sigmoid (True) or softmax (False) probabilities.
        device: where both run.
        batch_size: context windows per forward pass of the head (VGGish takes 64 seconds at a time).
        precision: of the head (``"fp32"`` / ``"bf16"``); VGGish always runs in fp32, as its quantised
            embeddings must match the AudioSet release.
    """

    sample_rate = 16000

    def __init__(self, vggish: nn.Module, head: nn.Module, multilabel: bool, device: torch.device, batch_size: int = 64,
                 precision: str = "fp32"):
        from .._amp import check_precision

        if getattr(vggish, "postprocessor", None) is None:
            raise ValueError("the VGGish model needs its PCA post-processing (vggish_pca_params.npz): the heads "
                             "are trained on the quantised embeddings of the AudioSet release")
        check_precision(precision, device)
        self.vggish, self.head, self.multilabel, self.device = vggish, head, multilabel, device
        self.batch_size, self.precision = batch_size, precision

    def units(self, seconds: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        if not seconds:
            return []
        wave = torch.from_numpy(np.concatenate(seconds)).to(self.device)
        with torch.no_grad():
            q = self.vggish.embed_seconds(wave)["quantized"].cpu().numpy()  # (S, 128) uint8
        if q.shape[0] != len(seconds):
            raise AssertionError(f"VGGish gave {q.shape[0]} embeddings for {len(seconds)} seconds")
        return list(q)

    def score(self, contexts: list[list[np.ndarray]]) -> np.ndarray:
        return _batched_by_length([np.stack(c) for c in contexts], self._forward, self.batch_size)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from .tagging import batch_probabilities

        return batch_probabilities(self.head, torch.from_numpy(batch), self.multilabel, self.device,
                                   self.precision).numpy()


def _batched_by_length(items: list[np.ndarray], forward, batch_size: int) -> np.ndarray:
    """Run ``forward`` on stacks of equal-length items (``batch_size`` at most); results in input order."""
    if not items:
        return np.zeros((0, 0), np.float32)
    out: list[np.ndarray | None] = [None] * len(items)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(items):
        groups.setdefault(x.shape, []).append(i)
    for idx in groups.values():
        for j in range(0, len(idx), batch_size):
            part = idx[j : j + batch_size]
            probs = forward(np.stack([items[i] for i in part]))
            for i, row in zip(part, probs):
                out[i] = row
    return np.stack(out).astype(np.float32)  # type: ignore[arg-type]


@dataclass
class SecondTagger:
    """What :func:`tag_file` needs: a scorer and the class names."""

    scorer: WaveScorer | EmbeddingScorer
    classes: list[str]
    name: str = ""


def load_second_tagger(checkpoint: str | Path, *, vggish: str | Path | None = None, pca: str | Path | None = None,
                       vggish_arch: str = "vggish", device: str = "auto", batch_size: int = 16,
                       precision: str = "fp32") -> SecondTagger:
    """A per-second tagger from a tagging checkpoint of ``avcorr.train``.

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` of a tagging run.
        vggish: embedding heads only: VGGish weights (torchvggish layout; a whole-module save with
            ``pproc.*`` entries also brings the PCA parameters).
        pca: embedding heads only: ``vggish_pca_params.npz``.
        vggish_arch: the registry name of the VGGish variant the weights belong to.
        device: ``auto``, ``cpu``, ``cuda[:i]``.
        batch_size: context windows per forward pass.
        precision: ``"fp32"``, or ``"bf16"`` for the tagger's forward pass under bfloat16 autocast
            (:mod:`avcorr.inference.tagging`; VGGish stays fp32).

    Raises:
        FileNotFoundError / ValueError: a missing file, not a tagging checkpoint, an unknown
        ``precision``, or an embedding head without its VGGish weights / PCA parameters (the
        message says which flag to pass).
    """
    from .tagging import load_tagger, load_vggish

    t = load_tagger(checkpoint, device, precision)
    if not t.is_embedding_head:
        return SecondTagger(WaveScorer(t.model, t.multilabel, t.device, batch_size, precision), t.classes, t.name)
    net = load_vggish(vggish, pca, vggish_arch, t.device, what=f"{checkpoint}: an embedding head ({type(t.model).__name__})")
    return SecondTagger(EmbeddingScorer(net, t.model, t.multilabel, t.device, max(batch_size, 64), precision),
                        t.classes, t.name)


# -- the streaming loop --------------------------------------------------------------------------

MIN_TAIL_SECONDS = 0.1  # a shorter last partial second is encoder padding (AAC adds ~20-50 ms), not a second
ENVELOPE_RATE = 20  # waveform envelope blocks per second kept for the picture (min / max of 50 ms)


@dataclass
class TagResult:
    """Per-second probabilities of one file.

    Attributes:
        probs: float32 (S, C); row ``t`` judges second ``[t, t + 1)`` from its context window.
        classes: C class names.
        duration: seconds of decoded audio (``S = ceil(duration)``, less a last partial second shorter
            than 0.1 s, which is encoder padding rather than content).
        left, right: the context window used.
        envelope: float32 (B, 2) min / max of the audio per ``1 / ENVELOPE_RATE`` s (the picture's
            waveform strip), or None.
    """

    probs: np.ndarray
    classes: list[str]
    duration: float
    left: int
    right: int
    envelope: np.ndarray | None = None


def tag_file(path: str | Path, tagger: SecondTagger, left: int = 3, right: int = 1, *, chunk_seconds: float = 60.0,
             progress: bool = False) -> TagResult:
    """Tag every second of ``path`` from its context window ``[t - left, t + right + 1)`` (module docstring).

    Raises:
        FileNotFoundError: no such file.
        DecodeError: unreadable, or no audio track.
        ValueError: negative ``left`` / ``right``.
    """
    if left < 0 or right < 0:
        raise ValueError(f"left and right must be >= 0 seconds, got {left} / {right}")
    expected = probe_media(path)
    scorer = tagger.scorer
    sr = scorer.sample_rate
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None if expected is None else math.ceil(expected), unit="s", desc=Path(path).name,
                   dynamic_ncols=True)
    units: deque[np.ndarray] = deque()  # units[i] is second `first + i`
    first = 0  # the second of units[0]
    done = 0  # seconds scored so far
    rows: list[np.ndarray] = []
    pending = np.zeros(0, np.float32)  # decoded samples of the seconds not yet made units
    total = 0
    env_block = max(1, sr // ENVELOPE_RATE)
    env_parts: list[np.ndarray] = []
    env_rest = np.zeros(0, np.float32)  # samples of the envelope block under way

    def score_ready(limit: int, n_seconds: int | None) -> None:
        """Score seconds ``done .. limit - 1``; ``n_seconds`` caps the context at the end of the file."""
        nonlocal done, first
        if limit <= done:
            return
        contexts = []
        for t in range(done, limit):
            a, b = max(0, t - left), t + right + 1
            if n_seconds is not None:
                b = min(b, n_seconds)
            contexts.append([units[s - first] for s in range(a, b)])
        rows.append(scorer.score(contexts))
        if bar is not None:
            bar.update(limit - done)
        done = limit
        while units and first < done - left:  # drop what no later context needs
            units.popleft()
            first += 1

    try:
        for chunk in stream_audio(path, sr, chunk_seconds):
            total += chunk.size
            head = min(chunk.size, (env_block - env_rest.size) % env_block)  # completes the block under way
            if head:
                env_rest = np.concatenate([env_rest, chunk[:head]])
            if env_rest.size == env_block:
                env_parts.append(envelope(env_rest, sr, ENVELOPE_RATE))
                env_rest = np.zeros(0, np.float32)
            cut = head + (chunk.size - head) // env_block * env_block
            if cut > head:
                env_parts.append(envelope(chunk[head:cut], sr, ENVELOPE_RATE))
            if cut < chunk.size:
                env_rest = np.concatenate([env_rest, chunk[cut:]])
            pending = np.concatenate([pending, chunk]) if pending.size else chunk
            whole = pending.size // sr
            if whole:
                units.extend(scorer.units([pending[i * sr : (i + 1) * sr] for i in range(whole)]))
                pending = pending[whole * sr :].copy()
                score_ready(max(done, first + len(units) - right), None)
        if pending.size >= MIN_TAIL_SECONDS * sr or (pending.size and total == pending.size):
            units.extend(scorer.units([pending]))  # the last, partial second (a whole file under 0.1 s too)
        elif pending.size:
            logger.info("%s: the last %.3f s are not tagged (shorter than %.1f s: encoder padding)", path,
                        pending.size / sr, MIN_TAIL_SECONDS)
        n_seconds = first + len(units)
        score_ready(n_seconds, n_seconds)
        if env_rest.size:
            env_parts.append(envelope(env_rest, sr, ENVELOPE_RATE))
    finally:
        if bar is not None:
            bar.close()
    ncls = len(tagger.classes)
    probs = np.concatenate([r for r in rows if r.size]) if any(r.size for r in rows) else np.zeros((0, ncls), np.float32)
    if probs.shape[1] != ncls:
        raise ValueError(f"the model gives {probs.shape[1]} outputs for {ncls} class names")
    env = np.concatenate(env_parts) if env_parts else np.zeros((0, 2), np.float32)
    return TagResult(probs.astype(np.float32), list(tagger.classes), total / sr, left, right, env)


# -- outputs -------------------------------------------------------------------------------------


def format_srt_time(seconds: float) -> str:
    """``3725.5 -> '01:02:05,500'`` (SRT's ``HH:MM:SS,mmm``)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _second_end(t: int, duration: float) -> float:
    """End of second ``t``: ``t + 1``, or the end of the audio for the last, partial second."""
    return max(min(t + 1.0, duration), t + 0.001)


def _hidden_columns(classes: Sequence[str], hide: Sequence[str]) -> np.ndarray:
    """Boolean (C,) mask of the classes named in ``hide`` (case-insensitive); unknown names are logged."""
    lower = {c.lower(): i for i, c in enumerate(classes)}
    mask = np.zeros(len(classes), bool)
    for name in hide:
        key = name.strip().lower()
        if not key:
            continue
        if key in lower:
            mask[lower[key]] = True
        else:
            logger.warning("--hide %r: no such class in this model (ignored)", name.strip())
    return mask


def srt_text(result: TagResult, threshold: float, *, max_labels: int = 3, hide: Sequence[str] = ()) -> str:
    """The subtitle file: one cue per second with a visible class at or above ``threshold``."""
    probs, classes = result.probs, result.classes
    hidden = _hidden_columns(classes, hide)
    cues = []
    for t in range(probs.shape[0]):
        row = np.where(hidden, -np.inf, probs[t])
        order = np.argsort(-row, kind="stable")[:max_labels]
        labels = [f"{classes[c]} ({probs[t, c]:.2f})" for c in order if row[c] >= threshold]
        if labels:
            end = _second_end(t, result.duration)
            cues.append(f"{len(cues) + 1}\n{format_srt_time(t)} --> {format_srt_time(end)}\n{', '.join(labels)}\n")
    return "\n".join(cues)


def plot_probs(result: TagResult, path: Path, *, top: int = 10, hide: Sequence[str] = (), title: str = "",
               threshold: float | None = None) -> None:
    """The ``top`` classes (highest peak probability, hidden ones left out) over time, as a heat map under
    the waveform, cells below ``threshold`` grey, the last partial second at its real width
    (:func:`avcorr.viz.timeline.plot_timeline`)."""
    plot_timeline(path, result.probs, result.classes, result.duration, threshold=threshold,
                  wave_envelope=result.envelope, envelope_rate=ENVELOPE_RATE, top=top,
                  hidden=_hidden_columns(result.classes, hide),
                  title=title or f"top classes per second (context -{result.left}/+{result.right} s)")


def write_outputs(result: TagResult, out_dir: str | Path, stem: str, *, threshold: float, max_labels: int = 3,
                  hide: Sequence[str] = (), plot: bool = True) -> dict[str, Path]:
    """Write ``stem.srt``, ``stem.probs.npy``, ``stem.probs.csv`` and (``plot``) ``stem.png`` atomically.

    Returns:
        ``{'srt': ..., 'npy': ..., 'csv': ..., 'png': ...}`` paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"srt": out / f"{stem}.srt", "npy": out / f"{stem}.probs.npy", "csv": out / f"{stem}.probs.csv"}
    text = srt_text(result, threshold, max_labels=max_labels, hide=hide)
    write_text(paths["srt"], text)
    with atomic_open(paths["npy"], "wb") as f:
        np.save(f, result.probs)
    with atomic_open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start_s", "end_s", *result.classes])
        for t, row in enumerate(result.probs):
            end = _second_end(t, result.duration)
            w.writerow([f"{t:.3f}", f"{end:.3f}", *(f"{p:.5f}" for p in row)])
    if plot:
        paths["png"] = out / f"{stem}.png"
        plot_probs(result, paths["png"], hide=hide, threshold=threshold,
                   title=f"{stem}: top classes per second (context -{result.left}/+{result.right} s)")
    return paths
