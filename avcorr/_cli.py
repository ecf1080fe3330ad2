"""Shared command-line plumbing: logging setup (console through tqdm, plus a log file)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _TqdmHandler(logging.StreamHandler):
    """Console handler that does not break tqdm progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise; fall back to the plain stream
            super().emit(record)


def setup_logging(log_file: str | Path | None = None, *, quiet: bool = False, main_process: bool = True) -> None:
    """Configure the root logger once for a CLI run.

    Args:
        log_file: also append everything at INFO and above to this file.
        quiet: console shows warnings only.
        main_process: other DDP ranks log warnings only and write no file.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.INFO)
    console = _TqdmHandler()
    console.setLevel(logging.WARNING if (quiet or not main_process) else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s" if main_process else "[rank] %(levelname)s %(message)s"))
    root.addHandler(console)
    if log_file is not None and main_process:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(fh)
