"""``python -m avcorr.hub list | fetch NAME... | path NAME``: the released weights that
``create_model(name, pretrained=True)`` loads. The registry and the downloads live in
:mod:`avcorr._weights` (no torch: ``list``, ``fetch``, ``path`` and ``--help`` start at once);
:mod:`avcorr.models.hub` adds ``load_pretrained``. Their public names are re-exported here,
``load_pretrained`` lazily (it loads the models, and torch, on first use)."""

from typing import Any

from ._weights import (WeightFile, WeightsError, cache_dir, fetch, get_weights, list_pretrained, main, register_weights,
                       source_url, unregister_weights, verify)

__all__ = ["WeightFile", "WeightsError", "cache_dir", "fetch", "get_weights", "list_pretrained", "load_pretrained",
           "main", "register_weights", "source_url", "unregister_weights", "verify"]


def __getattr__(name: str) -> Any:
    if name == "load_pretrained":
        from .models.hub import load_pretrained

        globals()["load_pretrained"] = load_pretrained
        return load_pretrained
    raise AttributeError(f"module 'avcorr.hub' has no attribute {name!r}")


if __name__ == "__main__":
    raise SystemExit(main())
