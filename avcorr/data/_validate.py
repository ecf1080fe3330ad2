"""The validator of the dataset layout: :func:`validate` checks a whole root and lists every problem.

Import it from :mod:`avcorr.data.layout`, which re-exports :func:`validate`, :class:`ValidationReport`
and :class:`Problem`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from avcorr.data.errors import BadClipError
from avcorr.data.layout import (
    Problem,
    _SPLIT_ALIASES,
    _YOUTUBE_ID,
    AUDIO_DIR,
    AUDIO_EXTENSIONS,
    BOXES_FILE,
    CLASS_LABELS_FILE,
    DURATION_TOLERANCE_S,
    ONTOLOGY_FILE,
    SPLITS,
    VID2GENRE_FILE,
    VIDEO_DIR,
    VIDEO_EXTENSIONS,
    VISIBLE_FILE,
    Clip,
    _absolute,
    _parse_boxes,
    _parse_visible,
    _read_root,
    _RootInfo,
    _scan_media,
    _Sink,
)

if TYPE_CHECKING:  # decoding (torch) is imported only for validate(decode=True)
    from avcorr.data._media_check import VideoCheck


@dataclass
class ValidationReport:
    """What :func:`validate` found in a dataset root.

    Args:
        root: the dataset root (absolute).
        counts: split -> class display name -> number of clips with that label (classes used by the
            root, in class order; a class missing from a split counts 0).
        n_clips: split -> number of ids in its ``vid2genre.json``.
        problems: every problem found, errors first.
        num_csv_classes: rows of ``class_labels_indices.csv``, None when it is absent or broken.
        has_ontology: whether ``ontology.json`` is present.
    """

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    n_clips: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    num_csv_classes: int | None = None
    has_ontology: bool = False

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems of severity ``"warning"``."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def infos(self) -> list[Problem]:
        """The notes of severity ``"info"`` (supported layouts worth knowing about)."""
        return [p for p in self.problems if p.severity == "info"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    def format(self, *, max_classes: int | None = 40, counts: bool = True, warnings: bool = True,
               details: bool = False) -> str:
        """A human-readable report: the counts table, the problems, then a verdict line.

        Errors are listed one per line. Warnings and notes that repeat per clip, label or file (a
        video without an audio file, a label used once ...) are shown as one line per kind with a
        count and the first few names, unless ``details``.

        Args:
            max_classes: most class rows in the counts table (None: all of them).
            counts: include the header and the counts table.
            warnings: include warnings and notes (errors are always listed).
            details: list every occurrence of the summarised kinds too.

        Returns:
            the report text, lines like ``ERROR /path/to/file: message``.
        """
        lines: list[str] = []
        if counts:
            lines += self._format_counts(max_classes)
        shown = [p for p in self.problems if warnings or p.severity == "error"]
        if shown:
            if lines:
                lines.append("")
            lines += _problem_lines(shown, details)
        n_err, n_warn, n_info = len(self.errors), len(self.warnings), len(self.infos)
        verdict = "OK" if self.ok else "FAILED"
        if lines:
            lines.append("")
        notes = f", {n_info} note(s)" if n_info else ""
        lines.append(f"{verdict}: {n_err} error(s), {n_warn} warning(s){notes} in {self.root}")
        return "\n".join(lines)

    def _format_counts(self, max_classes: int | None) -> list[str]:
        csv_text = "absent" if self.num_csv_classes is None else f"{self.num_csv_classes} classes"
        lines = [
            f"dataset root: {self.root}",
            f"{CLASS_LABELS_FILE}: {csv_text}; {ONTOLOGY_FILE}: "
            f"{'present' if self.has_ontology else 'absent'}",
        ]
        splits = [s for s in SPLITS if s in self.n_clips]
        if not splits:
            lines.append("no split could be read")
            return lines
        lines.append("clips: " + ", ".join(f"{s} {self.n_clips[s]}" for s in splits))
        classes: list[str] = []
        for s in splits:
            classes += [c for c in self.counts.get(s, {}) if c not in classes]
        if not classes:
            return lines
        width = min(40, max(len("class"), *(len(c) for c in classes)))
        cols = [max(len(s), 6) for s in splits]
        lines.append("")
        lines.append(f"{'class':<{width}}  " + "  ".join(f"{s:>{w}}" for s, w in zip(splits, cols)))
        limit = len(classes) if max_classes is None else max_classes
        for name in classes[:limit]:
            shown = name if len(name) <= width else name[: width - 3] + "..."
            cells = "  ".join(f"{self.counts.get(s, {}).get(name, 0):>{w}}" for s, w in zip(splits, cols))
            lines.append(f"{shown:<{width}}  {cells}")
        if len(classes) > limit:
            lines.append(f"... and {len(classes) - limit} more classes")
        return lines


# What one summary line says about each kind of repeated problem (see Problem.kind).
SUMMARIES = {
    "audio_from_video": "clip(s) have a video file but no audio file: their audio is read from the video's own "
                        "audio track",
    "single_clip_label": "label(s) are used by one clip only (typos?)",
    "thin_class": "class(es) have fewer than 2 clips in a split",
    "no_label": "clip(s) have no label",
    "orphan": "media file(s) have an id that is not in their split's vid2genre.json (ignored)",
    "odd_id": "id(s) are not YouTube-like (letters, digits, '_', '-')",
    "other_file": "file(s) in video/ or audio/ are not media files of a known extension (ignored)",
    "unused_track": "video(s) have an audio track that cannot be decoded; their clips use the audio file",
}
_EXAMPLES = 5


def _problem_lines(problems: list[Problem], details: bool) -> list[str]:
    """One line per problem, except one line per (severity, kind) for the summarised kinds."""
    groups: dict[tuple[str, str], list[Problem]] = {}
    order: list[Problem | tuple[str, str]] = []
    for p in problems:
        if p.kind and not details:
            key = (p.severity, p.kind)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(p)
        else:
            order.append(p)
    return [str(x) if isinstance(x, Problem) else _summary_line(*x, groups[x]) for x in order]


def _summary_line(severity: str, kind: str, group: list[Problem]) -> str:
    names = list(dict.fromkeys(p.subject or p.path for p in group))
    shown = ", ".join(repr(n) for n in names[:_EXAMPLES]) + (", ..." if len(names) > _EXAMPLES else "")
    return f"{severity.upper()} {len(group)} {SUMMARIES.get(kind, kind)}: {shown} (--details lists each)"


# ----------------------------------------------------------------------------------------------
# Validation


def validate(root: str | Path, *, decode: bool = False, progress: bool = False) -> ValidationReport:
    """Check a dataset root and report every problem found, not only the first.

    Errors: missing root/split files, a train split without a val split, an empty split, invalid or
    mis-shaped json, unsafe or repeated ids, malformed csv, labels unknown to the csv, ids with
    neither video nor audio, empty (0-byte) media files, bad ``boxes.json`` entries (unknown id, not
    4 numbers, outside [0, 1], x1 >= x2 or y1 >= y2), bad ``visible.json`` entries (unknown id, labels
    that are not non-empty strings or unknown to the csv), and with ``decode`` media that cannot be
    decoded (see :func:`_check_decoding`: frames at the start, middle and end and then every frame,
    the whole audio; truncated and corrupt files, NaN/Inf samples) and clips with no audio at all.
    Warnings: ids with an audio file but no video file, orphan media files (id not in
    ``vid2genre.json``), several files for one id, files with other extensions, ids that are not
    YouTube-like, clips without a label, labels used by a single clip, classes with fewer than 2
    clips in a split, the same id in two splits (leakage), and with ``decode`` video/audio lengths
    differing by more than :data:`DURATION_TOLERANCE_S` or a video's unused audio track that cannot
    be decoded. Notes (``info``): ids with a video but no audio file (the README's layout: their
    audio comes from the video's own track). Repeated kinds carry a ``kind`` and are summarised by
    :meth:`ValidationReport.format`.

    Args:
        root: the dataset root.
        decode: also probe every media file with :mod:`avcorr.data.decode` (slow).
        progress: show a tqdm bar while probing.

    Returns:
        the report; ``report.ok`` is False when there is any error.
    """
    root = _absolute(root)
    sink = _Sink(strict=False)
    report = ValidationReport(root=root)
    info = _read_root(root, sink, need=None)
    if info is not None:
        report.has_ontology = (root / ONTOLOGY_FILE).is_file()
        if info.class_labels is not None:
            report.num_csv_classes = len(info.class_labels)
        _check_root_folders(root, info, sink)
        clips = _check_splits(info, sink, report)
        _check_labels(info, sink, report)
        if decode:
            _check_decoding(clips, sink, progress)
    order = {"error": 0, "warning": 1, "info": 2}
    report.problems = sorted(sink.problems, key=lambda p: order.get(p.severity, 2))
    return report


def _check_root_folders(root: Path, info: _RootInfo, sink: _Sink) -> None:
    for entry in sorted(root.iterdir()):
        alias = _SPLIT_ALIASES.get(entry.name.lower())
        if alias is not None and entry.is_dir():
            sink.warning(entry, f"not a split folder and ignored; did you mean {alias}/?")
    if "train" in info.present and "val" not in info.present:
        sink.error(root / "val", "missing: avcorr.train evaluates on the val split after every epoch and keeps "
                                 "best.pt by it (python -m data_tools.split makes one)")


def _check_splits(info: _RootInfo, sink: _Sink, report: ValidationReport) -> dict[str, list[Clip]]:
    """Media, ids, boxes, visible labels and leakage, split by split; return the clips of every readable split."""
    clips_by_split: dict[str, list[Clip]] = {}
    first_split: dict[str, str] = {}
    for split in SPLITS:
        if split not in info.labels:
            continue
        labels = info.labels[split]
        split_dir = info.root / split
        json_path = split_dir / VID2GENRE_FILE
        report.n_clips[split] = len(labels)
        if not info.raw_labels[split]:
            sink.error(json_path, f"the {split} split is empty: no clip listed")
        video_dir, audio_dir = split_dir / VIDEO_DIR, split_dir / AUDIO_DIR
        has_video, has_audio = video_dir.is_dir(), audio_dir.is_dir()
        if not has_video and not has_audio:
            sink.error(split_dir, "has neither a video/ nor an audio/ folder")
        elif not has_video:
            sink.warning(video_dir, "missing: the clips of this split have audio only")
        elif not has_audio:
            sink.warning(audio_dir, "missing: the clips of this split have video only")
        videos = _scan_media(video_dir, VIDEO_EXTENSIONS, "video", sink)
        audios = _scan_media(audio_dir, AUDIO_EXTENSIONS, "audio", sink)
        for kind, found in (("video", videos), ("audio", audios)):
            for vid, paths in found.items():
                if vid not in labels:
                    for path in paths:
                        sink.warning(path, f"orphan: id {vid!r} is not in {json_path}", kind="orphan",
                                     subject=f"{split}/{kind}/{path.name}")
                if len(paths) > 1:
                    names = ", ".join(p.name for p in paths)
                    sink.warning(paths[0], f"several {kind} files for id {vid!r} ({names}); using {paths[0].name}")
                for path in paths:
                    if _file_size(path) == 0:
                        sink.error(path, "empty file (0 bytes)")
        boxes = _parse_boxes(split_dir / BOXES_FILE, labels, sink)
        _parse_visible(split_dir / VISIBLE_FILE, labels, info.class_labels, info.csv_path, sink)
        clips: list[Clip] = []
        for vid, clip_labels in labels.items():
            if not _YOUTUBE_ID.fullmatch(vid):
                sink.warning(json_path, f"id {vid!r} is not YouTube-like (letters, digits, '_', '-')", kind="odd_id",
                             subject=vid)
            if vid in first_split:
                sink.warning(json_path, f"id {vid!r} is also in {first_split[vid]}/ (leakage between splits)")
            else:
                first_split[vid] = split
            video = videos[vid][0] if vid in videos else None
            audio = audios[vid][0] if vid in audios else None
            if video is None and audio is None:
                if has_video or has_audio:
                    sink.error(json_path, f"id {vid!r} has neither a video file in {video_dir} "
                                          f"nor an audio file in {audio_dir}")
            elif video is None and has_video:
                sink.warning(json_path, f"id {vid!r} has an audio file but no video file in {video_dir}")
            elif audio is None and has_audio:
                sink.info(json_path, f"id {vid!r} has a video file but no audio file in {audio_dir}: its audio is "
                                     "read from the video's own audio track", kind="audio_from_video", subject=vid)
            clips.append(Clip(vid, clip_labels, video, audio, boxes.get(vid, ())))
        clips_by_split[split] = clips
    return clips_by_split


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _check_labels(info: _RootInfo, sink: _Sink, report: ValidationReport) -> None:
    """Counts per split and class; unlabelled clips, one-clip labels, classes thin in a split."""
    per_split = {split: Counter(label for ls in labels.values() for label in ls)
                 for split, labels in info.labels.items()}
    total: Counter[str] = Counter()
    for counter in per_split.values():
        total.update(counter)
    used = [c for c in info.classes if total[c] > 0]
    if info.class_labels is None and any(label.startswith("/m/") for label in used):
        sink.warning(info.csv_path, "labels look like AudioSet mids but there is no csv to map them "
                                    "to display names")
    singletons: set[str] = set()
    for split in SPLITS:
        if split not in info.labels:
            continue
        json_path = info.root / split / VID2GENRE_FILE
        for vid, labels in info.labels[split].items():
            if not info.raw_labels[split][vid]:  # not when its labels are unknown (reported already)
                sink.warning(json_path, f"id {vid!r} has no label", kind="no_label", subject=vid)
            for label in labels:
                if total[label] == 1:
                    singletons.add(label)
                    sink.warning(json_path, f"label {label!r} of id {vid!r} is used by no other clip (a typo?)",
                                 kind="single_clip_label", subject=label)
    for split in SPLITS:
        if split not in info.labels:
            continue
        json_path = info.root / split / VID2GENRE_FILE
        counts = {c: per_split[split][c] for c in used}
        report.counts[split] = counts
        if not info.labels[split]:
            continue  # an empty split is reported as such, not once per class
        for name, n in counts.items():
            if n < 2 and name not in singletons:
                sink.warning(json_path, f"class {name!r} has {n} clip(s) in {split}", kind="thin_class",
                             subject=f"{name}: {n} in {split}")


def _check_decoding(clips_by_split: dict[str, list[Clip]], sink: _Sink, progress: bool) -> None:
    """Decode every media file of every clip; report undecodable, truncated, empty and mismatched media.

    A video's frames are decoded at its start, middle and end and then all in order; audio (a file,
    or a video's own track) is decoded whole, checked for NaN/Inf and against its declared length
    (see :mod:`avcorr.data._media_check`). A video's track is checked when the clip has no audio
    file (an error when it fails), and otherwise too (a warning: the clip uses its audio file).
    """
    try:
        from avcorr.data._media_check import check_audio, check_video
    except ImportError as err:
        raise ImportError(f"validate(decode=True) needs avcorr.data.decode, which cannot be imported: {err}") \
            from err
    from tqdm import tqdm

    clips = [clip for split_clips in clips_by_split.values() for clip in split_clips]
    jobs = [(clip, kind, path) for clip in clips
            for kind, path in (("video", clip.video), ("audio", clip.audio))
            if path is not None and _file_size(path) != 0]  # empty files are already reported
    videos: dict[int, VideoCheck] = {}
    audio_s: dict[int, float] = {}
    for clip, kind, path in tqdm(jobs, desc="decoding media", unit="file", disable=not progress):
        try:
            if kind == "video":
                video = videos[id(clip)] = check_video(path)
                if not video.has_audio:
                    continue
                try:
                    track = check_audio(path)
                except BadClipError as err:
                    if clip.audio is None:
                        sink.error(path, f"its audio track cannot be decoded: {err.reason}")
                    else:
                        sink.warning(path, f"its audio track cannot be decoded ({err.reason}); the clip's audio "
                                           f"file {clip.audio.name} is used instead", kind="unused_track",
                                     subject=path.name)
                    continue
                if clip.audio is None:
                    audio_s[id(clip)] = track
            else:
                audio_s[id(clip)] = check_audio(path)
        except BadClipError as err:
            sink.error(path, f"cannot be decoded: {err.reason}")
    unusable: set[tuple[str, str]] = set()  # (vid2genre.json, id) of clips whose own track is not usable
    for clip in clips:
        video = videos.get(id(clip))
        if clip.audio is None and clip.video is not None and id(clip) not in audio_s:
            unusable.add((str(clip.video.parent.parent / VID2GENRE_FILE), clip.vid))
        if video is None:
            continue
        if clip.audio is None and not video.has_audio:
            sink.error(clip.video, f"id {clip.vid!r} has no audio at all: no audio file and no audio track in "
                                   "the video")
        seconds = audio_s.get(id(clip))
        if seconds is not None and abs(video.duration - seconds) > DURATION_TOLERANCE_S:
            source = "its audio file" if clip.audio is not None else "its audio track"
            sink.warning(clip.video, f"id {clip.vid!r}: video lasts {video.duration:.2f} s but {source} "
                                     f"{seconds:.2f} s")
    # the note "audio from the video's own track" stands only for the clips whose track decoded
    sink.problems = [p for p in sink.problems
                     if not (p.kind == "audio_from_video" and (p.path, p.subject) in unusable)]
