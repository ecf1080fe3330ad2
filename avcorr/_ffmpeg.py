"""The one place that finds the ``ffmpeg`` / ``ffprobe`` binaries.

Everything in avcorr and ``data_tools`` that runs ffmpeg asks :func:`find_tool`; a test checks that
``shutil.which("ffmpeg")`` appears nowhere else. A missing binary is one clear error,
:class:`ToolNotFoundError`, which is both a ``FileNotFoundError`` and a ``RuntimeError`` (the
errors the callers have always caught).
"""

from __future__ import annotations

import shutil

__all__ = ["TOOLS", "ToolNotFoundError", "ffmpeg", "ffprobe", "find_tool"]

TOOLS = ("ffmpeg", "ffprobe")


class ToolNotFoundError(FileNotFoundError, RuntimeError):
    """``ffmpeg`` or ``ffprobe`` is not on PATH."""


def find_tool(name: str = "ffmpeg", *, needed_for: str = "") -> str:
    """The path of the ``ffmpeg`` or ``ffprobe`` binary on PATH.

    Args:
        name: ``"ffmpeg"`` or ``"ffprobe"``.
        needed_for: what the caller was doing, for the message (e.g. ``"writing the MP4"``).

    Returns:
        The executable's path.

    Raises:
        ToolNotFoundError: not on PATH; the message says how to install it.
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOLS)}")
    exe = shutil.which(name)
    if exe is None:
        why = f" ({needed_for})" if needed_for else ""
        raise ToolNotFoundError(f"the `{name}` binary is needed{why} and was not found on PATH; install ffmpeg "
                                "(e.g. `apt-get install ffmpeg` or `conda install -c conda-forge ffmpeg`)")
    return exe


def ffmpeg(needed_for: str = "") -> str:
    """:func:`find_tool` ``("ffmpeg")``."""
    return find_tool("ffmpeg", needed_for=needed_for)


def ffprobe(needed_for: str = "") -> str:
    """:func:`find_tool` ``("ffprobe")``."""
    return find_tool("ffprobe", needed_for=needed_for)
