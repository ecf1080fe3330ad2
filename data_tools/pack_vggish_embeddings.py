"""Pack VGGish embeddings of your own audio into an AudioSet embedding pack (Kong et al.'s format).

Examples:
    # the train split of a dataset in the avcorr layout (or --format folder: a folder per class)
    python -m data_tools.pack_vggish_embeddings --format layout --root DATA --split train \\
        --vggish vggish.pth --pca vggish_pca_params.npz --out packs/bal_train.h5
    python -m data_tools.pack_vggish_embeddings --format layout --root DATA --split val \\
        --vggish vggish.pth --pca vggish_pca_params.npz --out packs/eval.h5
    # train an attention tagger on them
    python -m avcorr.train --config audioset_attention.py data.root=packs

Each clip is read as 16 kHz mono (:func:`avcorr.data.decode.read_audio`) and embedded once per
second by :meth:`avcorr.models.vggish.VGGish.embed_seconds` (the patch of ``[k, k + 0.975)`` s for
second ``k``), post-processed with the official PCA and 8-bit quantisation - the format of the
embeddings Google released with AudioSet. A clip longer than ``--frames`` seconds keeps its first
``--frames`` seconds; a shorter one is padded to ``--frames`` embeddings. The reference packs pad
short clips "with silence" (the author's words, audioset_classification issue #5): with
``--pad silence`` (default) the audio is padded with digital silence before embedding, so padded
seconds hold VGGish's embedding of silence; ``--pad zero`` embeds only the real seconds and fills
the rest with the byte 0.

The pack holds ``x`` uint8 (N, frames, 128), ``y`` bool (N, C) and ``video_id_list`` (N,) bytes (the
clip ids), written to a temporary file and renamed; a ``class_labels_indices.csv`` naming the ``y``
columns is written beside it (an existing one with other classes is an error: the packs of one
folder share it). Clips that cannot be decoded are skipped, logged and counted.

Weights: ``--vggish`` is a local VGGish state dict in the ``harritaylor/torchvggish`` key layout
(``--model`` names the registry variant it belongs to, ``vggish`` by default); ``--pca`` the official
``vggish_pca_params.npz``. Without ``--pca`` the weights file must carry the PCA parameters itself
(a torchvggish whole-module save with ``pproc.*`` entries); raw, un-quantised embeddings are never
packed, because the attention heads are trained on the quantised ones.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from avcorr._atomic import atomic_path
from data_tools.pack_waveforms_to_hdf5 import write_label_csv

logger = logging.getLogger("data_tools.pack_vggish_embeddings")

SAMPLE_RATE = 16000
PAD_MODES = ("silence", "zero")


def embed_clip(net, wave, frames: int, pad: str = "silence") -> np.ndarray:
    """Quantised embeddings of one clip, cut or padded to ``frames`` seconds.

    Args:
        net: a VGGish with a post-processor.
        wave: (T,) float32 tensor, 16 kHz mono.
        frames: embeddings to keep (seconds).
        pad: ``"silence"`` (pad the audio with zeros before embedding) or ``"zero"`` (pad the
            embeddings with the byte 0).

    Returns:
        uint8 (frames, 128).
    """
    import torch

    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    want = frames * SAMPLE_RATE
    wave = wave[:want]
    if pad == "silence" and wave.shape[0] < want:
        wave = torch.nn.functional.pad(wave, (0, want - wave.shape[0]))
    device = next(net.parameters()).device
    q = net.embed_seconds(wave.to(device))["quantized"].cpu().numpy()  # (S <= frames, 128)
    out = np.zeros((frames, q.shape[1]), dtype=np.uint8)
    out[: min(frames, q.shape[0])] = q[:frames]
    return out


def _check_label_csv(path: Path, classes: Sequence[str]) -> bool:
    """True when ``path`` must be written; False when it exists with the same classes.

    Raises:
        ValueError: ``path`` exists and names other classes.
    """
    if not path.exists():
        return True
    from avcorr.data.tagging import read_label_csv

    names = [r[2] for r in read_label_csv(path)]
    if names != list(classes):
        raise ValueError(f"{path}: exists and names {len(names)} other classes than this split's {len(classes)} "
                         f"({', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''}); write the pack to "
                         f"another folder")
    return False


def pack(source, net, out: str | Path, *, frames: int = 10, pad: str = "silence", progress: bool = False) -> dict:
    """Write the embedding pack of the clips of ``source``.

    Args:
        source: an :class:`avcorr.data.records.Manifest` with file-based clips.
        net: VGGish with its post-processor (:func:`avcorr.models.vggish.load_vggish`).
        out: the ``.h5`` to write (through a temporary file).
        frames: embeddings (seconds) per clip.
        pad: see :func:`embed_clip`.
        progress: tqdm bar.

    Returns:
        ``{"clips": written, "skipped": [(vid, reason), ...], "skipped_csv": path}``: the skipped clips are
        also listed (id, path, reason) in ``<out stem>_skipped.csv`` beside ``out``.

    Raises:
        ValueError: ``frames`` < 1, or a class csv beside ``out`` that names other classes.
    """
    import h5py
    import torch
    from tqdm.auto import tqdm

    from avcorr.data import decode
    from avcorr.data.errors import BadClipError
    from avcorr.data.skipped import clip_paths, skipped_beside, skipped_rows, write_skipped_csv

    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out.with_name("class_labels_indices.csv")
    write_csv = _check_label_csv(csv_path, source.classes)
    clips = [c for c in source.clips if c.media is not None]
    skipped = list(source.skipped) + [(c.vid, "not a file-based clip") for c in source.clips if c.media is None]
    n_cls = len(source.classes)
    id_len = max([11] + [len(c.vid.encode()) for c in clips])
    n = 0
    with atomic_path(out, mkdir=False) as tmp:
        with h5py.File(tmp, "w") as hf:
            xs = hf.create_dataset("x", shape=(len(clips), frames, 128), maxshape=(None, frames, 128), dtype=np.uint8)
            ys = hf.create_dataset("y", shape=(len(clips), n_cls), maxshape=(None, n_cls), dtype=bool)
            ids = hf.create_dataset("video_id_list", shape=(len(clips),), maxshape=(None,), dtype=f"S{id_len}")
            for c in tqdm(clips, desc=f"embed {out.name}", disable=not progress, dynamic_ncols=True):
                try:
                    wave = decode.read_audio(c.media, 0.0, None, SAMPLE_RATE)
                    if not bool(torch.isfinite(wave).all()):
                        raise BadClipError(str(c.media), "NaN or Inf samples")
                    x = embed_clip(net, wave, frames, pad)
                except BadClipError as e:
                    logger.warning("skipped clip %s: %s", c.vid, e)
                    skipped.append((c.vid, str(e)))
                    continue
                xs[n] = x
                row = np.zeros(n_cls, dtype=bool)
                row[list(source.label_space.indices(c.labels))] = True
                ys[n] = row
                ids[n] = c.vid.encode()
                n += 1
            for ds in (xs, ys, ids):
                ds.resize(n, axis=0)
    if write_csv:
        write_label_csv(csv_path, source.classes)
    listed = write_skipped_csv(skipped_beside(out), skipped_rows(skipped, clip_paths(source.clips, audio_first=True)))
    return {"clips": n, "skipped": skipped, "skipped_csv": listed}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_tools.pack_vggish_embeddings",
                                description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=("layout", "folder", "ast_json"), default="layout")
    p.add_argument("--root", required=True, help="dataset root (ast_json: folder the --split file is relative to)")
    p.add_argument("--split", default="train", help="split name (layout, folder) or datafile (ast_json)")
    p.add_argument("--label-csv", default=None, help="ast_json: the class_labels_indices.csv")
    p.add_argument("--val-fraction", type=float, default=0.1, help="folder without split sub-folders")
    p.add_argument("--vggish", required=True, type=Path, help="VGGish weights (torchvggish key layout)")
    p.add_argument("--pca", default=None, type=Path,
                   help="vggish_pca_params.npz (needed unless the weights carry pproc.*)")
    p.add_argument("--model", default="vggish", help="registry name of the VGGish variant (default vggish)")
    p.add_argument("--out", required=True, type=Path, help="the pack to write, e.g. packs/bal_train.h5")
    p.add_argument("--frames", type=int, default=10, help="embeddings (seconds) per clip (default 10, as AudioSet)")
    p.add_argument("--pad", choices=PAD_MODES, default="silence",
                   help="short clips: pad the audio with silence (default) or the embeddings with 0")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda[:i]")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from avcorr._cli import setup_logging
    from avcorr.data.errors import LayoutError

    setup_logging()
    try:
        from avcorr.data.tagging import open_source
        from avcorr.engine.distributed import resolve_device
        from avcorr.models.vggish import load_vggish

        src = open_source(args.format, args.root, args.split, label_csv=args.label_csv, val_fraction=args.val_fraction)
        net = load_vggish(args.vggish, args.pca, args.model, resolve_device(args.device))
        res = pack(src, net, args.out, frames=args.frames, pad=args.pad, progress=not args.no_progress)
    except (LayoutError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {res['clips']} clips x {args.frames} embeddings, {len(src.classes)} classes, "
          f"{len(res['skipped'])} skipped" + (f" (listed in {res['skipped_csv']})" if res["skipped"] else ""))
    return 1 if res["clips"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
