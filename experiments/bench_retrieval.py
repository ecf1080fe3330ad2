"""Benchmark of avcorr.retrieval's FAISS indexes against a numpy brute force, in the same run.

Run from the repository root (the data are generated; nothing is downloaded)::

    python -m experiments.bench_retrieval                 # 1M x 128: ~6 min on 2 busy CPU cores
    python -m experiments.bench_retrieval --n 100000      # smaller gallery, about a minute
    python -m experiments.bench_retrieval --hnsw-datasets clustered,random   # + HNSW on random (+5 min)

Two galleries of L2-normalised vectors: ``random`` (uniform on the sphere: no structure, the worst
case for IVF and HNSW) and ``clustered`` (``--clusters`` unit centres plus Gaussian noise of norm
about ``--noise``, then re-normalised: the structure real embeddings of many classes have).
Queries are new draws from the same distribution. Every method answers the same ``--queries``
queries in one batch with ``--threads`` threads; "speed-up" is its queries/s over the numpy brute
force (a BLAS matrix product in chunks + ``argpartition``), and "recall@10" is the fraction of the
exact top 10 it returns. IVF trains on a random sample of ``--train`` vectors. Most of the full
run is the HNSW build (about 4-5 minutes for 1M vectors on 2 busy cores), so HNSW is built for
the clustered set only unless ``--hnsw-datasets`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="gallery size (default 1M)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="BLAS and FAISS threads")
    p.add_argument("--datasets", default="clustered,random")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--noise", type=float, default=0.6, help="noise norm around a cluster centre (unit)")
    p.add_argument("--kinds", default="flat,ivf,hnsw")
    p.add_argument("--hnsw-datasets", default="clustered",
                   help="datasets HNSW is built for (its 1M build is most of the run time; on random data "
                        "its recall stays low at any affordable setting)")
    p.add_argument("--nlist", type=int, default=0, help="IVF cells (0 = 1024 for >= 500k vectors, else 4 sqrt(N))")
    p.add_argument("--train", type=int, default=50_000, help="IVF training sample")
    p.add_argument("--nprobe", default="1,2,4,8,16,32")
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--ef-search", default="16,32,64,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:  # thread counts must be set before numpy / faiss start their pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

try:
    from avcorr.retrieval import IndexConfig, VectorIndex, import_faiss  # noqa: E402
except ImportError as exc:  # pragma: no cover - depends on how it is launched
    raise SystemExit(f"{exc}: run this from the repository root as `python -m experiments.bench_retrieval`") from exc


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_data(kind: str, n: int, n_queries: int, dim: int, clusters: int, noise: float, seed: int):
    """(gallery (n, dim), queries (n_queries, dim)) float32, unit norm."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return (_unit(rng.standard_normal((n, dim), dtype=np.float32)),
                _unit(rng.standard_normal((n_queries, dim), dtype=np.float32)))
    if kind != "clustered":
        raise ValueError(f"unknown dataset {kind!r}")
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))

    def draw(m):
        x = rng.standard_normal((m, dim), dtype=np.float32)
        x *= noise / np.sqrt(dim)
        x += centres[rng.integers(0, clusters, m)]
        return _unit(x)

    return draw(n), draw(n_queries)


def brute_force(x: np.ndarray, q: np.ndarray, k: int, chunk: int = 64) -> tuple[np.ndarray, float]:
    """Exact top-k by numpy: (ids (Q, k), seconds)."""
    t0 = time.perf_counter()
    out = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), chunk):
        sc = q[s:s + chunk] @ x.T
        top = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sc, top, 1), axis=1)
        out[s:s + chunk] = np.take_along_axis(top, order, 1)
    return out, time.perf_counter() - t0


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / k for f, e in zip(found, exact)]))


def _timed_search(index: VectorIndex, q: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    index.search(q[:8], k)  # warm up
    t0 = time.perf_counter()
    _, ids = index.search(q, k)
    return ids, time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    faiss = import_faiss()
    faiss.omp_set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for ds in [d for d in args.datasets.split(",") if d]:
        t0 = time.perf_counter()
        x, q = make_data(ds, args.n, args.queries, args.dim, args.clusters, args.noise, args.seed)
        print(f"\n== {ds}: {args.n} x {args.dim} gallery, {len(q)} queries (made in {time.perf_counter() - t0:.1f} s)")
        exact, t_bf = brute_force(x, q, args.k)
        qps_bf = len(q) / t_bf
        rows.append({"dataset": ds, "method": "numpy brute force", "params": "", "build_s": 0.0, "qps": qps_bf,
                     "speedup": 1.0, "recall": 1.0})
        _print(rows[-1])
        rng = np.random.default_rng(args.seed + 1)
        for kind in [k for k in args.kinds.split(",") if k]:
            t0 = time.perf_counter()
            if kind == "flat":
                index = VectorIndex(args.dim, IndexConfig(kind="flat", use_gpu=False))
                index.add(x)
                sweep = [("", None)]
            elif kind == "ivf":
                nlist = args.nlist or (1024 if args.n >= 500_000 else max(1, int(4 * args.n ** 0.5)))
                index = VectorIndex(args.dim, IndexConfig(kind="ivf", nlist=nlist, use_gpu=False))
                sample = x[rng.choice(args.n, size=min(args.n, max(args.train, nlist * 39)), replace=False)]
                index.train(sample)
                index.add(x)
                sweep = [(f"nlist={nlist} nprobe={p}", ("nprobe", int(p))) for p in args.nprobe.split(",")]
            elif kind == "hnsw":
                if ds not in args.hnsw_datasets.split(","):
                    continue
                index = VectorIndex(args.dim, IndexConfig(kind="hnsw", hnsw_m=args.hnsw_m,
                                                          ef_construction=args.ef_construction, use_gpu=False))
                index.add(x)
                sweep = [(f"M={args.hnsw_m} efSearch={e}", ("ef_search", int(e))) for e in args.ef_search.split(",")]
            else:
                raise SystemExit(f"unknown index kind {kind!r}")
            build = time.perf_counter() - t0
            for params, knob in sweep:
                if knob is not None:
                    setattr(index, knob[0], knob[1])
                ids, t = _timed_search(index, q, args.k)
                row = {"dataset": ds, "method": f"faiss {kind}", "params": params, "build_s": build,
                       "qps": len(q) / t, "speedup": (len(q) / t) / qps_bf, "recall": recall(ids, exact)}
                rows.append(row)
                _print(row)
            del index
        best = [r for r in rows if r["dataset"] == ds and r["recall"] >= 0.95 and r["method"] != "numpy brute force"]
        if best:
            b = max(best, key=lambda r: r["speedup"])
            print(f"-> fastest at recall@{args.k} >= 0.95 on {ds}: {b['method']} {b['params']}: "
                  f"{b['speedup']:.0f}x the brute force (recall {b['recall']:.3f})")
        else:
            print(f"-> nothing reached recall@{args.k} >= 0.95 on {ds}")
        del x, q
    return rows


def _print(r: dict[str, Any]) -> None:
    print(f"  {r['method']:<18} {r['params']:<24} build {r['build_s']:7.1f} s  {r['qps']:10.0f} q/s  "
          f"x{r['speedup']:7.1f}  recall@10 {r['recall']:.3f}", flush=True)


def main(args: argparse.Namespace) -> int:
    faiss = import_faiss()
    print(f"bench_retrieval: numpy {np.__version__}, faiss {faiss.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    t0 = time.perf_counter()
    rows = run(args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
