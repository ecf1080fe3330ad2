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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def baseline_name(key: str) -> str:
    """What the reference ``key`` (``baseline/...``, ``center/...``) of a metric is, in two words."""
    if key.startswith("center/"):
        return "centre prior"
    return "the mixture" if key.endswith("nsdr") else "chance"


def baseline_rows(result: dict) -> list[tuple[str, float, float, str, float | None]]:
    """Every metric of an evaluation's results that has a baseline (``baseline/<key>`` or ``center/<key>``).

    Returns:
        ``(key, model value, baseline, what the baseline is, class-level ceiling or None)`` in the
        order of ``result``.
    """
    rows = []
    for key, value in result.items():
        if is_reference(key) or not _is_number(value):
            continue
        for base_key in (f"baseline/{key}", f"center/{key}"):
            base = result.get(base_key)
            if _is_number(base):
                ceiling = result.get(f"ceiling/{key}")
                rows.append((key, float(value), float(base), baseline_name(base_key),
                             float(ceiling) if _is_number(ceiling) else None))
                break
    return rows
