"""Released weights by name: the registry of official checkpoints and their download into a local cache.

The torch-free half of :mod:`avcorr.models.hub` (which adds ``load_pretrained``), shared by the models
and by the command line ``python -m avcorr.hub`` so that ``list``, ``fetch``, ``path`` and ``--help``
start without loading torch. Nothing is downloaded at import time.

Each entry names a file, its public URL and the hash its publisher gives (``sha256:<hex>``;
``md5:<hex>`` where only an MD5 is published, as Zenodo does; ``sha256-prefix:<hex>`` for files named
the ``torch.hub`` way, ``name-<first hex digits of the sha256>.pth``). A file whose publisher gives
no hash is recorded with the SHA-256 of its first download, and later uses are checked against that.

Environment:
    ``AVCORR_CACHE``: the cache folder (default ``~/.cache/avcorr``); weights go to ``<cache>/weights``.
    ``AVCORR_WEIGHTS_MIRROR``: a base URL (or a local folder) that replaces every public URL: a file
    is fetched from ``<mirror>/<file name>``. For clusters without internet, or a faster copy.
    ``AVCORR_OFFLINE=1``: never download; a missing file is an error that says where to put it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ._atomic import move_into_place, write_json

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
_HASH_KINDS = ("sha256", "md5", "sha256-prefix")


class WeightsError(RuntimeError):
    """A released file that cannot be had: offline, a failed download, or a hash that does not match."""


@dataclass(frozen=True)
class WeightFile:
    """One released file.

    Args:
        tag: the registry name, ``<model>.<what it was trained on>`` (``panns_cnn14.audioset``).
        model: the :func:`avcorr.create_model` name the file loads into.
        file_name: the name it has in the cache (and under a mirror).
        url: where its publisher serves it.
        hash: ``sha256:<hex>``, ``md5:<hex>``, ``sha256-prefix:<hex>``, or None when none is published.
        source: the paper / page / licence, for the listing.
        companions: other tags the model needs beside this file, by role (``{"pca": "vggish.pca"}``).
        default: the file ``pretrained=True`` picks for ``model``.
    """

    tag: str
    model: str
    file_name: str
    url: str
    hash: str | None
    source: str = ""
    companions: dict[str, str] = field(default_factory=dict)
    default: bool = True

    def __post_init__(self) -> None:
        if self.hash is not None:
            kind, _, digest = self.hash.partition(":")
            if kind not in _HASH_KINDS or not digest or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{self.tag}: hash must be one of {', '.join(k + ':<hex>' for k in _HASH_KINDS)}"
                                 f" in lower case, got {self.hash!r}")
        if "/" in self.file_name or self.file_name in ("", ".", ".."):
            raise ValueError(f"{self.tag}: file_name must be a plain file name, got {self.file_name!r}")


_REGISTRY: dict[str, WeightFile] = {}


def register_weights(entry: WeightFile, overwrite: bool = False) -> WeightFile:
    """Add a released file to the registry (tests and users may add their own).

    Raises:
        ValueError: the tag exists already (unless ``overwrite``).
    """
    if entry.tag in _REGISTRY and not overwrite and _REGISTRY[entry.tag] != entry:
        raise ValueError(f"weights {entry.tag!r} are already registered")
    _REGISTRY[entry.tag] = entry
    return entry


def unregister_weights(tag: str) -> None:
    """Remove a tag from the registry (no error when absent)."""
    _REGISTRY.pop(tag, None)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted tags of the registered files matching a shell-style ``pattern``."""
    return sorted(t for t in _REGISTRY if fnmatch.fnmatch(t, pattern))


