"""``python -m avcorr.localize --checkpoint RUN/checkpoints/best.pt --video clip.mp4 --out DIR``

Where does the sound come from? With a localization checkpoint (AVOL-Net, the contrastive
localizer) this writes:

* ``DIR/frame_<k>_<t>s.png`` - the heatmap over ``--frames`` frames sampled evenly over the clip,
  with the peak marked;
* ``DIR/<video name>_heatmap.mp4`` - the whole clip with the heatmap overlaid frame by frame (each
  frame's map comes from the ``data.audio.seconds`` of audio centred on it), with the audio muxed
  back: by default the sound that was localized, i.e. the clip's own track, copied as it is when
  the mp4 container accepts its codec (else re-encoded to AAC).

Every picture and every MP4 frame carries a colour bar, the frame's time and the clip's audio-visual
correspondence score for the audio centred on it (AVOL-Net: ``p(match)``; the contrastive
localizer: ``max cos``). ``--scale model`` (the default) colours every map on the model's own output
range, so a sound that comes from nowhere in the picture leaves it dark; ``--scale clip`` uses the
range of all the video's maps (``batch`` in ``--grid``: all the sheet's maps); ``--scale frame``
stretches each map from its minimum to its maximum (the best cell always looks hot);
``--vrange LO HI`` gives the scale by hand.

``--audio other.wav`` localizes a different sound in the same video ("where would this sound come
from?"); it is looped when shorter than the video, and the MP4 plays it (``--mux-audio original``
keeps the clip's own track instead).

``python -m avcorr.localize --checkpoint ... --grid [--data ROOT] [--split test] [--max-clips 16]
--out DIR`` writes ``DIR/grid_<split>.png``: a contact sheet of the middle frames of a split, each
with its ground-truth boxes (green) and the heatmap overlay, captioned with the clip's cIoU and score,
the pixels that the cIoU protocol switches on outlined in white (``--protocol fixed``, the default:
the min-max normalised map >= 0.5; ``--protocol lvs``: its top half), with a legend, a colour bar and
the protocol written under it; clips that cannot be read are named on screen and in
``DIR/skipped.csv`` (id, path, reason).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .inference.localization import load_localizer, localize_grid, localize_video

__all__ = ["load_localizer", "localize_grid", "localize_video", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import ArgumentParser, add_common_args

    p = ArgumentParser(prog="python -m avcorr.localize", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "checkpoint", "out", checkpoint={"help": "localization checkpoint written by avcorr.train"},
                    out={"required": True})
    p.add_argument("--video", help="the clip to localize sounds in")
    p.add_argument("--audio", help="localize this sound instead of the clip's own track")
    p.add_argument("--frames", type=int, default=8, help="PNG frames sampled evenly over the clip (default 8)")
    p.add_argument("--no-video", action="store_true", help="PNGs only, no MP4")
    p.add_argument("--mux-audio", choices=("localized", "original"), default="localized",
                   help="audio of the MP4: the localized sound (default) or the clip's own track")
    p.add_argument("--grid", action="store_true", help="contact sheet over the clips of a split instead")
    add_common_args(p, "data", "split", data={"help": "--grid: dataset ROOT (default: the checkpoint's)"},
                    split={"help": "--grid: split (default: test)"})
    p.add_argument("--max-clips", type=int, default=16, help="--grid: clips shown (default 16)")
    p.add_argument("--columns", type=int, default=4, help="--grid: clips per row (default 4)")
    p.add_argument("--alpha", type=float, default=0.45, help="heatmap opacity (default 0.45)")
    p.add_argument("--scale", choices=("model", "clip", "batch", "frame"), default="model",
                   help="colour scale: the model's output range (default), the whole clip's / grid's range "
                        "(clip and batch are the same), or each frame min..max")
    p.add_argument("--vrange", type=float, nargs=2, metavar=("LO", "HI"), help="colour scale from LO to HI instead")
    p.add_argument("--protocol", choices=("fixed", "lvs"), default="fixed",
                   help="--grid: the cIoU shown and outlined: fixed threshold 0.5 (default) or the LVS top half")
    p.add_argument("--min-side", type=int, default=256,
                   help="enlarge small videos so the pictures' short side is at least this (default 256; 0 = native)")
    add_common_args(p, "device", "batch_size", "no_progress")
    args = p.parse_intermixed_args(argv)
    if not args.grid and not args.video:
        p.error("give --video CLIP (or --grid for a contact sheet of a split)")
    if args.vrange is not None and not args.vrange[0] < args.vrange[1]:
        p.error(f"--vrange needs LO < HI, got {args.vrange[0]} {args.vrange[1]}")
    from ._cli import error_exit, setup_logging
    from .data.errors import BadClipError, LayoutError

    setup_logging()
    try:
        if args.grid:
            path = localize_grid(args.checkpoint, args.out, data_root=args.data, split=args.split,
                                 max_clips=args.max_clips, columns=args.columns, device=args.device,
                                 batch_size=args.batch_size, scale=args.scale, vrange=args.vrange,
                                 protocol=args.protocol)
            print(f"wrote {path}")
        else:
            written = localize_video(args.checkpoint, args.video, args.out, audio=args.audio, frames=args.frames,
                                     write_video=not args.no_video, mux_audio=args.mux_audio, device=args.device,
                                     batch_size=args.batch_size, alpha=args.alpha, min_side=args.min_side,
                                     scale=args.scale, vrange=args.vrange, progress=not args.no_progress)
            for path in written["png"] + written["mp4"]:
                print(f"wrote {path}")
    except (FileNotFoundError, ValueError, BadClipError, LayoutError, RuntimeError) as e:
        return error_exit(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
