"""Progress bars over DataLoaders that iterate them exactly once."""

from __future__ import annotations

from typing import Any, Iterable


def progress(iterable: Iterable, **kwargs: Any):
    """A tqdm bar over ONE iterator of ``iterable``.

    ``tqdm.auto``'s bar calls ``iter()`` on what it wraps when it is created and again when it is
    iterated. For a DataLoader that is two iterators: the first one's workers decode batches that
    are thrown away, and with persistent workers the clips those batches skipped are never reported.
    The bar is handed an iterator instead (``total`` defaults to ``len(iterable)`` when it has one).

    Args:
        iterable: a DataLoader or any iterable.
        **kwargs: tqdm options (``desc``, ``disable``, ``leave``, ``initial`` ...).
    """
    from tqdm.auto import tqdm

    if kwargs.get("total") is None:
        try:
            kwargs["total"] = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            kwargs.pop("total", None)
    return tqdm(iter(iterable), **kwargs)
