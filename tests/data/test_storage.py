"""Which reader a data root needs (avcorr.data.storage): detection, a storage asked of the wrong root, the splits
of a shard root read from its manifests (over http too), and the report's default split of a shard run."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from avcorr.data.storage import detect_storage, require_files, resolve_storage, shard_splits
from avcorr.report._gallery import _default_split


def _shard_root(root, splits):
    """A make_shards output with a manifest (no shard) for each of ``splits``."""
    for split in splits:
        (root / split).mkdir(parents=True)
        (root / split / "manifest.json").write_text(json.dumps({"shards": [], "num_clips": 0}))
    return root


def _layout_root(root):
    (root / "test").mkdir(parents=True)
    (root / "test" / "vid2genre.json").write_text("{}")
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def served(tmp_path):
    """``tmp_path`` served at http://127.0.0.1:PORT."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_detects_shards_by_a_split_manifest_and_urls(tmp_path):
    shards = _shard_root(tmp_path / "shards", ["val"])  # a test split is not needed to be shards
    assert detect_storage(shards) == detect_storage(str(shards)) == "shards"
    assert detect_storage(_layout_root(tmp_path / "layout")) == "files"
    assert detect_storage(tmp_path / "empty") == "files"  # not there: files (their reader names what is missing)
    assert detect_storage("") == detect_storage(None) == "files"  # the embedded dataset
    assert detect_storage("https://example.org/shards") == detect_storage("s3://bucket/shards") == "shards"
    (tmp_path / "unfinished" / "test").mkdir(parents=True)
    (tmp_path / "unfinished" / "test" / "shard-000000.tar").write_bytes(b"")  # no manifest yet: not shards
    assert detect_storage(tmp_path / "unfinished") == "files"


def test_a_storage_that_does_not_fit_the_root_names_the_path_and_what_was_expected(tmp_path):
    shards, layout = _shard_root(tmp_path / "shards", ["test"]), _layout_root(tmp_path / "layout")
    assert resolve_storage(shards) == resolve_storage(shards, "shards") == "shards"
    assert resolve_storage(layout) == resolve_storage(layout, "files") == "files"
    with pytest.raises(ValueError, match="expects the output of python -m data_tools.make_shards") as e:
        resolve_storage(layout, "shards", "test")
    assert str(layout / "test" / "manifest.json") in str(e.value) and "dataset folder in the layout" in str(e.value)
    with pytest.raises(ValueError, match="storage 'files' expects a dataset folder in the layout") as e:
        resolve_storage(shards, "files", "val")
    assert str(e.value).startswith(str(shards)) and str(shards / "val" / "vid2genre.json") in str(e.value)
    with pytest.raises(ValueError, match="a URL is read as shards"):
        resolve_storage("https://example.org/shards", "files")
    with pytest.raises(ValueError, match="needs a data root"):
        resolve_storage("", "shards")
    with pytest.raises(ValueError, match="must be one of files, shards"):
        resolve_storage(layout, "tar")


def test_require_files_stops_a_files_reader_given_shards(tmp_path):
    shards = _shard_root(tmp_path / "shards", ["test"])
    require_files(_layout_root(tmp_path / "layout"), "localize --grid")  # files: nothing said
    with pytest.raises(ValueError, match=r"localize --grid reads clip files: pass --data ROOT") as e:
        require_files(shards, "localize --grid")
    assert str(e.value).startswith(str(shards))


def test_shard_splits_and_the_reports_default_split_read_the_manifests_over_http(tmp_path, served):
    _shard_root(tmp_path / "both", ["val", "test"])
    _shard_root(tmp_path / "valonly", ["train", "val"])
    (tmp_path / "valonly" / "test").mkdir()  # a test folder without a manifest (unfinished) has no test split
    assert shard_splits(tmp_path / "both") == ["val", "test"]
    assert shard_splits(f"{served}/valonly") == ["train", "val"]
    assert shard_splits(f"{served}/nothing") == []
    for where in (str(tmp_path / "both"), f"{served}/both"):
        assert _default_split({"task": "avc", "data": {"root": where, "storage": "shards"}}) == "test"
    for where in (str(tmp_path / "valonly"), f"{served}/valonly"):
        assert _default_split({"task": "avc", "data": {"root": where, "storage": "shards"}}) == "val"
