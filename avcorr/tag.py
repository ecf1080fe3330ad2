"""``python -m avcorr.tag --checkpoint TAGGER.pt --input film.mp4 --left 3 --right 1 --threshold 0.3 --out DIR``

Second-by-second tagging of long recordings into subtitles, as the AudioTagger tool did: every
second ``t`` of the input is judged from its context window ``[t - left, t + right + 1)`` seconds
(cut to the recording), and the classes whose probability reaches ``--threshold`` become that
second's subtitle. For ``film.mp4`` it writes, into ``--out``:

* ``film.srt`` - one cue per second that has a class above the threshold, the ``--max-labels``
  most probable first (``Dog (0.82), Bark (0.41)``); ``--hide "Speech,Music"`` leaves out classes
  that would be in every cue of a film (they stay in the probability files);
* ``film.probs.npy`` - float32 (seconds, classes) probabilities; ``film.probs.csv`` - the same with
  the second's start/end and the class names as the header;
* ``film.png`` - the top classes' probabilities over time (a heat map, one row per class).

Several inputs are tagged one after the other; one that cannot be read is skipped, named on screen
with the reason and listed in ``skipped.csv`` (id, path, reason) in its output folder (``--out``
always gets one, a header only when nothing was skipped), and the exit status is 1.

Any tagging checkpoint of ``avcorr.train`` works:

* waveform taggers (PANNs, AST, a model trained on a folder per class): each context window is one
  forward pass of the model on that stretch of audio (resampled to the model's rate by ffmpeg);
* embedding heads trained on AudioSet embedding packs (``audioset_*_attention``, avg/max pooling):
  the audio goes through VGGish (``--vggish`` weights in the torchvggish layout, ``--pca``
  ``vggish_pca_params.npz``) once, one quantised embedding per second as the released AudioSet
  features, and each second's context window of embeddings goes through the head.

It streams: ffmpeg decodes the input (any container or codec ffmpeg reads, the first audio track,
channels averaged) into chunks of ``--chunk`` seconds; only the chunk and the context window are kept
in memory, windows are batched through the model, and a progress bar follows the seconds. A file
with no audio track is an error that names it; a file of 0 seconds gives an empty subtitle file.

Example:
    >>> from avcorr.tag import load_second_tagger, tag_file
    >>> result = tag_file("film.mp4", load_second_tagger("runs/panns/checkpoints/best.pt"), left=3, right=1)
    >>> result.probs.shape  # (seconds, classes)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from typing import TYPE_CHECKING

import numpy as np

from .data.errors import DecodeError

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
    "load_vggish",
    "probe_media",
    "stream_audio",
    "tag_file",
    "write_outputs",
]


# -- decoding ------------------------------------------------------------------------------------


def _exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise RuntimeError(f"avcorr.tag needs the `{name}` binary on PATH (e.g. apt-get install ffmpeg)")
    return exe


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
    cmd = [_exe("ffprobe"), "-v", "error", "-print_format", "json", "-show_entries",
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
    cmd = [_exe("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", _ffmpeg_input(p),
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
    """

    def __init__(self, model: nn.Module, multilabel: bool, device: torch.device, batch_size: int = 16):
        self.model, self.multilabel, self.device, self.batch_size = model, multilabel, device, batch_size
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

        with torch.no_grad():
            logits = self.model(torch.from_numpy(batch).to(self.device))["logits"].float()
        return (logits.sigmoid() if self.multilabel else logits.softmax(-1)).cpu().numpy()


class EmbeddingScorer:
    """VGGish + an embedding head: a second's unit is its quantised VGGish embedding.

    Args:
        vggish: a :class:`avcorr.models.vggish.VGGish` with its PCA post-processor attached.
        head: an embedding tagger (``input_kind == 'embedding'``; input (B, T, 128) uint8 values).
        multilabel: sigmoid (True) or softmax (False) probabilities.
        device: where both run.
        batch_size: context windows per forward pass of the head (VGGish takes 64 seconds at a time).
    """

    sample_rate = 16000

    def __init__(self, vggish: nn.Module, head: nn.Module, multilabel: bool, device: torch.device, batch_size: int = 64):
        if getattr(vggish, "postprocessor", None) is None:
            raise ValueError("the VGGish model needs its PCA post-processing (vggish_pca_params.npz): the heads "
                             "are trained on the quantised embeddings of the AudioSet release")
        self.vggish, self.head, self.multilabel, self.device = vggish, head, multilabel, device
        self.batch_size = batch_size

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

        with torch.no_grad():
            logits = self.head(torch.from_numpy(batch).to(self.device))["logits"].float()
        return (logits.sigmoid() if self.multilabel else logits.softmax(-1)).cpu().numpy()


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
                       vggish_arch: str = "vggish", device: str = "auto", batch_size: int = 16) -> SecondTagger:
    """A per-second tagger from a tagging checkpoint of ``avcorr.train``.

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` of a tagging run.
        vggish: embedding heads only: VGGish weights (torchvggish layout; a whole-module save with
            ``pproc.*`` entries also brings the PCA parameters).
        pca: embedding heads only: ``vggish_pca_params.npz``.
        vggish_arch: the registry name of the VGGish variant the weights belong to.
        device: ``auto``, ``cpu``, ``cuda[:i]``.
        batch_size: context windows per forward pass.

    Raises:
        FileNotFoundError / ValueError: a missing file, not a tagging checkpoint, or an embedding
        head without its VGGish weights / PCA parameters (the message says which flag to pass).
    """
    from .recognize import load_tagger

    t = load_tagger(checkpoint, device)
    if not t.is_embedding_head:
        return SecondTagger(WaveScorer(t.model, t.multilabel, t.device, batch_size), t.classes, t.name)
    net = load_vggish(vggish, pca, vggish_arch, t.device, what=f"{checkpoint}: an embedding head ({type(t.model).__name__})")
    return SecondTagger(EmbeddingScorer(net, t.model, t.multilabel, t.device, max(batch_size, 64)), t.classes, t.name)


