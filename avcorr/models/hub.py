"""Released weights by name: a registry of official checkpoints, downloaded once into a local cache.

``avcorr.create_model("panns_cnn14", pretrained=True)`` finds the released file for that model here,
downloads it into the cache the first time (a progress bar; a download cut off midway resumes where
it stopped), checks its hash, and loads it. Nothing is downloaded at import time, and nothing is
unpickled: files load with ``weights_only=True`` like every other checkpoint.

The registry (names, URLs, hashes, file names), the cache and the downloads need no torch and live
in :mod:`avcorr._weights`, which ``python -m avcorr.hub`` reads without importing the models; this
module re-exports them and adds :func:`load_pretrained`. See :mod:`avcorr._weights` for the hash kinds
and the environment (``AVCORR_CACHE``, ``AVCORR_WEIGHTS_MIRROR``, ``AVCORR_OFFLINE``).

Command line: ``python -m avcorr.hub list`` / ``fetch NAME ...`` / ``path NAME`` (:mod:`avcorr.hub`).
"""

from __future__ import annotations

from typing import Any

from .._weights import (CHUNK, WeightFile, WeightsError, cache_dir, fetch, file_hash, get_weights, list_pretrained,
                        main, register_weights, source_url, unregister_weights, verify)

__all__ = ["CHUNK", "WeightFile", "WeightsError", "cache_dir", "fetch", "file_hash", "get_weights", "list_pretrained",
           "load_pretrained", "main", "register_weights", "source_url", "unregister_weights", "verify"]


def load_pretrained(model: Any, name: str, progress: bool = True) -> None:
    """Fetch ``name``'s files and load them into ``model`` (the checkpoint's own loader, then companions).

    Args:
        model: the ``nn.Module`` built for ``name``'s model (:func:`avcorr.create_model`).
        name: a tag from :func:`list_pretrained`, or a model name (its default file).
        progress: show a download progress bar.

    Raises:
        ValueError: ``name`` is for another model, or the weights do not fit.
        WeightsError: see :func:`fetch`.
    """
    from ._registry import load_state_into

    entry = get_weights(name)
    path = fetch(entry.tag, progress=progress)
    load_state_into(model, path, source=f"{entry.tag} ({path})")
    for role, tag in entry.companions.items():
        loader = getattr(model, "load_companion", None)
        if loader is None:
            raise ValueError(f"{entry.tag} comes with a {role} file but {type(model).__name__} cannot load one")
        loader(role, fetch(tag, progress=progress))
