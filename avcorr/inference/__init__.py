"""Inference with trained runs, one module per task; the command lines (``avcorr.localize`` ...) are
thin shells over these.

* :mod:`avcorr.inference.evaluation` - evaluate a checkpoint on a split (``python -m avcorr.evaluate``);
* :mod:`avcorr.inference.localization` - heatmaps over videos and splits (``avcorr.localize``);
* :mod:`avcorr.inference.separation` - Sound-of-Pixels separation of mixtures (``avcorr.separate``);
* :mod:`avcorr.inference.retrieval` - embedding splits, FAISS indexes and queries (``avcorr.retrieve``);
* :mod:`avcorr.inference.tagging` - top-k labels of whole files (``avcorr.recognize``);
* :mod:`avcorr.inference.timeline` - second-by-second tagging of long recordings (``avcorr.tag``).

Each starts from :func:`avcorr.runs.load_run`. Nothing is imported here, so that a command's
``--help`` does not load torch.
"""
