"""Shared command-line plumbing: an argument parser that takes file names starting with '-', the
arguments every command shares (:func:`add_common_args`), and logging setup (console through tqdm,
plus a log file)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

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


_DASH_HINT = ("a file name that starts with '-' (YouTube ids may) can also be given as ./-name.mp4, as "
              "--option=-name.mp4, or after a bare -- that ends the options")


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reads ``-dash.wav`` as a value, not as an unknown option.

    A word that starts with a single ``-`` and is neither an option of this parser (nor begins with
    a short one, as ``-h``), nor a negative number, is an argument: ``--input -aBc.wav`` works. An
    error about a word starting with ``-`` says how else to write such a file name.
    """

    def _parse_optional(self, arg_string: str) -> Any:
        if (len(arg_string) > 2 and arg_string[0] == "-" and arg_string[1] != "-"
                and arg_string[:2] not in self._option_string_actions
                and arg_string.split("=", 1)[0] not in self._option_string_actions
                and not self._negative_number_matcher.match(arg_string)):
            return None  # a positional word (argparse's own answer for words it cannot match)
        return super()._parse_optional(arg_string)

    def error(self, message: str) -> None:  # type: ignore[override]
        if re.search(r"(^|[\s'\[])-[^-\s]", message) or "expected" in message and "argument" in message:
            message = f"{message} ({_DASH_HINT})"
        super().error(message)


# The arguments several commands share, defined once: name -> (flag, argparse keywords).
COMMON_ARGS: dict[str, tuple[str, dict[str, Any]]] = {
    "checkpoint": ("--checkpoint", {"required": True, "help": "checkpoint written by avcorr.train "
                                                              "(e.g. RUN/checkpoints/best.pt)"}),
    "device": ("--device", {"default": "auto", "help": "auto (CUDA when present), cpu or cuda[:i] (default auto)"}),
    "out": ("--out", {"help": "output folder"}),
    "no_progress": ("--no-progress", {"action": "store_true", "help": "no progress bars"}),
    "data": ("--data", {"default": None, "help": "dataset ROOT (default: the one in the checkpoint's config)"}),
    "split": ("--split", {"default": "test", "help": "split to use (default: test)"}),
    "batch_size": ("--batch-size", {"type": int, "default": 16, "help": "items per forward pass (default 16)"}),
    "workers": ("--workers", {"type": int, "default": 0, "help": "data loader workers (default 0)"}),
    "vggish": ("--vggish", {"default": None, "help": "embedding heads: VGGish weights (torchvggish key layout)"}),
    "pca": ("--pca", {"default": None, "help": "embedding heads: vggish_pca_params.npz"}),
    "precision": ("--precision", {"choices": ("fp32", "bf16"), "default": "fp32",  # avcorr._amp.PRECISIONS
                                  "help": "fp32, or bf16: the model under bfloat16 autocast, faster on a CPU with "
                                          "AVX512-BF16 / AMX or a recent GPU (default fp32)"}),
    "vggish_arch": ("--vggish-arch", {"default": "vggish",
                                      "help": "registry name of the VGGish variant (default vggish)"}),
}


def add_common_args(parser: argparse.ArgumentParser, *names: str, **changes: dict[str, Any]) -> None:
    """Add the shared arguments ``names`` (keys of :data:`COMMON_ARGS`) to ``parser``.

    Args:
        parser: a parser or sub-parser.
        *names: which arguments, in the order they are added.
        **changes: per name, argparse keywords that differ for this command, e.g.
            ``out={"required": True}`` or ``batch_size={"default": None}``.

    Raises:
        KeyError: an unknown name, or a change for a name not added.
    """
    unknown = [n for n in (*names, *changes) if n not in COMMON_ARGS] + [n for n in changes if n not in names]
    if unknown:
        raise KeyError(f"not a shared argument, or changed but not added: {', '.join(unknown)}")
    for name in names:
        flag, kwargs = COMMON_ARGS[name]
        parser.add_argument(flag, **{**kwargs, **changes.get(name, {})})


def error_exit(error: BaseException) -> int:
    """Print ``error: <message>`` on stderr (one line per line of the message) and return exit status 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2
