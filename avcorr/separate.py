"""``python -m avcorr.separate --checkpoint RUN/checkpoints/best.pt --videos a.mp4 b.mp4 --out DIR``

Separates the sound of each video from a mixture with a Sound-of-Pixels checkpoint (task
``separation``). Without ``--mix`` the videos' own audio tracks are mixed as in training (each
scaled by 1 / N, shorter ones zero-padded); with ``--mix mix.wav`` that recording is separated using
the frames of each video. Writes into ``DIR``:

* ``mixture.wav`` - the mixture that was separated, at the model's sample rate;
* ``<video stem>.wav`` per video - its separated sound, at the model's rate and the mixture's length;
* ``separation.png`` - the mixture spectrogram, each predicted mask (fixed 0..1 colour scale) and
  each separated spectrogram (dB), on the model's log-frequency rows labelled in Hz, with colour bars;
* with ``--pixels``: ``<video stem>_pixels.png`` - the energy each pixel's sound would have
  (the paper's "which pixels make sound" map) over the middle frame of the middle window, as the
  share of the mixture's magnitude it keeps (fixed 0..1 scale).

Audio longer than the model's window is processed window by window (frames around each window's
centre) and the pieces are joined; the last window is zero-padded and cropped.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .inference.separation import Separator, plot_pixel_map, plot_separation, separate_videos, write_wav

__all__ = ["Separator", "main", "plot_pixel_map", "plot_separation", "separate_videos", "write_wav"]


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m avcorr.separate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "checkpoint", checkpoint={"help": "checkpoint of a 'separation' run (e.g. RUN/checkpoints/best.pt)"})
    p.add_argument("--videos", nargs="+", required=True, help="one video per source to separate")
    p.add_argument("--mix", default=None, help="separate this recording instead of mixing the videos' audio")
    add_common_args(p, "out", out={"required": True})
    p.add_argument("--pixels", action="store_true", help="also write each video's per-pixel sound energy map")
    add_common_args(p, "device")
    p.add_argument("--video-backend", default=None, help="torchcodec (default) or decord")
    args = p.parse_intermixed_args(argv)
    from ._cli import error_exit, setup_logging
    from .data.errors import BadClipError

    setup_logging()
    try:
        done = separate_videos(args.checkpoint, args.videos, args.out, mix=args.mix, pixels=args.pixels,
                               device=args.device, video_backend=args.video_backend)
    except (FileNotFoundError, ValueError, BadClipError) as e:
        return error_exit(e)
    print(f"separated {done['sources']} sources from {done['seconds']:.2f} s of audio at {done['sample_rate']} Hz")
    for path in done["written"]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
