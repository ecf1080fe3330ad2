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

# This file only runs the command. ``avcorr.recognize`` is the *function* (``from avcorr import
# recognize``, defined in avcorr.inference.tagging); importing this file as a module would bind that
# name to the module instead, so it refuses. The command's code is avcorr.recognize_cli.
if __name__ != "__main__":
    raise ImportError("avcorr.recognize is the function `from avcorr import recognize` (avcorr.inference.tagging); "
                      "the command runs as `python -m avcorr.recognize`, its code is avcorr.recognize_cli "
                      "(main(argv)); load_tagger and window_starts are in avcorr.inference.tagging")

import sys

from avcorr.recognize_cli import main

sys.exit(main())
