"""Cross-modal retrieval: FAISS indexes over audio and visual clip embeddings.

* :class:`VectorIndex` - one FAISS inner-product index (flat / IVF / IVF-PQ / HNSW, GPU when
  available) with ``nprobe`` / ``ef_search`` knobs, save / load.
* :class:`RetrievalIndex` - the audio and visual indexes of a set of clips, with their ids,
  labels, media paths and the model fingerprint; saved as a folder, refused when queried by
  another model.
* :func:`encode_clips` - pooled per-clip embeddings from a model and a clip loader, and the cells of
  every frame for a model that matches a sound to a frame's best cell (:func:`scores_by_cells`).
* :func:`max_sim_search` - exact top-k of clips made of several vectors (frames x cells) over one
  FAISS index: the best cell of each frame, pooled over the frames.

This package takes embeddings and models as given objects; it imports neither :mod:`avcorr.models`
nor :mod:`avcorr.data`. The command line is :mod:`avcorr.retrieve`; metrics are in
:mod:`avcorr.metrics.retrieval`.
"""

from ._embed import POOLINGS, ClipEmbeddings, encode_clips, pool_embeddings, scores_by_cells
from ._errors import IndexFormatError, IndexMismatchError
from ._faiss import INDEX_KINDS, IndexConfig, VectorIndex, faiss_gpu_available, import_faiss
from ._multivector import max_sim_search
from ._store import CELLS, COMPAT_KEYS, META_FILE, MODALITIES, Hit, RetrievalIndex, merge_sources

__all__ = [
    "CELLS",
    "COMPAT_KEYS",
    "INDEX_KINDS",
    "META_FILE",
    "MODALITIES",
    "POOLINGS",
    "ClipEmbeddings",
    "Hit",
    "IndexConfig",
    "IndexFormatError",
    "IndexMismatchError",
    "RetrievalIndex",
    "VectorIndex",
    "encode_clips",
    "faiss_gpu_available",
    "import_faiss",
    "max_sim_search",
    "merge_sources",
    "pool_embeddings",
    "scores_by_cells",
]