def load_vggish(vggish: str | Path | None, pca: str | Path | None, arch: str = "vggish",
                device: torch.device | str = "cpu", *, what: str = "an embedding head") -> nn.Module:
    """VGGish with its PCA post-processing, in eval mode on ``device``, for an embedding head.

    Raises:
        ValueError: ``vggish`` not given, or no PCA parameters (neither ``pca`` nor ``pproc.*`` in the weights).
    """
    from .models.vggish import load_vggish as _load

    if vggish is None:
        raise ValueError(f"{what} tags VGGish embeddings: pass --vggish (VGGish weights, torchvggish layout) "
                         "and --pca (vggish_pca_params.npz)")
    return _load(vggish, pca, arch, device)


# -- the streaming loop --------------------------------------------------------------------------

MIN_TAIL_SECONDS = 0.1  # a shorter last partial second is encoder padding (AAC adds ~20-50 ms), not a second


@dataclass
class TagResult:
    """Per-second probabilities of one file.

    Attributes:
        probs: float32 (S, C); row ``t`` judges second ``[t, t + 1)`` from its context window.
        classes: C class names.
        duration: seconds of decoded audio (``S = ceil(duration)``, less a last partial second shorter
            than 0.1 s, which is encoder padding rather than content).
        left, right: the context window used.
    """

    probs: np.ndarray
    classes: list[str]
    duration: float
    left: int
    right: int


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
    finally:
        if bar is not None:
            bar.close()
    ncls = len(tagger.classes)
    probs = np.concatenate([r for r in rows if r.size]) if any(r.size for r in rows) else np.zeros((0, ncls), np.float32)
    if probs.shape[1] != ncls:
        raise ValueError(f"the model gives {probs.shape[1]} outputs for {ncls} class names")
    return TagResult(probs.astype(np.float32), list(tagger.classes), total / sr, left, right)


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


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def plot_probs(result: TagResult, path: Path, *, top: int = 10, hide: Sequence[str] = (), title: str = "") -> None:
    """The ``top`` classes (highest peak probability, hidden ones left out) over time, as a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = result.probs
    keep = np.flatnonzero(~_hidden_columns(result.classes, hide))
    s = probs.shape[0]
    fig_w = 10.0
    if s and keep.size:
        peak = probs[:, keep].max(0)
        cols = keep[np.argsort(-peak, kind="stable")[:top]]
        fig, ax = plt.subplots(figsize=(fig_w, 1.2 + 0.35 * len(cols)))
        im = ax.imshow(probs[:, cols].T, aspect="auto", interpolation="nearest", cmap="magma", vmin=0.0, vmax=1.0,
                       extent=(0, s, len(cols) - 0.5, -0.5))
        ax.set_yticks(range(len(cols)), [result.classes[c] for c in cols], fontsize=8)
        ax.set_xlabel("time (s)" if s <= 600 else "time (min)")
        if s > 600:
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 60:.0f}"))
        fig.colorbar(im, ax=ax, label="probability", fraction=0.03, pad=0.01)
    else:
        fig, ax = plt.subplots(figsize=(fig_w, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no audio to tag (0 s)" if not s else "every class is hidden", ha="center", va="center")
    ax.set_title(title or f"top classes per second (context -{result.left}/+{result.right} s)", fontsize=10)
    fig.tight_layout()
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


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
    _atomic_write(paths["srt"], lambda f: f.write(text.encode("utf-8")))
    _atomic_write(paths["npy"], lambda f: np.save(f, result.probs))

    def write_csv(f) -> None:
        text_f = io.TextIOWrapper(f, encoding="utf-8", newline="")
        w = csv.writer(text_f)
        w.writerow(["start_s", "end_s", *result.classes])
        for t, row in enumerate(result.probs):
            end = _second_end(t, result.duration)
            w.writerow([f"{t:.3f}", f"{end:.3f}", *(f"{p:.5f}" for p in row)])
        text_f.flush()
        text_f.detach()

    _atomic_write(paths["csv"], write_csv)
    if plot:
        paths["png"] = out / f"{stem}.png"
        plot_probs(result, paths["png"], hide=hide, title=f"{stem}: top classes per second "
                   f"(context -{result.left}/+{result.right} s)")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser

    p = ArgumentParser(prog="python -m avcorr.tag", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a tagging checkpoint written by avcorr.train")
    p.add_argument("--input", required=True, nargs="+",
                   help="audio or video files (.wav .mp3 .flac .mp4 .mkv ...; -name.wav works, as does ./-name.wav)")
    p.add_argument("--out", default=None, help="output folder (default: next to each input)")
    p.add_argument("--left", type=int, default=3, help="seconds of context before each second (default 3)")
    p.add_argument("--right", type=int, default=1, help="seconds of context after each second (default 1)")
    p.add_argument("--threshold", type=float, default=0.3, help="probability a class needs to be shown (default 0.3)")
    p.add_argument("--max-labels", type=int, default=3, help="classes per subtitle at most (default 3)")
    p.add_argument("--hide", default="", help='comma-separated classes left out of the subtitles and plot, e.g. "Speech,Music"')
    p.add_argument("--vggish", default=None, help="embedding heads: VGGish weights (torchvggish key layout)")
    p.add_argument("--pca", default=None, help="embedding heads: vggish_pca_params.npz")
    p.add_argument("--vggish-arch", default="vggish", help="registry name of the VGGish variant (default vggish)")
    p.add_argument("--batch-size", type=int, default=16, help="context windows per forward pass (default 16)")
    p.add_argument("--chunk", type=float, default=60.0, help="seconds decoded at a time (default 60)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from ._cli import setup_logging

    setup_logging(quiet=True)
    if args.max_labels < 1 or args.batch_size < 1 or args.chunk <= 0:
        p.error("--max-labels and --batch-size must be >= 1 and --chunk > 0")
    inputs, refused = [], []
    for f in args.input:  # the inputs first: a picture or a silent video is said before the model loads
        try:
            probe_media(f)
            inputs.append(f)
        except (FileNotFoundError, DecodeError) as e:
            reason = e.reason if isinstance(e, DecodeError) else str(e)
            print(f"error: skipped {f}: {reason}", file=sys.stderr)
            refused.append((f, reason))
    if not inputs:
        return 1
    try:
        tagger = load_second_tagger(args.checkpoint, vggish=args.vggish, pca=args.pca, vggish_arch=args.vggish_arch,
                                    device=args.device, batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .data.skipped import SKIPPED_FILE, write_skipped_csv

    hide = [h for h in args.hide.split(",") if h.strip()]
    skipped: dict[Path, list[dict[str, str]]] = {}  # output folder -> the inputs skipped there
    for f, reason in refused:
        out = Path(args.out) if args.out else Path(f).parent
        skipped.setdefault(out, []).append({"id": Path(f).stem, "path": str(f), "reason": reason})
    for f in inputs:
        out = Path(args.out) if args.out else Path(f).parent
        try:
            result = tag_file(f, tagger, args.left, args.right, chunk_seconds=args.chunk, progress=not args.quiet)
        except (FileNotFoundError, DecodeError, ValueError) as e:
            print(f"error: skipped {f}: {e}", file=sys.stderr)
            reason = e.reason if isinstance(e, DecodeError) else str(e)
            skipped.setdefault(out, []).append({"id": Path(f).stem, "path": str(f), "reason": reason})
            continue
        paths = write_outputs(result, out, Path(f).stem, threshold=args.threshold, max_labels=args.max_labels,
                              hide=hide, plot=not args.no_plot)
        print(f"{f}: {result.probs.shape[0]} s tagged -> " + ", ".join(str(v) for v in paths.values()))
    if args.out:
        skipped.setdefault(Path(args.out), [])  # --out always gets a list, so it describes the latest run
    for folder, rows in skipped.items():
        write_skipped_csv(folder / SKIPPED_FILE, rows)
    n_skipped = sum(len(rows) for rows in skipped.values())
    if n_skipped:
        where = ", ".join(str(folder / SKIPPED_FILE) for folder, rows in skipped.items() if rows)
        print(f"{n_skipped} of {len(args.input)} file(s) skipped, listed in {where}", file=sys.stderr)
    return 1 if n_skipped else 0


if __name__ == "__main__":
    sys.exit(main())
