"""Second-by-second tagging (``avcorr.tag``): real-time factor and peak memory of long files.

For each tagger and file length, ``tag_file`` runs in a fresh child process (so that its peak
resident memory, ``ru_maxrss``, is its own) in two ways, measured in the same run:

* ``streamed`` - what ``python -m avcorr.tag`` does: ffmpeg decodes ``--chunk`` seconds at a time;
* ``whole file`` (baseline) - the same code with one chunk as long as the file, i.e. the file
  decoded into memory first, as a plain "load, then tag" script would.

The ratios ``whole / streamed`` of peak memory (how much streaming saves; it grows with the file)
and of time (what streaming costs; about 1) are printed with the real-time factor (seconds of
compute per second of audio, < 1 is faster than real time). The files are noise + tones written as
16-bit wavs at 44.1 kHz stereo (a film's track; ffmpeg resamples to the model's rate). Weights are
random: the cost of a forward pass does not depend on them.

Taggers: ``vggish_attention`` (VGGish + the feature-level attention head, 527 classes: one VGGish
patch per second, the head on each 5-s context of embeddings), ``panns_cnn6`` / ``panns_cnn14`` (one
forward pass per second on its 5-s context window at 32 kHz).

    python experiments/bench_tag.py                                   # vggish_attention, 10 and 40 min
    python experiments/bench_tag.py --taggers panns_cnn6 --minutes 2 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_file(path: Path, minutes: float, seed: int = 0) -> Path:
    """A 44.1 kHz stereo 16-bit wav of noise bursts and tones, written a minute at a time."""
    import wave

    sr = 44100
    rng = np.random.default_rng(seed)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        for m in range(int(np.ceil(minutes))):
            n = int(min(60.0, minutes * 60 - 60 * m) * sr)
            t = np.arange(n) / sr
            x = 0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t)
            pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
            w.writeframes(np.repeat(pcm[:, None], 2, axis=1).tobytes())
    return path


def make_tagger(kind: str, folder: Path) -> list[str]:
    """Write a random-weight checkpoint (and VGGish files) for ``kind``; return the tag CLI's model flags."""
    import torch

    from avcorr.config import Config, config_to_dict
    from avcorr.engine.checkpoint import save_checkpoint
    from avcorr.models import create_model

    classes = [f"class {i}" for i in range(527)]
    cfg = Config(task="tagging")
    cfg.model.width = None
    cfg.model.embed_dim = None
    if kind == "vggish_attention":
        cfg.model.name = "audioset_feature_attention"
        cfg.tagging.format = "embeddings"
    elif kind in ("panns_cnn6", "panns_cnn14"):
        cfg.model.name = kind
    else:
        raise SystemExit(f"unknown tagger {kind!r}")
    model = create_model(cfg.model.name, num_classes=527)
    ckpt = folder / f"{kind}.pt"
    save_checkpoint({"config": config_to_dict(cfg), "resolved": {"classes": classes, "label_mode": "multi"},
                     "model": model.state_dict()}, ckpt)
    flags = ["--checkpoint", str(ckpt)]
    if kind == "vggish_attention":
        torch.save(create_model("vggish").state_dict(), folder / "vggish.pth")
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
        np.savez(folder / "pca.npz", pca_eigen_vectors=q.astype(np.float32),
                 pca_means=rng.standard_normal((128, 1)).astype(np.float32))
        flags += ["--vggish", str(folder / "vggish.pth"), "--pca", str(folder / "pca.npz")]
    return flags


def child(args: argparse.Namespace) -> None:
    """One measurement: load, tag ``args.input`` with ``args.chunk``, print JSON (time, rss)."""
    import torch

    from avcorr.tag import load_second_tagger, tag_file

    torch.set_num_threads(args.threads)
    tagger = load_second_tagger(args.checkpoint, vggish=args.vggish, pca=args.pca, device="cpu",
                                batch_size=args.batch_size)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = tag_file(args.input, tagger, left=3, right=1, chunk_seconds=args.chunk)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": float(res.duration), "rows": int(res.probs.shape[0]), "time": dt,
                      "rss_loaded_mb": rss_loaded / 1024,
                      "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(flags: list[str], path: Path, chunk: float, threads: int, batch_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--input", str(path), "--chunk", str(chunk), "--threads", str(threads),
           "--batch-size", str(batch_size), *flags]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--taggers", nargs="+", default=["vggish_attention"])
    p.add_argument("--minutes", nargs="+", type=float, default=[10.0, 40.0])
    p.add_argument("--chunk", type=float, default=60.0, help="streamed chunk in seconds (default 60)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--vggish", help=argparse.SUPPRESS)
    p.add_argument("--pca", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {m: make_file(folder / f"film_{m:g}min.wav", m, seed=int(m)) for m in args.minutes}
        for kind in args.taggers:
            flags = make_tagger(kind, folder)
            for m, path in files.items():
                s = run_child(flags, path, args.chunk, args.threads, args.batch_size)
                w = run_child(flags, path, 1e9, args.threads, args.batch_size)
                print(f"{kind:>17} {m:5g} min | streamed: RTF {s['time'] / s['seconds']:.4f}, peak RSS "
                      f"{s['rss_peak_mb']:7.0f} MB (model loaded {s['rss_loaded_mb']:.0f} MB) | whole file: RTF "
                      f"{w['time'] / w['seconds']:.4f}, peak {w['rss_peak_mb']:7.0f} MB | whole/streamed: memory "
                      f"{w['rss_peak_mb'] / s['rss_peak_mb']:.2f}x, time {w['time'] / s['time']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
