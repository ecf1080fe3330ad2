"""Released weights by name (avcorr.hub): downloads from a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch

from avcorr import hub
from avcorr.models import create_model


class _Server:
    """Serves ``files`` (name -> bytes) on 127.0.0.1; optional Range support and a cut-off after N bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.cut_after: int | None = None  # close the connection after this many body bytes (once)
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
                rng = self.headers.get("Range")
                server.requests.append({"name": name, "range": rng})
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and server.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.cut_after is not None:
                    payload, server.cut_after = payload[: server.cut_after], None
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AVCORR_CACHE", str(tmp_path / "cache"))
    for var in ("AVCORR_WEIGHTS_MIRROR", "AVCORR_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache" / "weights"


@pytest.fixture
def entries():
    made: list[str] = []

    def add(**kw) -> hub.WeightFile:
        e = hub.register_weights(hub.WeightFile(**kw), overwrite=True)
        made.append(e.tag)
        return e

    yield add
    for tag in made:
        hub.unregister_weights(tag)


def _blob(n: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_download_verify_then_cached(server, cache, entries):
    data = _blob()
    server.files["w.bin"] = data
    entries(tag="t.one", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin",
            hash="sha256:" + hashlib.sha256(data).hexdigest())
    path = hub.fetch("t.one", progress=False)
    assert path == cache / "w.bin" and path.read_bytes() == data
    assert not list(cache.glob("*.part"))
    n = len(server.requests)
    assert hub.fetch("t.one", progress=False) == path
    assert len(server.requests) == n  # the second use reads the cache, no request


def test_cut_download_resumes_with_range(server, cache, entries):
    data = _blob(500_000, 1)
    server.files["w.bin"] = data
    server.cut_after = 200_000
    entries(tag="t.cut", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin",
            hash="md5:" + hashlib.md5(data).hexdigest())
    with pytest.raises(hub.WeightsError, match=r"200000 bytes are kept.*resumes"):
        hub.fetch("t.cut", progress=False)
    assert (cache / "w.bin.part").stat().st_size == 200_000 and not (cache / "w.bin").exists()
    path = hub.fetch("t.cut", progress=False)
    assert path.read_bytes() == data
    assert server.requests[-1]["range"] == "bytes=200000-"  # only the rest was asked for


def test_server_without_range_support_starts_again(server, cache, entries):
    data = _blob(400_000, 2)
    server.files["w.bin"] = data
    server.ranges = False
    server.cut_after = 100_000
    entries(tag="t.norange", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin",
            hash="sha256:" + hashlib.sha256(data).hexdigest())
    with pytest.raises(hub.WeightsError):
        hub.fetch("t.norange", progress=False)
    assert hub.fetch("t.norange", progress=False).read_bytes() == data  # not the cut part + the whole file


def test_hash_mismatch_deletes_and_says_so(server, cache, entries):
    server.files["w.bin"] = _blob(1000, 3)
    entries(tag="t.bad", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin", hash="sha256:" + "0" * 64)
    with pytest.raises(hub.WeightsError, match=r"does not match its published hash.*expected sha256:0+, got sha256:"):
        hub.fetch("t.bad", progress=False)
    assert not (cache / "w.bin").exists() and not (cache / "w.bin.part").exists()


def test_changed_file_is_caught_before_use(server, cache, entries):
    data = _blob(5000, 4)
    server.files["w.bin"] = data
    entries(tag="t.changed", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin",
            hash="sha256:" + hashlib.sha256(data).hexdigest())
    path = hub.fetch("t.changed", progress=False)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(hub.WeightsError, match=r"w\.bin does not match the released t\.changed"):
        hub.fetch("t.changed", progress=False)


def test_offline_error_says_where_to_put_the_file(server, cache, entries, monkeypatch):
    data = _blob(2000, 5)
    entries(tag="t.offline", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin",
            hash="sha256:" + hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("AVCORR_OFFLINE", "1")
    with pytest.raises(hub.WeightsError, match=r"AVCORR_OFFLINE.*save it as .*w\.bin") as err:
        hub.fetch("t.offline", progress=False)
    assert hashlib.sha256(data).hexdigest() in str(err.value)
    assert server.requests == []
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "w.bin").write_bytes(data)  # placed by hand
    assert hub.fetch("t.offline", progress=False).read_bytes() == data


def test_unreachable_server_is_a_clear_error(cache, entries):
    entries(tag="t.down", model="test_panns", file_name="w.bin", url="http://127.0.0.1:9/w.bin", hash=None)
    with pytest.raises(hub.WeightsError, match=r"could not download t\.down from http://127\.0\.0\.1:9/w\.bin"):
        hub.fetch("t.down", progress=False)


def test_mirror_replaces_the_public_url(server, cache, entries, monkeypatch, tmp_path):
    data = _blob(3000, 6)
    server.files["mirror/w name.bin"] = data
    entries(tag="t.mirror", model="test_panns", file_name="w name.bin", url="http://127.0.0.1:9/never",
            hash="sha256:" + hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("AVCORR_WEIGHTS_MIRROR", f"{server.base}/mirror/")
    assert hub.fetch("t.mirror", progress=False).read_bytes() == data
    assert server.requests[-1]["name"] == "mirror/w name.bin"
    folder = tmp_path / "local_mirror"  # a folder works as a mirror too
    folder.mkdir()
    (folder / "w name.bin").write_bytes(data)
    (cache / "w name.bin").unlink()
    monkeypatch.setenv("AVCORR_WEIGHTS_MIRROR", str(folder))
    assert hub.fetch("t.mirror", progress=False).read_bytes() == data


def test_unpublished_hash_is_recorded_at_download(server, cache, entries):
    data = _blob(4000, 7)
    server.files["w.bin"] = data
    entries(tag="t.nohash", model="test_panns", file_name="w.bin", url=f"{server.base}/w.bin", hash=None)
    path = hub.fetch("t.nohash", progress=False)
    marker = json.loads((cache / "w.bin.verified.json").read_text())
    assert marker["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    path.write_bytes(b"x" + data[1:])
    with pytest.raises(hub.WeightsError, match="does not match"):
        hub.fetch("t.nohash", progress=False)


def test_create_model_pretrained_loads_the_released_file(server, cache, entries):
    torch.manual_seed(0)
    released = create_model("test_panns", num_classes=5)
    buf = Path(cache.parent / "src.pth")
    buf.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": released.state_dict()}, buf)  # the PANNs release layout
    data = buf.read_bytes()
    server.files["panns.pth"] = data
    entries(tag="test_panns.toy", model="test_panns", file_name="panns.pth", url=f"{server.base}/panns.pth",
            hash="sha256-prefix:" + hashlib.sha256(data).hexdigest()[:8])
    torch.manual_seed(1)
    model = create_model("test_panns", num_classes=5, pretrained=True)
    for k, v in released.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="for 'test_panns', not 'test_ast'"):
        create_model("test_ast", pretrained="test_panns.toy")
    with pytest.raises(ValueError, match="no released weights named 'test_vggish'"):
        create_model("test_vggish", pretrained=True)
    with pytest.raises(ValueError, match="not both"):
        create_model("test_panns", checkpoint_path=buf, pretrained=True)


def test_companion_file_sets_vggish_pca(server, cache, entries, tmp_path):
    torch.manual_seed(0)
    net = create_model("test_vggish")
    torch.save(net.state_dict(), tmp_path / "v.pth")
    rng = np.random.default_rng(0)
    vecs, means = rng.normal(size=(128, 128)).astype(np.float32), rng.normal(size=(128, 1)).astype(np.float32)
    torch.save({"pca_eigen_vectors": vecs, "pca_means": means}, tmp_path / "pca.pth")  # torchvggish's layout
    for name in ("v.pth", "pca.pth"):
        server.files[name] = (tmp_path / name).read_bytes()
    entries(tag="test_vggish.pca", model="test_vggish", file_name="pca.pth", url=f"{server.base}/pca.pth",
            hash=None, default=False)
    entries(tag="test_vggish.toy", model="test_vggish", file_name="v.pth", url=f"{server.base}/v.pth",
            hash=None, companions={"pca": "test_vggish.pca"})
    model = create_model("test_vggish", pretrained=True)
    assert model.postprocessor is not None
    assert np.allclose(model.postprocessor.eigen_vectors.numpy(), vecs)
    assert np.allclose(model.postprocessor.means.numpy(), means.ravel())


def test_builtin_registry_is_well_formed():
    import avcorr.models as models

    tags = hub.list_pretrained()
    for model in ("panns_cnn6", "panns_cnn10", "panns_cnn14", "ast_base", "vggish"):
        entry = hub.get_weights(model)
        assert entry.model == model and models.is_model(model)
        assert entry.url.startswith("https://")
        for tag in entry.companions.values():
            assert tag in tags
    assert hub.get_weights("panns_cnn14").hash == "md5:541141fa2ee191a88f24a3219fff024e"
    with pytest.raises(ValueError, match="hash must be"):
        hub.WeightFile(tag="x", model="x", file_name="f", url="u", hash="crc:12")


def test_cli_list_and_offline_fetch(cache, monkeypatch, capsys):
    assert hub.main(["list"]) == 0
    assert "panns_cnn14.audioset" in capsys.readouterr().out
    monkeypatch.setenv("AVCORR_OFFLINE", "1")
    with pytest.raises(SystemExit) as e:
        hub.main(["fetch", "vggish", "--no-progress"])
    assert e.value.code == 1
    assert "save it as" in capsys.readouterr().err


RELEASED = ["ast_base.audioset", "panns_cnn10.audioset", "panns_cnn14.audioset", "panns_cnn14_16k.audioset",
            "panns_cnn6.audioset", "vggish.audioset", "vggish.pca"]


def test_cli_help_and_list_do_not_import_torch(tmp_path):
    """``python -m avcorr.hub --help`` and ``list`` read the registry without loading the models (or torch),
    and list the same released files the models load."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    code = ("import runpy, sys\n"
            "for argv in (['--help'], ['list']):\n"
            "    print('=== ' + ' '.join(argv), flush=True)\n"
            "    sys.argv = ['avcorr.hub', *argv]\n"
            "    try:\n"
            "        runpy.run_module('avcorr.hub', run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as e:\n"
            "        assert not e.code, e.code\n"
            "print('torch' in sys.modules, 'avcorr.models' in sys.modules, file=sys.stderr)\n")
    env = {**os.environ, "PYTHONPATH": str(repo), "AVCORR_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True, env=env)
    assert proc.stderr.strip().splitlines()[-1] == "False False"
    help_text, listing = proc.stdout.split("=== --help\n")[1].split("=== list\n")
    assert help_text.startswith("usage: python -m avcorr.hub") and "fetch" in help_text
    listed = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert listed == RELEASED
    assert hub.list_pretrained() == RELEASED


def test_models_hub_and_cli_share_one_registry(entries):
    """The names importable from avcorr.models.hub and avcorr.hub are the same objects, over one registry."""
    import avcorr.models.hub as models_hub

    for name in hub.__all__:
        assert getattr(models_hub, name) is getattr(hub, name), name
    entries(tag="t.shared", model="m", file_name="f.pth", url="https://example.invalid/f.pth", hash=None)
    assert "t.shared" in models_hub.list_pretrained()
