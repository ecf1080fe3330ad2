"""End-to-end localization: train a tiny AVOL-Net / contrastive localizer, evaluate, write heatmap
pictures and an MP4 whose audio track is kept (checked with ffprobe)."""

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest

from avcorr import evaluate, localize, train
from avcorr.config import load_config
from avcorr.tasks import build_task
from tests.conftest import TINY_AVC
from tests.media import make_truncated, make_wav

pytestmark = pytest.mark.ffmpeg

TINY_LOC = [o for o in TINY_AVC if not o.startswith(("model.name=", "avc.", "train.epochs="))]
TINY_LOC += ["model.width=null", "model.embed_dim=null", "train.epochs=1", "localization.train_pairs_per_clip=1"]
LOC_KEYS = ("ciou@0.5", "auc_ciou", "ciou_mean", "fixed/ciou@0.5", "fixed/auc_ciou", "center/ciou@0.5",
            "center/auc_ciou", "center/fixed/ciou@0.5")


def _train(root, run, config, model):
    args = ["--config", config, "--no-progress", f"data.root={root}", f"train.out_dir={run}", *TINY_LOC,
            f"model.name={model}"]
    assert train.main(args) == 0
    return run / "checkpoints" / "best.pt"


def _streams(path):
    res = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True)
    return {s["codec_type"]: float(s.get("duration", "nan")) for s in json.loads(res.stdout)["streams"]}


@pytest.fixture(scope="module")
def avol_ckpt(tiny_root, tmp_path_factory):
    return _train(tiny_root, tmp_path_factory.mktemp("runs") / "avol", "avolnet.py", "test_avolnet")


def test_avolnet_trains_and_evaluates_with_ciou(avol_ckpt, tiny_root):
    run = avol_ckpt.parents[1]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert len(val) == 1
    for k in (*LOC_KEYS, "avc_acc", "loss"):
        assert k in val[0], k
    assert 0.0 <= val[0]["ciou@0.5"] <= 1.0 and 0.0 <= val[0]["auc_ciou"] <= 1.0
    assert val[0]["num_clips"] == 6 and val[0]["num_boxed"] == 6  # 3 classes x 2 val clips, all boxed
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert sorted(events.Tags()["images"]) == [f"val/localization/{i}" for i in range(4)]  # overlays in TensorBoard
    image = events.Images("val/localization/0")[0]
    assert image.width > image.height  # the frame with its colour bar on the right
    assert evaluate.main(["--checkpoint", str(avol_ckpt), "--split", "test", "--workers", "0", "--no-progress"]) == 0
    result = json.loads((avol_ckpt.parent / "eval_test.json").read_text())
    assert result["split"] == "test" and all(k in result for k in LOC_KEYS) and "avc_acc" in result
    assert result["num_boxed"] == 6 and result["skipped_clips"] == 0


