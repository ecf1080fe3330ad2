"""A small FAISS wrapper: inner-product search over L2-normalised embeddings.

Index kinds (``IndexConfig.kind``):

* ``"flat"`` - exact search (``IndexFlatIP``); the default, right for galleries up to ~1e5-1e6.
* ``"ivf"`` - inverted lists (``IndexIVFFlat``): k-means into ``nlist`` cells at training time,
  a query scans the ``nprobe`` closest cells. Needs training on at least ``nlist`` vectors.
* ``"ivfpq"`` - inverted lists with product-quantised codes (``IndexIVFPQ``): ``pq_m`` bytes per
  vector at 8 bits per sub-quantiser, for galleries that do not fit in memory as floats.
* ``"hnsw"`` - a navigable small-world graph (``IndexHNSWFlat``): no training, ``ef_search``
  trades speed for recall at query time.

Vectors are L2-normalised before they are added and searched (``normalize=True``), so scores are
cosine similarities. With ``use_gpu`` (default: when ``faiss`` was built with GPU support and a GPU
is visible) flat and IVF indexes move to GPU 0; HNSW stays on the CPU (FAISS has no GPU HNSW).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path

from ._errors import IndexFormatError, IndexMismatchError

logger = logging.getLogger(__name__)

__all__ = ["INDEX_KINDS", "IndexConfig", "VectorIndex", "faiss_gpu_available", "import_faiss"]

INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")


def import_faiss():
    """The ``faiss`` module, or an ImportError naming the package to install."""
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("retrieval indexes need FAISS: pip install faiss-cpu (or faiss-gpu)") from e
    return faiss


# FAISS computes exhaustive inner products with BLAS only for batches of at least
# ``distance_compute_blas_threshold`` queries; faiss-cpu 1.15 wheels ship 128000 there, which keeps
# every realistic batch on a scalar path that measured 10-13x slower than BLAS on a 2-core machine
# (flat search of 500 queries in 200k x 128: 30 q/s vs 400 q/s). It also decides the IVF coarse
# assignment and k-means training. Searches here run with the historical default of 20.
_BLAS_THRESHOLD = 20


@contextlib.contextmanager
def _blas_threshold(faiss):
    old = faiss.cvar.distance_compute_blas_threshold
    if old > _BLAS_THRESHOLD:
        faiss.cvar.distance_compute_blas_threshold = _BLAS_THRESHOLD
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = old


def faiss_gpu_available() -> bool:
    """Whether this FAISS build has GPU support and sees at least one GPU."""
    faiss = import_faiss()
    return hasattr(faiss, "StandardGpuResources") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


@dataclass
class IndexConfig:
    """How a :class:`VectorIndex` is built and searched.

    Args:
        kind: one of :data:`INDEX_KINDS`.
        nlist: IVF cells; 0 = ``round(4 * sqrt(N))`` of the training set, at most ``N // 39``
            (FAISS wants about 39 training points per cell) and at least 1.
        nprobe: IVF cells scanned per query (search-time knob; more = slower, higher recall).
        pq_m: PQ sub-quantisers (``ivfpq``); must divide the dimension.
        pq_bits: bits per PQ code (``ivfpq``).
        hnsw_m: HNSW neighbours per node.
        ef_construction: HNSW build-time beam width.
        ef_search: HNSW search-time beam width (search-time knob).
        use_gpu: None = GPU when available, True = require one, False = CPU.
    """

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 16
    pq_m: int = 16
    pq_bits: int = 8
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    use_gpu: bool | None = None

    def __post_init__(self):
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {self.kind!r}")
        for name in ("nprobe", "pq_m", "pq_bits", "hnsw_m", "ef_construction", "ef_search"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"IndexConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.nlist < 0:
            raise ValueError(f"IndexConfig.nlist must be >= 0 (0 = automatic), got {self.nlist}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IndexConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown index settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)

    @property
    def needs_training(self) -> bool:
        return self.kind in ("ivf", "ivfpq")


def auto_nlist(n: int) -> int:
    """Default IVF cell count for ``n`` training vectors: ``4 sqrt(n)``, at most ``n // 39``, >= 1."""
    return max(1, min(int(round(4 * math.sqrt(max(n, 1)))), n // 39))


class VectorIndex:
    """One FAISS inner-product index over ``dim``-dimensional vectors.

    Example:
        >>> index = VectorIndex(128, IndexConfig(kind="ivf", nprobe=8))
        >>> index.add(gallery)                 # (N, 128) float; IVF trains on the first add
        >>> scores, ids = index.search(queries, k=10)   # (Q, 10) cosine scores, (Q, 10) positions

    Args:
        dim: vector dimension.
        config: index kind and knobs.
        normalize: L2-normalise vectors before adding and searching.
    """

    def __init__(self, dim: int, config: IndexConfig | None = None, *, normalize: bool = True):
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.config = config or IndexConfig()
        self.normalize = normalize
        if self.config.kind == "ivfpq" and self.dim % self.config.pq_m:
            raise ValueError(f"ivfpq: pq_m={self.config.pq_m} must divide the dimension {self.dim}")
        self._faiss = import_faiss()
        self._index = None  # built on train()/first add (IVF needs its training set to choose nlist)
        self._gpu_res = None
        self._on_gpu = False
        if self.config.kind in ("flat", "hnsw"):
            self._index = self._place(self._build(0))

    # -- construction --------------------------------------------------------------------
    def _build(self, n_train: int):
        faiss, c, d = self._faiss, self.config, self.dim
        ip = faiss.METRIC_INNER_PRODUCT
        if c.kind == "flat":
            return faiss.IndexFlatIP(d)
        if c.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, c.hnsw_m, ip)
            index.hnsw.efConstruction = c.ef_construction
            index.hnsw.efSearch = c.ef_search
            return index
        nlist = c.nlist or auto_nlist(n_train)
        if n_train < nlist:
            raise ValueError(f"{c.kind} with nlist={nlist} needs at least {nlist} training vectors, got {n_train}; "
                             "use kind='flat' for small galleries or a smaller nlist")
        quantizer = faiss.IndexFlatIP(d)
        if c.kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, ip)
        else:
            if n_train < 2 ** c.pq_bits:
                raise ValueError(f"ivfpq with pq_bits={c.pq_bits} needs at least {2 ** c.pq_bits} training vectors, "
                                 f"got {n_train}")
            index = faiss.IndexIVFPQ(quantizer, d, nlist, c.pq_m, c.pq_bits, ip)
        return index  # faiss' Python wrapper keeps the quantizer alive with the index

    def _want_gpu(self) -> bool:
        c = self.config
        if c.use_gpu is False or c.kind == "hnsw":
            if c.use_gpu and c.kind == "hnsw":
                logger.warning("FAISS has no GPU HNSW index; using the CPU")
            return False
        available = faiss_gpu_available()
        if c.use_gpu and not available:
            raise RuntimeError("IndexConfig.use_gpu=True but this FAISS build has no GPU support or sees no GPU "
                               "(install faiss-gpu)")
        return available

    def _place(self, index):
        """Move a CPU index to the GPU when configured and possible."""
        if not self._want_gpu():
            return index
        faiss = self._faiss
        try:
            if self._gpu_res is None:
                self._gpu_res = faiss.StandardGpuResources()
            gpu = faiss.index_cpu_to_gpu(self._gpu_res, 0, index)
        except Exception as e:  # e.g. PQ settings the GPU kernels do not support
            if self.config.use_gpu:
                raise
            logger.warning("could not move the %s index to the GPU (%s); staying on the CPU", self.config.kind, e)
            return index
        self._on_gpu = True
        return gpu

    def _cpu_index(self):
        return self._faiss.index_gpu_to_cpu(self._index) if self._on_gpu else self._index

    # -- properties ----------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Vectors in the index."""
        return 0 if self._index is None else int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        return self._index is not None and bool(self._index.is_trained)

    @property
    def on_gpu(self) -> bool:
        return self._on_gpu

    @property
    def nlist(self) -> int | None:
        """IVF cells of a trained IVF index (None otherwise)."""
        if self._index is None or not self.config.needs_training:
            return None
        return int(getattr(self._index, "nlist", 0)) or None

    def _apply_search_params(self) -> None:
        if self._index is None:
            return
        c = self.config
        if c.needs_training:
            space = self._faiss.GpuParameterSpace() if self._on_gpu else self._faiss.ParameterSpace()
            space.set_index_parameter(self._index, "nprobe", int(c.nprobe))
        elif c.kind == "hnsw":
            self._index.hnsw.efSearch = int(c.ef_search)

    @property
    def nprobe(self) -> int:
        return self.config.nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"nprobe must be >= 1, got {value}")
        self.config.nprobe = int(value)
        self._apply_search_params()

    @property
    def ef_search(self) -> int:
        return self.config.ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"ef_search must be >= 1, got {value}")
        self.config.ef_search = int(value)
        self._apply_search_params()

    # -- data ----------------------------------------------------------------------------
    def _prepare(self, x, what: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise IndexMismatchError(f"{what} must be (N, {self.dim}) for this index, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{what} contain NaN or Inf")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.normalize:
            x = x.copy()
            self._faiss.normalize_L2(x)
        return x

    def train(self, x) -> None:
        """Train an IVF / IVF-PQ index on (N, dim) vectors (no-op for flat and HNSW).

        Raises:
            ValueError: too few vectors for ``nlist`` (or for the PQ codebooks).
        """
        if not self.config.needs_training:
            return
        if self.ntotal:
            raise ValueError("the index already holds vectors; train before adding")
        x = self._prepare(x, "training vectors")
        cpu = self._build(len(x))
        with _blas_threshold(self._faiss):
            cpu.train(x)
        self._index = self._place(cpu)
        self._apply_search_params()
        logger.debug("trained %s index: nlist=%d on %d vectors", self.config.kind, self.nlist or 0, len(x))

    def add(self, x) -> None:
        """Append (N, dim) vectors; their positions are ``ntotal .. ntotal + N - 1``.

        An untrained IVF index is trained on these vectors first.
        """
        x = self._prepare(x, "vectors")
        if len(x) == 0:
            return
        if self._index is None or not self._index.is_trained:
            self.train(x)
        with _blas_threshold(self._faiss):
            self._index.add(x)

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best vectors of every query.

        Args:
            queries: (Q, dim) or (dim,) vectors.
            k: results per query; clamped to ``ntotal``.

        Returns:
            ``(scores, positions)``: float32 (Q, k') inner products, best first, and int64 (Q, k')
            positions in insertion order (``k' = min(k, ntotal)``; approximate indexes may return
            -1 with score -inf where they found fewer than ``k'`` vectors).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = self._prepare(queries, "queries")
        k = min(int(k), self.ntotal)
        if k == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        self._apply_search_params()
        with _blas_threshold(self._faiss):
            scores, ids = self._index.search(q, k)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids.astype(np.int64)

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> str:
        """Write the index (a CPU copy) to ``path`` atomically; return the file's sha256."""
        if self._index is None:
            raise ValueError("cannot save an untrained, empty IVF index")
        with atomic_path(path) as tmp:
            self._faiss.write_index(self._cpu_index(), str(tmp))
            digest = file_sha256(tmp)
        return digest

    @classmethod
    def load(cls, path: str | Path, config: IndexConfig, *, dim: int, normalize: bool = True,
             sha256: str | None = None) -> "VectorIndex":
        """Read an index written by :meth:`save`.

        Args:
            path: the index file.
            config: the settings it was built with (search knobs may differ).
            dim: the dimension the caller expects.
            normalize: as in the constructor.
            sha256: the file's expected checksum (from the index metadata), checked before parsing.

        Raises:
            IndexFormatError: missing, corrupt (checksum or FAISS parse error) or not of ``config.kind``.
            IndexMismatchError: the file's dimension is not ``dim``.
        """
        path = Path(path)
        if not path.is_file():
            raise IndexFormatError(f"{path}: index file missing")
        if sha256 is not None and file_sha256(path) != sha256:
            raise IndexFormatError(f"{path}: checksum does not match the index metadata (corrupt or replaced file); "
                                   "rebuild the index")
        faiss = import_faiss()
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as e:
            raise IndexFormatError(f"{path}: not a readable FAISS index ({str(e).splitlines()[-1][:200]})") from None
        expected = {"flat": "IndexFlat", "ivf": "IndexIVFFlat", "ivfpq": "IndexIVFPQ", "hnsw": "IndexHNSW"}[config.kind]
        if expected not in type(faiss.downcast_index(raw)).__name__:
            raise IndexFormatError(f"{path}: holds a {type(faiss.downcast_index(raw)).__name__}, but the metadata "
                                   f"says kind={config.kind!r}")
        if raw.d != dim:
            raise IndexMismatchError(f"{path}: vectors of dimension {raw.d}, expected {dim}")
        obj = cls.__new__(cls)
        obj.dim, obj.config, obj.normalize = int(dim), config, normalize
        obj._faiss, obj._gpu_res, obj._on_gpu = faiss, None, False
        obj._index = obj._place(raw)
        obj._apply_search_params()
        return obj


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
