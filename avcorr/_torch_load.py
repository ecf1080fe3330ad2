"""Reading torch files safely: ``weights_only=True``, and errors that say what a refused file is."""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Sequence


def load_tensors_only(path: str | Path, allowed: Sequence[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file it refuses raises a plain ``ValueError``.

    torch's own refusal suggests loading again with ``weights_only=False``; for a file of unknown
    origin that is the wrong advice (unpickling can run any code), so the message says instead what
    the file holds and that avcorr does not unpickle it.

    Args:
        path: the file.
        allowed: extra globals to accept (``torch.serialization.safe_globals`` entries).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds Python objects besides tensors and plain data, or is not a torch file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(list(allowed)), warnings.catch_warnings():
            # a plain pickle makes torch warn about its protocol just before refusing it: the error says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:
            raise ValueError(
                f"{path}: refused: it holds Python objects ({found.group(1)}), not only tensors and plain data, "
                f"so it is not an avcorr checkpoint or weight file; avcorr will not unpickle it (that can run any "
                f"code). If it comes from a source you trust, save its weights alone: "
                f"torch.save(model.state_dict(), 'weights.pt')") from None
        raise ValueError(f"{path}: refused: not a file of tensors written by torch.save (damaged, or a pickle of "
                         f"another kind); avcorr will not unpickle it") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "no data"
        raise ValueError(f"{path}: cannot read checkpoint: empty, truncated or not a torch file "
                         f"({type(e).__name__}: {first})") from None
