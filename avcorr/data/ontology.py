"""The AudioSet ontology (``ROOT/ontology.json``) and graded relevance between labels.

``ontology.json`` is the file published with AudioSet: a JSON list of classes, each an object with
``id`` (the mid, e.g. ``"/m/042v_gx"``), ``name`` (the display name, e.g. ``"Acoustic guitar"``) and
``child_ids`` (mids of its sub-classes); other fields (``description``, ``restrictions`` ...) are
ignored. The graph is a DAG (a few classes have two parents).

Tree distance and graded relevance (used for the graded nDCG of cross-modal retrieval):

* ``distance(a, b)`` is the number of parent-child edges on the shortest path between the two
  classes, the graph taken as undirected and the top-level classes joined under one virtual root.
  Identical classes are at 0, siblings at 2, a class and its parent at 1, and two classes under
  different top-level categories at ``depth(a) + depth(b)`` (depth of a top-level class = 1).
* ``relevance(a, b) = max(0, D - distance(a, b))`` where ``D`` is the largest distance between two
  classes of the dataset's class list, so an identical label gets ``D`` and the two most distant
  classes of the dataset get 0. This is the "max tree distance minus distance" convention of the
  public AVE-Net retrieval evaluations; it is normalised per dataset, so nDCG values are
  comparable between models on one dataset, not between datasets.
* Items with several labels take the best pair (smallest distance). A label absent from the
  ontology is relevant (``D``) only to itself.

Example:
    >>> onto = Ontology.load("data/audioset/ontology.json")
    >>> onto.distance("Violin, fiddle", "Cello")
    2
    >>> table = label_relevance(onto, ["Violin, fiddle", "Cello", "Dog"])
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import LayoutError

logger = logging.getLogger(__name__)

__all__ = ["Ontology", "OntologyClass", "label_relevance", "load_ontology"]

ONTOLOGY_FILE = "ontology.json"
_ROOT = "\0root"  # the virtual root joining the top-level classes (never a real mid)


@dataclass(frozen=True)
class OntologyClass:
    """One class of the ontology.

    Args:
        id: the mid.
        name: the display name.
        child_ids: mids of the direct sub-classes.
    """

    id: str
    name: str
    child_ids: tuple[str, ...] = ()


@dataclass
class Ontology:
    """An AudioSet-style class graph.

    Args:
        classes: mid -> class.
        path: the file it was read from (for messages).
    """

    classes: dict[str, OntologyClass]
    path: str = ""
    _adjacency: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _by_name: dict[str, str] = field(default_factory=dict, repr=False)
    _dist_cache: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        adj: dict[str, set[str]] = {mid: set() for mid in self.classes}
        has_parent: set[str] = set()
        for mid, c in self.classes.items():
            for child in c.child_ids:
                if child not in self.classes:
                    logger.warning("%s: class %s lists unknown child id %r; edge ignored", self.path or "ontology",
                                   mid, child)
                    continue
                adj[mid].add(child)
                adj[child].add(mid)
                has_parent.add(child)
        adj[_ROOT] = {mid for mid in self.classes if mid not in has_parent}
        for mid in adj[_ROOT]:
            adj[mid].add(_ROOT)
        self._adjacency = adj
        by_name: dict[str, str] = {}
        for mid, c in self.classes.items():
            by_name.setdefault(c.name, mid)
            by_name.setdefault(c.name.casefold(), mid)
        self._by_name = by_name

    @classmethod
    def load(cls, path: str | Path) -> "Ontology":
        """Read an ``ontology.json``.

        Raises:
            FileNotFoundError: no such file.
            LayoutError: naming the file, when it is not valid JSON, not a list of objects with
                string ``id`` / ``name`` and a list ``child_ids``, or repeats an id.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ontology not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise LayoutError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise LayoutError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        if not isinstance(data, list):
            raise LayoutError(f"{path}: expected a JSON list of classes [{{id, name, child_ids}}, ...]")
        classes: dict[str, OntologyClass] = {}
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise LayoutError(f"{path}: entry {i} is not an object")
            mid, name, children = entry.get("id"), entry.get("name"), entry.get("child_ids", [])
            if not isinstance(mid, str) or not mid or not isinstance(name, str) or not name:
                raise LayoutError(f"{path}: entry {i} needs a non-empty string 'id' and 'name'")
            if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
                raise LayoutError(f"{path}: class {mid!r}: 'child_ids' must be a list of ids")
            if mid in classes:
                raise LayoutError(f"{path}: id {mid!r} appears more than once")
            classes[mid] = OntologyClass(mid, name, tuple(children))
        return cls(classes, str(path))

    def resolve(self, label: str) -> str | None:
        """The mid of a label given as a mid or a display name (exact, then case-insensitive)."""
        if label in self.classes:
            return label
        return self._by_name.get(label, self._by_name.get(label.casefold()))

    def depth(self, label: str) -> int | None:
        """Edges from the virtual root (a top-level class has depth 1); None for an unknown label."""
        mid = self.resolve(label)
        return None if mid is None else self._distances(_ROOT)[mid]

    def _distances(self, source: str) -> dict[str, int]:
        """Breadth-first distances from ``source`` to every node (cached)."""
        dist = self._dist_cache.get(source)
        if dist is None:
            dist = {source: 0}
            queue = deque([source])
            while queue:
                u = queue.popleft()
                for v in self._adjacency[u]:
                    if v not in dist:
                        dist[v] = dist[u] + 1
                        queue.append(v)
            self._dist_cache[source] = dist
        return dist

    def distance(self, a: str, b: str) -> int | None:
        """Tree distance between two labels (mids or display names); None when either is unknown."""
        ma, mb = self.resolve(a), self.resolve(b)
        if ma is None or mb is None:
            return None
        return self._distances(ma)[mb]


def load_ontology(root: str | Path) -> Ontology | None:
    """``ROOT/ontology.json`` when the dataset root has one, else None."""
    path = Path(root) / ONTOLOGY_FILE
    return Ontology.load(path) if path.is_file() else None


def label_relevance(ontology: Ontology, labels: Iterable[str]) -> tuple[dict[tuple[str, str], float], int]:
    """Graded relevance of every ordered pair of ``labels``: ``max(0, D - distance)``.

    Args:
        ontology: the class graph.
        labels: the dataset's class labels (display names or mids).

    Returns:
        ``({(a, b): relevance}, D)`` with ``D`` the largest distance between two known labels
        (at least 1). Pairs with an unknown label get ``D`` when ``a == b`` and 0 otherwise.
    """
    labels = list(dict.fromkeys(labels))
    unknown = [lab for lab in labels if ontology.resolve(lab) is None]
    if unknown:
        logger.warning("%s: %d label(s) not in the ontology (relevant only to themselves), e.g. %s",
                       ontology.path or "ontology", len(unknown), ", ".join(repr(u) for u in unknown[:5]))
    dist: dict[tuple[str, str], int | None] = {(a, b): ontology.distance(a, b) for a in labels for b in labels}
    d_max = max([d for d in dist.values() if d is not None] + [1])
    table = {}
    for (a, b), d in dist.items():
        if d is None:
            table[(a, b)] = float(d_max) if a == b else 0.0
        else:
            table[(a, b)] = float(max(0, d_max - d))
    return table, d_max

