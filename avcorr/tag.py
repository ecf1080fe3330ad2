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
* ``film.png`` - the top classes' probabilities over time (a heat map, one row per class) under
  the waveform, cells below ``--threshold`` grey and the threshold marked on the colour bar.

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
    >>> from avcorr.inference.timeline import load_second_tagger, tag_file
    >>> result = tag_file("film.mp4", load_second_tagger("runs/panns/checkpoints/best.pt"), left=3, right=1)
    >>> result.probs.shape  # (seconds, classes)
"""

from __future__ import annotations

import argparse

import sys
from pathlib import Path
from typing import Sequence

from .data.errors import DecodeError
from .inference.timeline import (EmbeddingScorer, SecondTagger, TagResult, WaveScorer, format_srt_time,
                                 load_second_tagger, probe_media, srt_text, stream_audio, tag_file, write_outputs)
from .inference.tagging import load_vggish

__all__ = ["EmbeddingScorer", "SecondTagger", "TagResult", "WaveScorer", "format_srt_time", "load_second_tagger",
           "load_vggish", "main", "probe_media", "srt_text", "stream_audio", "tag_file", "write_outputs"]


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m avcorr.tag", description=__doc__.split("\n\n")[0])
    add_common_args(p, "checkpoint", checkpoint={"help": "a tagging checkpoint written by avcorr.train"})
    p.add_argument("--input", required=True, nargs="+",
                   help="audio or video files (.wav .mp3 .flac .mp4 .mkv ...; -name.wav works, as does ./-name.wav)")
    add_common_args(p, "out", out={"help": "output folder (default: next to each input)"})
    p.add_argument("--left", type=int, default=3, help="seconds of context before each second (default 3)")
    p.add_argument("--right", type=int, default=1, help="seconds of context after each second (default 1)")
    p.add_argument("--threshold", type=float, default=0.3, help="probability a class needs to be shown (default 0.3)")
    p.add_argument("--max-labels", type=int, default=3, help="classes per subtitle at most (default 3)")
    p.add_argument("--hide", default="", help='comma-separated classes left out of the subtitles and plot, e.g. "Speech,Music"')
    add_common_args(p, "vggish", "pca", "vggish_arch", "batch_size",
                    batch_size={"help": "context windows per forward pass (default 16)"})
    p.add_argument("--chunk", type=float, default=60.0, help="seconds decoded at a time (default 60)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    add_common_args(p, "device", "precision", "no_progress")
    p.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)  # the old name
    args = p.parse_args(argv)
    from ._cli import error_exit, setup_logging

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
                                    device=args.device, batch_size=args.batch_size, precision=args.precision)
    except (FileNotFoundError, ValueError) as e:
        return error_exit(e)
    from .data.skipped import SKIPPED_FILE, write_skipped_csv

    hide = [h for h in args.hide.split(",") if h.strip()]
    skipped: dict[Path, list[dict[str, str]]] = {}  # output folder -> the inputs skipped there
    for f, reason in refused:
        out = Path(args.out) if args.out else Path(f).parent
        skipped.setdefault(out, []).append({"id": Path(f).stem, "path": str(f), "reason": reason})
    for f in inputs:
        out = Path(args.out) if args.out else Path(f).parent
        try:
            result = tag_file(f, tagger, args.left, args.right, chunk_seconds=args.chunk, progress=not args.no_progress)
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
