"""`python -m avcorr.retrieve index/query` and `evaluate --retrieval` on the tiny synthetic dataset."""

import csv
import json
import shutil

import pytest
import torch

faiss = pytest.importorskip("faiss")
faiss.omp_set_num_threads(1)

from avcorr import evaluate, retrieve  # noqa: E402
from avcorr.config import config_to_dict, load_config  # noqa: E402
from avcorr.data import decode  # noqa: E402
from avcorr.engine.checkpoint import save_checkpoint  # noqa: E402
from avcorr.retrieval import CELLS, RetrievalIndex  # noqa: E402
from avcorr.tasks import build_task  # noqa: E402
from tests.conftest import TINY_AVC  # noqa: E402
from tests.media import make_wav  # noqa: E402

pytestmark = pytest.mark.ffmpeg


def _checkpoint(path, root, *extra, seed=0):
    """An untrained tiny checkpoint in the layout avcorr.train writes."""
    cfg = load_config("avenet.py", [f"data.root={root}", *TINY_AVC, *extra])
    torch.manual_seed(seed)
    model = build_task(cfg).build_model()
    save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict(), "epoch": 0}, path)
    return path


@pytest.fixture(scope="module")
def built(tiny_root, tmp_path_factory):
    """(checkpoint, index folder) built once: test split, one frame per clip."""
    tmp = tmp_path_factory.mktemp("retrieve")
    ckpt = _checkpoint(tmp / "ckpt.pt", tiny_root)
    idx = tmp / "idx"
    assert retrieve.main(["index", "--checkpoint", str(ckpt), "--data", str(tiny_root), "--split", "test",
                          "--out", str(idx), "--frames", "1", "--no-progress", "--device", "cpu"]) == 0
    return ckpt, idx


def _query(capsys, *args):
    rc = retrieve.main(["query", "--device", "cpu", *map(str, args)])
    return rc, capsys.readouterr()


def test_index_contents(built, tiny_root):
    ckpt, idx = built
    v2g = json.loads((tiny_root / "test" / "vid2genre.json").read_text())
    index = RetrievalIndex.load(idx)
    assert sorted(index.ids) == sorted(v2g) and index.dim == 16
    assert index.info["model"] == "test_avenet" and index.info["checkpoint"] == str(ckpt.resolve())
    assert index.info["embedding"] == {"frames": 1, "pool": "mean", "image_size": 32, "sample_rate": 16000,
                                       "seconds": 1.0, "cells": True}  # avenet.py: visual_pool='cells'
    assert index.layouts[CELLS] == (1, 4) and index.indexes[CELLS].ntotal == 4 * len(v2g)  # 32 px: 2 x 2 cells
    assert json.loads((idx / "index.json").read_text())["version"] == 2
    assert index.info["sources"][0]["split"] == "test" and index.info["sources"][0]["clips"] == len(v2g)
    assert index.info["sources"][0]["skipped_list"] == [] and (idx / "skipped.csv").read_text() == "id,path,reason\n"
    for it in index.items:
        assert it["labels"] == [v2g[it["id"]]] and it["video"].endswith(f"{it['id']}.mp4")


def _clip(index, i=2):
    it = index.items[i]
    return it["id"], it["video"], it["time"], it["audio"]


