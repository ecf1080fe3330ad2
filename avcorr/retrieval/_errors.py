"""Errors of the retrieval index: each names the file and the problem."""

from __future__ import annotations


class IndexFormatError(ValueError):
    """An index folder or file is missing, corrupt, or inconsistent with its metadata."""


class IndexMismatchError(ValueError):
    """An index and a model (or embeddings) do not belong together: other model, dimension, weights."""