def get_weights(name: str) -> WeightFile:
    """The entry for a tag, or the default file of a model name.

    Raises:
        KeyError: nothing registered under that name (the message lists what is).
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    for entry in _REGISTRY.values():
        if entry.model == name and entry.default:
            return entry
    raise KeyError(f"no released weights named {name!r}; known: {', '.join(list_pretrained()) or 'none'}")


def cache_dir() -> Path:
    """``$AVCORR_CACHE/weights`` (default ``~/.cache/avcorr/weights``)."""
    root = os.environ.get("AVCORR_CACHE") or Path.home() / ".cache" / "avcorr"
    return Path(root).expanduser() / "weights"


def source_url(entry: WeightFile) -> str:
    """Where ``entry`` is fetched from: its public URL, or ``<mirror>/<file name>`` under a mirror."""
    mirror = os.environ.get("AVCORR_WEIGHTS_MIRROR", "").strip()
    if not mirror:
        return entry.url
    if "://" not in mirror:  # a local folder
        return (Path(mirror).expanduser().resolve() / entry.file_name).as_uri()
    return mirror.rstrip("/") + "/" + urllib.parse.quote(entry.file_name)


def file_hash(path: Path, kind: str = "sha256") -> str:
    """The hex digest of ``path`` (``sha256`` or ``md5``), read in 1 MiB pieces."""
    h = hashlib.new("sha256" if kind == "sha256-prefix" else kind)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _matches(path: Path, expected: str) -> tuple[bool, str]:
    kind, _, digest = expected.partition(":")
    got = file_hash(path, kind)
    ok = got.startswith(digest) if kind == "sha256-prefix" else got == digest
    return ok, f"{'sha256' if kind == 'sha256-prefix' else kind}:{got}"


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_marker(path: Path, expected: str) -> None:
    write_json(_marker(path), {**_stamp(path), "hash": expected})


def verify(path: Path, entry: WeightFile) -> None:
    """Check ``path`` against ``entry``'s hash before it is used.

    A file checked before and untouched since (same size and modification time) is not hashed again.
    A file whose publisher gives no hash is checked against the SHA-256 recorded at its download.

    Raises:
        WeightsError: the file does not match (the message names it, both hashes, and what to do).
    """
    marker = _marker(path)
    recorded = None
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            recorded = None
    expected = entry.hash or (recorded or {}).get("hash")
    if recorded and recorded.get("hash") == expected and {k: recorded.get(k) for k in ("size", "mtime_ns")} == _stamp(path):
        return
    if expected is None:  # placed by hand, nothing published: trust it and record what it is
        expected = f"sha256:{file_hash(path)}"
        logger.warning("%s: %s publishes no checksum; recorded %s, later uses are checked against it",
                       path, entry.tag, expected)
    ok, got = _matches(path, expected)
    if not ok:
        raise WeightsError(f"{path} does not match the released {entry.tag} (expected {expected}, found {got}): "
                           "the file is damaged or is another file; delete it to download it again")
    _write_marker(path, expected)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` so that processes of one job (DDP ranks) download it once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(url: str, part: Path, desc: str, progress: bool) -> None:
    """Append ``url``'s bytes to ``part``, asking only for what ``part`` lacks (HTTP Range).

    A server that ignores the range (answers 200) is read again from the start.
    """
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "avcorr-weights/1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 (http/https/file by design)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left past what we hold, or a stale part: start again
            part.unlink()
            return _download(url, part, desc, progress)
        raise
    with response:
        status = getattr(response, "status", 200) or 200
        if have and status != 206:
            logger.info("%s: the server does not resume downloads; starting again", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise WeightsError(f"{url}: the connection closed after {part.stat().st_size} of {total} bytes")


def fetch(name: str, progress: bool = True) -> Path:
    """The local path of a released file, downloaded into :func:`cache_dir` if it is not there yet.

    Args:
        name: a tag from :func:`list_pretrained`, or a model name (its default file).
        progress: show a download progress bar.

    Returns:
        The verified file in the cache.

    Raises:
        KeyError: unknown name.
        WeightsError: offline and not cached, a failed download (what was received is kept and the
            next call resumes it), or a hash mismatch. Each message says where to put the file by hand.
    """
    entry = get_weights(name)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / entry.file_name
    by_hand = (f"to install it by hand, download {entry.url} and save it as {dest}"
               + (f" (its {entry.hash.partition(':')[0]} is {entry.hash.partition(':')[2]})" if entry.hash else ""))
    with _locked(dest):
        if dest.is_file():
            verify(dest, entry)
            return dest
        if os.environ.get("AVCORR_OFFLINE", "").strip() not in ("", "0"):
            raise WeightsError(f"{entry.tag} is not in the cache and AVCORR_OFFLINE is set; {by_hand}")
        url = source_url(entry)
        part = dest.with_name(dest.name + ".part")
        logger.info("downloading %s from %s into %s", entry.tag, url, dest)
        start = time.monotonic()
        try:
            _download(url, part, entry.file_name, progress)
        except (urllib.error.URLError, OSError, WeightsError) as e:
            reason = getattr(e, "reason", None) or e
            kept = part.stat().st_size if part.exists() else 0
            resume = f"; {kept} bytes are kept and the next try resumes from there" if kept else ""
            raise WeightsError(f"could not download {entry.tag} from {url}: {reason}{resume}; {by_hand}") from None
        expected = entry.hash
        if expected is not None:
            ok, got = _matches(part, expected)
            if not ok:
                part.unlink()
                raise WeightsError(f"the download of {entry.tag} from {url} does not match its published hash "
                                   f"(expected {expected}, got {got}); it was deleted. {by_hand}")
        else:
            expected = f"sha256:{file_hash(part)}"
            logger.warning("%s: its publisher gives no checksum; recorded %s for later checks", entry.tag, expected)
        move_into_place(part, dest)  # the resumable .part is complete and verified: it becomes the file
        _write_marker(dest, expected)
        logger.info("%s: %d bytes in %.1f s", dest, dest.stat().st_size, time.monotonic() - start)
        return dest


def _zenodo(name: str) -> str:
    return f"https://zenodo.org/record/3987831/files/{urllib.parse.quote(name)}?download=1"


_PANNS = "PANNs (Kong et al. 2020), AudioSet, zenodo.org/record/3987831, CC BY 4.0"
_TORCHVGGISH = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
for _entry in (
    WeightFile("panns_cnn6.audioset", "panns_cnn6", "Cnn6_mAP=0.343.pth", _zenodo("Cnn6_mAP=0.343.pth"),
               "md5:e25e26b84585b14c7754c91e48efc9be", _PANNS),
    WeightFile("panns_cnn10.audioset", "panns_cnn10", "Cnn10_mAP=0.380.pth", _zenodo("Cnn10_mAP=0.380.pth"),
               "md5:bfb1f1f9968938fa8ef4012b8471f5f6", _PANNS),
    WeightFile("panns_cnn14.audioset", "panns_cnn14", "Cnn14_mAP=0.431.pth", _zenodo("Cnn14_mAP=0.431.pth"),
               "md5:541141fa2ee191a88f24a3219fff024e", _PANNS),
    WeightFile("panns_cnn14_16k.audioset", "panns_cnn14_16k", "Cnn14_16k_mAP=0.438.pth",
               _zenodo("Cnn14_16k_mAP=0.438.pth"), None, _PANNS),
    WeightFile("ast_base.audioset", "ast_base", "audioset_10_10_0.4593.pth",
               "https://www.dropbox.com/s/ca0b1v2nlxzyeb4/audioset_10_10_0.4593.pth?dl=1", None,
               "AST (Gong et al. 2021), AudioSet mAP 0.459, github.com/YuanGongND/ast, BSD-3-Clause"),
    WeightFile("vggish.audioset", "vggish", "vggish-10086976.pth", _TORCHVGGISH + "vggish-10086976.pth",
               "sha256-prefix:10086976", "VGGish (Hershey et al. 2017) as ported by torchvggish, Apache-2.0",
               companions={"pca": "vggish.pca"}),
    WeightFile("vggish.pca", "vggish", "vggish_pca_params-970ea276.pth",
               _TORCHVGGISH + "vggish_pca_params-970ea276.pth", "sha256-prefix:970ea276",
               "VGGish PCA parameters as ported by torchvggish, Apache-2.0", default=False),
):
    register_weights(_entry)


def main(argv: list[str] | None = None) -> int:
    """``python -m avcorr.hub list | fetch NAME... | path NAME``."""
    from ._cli import ArgumentParser, add_common_args

    parser = ArgumentParser(prog="python -m avcorr.hub", description="Released weights by name.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the registered files and whether they are in the cache")
    p_fetch = sub.add_parser("fetch", help="download into the cache (resumes; checks the hash)")
    p_fetch.add_argument("names", nargs="+")
    add_common_args(p_fetch, "no_progress")
    p_path = sub.add_parser("path", help="where a file is (or would be) in the cache")
    p_path.add_argument("name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "list":
            for tag in list_pretrained():
                e = _REGISTRY[tag]
                state = "cached" if (cache_dir() / e.file_name).is_file() else "-"
                print(f"{tag:28s} {e.model:18s} {state:7s} {e.hash or 'no published hash'}  {e.source}")
        elif args.command == "fetch":
            for name in args.names:
                print(fetch(name, progress=not args.no_progress))
        else:
            print(cache_dir() / get_weights(args.name).file_name)
    except (KeyError, WeightsError) as e:
        parser.exit(1, f"error: {e.args[0] if isinstance(e, KeyError) else e}\n")
    return 0