def test_image_query_round_trip(built, tmp_path, capsys):
    from torchvision.io import write_png

    ckpt, idx = built
    index = RetrievalIndex.load(idx)
    vid, video, t, _ = _clip(index)
    frame = decode.read_frames(video, [t])[0]  # the very frame the index embedded for this clip
    write_png(frame, str(tmp_path / "q.png"))
    rc, out = _query(capsys, "--index", idx, "--image", tmp_path / "q.png", "--target", "visual", "--k", "4",
                     "--json", tmp_path / "r.json")
    assert rc == 0, out.err
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["query"] == {"file": str(tmp_path / "q.png"), "modality": "visual", "target": "visual"}
    hits = res["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert hits[0]["id"] == vid and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
    assert hits[0]["labels"] == index.items[index.position(vid)]["labels"]
    assert vid in out.out and "rank" in out.out
    # default target of a picture is the audio gallery (cross-modal)
    rc, out = _query(capsys, "--index", idx, "--image", tmp_path / "q.png", "--k", "2", "--json", tmp_path / "r2.json")
    assert rc == 0 and json.loads((tmp_path / "r2.json").read_text())["query"]["target"] == "audio"
    (tmp_path / "bad.jpg").write_text("not a picture")
    rc, out = _query(capsys, "--index", idx, "--image", tmp_path / "bad.jpg")
    assert rc == 2 and "bad.jpg: not a readable image" in out.err


def test_audio_query_round_trip(built, tmp_path, capsys):
    ckpt, idx = built
    index = RetrievalIndex.load(idx)
    vid, _, t, audio = _clip(index, 4)
    window = decode.read_audio(audio, t - 0.5, 1.0, 16000).numpy()  # the window the index embedded
    make_wav(tmp_path / "q.wav", window, 16000, subtype="FLOAT")
    rc, out = _query(capsys, "--index", idx, "--audio", tmp_path / "q.wav", "--target", "audio", "--k", "3",
                     "--json", tmp_path / "r.json")
    assert rc == 0, out.err
    hits = json.loads((tmp_path / "r.json").read_text())["hits"]
    assert hits[0]["id"] == vid and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    rc, out = _query(capsys, "--index", idx, "--audio", tmp_path / "q.wav", "--k", "3", "--json", tmp_path / "x.json")
    res = json.loads((tmp_path / "x.json").read_text())
    assert rc == 0 and res["query"]["target"] == "visual" and len(res["hits"]) == 3


def test_video_query_with_contact_sheet(built, tmp_path, capsys):
    import matplotlib.image

    ckpt, idx = built
    index = RetrievalIndex.load(idx)
    vid, video, _, _ = _clip(index, 1)
    rc, out = _query(capsys, "--index", idx, "--video", video, "--target", "visual", "--k", "5",
                     "--sheet", tmp_path / "sheet.png", "--json", tmp_path / "r.json")
    assert rc == 0, out.err
    assert json.loads((tmp_path / "r.json").read_text())["hits"][0]["id"] == vid
    img = matplotlib.image.imread(tmp_path / "sheet.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05  # frames were drawn, not an empty canvas


def _pale(img):
    """Pixels near the top of the spectrogram colour map (a loud tone's row)."""
    return int(((img[..., 0] > 0.9) & (img[..., 1] > 0.85) & (img[..., 2] > 0.6) & (img[..., 2] < 0.85)).sum())


def test_audio_hits_are_drawn_as_labelled_spectrograms(built, tmp_path, capsys):
    import matplotlib.image

    _, idx = built
    index = RetrievalIndex.load(idx)
    _, _, _, audio = _clip(index, 2)
    sheets = {}
    for target in ("audio", "visual"):
        sheets[target] = tmp_path / f"{target}.png"
        rc, out = _query(capsys, "--index", idx, "--audio", audio, "--target", target, "--k", "3",
                         "--sheet", sheets[target])
        assert rc == 0, out.err
    spec, frames = (matplotlib.image.imread(sheets[t])[..., :3] for t in ("audio", "visual"))
    # the tiny clips are tones: their spectrograms have bright lines; the query is audio on both sheets
    assert _pale(spec) > 2 * max(_pale(frames), 1)


def test_sheet_spectrogram_places_the_tone_and_names_unreadable_audio(tmp_path, caplog):
    import matplotlib.image

    from avcorr.inference.retrieval import contact_sheet

    q = make_wav(tmp_path / "q.wav", 1000.0, 16000, duration=0.5)
    hit = {"rank": 1, "id": "x", "score": 0.5, "labels": ["a"], "video": None, "time": None, "position": 0}
    result = {"query": {"file": str(q), "modality": "audio", "target": "audio"}, "preview": None,
              "hits": [{**hit, "audio": str(q)}, {**hit, "rank": 2, "id": "gone", "audio": str(tmp_path / "no.wav")}]}
    out = contact_sheet(result, tmp_path / "sheet.png", cols=3)
    img = matplotlib.image.imread(out)[..., :3]
    assert _pale(img) > 0
    assert "gone" in caplog.text


def test_other_model_or_dimension_is_refused(built, tiny_root, tmp_path, capsys):
    _, idx = built
    other = _checkpoint(tmp_path / "l3.pt", tiny_root, "model.name=test_l3net", "model.kwargs={}")
    rc, out = _query(capsys, "--index", idx, "--image", tiny_root / "class_labels_indices.csv", "--checkpoint", other)
    assert rc == 2 and "another model" in out.err and "'test_l3net'" in out.err
    small = _checkpoint(tmp_path / "d8.pt", tiny_root, "model.embed_dim=8")
    audio = RetrievalIndex.load(idx).items[0]["audio"]
    rc, out = _query(capsys, "--index", idx, "--audio", audio, "--checkpoint", small)
    assert rc == 2 and "embed_dim: index has 16, " in out.err
    retrained = _checkpoint(tmp_path / "w.pt", tiny_root, seed=1)  # same model, other weights
    rc, out = _query(capsys, "--index", idx, "--audio", audio, "--checkpoint", retrained)
    assert rc == 2 and "weights_sha256" in out.err


def test_corrupt_index_is_a_clear_error(built, tmp_path, capsys):
    _, idx = built
    bad = tmp_path / "bad"
    shutil.copytree(idx, bad)
    raw = bytearray((bad / "audio.faiss").read_bytes())
    raw[100:120] = bytes(20)
    (bad / "audio.faiss").write_bytes(bytes(raw))
    audio = RetrievalIndex.load(idx).items[0]["audio"]
    rc, out = _query(capsys, "--index", bad, "--audio", audio)
    assert rc == 2 and "audio.faiss" in out.err and "corrupt" in out.err
    (bad / "index.json").write_text((idx / "index.json").read_text()[:200])
    rc, out = _query(capsys, "--index", bad, "--audio", audio)
    assert rc == 2 and "index.json" in out.err and "not valid JSON" in out.err
    rc, out = _query(capsys, "--index", tmp_path / "nothing", "--audio", audio)
    assert rc == 2 and "index folder not found" in out.err


def test_append_and_bad_clips(built, tiny_copy, tmp_path, capsys):
    ckpt, idx = built
    out = tmp_path / "idx"
    shutil.copytree(idx, out)
    base = ["index", "--checkpoint", str(ckpt), "--data", str(tiny_copy), "--out", str(out), "--no-progress",
            "--device", "cpu"]
    # an existing index is not overwritten by accident
    assert retrieve.main([*base, "--split", "test", "--frames", "1"]) == 2
    assert "already holds an index" in capsys.readouterr().err
    # other embedding settings cannot be mixed into one index
    assert retrieve.main([*base, "--split", "val", "--frames", "3", "--append"]) == 2
    assert "frames=1" in capsys.readouterr().err
    # break one val clip: it is skipped, logged and counted, the others are appended
    v2g = json.loads((tiny_copy / "val" / "vid2genre.json").read_text())
    broken = sorted(v2g)[0]
    (tiny_copy / "val" / "video" / f"{broken}.mp4").write_bytes(b"\x00not a video" * 40)
    assert retrieve.main([*base, "--split", "val", "--frames", "1", "--append"]) == 0
    captured = capsys.readouterr()
    index = RetrievalIndex.load(out)
    n_test = len(json.loads((tiny_copy / "test" / "vid2genre.json").read_text()))
    assert len(index) == n_test + len(v2g) - 1 and broken not in index.ids
    broken_path = str(tiny_copy / "val" / "video" / f"{broken}.mp4")
    source = index.info["sources"][-1]
    assert {k: v for k, v in source.items() if k != "skipped_list"} == {
        "root": str(tiny_copy.resolve()), "split": "val", "clips": len(v2g) - 1, "skipped": 1}
    # the skipped clip is named with its file and reason: on screen, in index.json and in OUT/skipped.csv
    [row] = source["skipped_list"]
    assert row["id"] == broken and row["path"] == broken_path and "not a readable" in row["reason"]
    assert f"skipped clip {broken}: " in captured.err
    assert f"(1 skipped, listed in {out / 'skipped.csv'})" in captured.out
    with open(out / "skipped.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [row]


def test_evaluate_with_retrieval(tiny_copy, tmp_path):
    (tiny_copy / "test" / "visible.json").unlink()  # a dataset that says nothing of silent objects
    ckpt = _checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", tiny_copy)
    v2g = json.loads((tiny_copy / "test" / "vid2genre.json").read_text())
    names = sorted(set(v2g.values()))
    onto = [{"id": "/t/top", "name": "Top", "child_ids": ["/t/a", "/t/b"]},
            {"id": "/t/a", "name": "A", "child_ids": [f"/t/{n}" for n in names[:2]]},
            {"id": "/t/b", "name": "B", "child_ids": [f"/t/{n}" for n in names[2:]]}]
    onto += [{"id": f"/t/{n}", "name": n, "child_ids": []} for n in names]
    (tiny_copy / "ontology.json").write_text(json.dumps(onto))
    assert evaluate.main(["--checkpoint", str(ckpt), "--split", "test", "--workers", "0", "--no-progress",
                          "--retrieval", "--retrieval-frames", "2", "--device", "cpu"]) == 0
    res = json.loads((ckpt.parent / "eval_test.json").read_text())
    n = len(v2g)
    assert res["retrieval/num_clips"] == n and res["retrieval/skipped_clips"] == 0
    assert res["retrieval/chance_recall@10"] == min(1.0, 10 / n)
    assert res["retrieval/cross_modal_scoring"] == "best_cell"  # avenet.py: visual_pool='cells'
    for d in ("a2v", "v2a", "a2a", "v2v"):
        for key in ("recall@1", "recall@5", "recall@10", "map@10", "ndcg@10", "ndcg@30", "ndcg_graded@10"):
            assert 0.0 <= res[f"{d}/{key}"] <= 1.0, (d, key)
        assert 1 <= res[f"{d}/median_rank"] <= n
    assert res["a2v/recall@10"] == 1.0  # the gallery has fewer than 10 clips
    assert "avc_acc" in res  # the usual metrics are still there
    assert not any(k.startswith("ceiling/a2v/") for k in res)  # no visible.json: no retrieval ceiling


def test_evaluate_with_retrieval_reports_the_class_level_ceiling_of_silent_objects(tiny_copy, tmp_path):
    ckpt = _checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", tiny_copy)
    v2g = json.loads((tiny_copy / "test" / "vid2genre.json").read_text())
    names = sorted(set(v2g.values()))
    # every frame shows every class (one sounds): a class-level model cannot find the sounding one
    (tiny_copy / "test" / "visible.json").write_text(json.dumps({vid: names for vid in v2g}))
    assert evaluate.main(["--checkpoint", str(ckpt), "--split", "test", "--workers", "0", "--no-progress",
                          "--retrieval", "--retrieval-frames", "1", "--device", "cpu"]) == 0
    res = json.loads((ckpt.parent / "eval_test.json").read_text())
    assert res["ceiling/avc_acc"] == 0.5  # every negative's class is drawn in the frame
    for d in ("a2v", "v2a"):
        assert 0.0 < res[f"ceiling/{d}/class_recall@1"] < 1.0 and 0.0 < res[f"ceiling/{d}/ndcg@10"] < 1.0
        assert res[f"ceiling/{d}/class_recall@10"] == 1.0  # 6 clips: every class is in the top 10
