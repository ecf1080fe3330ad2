"""What a logged value is, by its name: a metric to draw as a curve, a reference beside a metric
(``baseline/``, ``center/``, ``ceiling/``), or a counter (pairs, clips, throughput) that is a number to
read, never a curve."""

from __future__ import annotations

COUNTERS = ("num_pairs", "num_clips", "num_items", "num_queries", "skipped_clips", "samples_per_s", "seconds")
REFERENCE_PREFIXES = ("baseline/", "center/", "ceiling/")


def is_counter(key: str) -> bool:
    """Whether ``key`` (``val/num_pairs``, ``retrieval/skipped_clips``...) counts something."""
    last = key.rsplit("/", 1)[-1]
    return last in COUNTERS or last.startswith("num_") or last.endswith("_clips")


def is_reference(key: str) -> bool:
    """Whether ``key`` is a baseline, centre prior or ceiling of another metric."""
    return key.startswith(REFERENCE_PREFIXES)