def _read_png(path):
    """Read back with Pillow: OpenCV's PNG decoder breaks in a process that imported decord (its
    bundled zlib 1.2.3 shadows OpenCV's: "libpng error: bad parameters to zlib")."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _mp4_frames(path):
    """The RGB frames (N, H, W, 3) of an MP4, decoded by ffmpeg."""
    res = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in res.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def test_localize_writes_pngs_and_mp4_keeping_audio(avol_ckpt, tiny_root, tmp_path):
    video = sorted((tiny_root / "test" / "video").glob("*.mp4"))[0]
    out = tmp_path / "out"
    assert localize.main(["--checkpoint", str(avol_ckpt), "--video", str(video), "--out", str(out), "--frames", "3",
                          "--no-progress"]) == 0
    pngs = sorted(out.glob("frame_*.png"))
    assert len(pngs) == 3
    img = _read_png(pngs[0])
    # 48 px enlarged x6 to a short side >= 256, then a colour bar on the right and a caption below
    assert img.shape[0] > 288 and img.shape[1] > 288
    caption = img[288:]
    assert (caption.max(axis=-1) > 200).any() and np.median(caption) < 40  # white text on black
    assert not np.array_equal(caption, _read_png(pngs[1])[288:])  # another time, another caption
    mp4 = out / f"{video.stem}_heatmap.mp4"
    decoded = _mp4_frames(mp4)
    first, last = decoded[0], decoded[-1]
    assert first.shape[0] == img.shape[0] // 2 * 2 and first.shape[1] == img.shape[1] // 2 * 2
    band = first[290:]  # the caption is burned into the video too, and its time moves on
    assert (band.max(axis=-1) > 180).sum() > 20 and np.median(band) < 40
    assert np.abs(band.astype(int) - last[290:].astype(int)).max() > 100
    streams = _streams(mp4)
    assert set(streams) == {"video", "audio"}
    assert streams["video"] == pytest.approx(2.0, abs=0.15) and streams["audio"] == pytest.approx(2.0, abs=0.15)
    assert not list(out.glob(".*"))  # no temporary files left

    # another sound in the same video: the MP4 plays that sound (shorter than the clip: it is looped for the maps)
    other = make_wav(tmp_path / "other.wav", 880.0, 22050, duration=0.7)
    out2 = tmp_path / "out2"
    assert localize.main(["--checkpoint", str(avol_ckpt), "--video", str(video), "--audio", str(other), "--out",
                          str(out2), "--frames", "2", "--no-progress"]) == 0
    assert len(list(out2.glob("frame_*.png"))) == 2
    streams = _streams(out2 / f"{video.stem}_heatmap.mp4")
    assert set(streams) == {"video", "audio"} and streams["audio"] == pytest.approx(0.7, abs=0.1)


def test_localize_grid_contact_sheet(avol_ckpt, tmp_path):
    assert localize.main(["--checkpoint", str(avol_ckpt), "--grid", "--split", "test", "--max-clips", "4",
                          "--columns", "2", "--out", str(tmp_path)]) == 0
    img = _read_png(tmp_path / "grid_test.png")
    assert img.shape[1] > img.shape[0] > 100  # 2 rows of 2 clips x (frame, heatmap)
    # the LVS protocol outlines other pixels than the fixed threshold, and a per-frame scale other colours
    assert localize.main(["--checkpoint", str(avol_ckpt), "--grid", "--split", "test", "--max-clips", "4",
                          "--columns", "2", "--protocol", "lvs", "--scale", "frame", "--out", str(tmp_path / "b")]) == 0
    other = _read_png(tmp_path / "b" / "grid_test.png")
    assert other.shape == img.shape and not np.array_equal(other, img)


def test_localize_grid_names_its_skipped_clips(avol_ckpt, tiny_copy, tmp_path, capsys):
    videos = sorted((tiny_copy / "test" / "video").glob("*.mp4"))
    videos[0].write_bytes(b"not a video" * 50)
    videos[1].unlink()  # no video file: skipped before loading
    out = tmp_path / "grid"
    assert localize.main(["--checkpoint", str(avol_ckpt), "--grid", "--data", str(tiny_copy), "--split", "test",
                          "--max-clips", "16", "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert f"skipped clip {videos[0].stem}" in err and videos[1].stem in err and "skipped.csv" in err
    with open(out / "skipped.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {videos[0].stem, videos[1].stem}
    assert rows[videos[0].stem]["path"] == str(videos[0]) and "not a readable" in rows[videos[0].stem]["reason"]
    assert rows[videos[1].stem]["path"].endswith(f"{videos[1].stem}.wav") and rows[videos[1].stem]["reason"] == \
        "no video file"
    assert (out / "grid_test.png").is_file()


def test_localize_rejects_a_video_without_audio(avol_ckpt, tmp_path, capsys):
    from tests.media import make_video

    silent = make_video(tmp_path / "silent.mp4", duration=1.0, fps=8, size=(48, 48), audio_sr=None)
    assert localize.main(["--checkpoint", str(avol_ckpt), "--video", str(silent), "--out", str(tmp_path / "o"),
                          "--no-progress"]) == 2
    assert "silent.mp4" in capsys.readouterr().err


def test_contrastive_localizer_is_one_switch_away(tiny_root, tmp_path):
    ckpt = _train(tiny_root, tmp_path / "ez", "avolnet.py", "test_ezvsl")
    result = evaluate.evaluate_checkpoint(ckpt, "val", num_workers=0)
    assert all(k in result for k in LOC_KEYS) and "avc_acc" not in result
    assert np.isfinite(result["loss"])


def test_bad_eval_clip_is_skipped_counted_and_named(avol_ckpt, tiny_copy, tmp_path, capsys):
    video = sorted((tiny_copy / "test" / "video").glob("*.mp4"))[0]
    make_truncated(video, video.with_suffix(".tmp"), 0.05)
    video.with_suffix(".tmp").replace(video)
    (tiny_copy / "test" / "audio" / f"{video.stem}.wav").unlink()
    result = evaluate.evaluate_checkpoint(avol_ckpt, "test", data_root=str(tiny_copy), num_workers=0)
    assert result["skipped_clips"] == 1 and result["num_clips"] == 5 and result["num_boxed"] == 5
    [row] = result["skipped_list"]
    assert row["id"] == video.stem and row["path"] == str(video) and row["reason"]
    # the command names it on screen and in eval_test_skipped.csv beside eval_test.json
    ckpt = tmp_path / "best.pt"
    shutil.copy(avol_ckpt, ckpt)
    assert evaluate.main(["--checkpoint", str(ckpt), "--split", "test", "--data", str(tiny_copy), "--workers", "0",
                          "--no-progress"]) == 0
    out = capsys.readouterr()
    assert f"skipped {video.stem} ({video}): " in out.out and f"skipped clip {video.stem}" in out.err
    with open(tmp_path / "eval_test_skipped.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [row]
    assert json.loads((tmp_path / "eval_test.json").read_text())["skipped_list"] == [row]


def test_selection_metric_falls_back_to_loss_without_boxes(tiny_copy):
    cfg = load_config("avolnet.py", [f"data.root={tiny_copy}"])
    assert build_task(cfg).main_metric == "fixed/auc_ciou" and build_task(cfg).higher_is_better
    (tiny_copy / "val" / "boxes.json").unlink()
    task = build_task(cfg)
    assert task.main_metric == "loss" and not task.higher_is_better
