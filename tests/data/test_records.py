"""The records every data format is read into: Clip, LabelSpace, Manifest (and SplitIndex on a LabelSpace)."""

import json
from pathlib import Path

import numpy as np
import pytest

from avcorr.data.errors import LayoutError
from avcorr.data.layout import Clip as LayoutClip
from avcorr.data.layout import load_split
from avcorr.data.records import Clip, LabelSpace, Manifest
from avcorr.data.tagging import folder_source, hdf5_source, layout_source, layout_to_folders
from tests.media import make_wav


def test_clip_media_prefers_audio_then_video():
    a, v = Path("/d/a.wav"), Path("/d/a.mp4")
    assert LayoutClip is Clip  # the layout re-exports the one record
    assert Clip("x", ("Dog",), v, a).media == a
    assert Clip("x", ("Dog",), video=v).media == v
    packed = Clip("x", ("Dog",), h5=("/p.h5", 3), row=3)
    assert packed.media is None and packed.h5 == ("/p.h5", 3) and packed.row == 3
    assert Clip("x", ()).row == -1 and Clip("x", ()).boxes == ()



def test_clip_paths_are_paths_and_clips_compare_by_value(tmp_path):
    """A Clip keeps its paths as strings (slotted, for memory) but reads, compares, hashes, pickles as before."""
    import dataclasses
    import pickle

    v, a = tmp_path / "video" / "-x.mp4", tmp_path / "audio" / "-x.wav"
    clip = Clip("-x", ("Dog",), v, a, ((0.1, 0.2, 0.3, 0.4),), row=7)
    assert type(clip.video) is type(v) and type(clip.audio) is type(a) and type(clip.media) is type(a)
    assert (clip.video, clip.audio, clip.media) == (v, a, a)
    assert clip.video.parent.parent == tmp_path and clip.audio.suffix == ".wav"  # what callers use
    assert not hasattr(clip, "__dict__") and isinstance(clip._video, str)
    # a string (or any os.PathLike) path is the same clip as the Path, spelled however
    same = Clip("-x", ("Dog",), f"{tmp_path}//video/./-x.mp4", str(a), ((0.1, 0.2, 0.3, 0.4),), row=7)
    assert same == clip and hash(same) == hash(clip) and type(same.video) is type(v)
    assert Clip("-x", ("Dog",), v, None, row=7) != clip and Clip("-x", ("Dog",), video=v).audio is None
    assert pickle.loads(pickle.dumps(clip)) == clip  # DataLoader workers get pickled copies
    with pytest.raises(dataclasses.FrozenInstanceError):
        clip.vid = "y"
    with pytest.raises(AttributeError):
        clip.video = a
    assert repr(clip) == (f"Clip(vid='-x', labels=('Dog',), video={v!r}, audio={a!r}, "
                          f"boxes=((0.1, 0.2, 0.3, 0.4),), h5=None, row=7)")


def test_dataclasses_replace_makes_a_changed_clip(tmp_path):
    import dataclasses
    import pickle

    v, a = tmp_path / "-x.mp4", tmp_path / "-x.wav"
    clip = Clip("-x", ("Dog",), v, a, ((0.1, 0.2, 0.3, 0.4),), h5=None, row=7)
    assert dataclasses.replace(clip) == clip and dataclasses.replace(clip) is not clip
    relabelled = dataclasses.replace(clip, labels=("Cat", "Dog"))
    assert relabelled == Clip("-x", ("Cat", "Dog"), v, a, ((0.1, 0.2, 0.3, 0.4),), row=7) != clip
    assert (relabelled.video, relabelled.audio, relabelled.boxes, relabelled.row) == (v, a, clip.boxes, 7)
    assert isinstance(relabelled._video, str) and not hasattr(relabelled, "__dict__")  # still slotted strings
    moved = dataclasses.replace(clip, audio=str(tmp_path / "other.wav"), video=None)
    assert moved.video is None and moved.audio == tmp_path / "other.wav" and moved.media == moved.audio
    back = dataclasses.replace(moved, video=v, audio=a)
    assert back == clip and hash(back) == hash(clip)
    assert pickle.loads(pickle.dumps(relabelled)) == relabelled
    assert [f.name for f in dataclasses.fields(Clip)] == ["vid", "labels", "boxes", "h5", "row"]
    with pytest.raises(TypeError, match="_video"):  # the stored strings are not arguments
        dataclasses.replace(clip, _video=str(a))


