"""Errors raised for bad inputs: each names the file (or clip id) and the problem."""

from __future__ import annotations

from pathlib import Path


class BadClipError(RuntimeError):
    """A single clip cannot be used (missing, undecodable, empty, NaN ...).

    Long jobs catch this, log ``vid`` and ``reason`` and skip the clip; it is never replaced by zeros.

    Args:
        path: the offending file (or clip folder).
        reason: a short human-readable description of the problem.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DecodeError(BadClipError):
    """A media file could not be decoded (truncated, no such stream, zero length, NaN samples)."""


class LayoutError(ValueError):
    """The dataset folder does not follow the layout (bad json, id escaping its folder ...)."""


class SkipLog:
    """Counts skipped clips in a long job; logs each clip id once, with its reason.

    Datasets report skips as ``(vid, reason)`` pairs inside each batch (``batch['skipped']``) so that
    skips seen in DataLoader worker processes reach the main process.
    """

    def __init__(self, logger=None):
        import logging

        self._logger = logger or logging.getLogger("avcorr.data")
        self.reasons: dict[str, str] = {}

    def add(self, skipped) -> None:
        """Record an iterable of ``(vid, reason)``; new ids are logged at WARNING level."""
        for vid, reason in skipped:
            if vid not in self.reasons:
                self.reasons[vid] = reason
                self._logger.warning("skipped clip %s: %s", vid, reason)

    def __len__(self) -> int:
        return len(self.reasons)
