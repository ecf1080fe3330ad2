"""The records every data format is read into: one :class:`Clip`, one :class:`LabelSpace`, one :class:`Manifest`.

Each reader (the vid2genre layout's :func:`~avcorr.data.layout.load_split`, and the tagging formats of
:mod:`avcorr.data.tagging`: a folder per class, PANNs HDF5 packs, AST json datafiles) describes a
clip with the same :class:`Clip`: its id, its labels as class display names, where its media are
(files, or a row of an HDF5 pack) and its position in the source file. Labels become indices only
through a :class:`LabelSpace`, the class list the clips are indexed against (a split's own, or a
checkpoint's), so every format maps names to indices the same way.

Example:
    >>> space = LabelSpace(["Dog", "Cat"], multilabel=True)
    >>> clip = Clip("a1", ("Cat", "Dog"), None, Path("/data/a1.wav"))
    >>> space.indices(clip.labels), clip.media
    ((1, 0), PosixPath('/data/a1.wav'))
    >>> space.multi_hot([clip])
    array([[ True,  True]])
"""

from __future__ import annotations

import os
from dataclasses import InitVar, dataclass, field
from pathlib import Path, PurePath
from typing import Iterable, Sequence

import numpy as np

from .errors import LayoutError

__all__ = ["Box", "ClassLabel", "Clip", "LabelSpace", "Manifest"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ClassLabel:
    """One row of ``class_labels_indices.csv``.

    Args:
        index: the csv's ``index`` column.
        mid: the machine id, e.g. ``"/m/07y_7"``.
        display_name: the human-readable name, e.g. ``"Violin, fiddle"``.
    """

    index: int
    mid: str
    display_name: str


def _path_str(path: str | os.PathLike[str] | None) -> str | None:
    """``path`` as the string of its normalised :class:`~pathlib.Path` (None stays None)."""
    if path is None:
        return None
    return str(path) if isinstance(path, PurePath) else str(Path(path))


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Clip:
    """One clip, whatever format it was read from.

    Where its media are: ``video`` and ``audio`` (absolute paths) for file-based formats: the
    vid2genre layout fills both when both exist; a tagging format that lists one file per clip (a
    folder per class, an AST json) puts it in ``video`` when its extension is a video one
    (:data:`~avcorr.data.layout.VIDEO_EXTENSIONS`), else in ``audio``. A clip of a PANNs HDF5 pack
    has no file: ``h5`` names the pack and the row. :attr:`media` is the one file a sound-only
    reader decodes.

    A dataset holds one Clip per entry (about 2 M for AudioSet) in every process and DataLoader
    worker, so a Clip is slotted and keeps its paths as strings: ``video``, ``audio`` and ``media``
    build their :class:`~pathlib.Path` when read. Clips compare and hash by value.

    ``dataclasses.replace(clip, labels=..., video=...)`` makes a changed copy (``video=None`` drops the
    file): ``video`` and ``audio`` are init-only arguments (``InitVar``), read back through their properties.

    Args:
        vid: the clip id (a YouTube-like id, a file's path relative to its class tree, or a pack's
            ``audio_name``; for messages and outputs).
        labels: class display names (mids mapped through the class csv), each once.
        video: absolute path of the video file (a Path or a string), or None.
        audio: absolute path of the audio file (a Path or a string), or None.
        boxes: boxes of the sounding object(s), each ``(x1, y1, x2, y2)`` normalized to [0, 1].
        h5: ``(pack file, row)`` for a clip stored in an HDF5 waveform pack, else None.
        row: position of the clip's entry in its source file (json entry, HDF5 row); -1 where the
            source has no order (layout, folders). AST weight files are indexed by it.
    """

    # slots by hand: dataclass(slots=True) makes a second class, whose frozen __setattr__ then fails
    # with a TypeError (not FrozenInstanceError) on a name that is not a field, such as ``video``
    __slots__ = ("vid", "labels", "_video", "_audio", "boxes", "h5", "row")
    __match_args__ = ("vid", "labels", "video", "audio", "boxes", "h5", "row")  # the constructor's arguments

    vid: str
    labels: tuple[str, ...]
    # init-only: kept as the strings ``_video`` / ``_audio`` (slots, not fields) and read back as Paths through the
    # properties below, which dataclasses.replace takes as the InitVars' defaults (and so copies)
    video: InitVar[str | os.PathLike[str] | None]
    audio: InitVar[str | os.PathLike[str] | None]
    boxes: tuple[Box, ...]
    h5: tuple[str, int] | None
    row: int

    def __init__(self, vid: str, labels: tuple[str, ...], video: str | os.PathLike[str] | None = None,
                 audio: str | os.PathLike[str] | None = None, boxes: tuple[Box, ...] = (),
                 h5: tuple[str, int] | None = None, row: int = -1) -> None:
        put = object.__setattr__  # frozen
        put(self, "vid", vid)
        put(self, "labels", labels)
        put(self, "_video", _path_str(video))
        put(self, "_audio", _path_str(audio))
        put(self, "boxes", boxes)
        put(self, "h5", h5)
        put(self, "row", row)

    @property
    def video(self) -> Path | None:
        """Absolute path of the video file, or None."""
        return None if self._video is None else Path(self._video)

    @property
    def audio(self) -> Path | None:
        """Absolute path of the audio file, or None."""
        return None if self._audio is None else Path(self._audio)

    @property
    def media(self) -> Path | None:
        """The file to read the clip's sound from: ``audio``, else ``video`` (its audio track), else None."""
        path = self._audio if self._audio is not None else self._video
        return None if path is None else Path(path)

    def _values(self) -> tuple:
        """The constructor's arguments, paths as strings: what a clip is compared, hashed and pickled by."""
        return self.vid, self.labels, self._video, self._audio, self.boxes, self.h5, self.row

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if other.__class__ is self.__class__ else NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[type[Clip], tuple]:
        # pickle (DataLoader workers, spawn) through __init__: a frozen class refuses the default setattr
        return Clip, self._values()

    def __repr__(self) -> str:
        return (f"Clip(vid={self.vid!r}, labels={self.labels!r}, video={self.video!r}, audio={self.audio!r}, "
                f"boxes={self.boxes!r}, h5={self.h5!r}, row={self.row!r})")


@dataclass
class LabelSpace:
    """The classes clips are indexed against, and whether a clip may carry several of them.

    Args:
        classes: class display names; a label's index is its position here. Not to be changed
            once built (the name -> index table is made once).
        multilabel: True when some clip of the data has two or more labels.
    """

    classes: list[str]
    multilabel: bool = False
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.classes = list(self.classes)
        self._lookup = {name: i for i, name in enumerate(self.classes)}
        if len(self._lookup) != len(self.classes):
            twice = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise ValueError(f"class(es) {twice} appear more than once in the class list")

    def __len__(self) -> int:
        return len(self.classes)

    def __contains__(self, name: object) -> bool:
        return name in self._lookup

    def index(self, name: str, source: str = "") -> int:
        """The index of one class.

        Args:
            name: a class display name.
            source: where the name comes from (a file, ``file: id x``), named in the error.

        Returns:
            its position in :attr:`classes`.

        Raises:
            LayoutError: ``name`` is not a class; the message names ``source``, the label and the classes.
        """
        i = self._lookup.get(name)
        if i is None:
            shown = ", ".join(self.classes[:8]) + (" ..." if len(self.classes) > 8 else "")
            raise LayoutError(f"{source or 'labels'}: label {name!r} is not one of the {len(self.classes)} "
                              f"classes ({shown})")
        return i

    def indices(self, names: Iterable[str], source: str = "") -> tuple[int, ...]:
        """The indices of several classes, in the order given (see :meth:`index` for the arguments and errors)."""
        return tuple(self.index(n, source) for n in names)

    def names(self, indices: Iterable[int]) -> tuple[str, ...]:
        """The display names of class indices, in the order given.

        Args:
            indices: positions in :attr:`classes`.

        Returns:
            one name per index.

        Raises:
            IndexError: an index outside ``0 .. C-1``.
        """
        out = []
        for i in indices:
            if not 0 <= int(i) < len(self.classes):
                raise IndexError(f"class index {i} outside 0 .. {len(self.classes) - 1}")
            out.append(self.classes[int(i)])
        return tuple(out)

    def pairs(self, clips: Sequence[Clip], source: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Every (clip, class) label of ``clips`` as two aligned arrays (L labels in all).

        Args:
            clips: N clips.
            source: where the clips come from, named in the error.

        Returns:
            int64 (L,) position of the clip in ``clips`` (ascending) and int64 (L,) class index.

        Raises:
            LayoutError: a label that is not a class (see :meth:`index`).
        """
        rows: list[int] = []
        cols: list[int] = []
        lookup = self._lookup
        for i, clip in enumerate(clips):
            try:
                cols.extend(lookup[name] for name in clip.labels)
            except KeyError:
                self.indices(clip.labels, f"{source}: id {clip.vid!r}" if source else f"id {clip.vid!r}")  # raises
            rows.extend([i] * len(clip.labels))
        return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)

    def multi_hot(self, clips: Sequence[Clip], source: str = "") -> np.ndarray:
        """The clips' labels as a multi-hot matrix.

        Args:
            clips: N clips.
            source: where the clips come from, named in the error.

        Returns:
            bool (N, C): row ``i`` marks the classes of ``clips[i]``.

        Raises:
            LayoutError: a label that is not a class (see :meth:`index`).
        """
        rows, cols = self.pairs(clips, source)
        out = np.zeros((len(clips), len(self.classes)), dtype=bool)
        out[rows, cols] = True
        return out


class _OnLabelSpace:
    """``classes`` and ``is_multilabel`` of a record that holds a ``label_space`` (Manifest, SplitIndex)."""

    __slots__ = ()
    label_space: LabelSpace

    @property
    def classes(self) -> list[str]:
        """The class display names (``label_space.classes``)."""
        return self.label_space.classes

    @property
    def is_multilabel(self) -> bool:
        """True when some clip of the data has two or more labels (``label_space.multilabel``); for a
        layout split, a clip of any split of the root."""
        return self.label_space.multilabel


@dataclass
class Manifest(_OnLabelSpace):
    """The clips of one split of one source, and the label space they are indexed against.

    Args:
        name: a description for messages (``ROOT/train``, a json or HDF5 file ...).
        clips: the usable clips (every label is a class of ``label_space``).
        label_space: the classes and the label mode.
        skipped: ``(vid, reason)`` of entries left out while reading.
        num_rows: entries in the source file (json entries, HDF5 rows); 0 where not applicable.
    """

    name: str
    clips: list[Clip]
    label_space: LabelSpace
    skipped: list[tuple[str, str]] = field(default_factory=list)
    num_rows: int = 0

    def targets(self) -> np.ndarray:
        """bool (N, C) multi-hot matrix of the clips' labels."""
        return self.label_space.multi_hot(self.clips, self.name)