def test_clips_hold_few_bytes_each():
    """Built by the AST-json and folder readers, a clip holds well under the ~550 B of Path-holding clips.

    Measured with tracemalloc (experiments/bench_clip_memory.py: ~270 B and ~170 B on CPython 3.11);
    object sizes differ on other builds, so the bound is checked on a standard CPython only.
    """
    import platform
    import sys
    import sysconfig

    if (platform.python_implementation() != "CPython" or hasattr(sys, "gettotalrefcount")
            or sysconfig.get_config_var("Py_GIL_DISABLED")):
        pytest.skip("object sizes of a standard CPython build are assumed")
    from experiments.bench_clip_memory import ast_json_bytes, folder_bytes

    assert ast_json_bytes(3000) < 350
    assert folder_bytes(300) < 350

def test_label_space_maps_names_and_names_the_source_in_errors():
    space = LabelSpace(["Dog", "Cat, domestic", "Cow"], multilabel=True)
    assert len(space) == 3 and "Cow" in space and "cow" not in space
    assert space.index("Cow") == 2
    assert space.indices(("Cat, domestic", "Dog")) == (1, 0)  # the order given
    assert space.names([2, 0]) == ("Cow", "Dog")
    assert space.names(space.indices(("Dog", "Cow"))) == ("Dog", "Cow")
    with pytest.raises(LayoutError, match=r"^train/vid2genre\.json: id 'a1': label 'Pig' is not one of the 3 classes"):
        space.indices(["Dog", "Pig"], "train/vid2genre.json: id 'a1'")
    with pytest.raises(IndexError, match="class index 3"):
        space.names([3])
    with pytest.raises(ValueError, match="'Dog'"):
        LabelSpace(["Dog", "Cat", "Dog"])


def test_multi_hot_and_pairs():
    space = LabelSpace(["a", "b", "c"], multilabel=True)
    clips = [Clip("x", ("c", "a")), Clip("y", ()), Clip("z", ("b",))]
    hot = space.multi_hot(clips)
    assert hot.dtype == bool and hot.shape == (3, 3)
    assert hot.tolist() == [[True, False, True], [False, False, False], [False, True, False]]
    rows, cols = space.pairs(clips)
    assert rows.tolist() == [0, 0, 2] and cols.tolist() == [2, 0, 1]
    assert space.multi_hot([]).shape == (0, 3)
    with pytest.raises(LayoutError, match=r"d\.json: id 'w': label 'q'"):
        space.multi_hot([Clip("w", ("a", "q"))], "d.json")
    manifest = Manifest("d.json", clips, space)
    assert np.array_equal(manifest.targets(), hot)
    assert manifest.classes == ["a", "b", "c"] and manifest.is_multilabel and manifest.skipped == []


def test_manifest_and_split_index_read_classes_from_their_label_space(tmp_path):
    from avcorr.data.layout import SplitIndex

    space = LabelSpace(["b", "a"])
    for holder in (Manifest("d.json", [], space), SplitIndex(tmp_path, "train", [], space)):
        assert holder.classes is space.classes and holder.is_multilabel is False
        holder.label_space = LabelSpace(["c"], multilabel=True)
        assert holder.classes == ["c"] and holder.is_multilabel is True
        with pytest.raises(AttributeError):
            holder.classes = ["x"]  # read-only: the label space is the one place they live


@pytest.fixture()
def layout_root(tmp_path):
    """train/: three clips with audio (one with two labels), one with neither file; val/: one clip."""
    root = tmp_path / "root"
    labels = {"train": {"-a1": "Dog", "b2": ["Cat", "Dog"], "c3": "Cat", "nofile": "Cat"}, "val": {"v1": "Cow"}}
    for split, v2g in labels.items():
        (root / split / "audio").mkdir(parents=True)
        (root / split / "vid2genre.json").write_text(json.dumps(v2g))
        for k, vid in enumerate(v2g):
            if vid != "nofile":
                make_wav(root / split / "audio" / f"{vid}.wav", 200.0 + 100 * k, 8000, duration=0.1)
    return root


