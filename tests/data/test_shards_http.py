"""Shards served over HTTP on 127.0.0.1, read by two DDP processes (gloo): disjoint clips, the whole epoch."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avcorr.data.layout import load_split
from avcorr.data.shard_writer import ShardOptions
from avcorr.data.shards import ShardDataset, ShardError, iter_shard, read_manifest
from data_tools import make_shards as ms


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture()
def served(tiny_root, tmp_path):
    """The tiny train split as 4 shards (3 clips each), served at http://127.0.0.1:PORT/train."""
    ms.shard_split(load_split(tiny_root, "train"), tmp_path, ShardOptions(frames_per_clip=1, size=16, sample_rate=8000),
                   clips_per_shard=3)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/train", tmp_path / "train"
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vid(sample: dict) -> str:
    return sample["vid"]


def _read_as_rank(rank: int, world_size: int, url: str, store: str, out: str) -> None:
    torch.set_num_threads(1)
    # a file store: no TCP store server thread in rank 0 to outlive (a rare SIGABRT at exit under load)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        seen = {}
        ds = ShardDataset.from_manifest(url, shuffle=4, seed=2, transform=_vid)  # rank from the group
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        for epoch in (0, 1):
            ds.set_epoch(epoch)
            seen[epoch] = list(loader)
        Path(out, f"rank{rank}.json").write_text(json.dumps({"rank": ds.rank, "world": ds.world_size, "seen": seen}))
        dist.barrier()  # no rank leaves while another is still in a collective
    finally:
        dist.destroy_process_group()


def test_http_shards_read_back(served):
    url, folder = served
    local = [s["vid"] for e in read_manifest(folder)["shards"] for s in iter_shard(folder / e["name"])]
    assert [s["vid"] for s in ShardDataset.from_manifest(url)] == local
    with pytest.raises(ShardError, match="no manifest"):
        read_manifest(url + "/nothing-here")
    with pytest.raises(ShardError, match="no such shard"):
        list(iter_shard(url + "/shard-999999.tar"))


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_gloo_ranks_read_disjoint_clips_over_http(served, tmp_path):
    url, folder = served
    vids = sorted(v for e in read_manifest(folder)["shards"] for v in e["clips"])
    out = tmp_path / "seen"
    out.mkdir()
    mp.spawn(_read_as_rank, args=(2, url, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    for epoch in ("0", "1"):
        parts = [r["seen"][epoch] for r in results]
        assert all(parts) and not set(parts[0]) & set(parts[1])  # disjoint
        assert sorted(parts[0] + parts[1]) == vids  # every clip once
    assert results[0]["seen"]["0"] != results[0]["seen"]["1"] or results[1]["seen"]["0"] != results[1]["seen"]["1"]
