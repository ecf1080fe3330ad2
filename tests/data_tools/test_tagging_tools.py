"""Data tools for tagging: HDF5 packs and indexes, AST json + weight files, AGS sheets, fbank statistics."""

import csv
import json

import numpy as np
import pytest
import torch

from avcorr.data.tagging import TaggingDataset, ast_json_source, hdf5_source, layout_source, open_source
from tests.media import make_nan_wav
from tests.media import make_wav as _make_wav


def make_wav(path, *args, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    return _make_wav(path, *args, **kwargs)


@pytest.fixture()
def tone_folders(tmp_path):
    root = tmp_path / "tones"
    for k, (cls, f) in enumerate((("low", 220.0), ("high", 1760.0))):
        for i in range(3):
            make_wav(root / cls / f"{cls}{i}.wav", f * (1 + 0.01 * i), 22050, duration=0.5 + 0.25 * i)
    make_nan_wav(root / "low" / "broken.wav", sr=22050, duration=0.5, nan_at=0.25)
    return root


def test_pack_and_index_roundtrip(tone_folders, tmp_path):
    import h5py

    from data_tools.pack_waveforms_to_hdf5 import float32_to_int16, main

    out = tmp_path / "hdf5s" / "train.h5"
    assert main(["pack", "--format", "folder", "--root", str(tone_folders), "--split", "train",
                 "--val-fraction", "0", "--out", str(out), "--sample-rate", "16000", "--clip-seconds", "1.0",
                 "--no-progress"]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["sample_rate"] == 16000
        assert f["waveform"].shape == (6, 16000) and f["waveform"].dtype == np.int16
        assert f["target"].dtype == bool and f["target"].shape == (6, 2)
        names = [n.decode() for n in f["audio_name"][:]]
        assert "low/broken.wav" not in names  # the NaN clip was left out, not packed as zeros
        row = names.index("high/high0.wav")
        w = f["waveform"][row]
        assert np.abs(w[: 7900]).max() > 10000 and np.abs(w[8100:]).max() == 0  # 0.5 s tone, padded to 1 s
        assert f["target"][row].tolist() == [True, False]  # classes sorted: high, low
    with open(out.with_name("train_skipped.csv"), newline="") as f:  # the NaN clip, named with its reason
        [row] = list(csv.DictReader(f))
    assert row["id"] == "low/broken.wav" and row["path"].endswith("broken.wav") and "NaN" in row["reason"]
    assert (out.parent / "class_labels_indices.csv").read_text().splitlines()[1:] == ["0,high,high", "1,low,low"]
    assert float32_to_int16(np.array([1.5, -1.0, 0.5, -0.49999])).tolist() == [32767, -32767, 16383, -16383]
    # the pack reads back through the hdf5 source, at another rate
    src = hdf5_source(out, label_csv=out.parent / "class_labels_indices.csv")
    ds = TaggingDataset(src, sample_rate=8000, clip_samples=8000, train=False, multilabel=False)
    x = ds[src.clips.index(next(c for c in src.clips if c.vid == "high/high0.wav"))]["wave"].numpy()
    assert np.argmax(np.abs(np.fft.rfft(x))) == pytest.approx(1760, abs=2)
    # an index over two packs
    assert main(["pack", "--format", "folder", "--root", str(tone_folders), "--split", "train", "--val-fraction",
                 "0", "--out", str(tmp_path / "hdf5s" / "b.h5"), "--sample-rate", "16000", "--clip-seconds",
                 "0.5", "--no-progress"]) == 0
    idx = tmp_path / "indexes" / "full_train.h5"
    assert main(["index", str(out), str(tmp_path / "hdf5s" / "b.h5"), "--out", str(idx)]) == 0
    with h5py.File(idx, "r") as f:
        assert f["index_in_hdf5"][:].tolist() == list(range(6)) * 2
        assert f["hdf5_path"][0].decode() == "../hdf5s/train.h5"
    isrc = hdf5_source(idx, label_csv=out.parent / "class_labels_indices.csv")
    assert len(isrc.clips) == 12
    ids = TaggingDataset(isrc, sample_rate=16000, clip_samples=16000, train=False, multilabel=False)
    assert ids[6]["wave"].shape == (16000,)  # row 0 of the 0.5 s pack, padded


def test_ast_json_and_weights(tiny_root, tmp_path):
    from data_tools.gen_weight_file import main as weight_main
    from data_tools.make_ast_json import main as json_main

    out = tmp_path / "datafiles" / "train.json"
    assert json_main(["--format", "layout", "--root", str(tiny_root), "--split", "train", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    layout = layout_source(tiny_root, "train")
    assert len(doc["data"]) == len(layout.clips)
    assert all(e["labels"].startswith("/syn/") for e in doc["data"])  # the layout csv's mids
    src = ast_json_source(out, label_csv=out.with_name("class_labels_indices.csv"))
    assert src.classes == layout.classes
    assert [c.labels for c in src.clips] == [c.labels for c in layout.clips]
    # weights: 1000 / (count + 0.01) per label, summed per clip; one float per line, AST's file name
    assert weight_main([str(out)]) == 0
    wfile = out.with_name("train_weight.csv")
    w = np.loadtxt(wfile)
    counts = src.targets().sum(0)
    expected = src.targets().astype(float) @ (1000.0 / (counts + 0.01))
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert len(wfile.read_text().splitlines()) == len(src.clips)
    # a multi-label datafile: weights add up over a clip's labels
    doc = {"data": [{"wav": "a.wav", "labels": "m0"}, {"wav": "b.wav", "labels": "m0,m1"}]}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / "class_labels_indices.csv").write_text("index,mid,display_name\n0,m0,zero\n1,m1,one\n")
    assert weight_main([str(tmp_path / "m.json")]) == 0
    np.testing.assert_allclose(np.loadtxt(tmp_path / "m_weight.csv"), [1000 / 2.01, 1000 / 2.01 + 1000 / 1.01])


def test_ags_labels_from_xlsx(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("openpyxl")
    from data_tools.ags_labels import main

    ags = tmp_path / "AGS_label.xlsx"
    long = pd.DataFrame({"index": [1, 2, 3, 4],
                         "slice_file_name": ["07TCM-18-1.wav", "0BX9N-13-1.wav", "0BX9N-18-1.wav", "1375X-7-1.wav"],
                         "classID": [18, 13, 18, 7], "class": ["person", "bag", "person", "television"],
                         "video_name": ["07TCM", "0BX9N", "0BX9N", "1375X"]})
    with pd.ExcelWriter(ags) as w:
        long.to_excel(w, sheet_name="labels", index=False)
    new = tmp_path / "New_label.xlsx"
    with pd.ExcelWriter(new) as w:
        # wide: one column per added label, cells are audio names
        pd.DataFrame({"door": ["07TCM-18-1.wav", "1375X-7-1.wav"], "water": ["0BX9N-13-1.wav", None]}).to_excel(
            w, sheet_name="added", index=False)
        # one column: the sheet's name is the label
        pd.DataFrame({"audio": ["0BX9N-18-1.wav"]}).to_excel(w, sheet_name="light", index=False)
    out = tmp_path / "AGS"
    assert main([str(ags), str(new), "--out", str(out), "--split", "train"]) == 0
    v2g = json.loads((out / "train" / "vid2genre.json").read_text())
    assert v2g == {"07TCM-18-1": ["person", "door"], "0BX9N-13-1": ["bag", "water"], "0BX9N-18-1": ["person", "light"],
                   "1375X-7-1": ["television", "door"]}
    rows = (out / "class_labels_indices.csv").read_text().splitlines()
    assert rows[0] == "index,mid,display_name"
    assert rows[1:4] == ["0,7,television", "1,13,bag", "2,18,person"]  # class ids as mids, in id order
    assert {r.split(",")[2] for r in rows[4:]} == {"door", "light", "water"}
    # the result is a valid layout root for the tagging task
    (out / "train" / "audio").mkdir()
    for vid in v2g:
        make_wav(out / "train" / "audio" / f"{vid}.wav", 440.0, 16000, duration=0.2)
    src = open_source("layout", out, "train")
    assert src.is_multilabel and len(src.clips) == 4
    # hash splits and the audio-dir filter
    assert main([str(ags), "--out", str(tmp_path / "S"), "--splits", "train=0.5,val=0.5",
                 "--audio-dir", str(out / "train" / "audio")]) == 0
    n = sum(len(json.loads((tmp_path / "S" / s / "vid2genre.json").read_text()))
            for s in ("train", "val") if (tmp_path / "S" / s).is_dir())
    assert n == 4
    bad = tmp_path / "bad.xlsx"
    pd.DataFrame({"name": ["a.wav"], "x": [1], "Unnamed: 2": [3]}).to_excel(bad, index=False)
    assert main([str(bad), "--out", str(tmp_path / "B")]) == 2


def test_fbank_stats_matches_direct_computation(tone_folders, tmp_path, capsys):
    from avcorr.models.tagging_audio import KaldiFbank
    from data_tools.fbank_stats import fbank_stats, main

    src = open_source("folder", tone_folders, "train", val_fraction=0.0)
    res = fbank_stats(src, n_mels=32, n_frames=40)
    fb = KaldiFbank(16000, 32, 40)
    ds = TaggingDataset(src, sample_rate=16000, clip_samples=fb.min_samples_for_all_frames, train=False,
                        multilabel=True)
    vals = []
    for i in range(len(ds)):
        item = ds[i]
        if item["wave"] is not None:
            vals.append(fb.pad_or_crop(fb.fbank(item["wave"][None])).double().reshape(-1))
    allv = torch.cat(vals)
    assert res["clips"] == 6 and res["skipped_clips"] == 1
    assert res["norm_mean"] == pytest.approx(float(allv.mean()), rel=1e-9)
    assert res["norm_std"] == pytest.approx(float(allv.std()), rel=1e-9)
    assert main(["--format", "folder", "--root", str(tone_folders), "--val-fraction", "0", "--n-mels", "32",
                 "--n-frames", "40", "--no-progress", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["norm_mean"] == pytest.approx(res["norm_mean"])


def test_make_folder_dataset_cli(tiny_root, tmp_path):
    from data_tools.make_folder_dataset import main

    out = tmp_path / "f"
    assert main([str(tiny_root), str(out)]) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(layout_source(tiny_root, "train").classes)
    assert main([str(tiny_root), str(out)]) == 2  # exists
