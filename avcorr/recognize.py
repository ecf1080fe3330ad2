"""``python -m avcorr.recognize FILE [FILE ...] --checkpoint CKPT [--top-k 5] [--json]``

Tags audio files with a tagging checkpoint written by ``avcorr.train`` (task ``tagging``): the
checkpoint holds the model, its class names and whether it is single- or multi-label.

What files work, how long clips are windowed and pooled, and what the probabilities are: see
:mod:`avcorr.inference.tagging`.

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