def test_layout_and_folder_splits_read_into_the_same_records(layout_root, tmp_path):
    index = load_split(layout_root, "train")
    assert index.classes == ["Cat", "Cow", "Dog"] and index.is_multilabel  # every split's labels, sorted
    assert index.label_space == LabelSpace(["Cat", "Cow", "Dog"], True)
    assert [index.label_indices(c) for c in index.clips] == [[2], [0, 2], [0], [0]]

    src = layout_source(layout_root, "train")
    assert src.clips == index.clips[:3]  # the layout's own records, minus the clip without a file
    assert src.skipped == [("nofile", "no audio or video file")]
    assert src.label_space == index.label_space and src.name == str(layout_root / "train")
    assert src.targets().tolist() == [[False, False, True], [True, False, True], [True, False, False]]

    # a checkpoint's classes: the same names index differently; an unknown label names the file and id
    ckpt = layout_source(layout_root, "train", classes=["Dog", "Cat", "Cow"])
    assert [ckpt.label_space.indices(c.labels) for c in ckpt.clips] == [(0,), (1, 0), (1,)]
    with pytest.raises(LayoutError, match=r"train/vid2genre\.json: id 'b2': label 'Cat' is not one of the 1 classes"):
        layout_source(layout_root, "train", classes=["Dog"])

    out = tmp_path / "folders"
    layout_to_folders(layout_root, out)
    folder = folder_source(out, "train")
    assert all(type(c) is Clip for c in folder.clips + src.clips)
    by_vid = {c.vid: c for c in folder.clips}
    assert set(by_vid) == {"Dog/-a1.wav", "Cat/b2.wav", "Cat/c3.wav"}  # b2 (in two folders) is one clip
    for clip in src.clips:
        f = by_vid[f"{clip.labels[0]}/{clip.vid}.wav"]
        assert set(f.labels) == set(clip.labels) and f.media.name == clip.media.name
        assert (f.video, f.h5, f.row) == (None, None, -1) and f.audio.is_file()
    assert folder.label_space == src.label_space  # class folders of every split; b2 sits in two of them
    assert [folder.label_space.indices(by_vid[v].labels) for v in sorted(by_vid)] == [(0, 2), (0,), (2,)]


def test_folder_video_files_go_to_video(tmp_path):
    (tmp_path / "tone").mkdir()
    (tmp_path / "tone" / "x.mp4").write_bytes(b"not read here")
    make_wav(tmp_path / "tone" / "y.wav", 300.0, 8000, duration=0.1)
    src = folder_source(tmp_path, "train", val_fraction=0.0)
    by_vid = {c.vid: c for c in src.clips}
    assert by_vid["tone/x.mp4"].video == tmp_path / "tone" / "x.mp4" and by_vid["tone/x.mp4"].audio is None
    assert by_vid["tone/y.wav"].audio == tmp_path / "tone" / "y.wav" and by_vid["tone/y.wav"].video is None


def test_hdf5_rows_become_clips_with_names(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f.create_dataset("audio_name", data=np.array([b"a.wav", b"", b"c.wav"], dtype="S10"))
        f.create_dataset("waveform", data=np.zeros((3, 16), dtype=np.int16))
        f.create_dataset("target", data=np.array([[1, 0, 1], [0, 1, 0], [0, 1, 0]], dtype=bool))
    src = hdf5_source(tmp_path / "p.h5", classes=["x", "y", "z"])
    assert [(c.vid, c.labels, c.row) for c in src.clips] == [("a.wav", ("x", "z"), 0), ("c.wav", ("y",), 2)]
    assert src.clips[1].h5 == (str(tmp_path / "p.h5"), 2) and src.clips[1].media is None
    assert src.num_rows == 3 and src.is_multilabel and src.skipped == [("p.h5#1", src.skipped[0][1])]
    assert src.targets().tolist() == [[True, False, True], [False, True, False]]


def test_folder_digest_cache_is_bounded(tmp_path, monkeypatch):
    """The folder reader's content digests: one entry a file, a changed file replaced, the least recently used
    forgotten beyond DIGEST_CACHE_SIZE."""
    from collections import OrderedDict

    from avcorr.data import _tag_sources as ts

    monkeypatch.setattr(ts, "DIGEST_CACHE_SIZE", 3)
    monkeypatch.setattr(ts, "_DIGESTS", OrderedDict())
    files = []
    for k, cls in enumerate(("a", "b", "a", "b", "a")):  # the same size: the reader hashes every one
        (tmp_path / cls).mkdir(exist_ok=True)
        files.append(tmp_path / cls / f"f{k}.wav")
        files[-1].write_bytes(bytes([k]) * 64)
    assert len(folder_source(tmp_path, "train", val_fraction=0.0).clips) == 5
    assert len(ts._DIGESTS) == 3
    digest = ts._content_digest(files[0])  # forgotten, then hashed again and remembered as the newest
    assert list(ts._DIGESTS)[-1] == str(files[0]) and len(ts._DIGESTS) == 3
    before = ts._DIGESTS[str(files[0])]
    files[0].write_bytes(b"\xff" * 65)  # a changed file replaces its entry
    assert ts._content_digest(files[0]) != digest and ts._DIGESTS[str(files[0])] != before
    assert len(ts._DIGESTS) == 3 and list(ts._DIGESTS).count(str(files[0])) == 1
    for _ in range(3 * ts.DIGEST_CACHE_SIZE):  # asking again and again adds nothing
        assert ts._content_digest(files[1]) == ts._content_digest(files[1])
    assert len(ts._DIGESTS) == 3
