"""``python -m avcorr.hub list | fetch NAME... | path NAME``: the released weights that
``create_model(name, pretrained=True)`` loads. The registry and the downloads live in
:mod:`avcorr.models.hub`; its public names are re-exported here."""

from .models.hub import (WeightFile, WeightsError, cache_dir, fetch, get_weights, list_pretrained, load_pretrained,
                         main, register_weights, source_url, unregister_weights, verify)

__all__ = ["WeightFile", "WeightsError", "cache_dir", "fetch", "get_weights", "list_pretrained", "load_pretrained",
           "main", "register_weights", "source_url", "unregister_weights", "verify"]

if __name__ == "__main__":
    raise SystemExit(main())
