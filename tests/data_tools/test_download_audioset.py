"""AudioSet downloader: csv quirks, class choice, and downloads from a local HTTP server (never YouTube).

The server (127.0.0.1, a thread) serves ffmpeg-made mp4 files as ``/media/<id>.mp4`` with range
requests; yt-dlp's generic extractor takes these direct links through the same
``download_ranges`` + ``force_keyframes_at_cuts`` path as YouTube. The server can answer 429 a few
times, 404 for unknown ids, and stall midway through a file (to kill a run in the middle).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from avcorr.data.layout import validate
from data_tools import download_audioset as dl
from data_tools import split as split_tool
from data_tools._audioset import (
    Segment,
    UnknownClassError,
    format_segments_csv,
    parse_class_list,
    read_class_labels_csv,
    read_genre_file,
    read_segments,
    select_segments,
)
from tests.media import frame_index, make_video

pytestmark = pytest.mark.ffmpeg

REPO = Path(__file__).resolve().parents[2]

CLASS_CSV = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/04rlf,"Music"
2,/m/042v_gx,"Acoustic guitar"
3,/m/0342h,"Guitar"
4,/m/07y_7,"Violin, fiddle"
5,/m/05148p4,"Keyboard (musical)"
"""

SEGMENTS_CSV = """# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=7, num_segs=7, num_unique_labels=4, num_positive_labels=9
# YTID, start_seconds, end_seconds, positive_labels
-lead_Ab1, 1.300, 3.300, "/m/04rlf,/m/07y_7"
multi_01, 0.000, 2.000, "/m/0342h,/m/07y_7,/m/09x0r"
speech_only, 0.000, 2.000, "/m/09x0r"
missing_1, 0.000, 2.000, "/m/0342h"
bad/..x, 0.000, 2.000, "/m/0342h"
.., 0.000, 2.000, "/m/0342h"
slow429, 0.500, 2.500, "/m/0342h"
always429, 0.000, 2.000, "/m/0342h"
late, 10.000, 12.000, "/m/07y_7"
"""


# ----------------------------------------------------------------------------------------------
# A local media server


class MediaServer:
    """Serves ``folder/<id>.mp4`` at ``/media/<id>.mp4`` on 127.0.0.1 and records every request."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, str]] = []  # (time, id, method)
        self.answer_429: dict[str, int] = {}  # id -> 429 answers left (-1: always)
        self.stall: dict[str, threading.Event] = {}  # id -> GETs after the first stall midway until set
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool):
                match = re.fullmatch(r"/media/(.+)\.mp4", unquote(self.path.split("?")[0]))
                vid = match.group(1) if match else ""
                with server.lock:
                    server.requests.append((time.monotonic(), vid, self.command))
                    n_get = sum(1 for _, v, m in server.requests if v == vid and m == "GET")
                    left = server.answer_429.get(vid, 0)
                    if left > 0:
                        server.answer_429[vid] = left - 1
                path = server.folder / f"{vid}.mp4"
                if left != 0:
                    return self._status(429, "Too Many Requests")
                if not match or "/" in vid or not path.is_file():
                    return self._status(404, "Not Found")
                data = path.read_bytes()
                start, end = 0, len(data) - 1
                ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if ranged:
                    start = int(ranged.group(1))
                    end = min(int(ranged.group(2) or end), end)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                if not body:
                    return
                chunk = data[start:end + 1]
                stall = server.stall.get(vid)
                try:
                    if stall is not None and n_get > 1:
                        self.wfile.write(chunk[: len(chunk) // 2])
                        self.wfile.flush()
                        stall.wait(30)
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _status(self, code: int, text: str):
                payload = text.encode()
                self.send_response(code, text)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # clients hang up early; that is fine
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url_template = f"http://127.0.0.1:{self.httpd.server_address[1]}/media/{{id}}.mp4"

    def count(self, vid: str, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for _, v, m in self.requests if v == vid and (method is None or m == method))

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def close(self) -> None:
        for event in self.stall.values():
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def source_mp4(tmp_path_factory) -> Path:
    """4 s, 10 fps, a key frame every 4 s (so a cut at 1.3 s is not at a key frame), AAC 22.05 kHz."""
    return make_video(tmp_path_factory.mktemp("src") / "src.mp4", duration=4.0, fps=10, size=(64, 48),
                      audio_sr=22050, gop=40)


@pytest.fixture()
def server(tmp_path, source_mp4):
    folder = tmp_path / "served"
    folder.mkdir()
    for vid in ("-lead_Ab1", "multi_01", "speech_only", "slow429", "always429", "late", "clip_a", "clip_b",
                "clip_c"):
        shutil.copy(source_mp4, folder / f"{vid}.mp4")
    srv = MediaServer(folder)
    yield srv
    srv.close()


@pytest.fixture()
def inputs(tmp_path) -> tuple[Path, Path]:
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text(CLASS_CSV)
    segments = tmp_path / "segments.csv"
    segments.write_text(SEGMENTS_CSV)
    return segments, labels


def _args(segments: Path, labels: Path, out: Path, server: MediaServer, *extra: str) -> list[str]:
    return ["--segments", str(segments), "--labels", str(labels), "--out", str(out),
            "--url-template", server.url_template, "--sr", "16000", "--fps", "20", "--min-interval", "0",
            "--retries", "2", "--backoff", "0.05", "--socket-timeout", "10", "--no-progress", "--quiet", *extra]


def _failed(out: Path) -> dict[str, str]:
    with open(out / "failed.csv", newline="") as f:
        return {row["id"]: row["reason"] for row in csv.DictReader(f)}


def _ffprobe(path: Path) -> dict:
    proc = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                           str(path)], capture_output=True, check=True)
    return json.loads(proc.stdout)


def _first_frames(path: Path, n: int = 2) -> list[int]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", str(n), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 48, 64, 3)
    return [frame_index(f) for f in frames]


def _wav_facts(path: Path) -> tuple[int, int, int]:
    import wave

    with wave.open(str(path)) as w:
        return w.getnchannels(), w.getframerate(), w.getnframes()


# ----------------------------------------------------------------------------------------------
# csv parsing and class choice (no network)


def test_read_segments_quirks(tmp_path, caplog):
    path = tmp_path / "seg.csv"
    path.write_text(SEGMENTS_CSV + "broken_row, 1.0\nbackwards, 5.0, 2.0, \"/m/0342h\"\n"
                    "nolabel, 0.0, 1.0, \"\"\nbad_quote, 0.0, 1.0, \"/m/0342h\n")
    with caplog.at_level("WARNING"):
        rows = read_segments(path)
    assert [r.ytid for r in rows][:3] == ["-lead_Ab1", "multi_01", "speech_only"]
    assert len(rows) == 9
    assert rows[0] == Segment("-lead_Ab1", 1.3, 3.3, ("/m/04rlf", "/m/07y_7"), f"{path}:4")
    assert rows[1].labels == ("/m/0342h", "/m/07y_7", "/m/09x0r")
    assert {r.ytid for r in rows}.isdisjoint({"broken_row", "backwards", "nolabel", "bad_quote"})
    first_bad = len(SEGMENTS_CSV.splitlines()) + 1
    assert "4 malformed rows skipped" in caplog.text and f"{path}:{first_bad}:" in caplog.text
    assert "unbalanced double quote" in caplog.text
    # round trip through the writer; an uncommented header line is accepted too
    again = tmp_path / "again.csv"
    again.write_text("YTID, start_seconds, end_seconds, positive_labels\n" + format_segments_csv(rows))
    assert [(r.ytid, r.start, r.end, r.labels) for r in read_segments(again)] == \
        [(r.ytid, r.start, r.end, r.labels) for r in rows]
    empty = tmp_path / "empty.csv"
    empty.write_text("# only comments\n")
    with pytest.raises(ValueError, match="no valid segment row"):
        read_segments(empty)


def test_class_choice(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(CLASS_CSV)
    classes = read_class_labels_csv(path)
    assert classes[4].display_name == "Violin, fiddle" and classes[4].mid == "/m/07y_7"
    names = lambda chosen: [c.display_name for c in chosen]  # noqa: E731
    assert names(parse_class_list("Guitar,Violin, fiddle", classes)) == ["Guitar", "Violin, fiddle"]
    assert names(parse_class_list("violin,fiddle , /m/09x0r,Guitar,", classes)) == ["Violin, fiddle", "Speech",
                                                                                    "Guitar"]
    assert names(parse_class_list("Keyboard (musical),Acoustic guitar", classes)) == ["Keyboard (musical)",
                                                                                      "Acoustic guitar"]
    with pytest.raises(UnknownClassError, match="'Gitar'.*did you mean 'Guitar'"):
        parse_class_list("Violin, fiddle,Gitar", classes)
    genre = tmp_path / "genre_select.txt"
    genre.write_text("# instruments\nViolin, fiddle\n\n/m/0342h\nMusic,Speech\nGuitar\n")
    assert names(read_genre_file(genre, classes)) == ["Violin, fiddle", "Guitar", "Music", "Speech"]
    genre.write_text("Violin\n")
    with pytest.raises(UnknownClassError, match=r"genre_select.txt:1"):
        read_genre_file(genre, classes)
    bad = tmp_path / "bad.csv"
    bad.write_text("index,mid,display_name\n0,/m/07y_7,Violin, fiddle\n")
    with pytest.raises(ValueError, match="line 2: expected 3 fields"):
        read_class_labels_csv(bad)


def test_select_segments(tmp_path):
    classes = read_class_labels_csv(_write(tmp_path / "l.csv", CLASS_CSV))
    rows = read_segments(_write(tmp_path / "s.csv", SEGMENTS_CSV + "multi_01, 5.0, 7.0, \"/m/0342h\"\n"))
    chosen = parse_class_list("Violin, fiddle,Guitar", classes)
    picked = select_segments(rows, chosen)
    by_id = {p.segment.ytid: p.labels for p in picked}
    assert "speech_only" not in by_id
    assert by_id["-lead_Ab1"] == ("Violin, fiddle",)
    assert by_id["multi_01"] == ("Violin, fiddle", "Guitar")  # in the order of the choice
    assert [p.segment.start for p in picked if p.segment.ytid == "multi_01"] == [0.0]  # first row kept
    capped = select_segments(rows, chosen, max_per_class=1)
    assert [p.segment.ytid for p in capped] == ["-lead_Ab1", "multi_01"]  # multi_01: Guitar still had room


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_classify_error_and_ids():
    class Fake429(Exception):
        status = 429

    class Wrapper(Exception):
        def __init__(self, msg, cause):
            super().__init__(msg)
            self.exc_info = (type(cause), cause, None)

    assert dl.classify_error(Wrapper("ERROR: Unable to download webpage", Fake429("x"))) == "rate_limited"
    assert dl.classify_error("ERROR: Unable to download webpage: HTTP Error 429: Too Many Requests") == "rate_limited"
    assert dl.classify_error("ERROR: [youtube] abc: Private video. Sign in if you've been granted access") == "private"
    assert dl.classify_error("ERROR: [youtube] abc: Video unavailable") == "unavailable"
    assert dl.classify_error("ERROR: [youtube] abc: Sign in to confirm your age.") == "age_restricted"
    assert dl.classify_error("ERROR: [youtube] abc: Sign in to confirm you\u2019re not a bot") == "bot_check"
    assert dl.classify_error("ERROR: Unable to download webpage: HTTP Error 404: Not Found") == "http_404"
    assert dl.classify_error("ERROR: HTTP Error 503: Service Unavailable") == "http_503"
    assert dl.classify_error("ERROR: HTTP Error 500: Internal Server Error") == "http_500"
    assert dl.classify_error("ERROR: ffmpeg exited with code 1") == "ffmpeg_error"
    assert dl.classify_error("ERROR: something else") == "download_error"
    for good in ("-0Ab_cd12", "abc", "--x"):
        assert dl.is_valid_id(good)
    for bad in ("a/b", "..", "../x", "a b", "", "a.b", "a\0b", "?x=1"):
        assert not dl.is_valid_id(bad)


def test_rate_limiter_spacing_and_hold_off():
    limiter = dl.RateLimiter(0.05)
    starts: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(2):
            assert limiter.wait()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    # the k-th start is granted no earlier than k intervals after the first request (a lower bound that
    # holds however late a loaded machine wakes the threads up; gaps between wake-ups would not)
    assert all(t - begin >= k * 0.05 - 1e-3 for k, t in enumerate(starts)), [t - begin for t in starts]
    assert starts[-1] - begin >= 5 * 0.05 - 1e-3
    before = time.monotonic()
    limiter.hold_off(0.2)
    assert limiter.wait() and time.monotonic() - before >= 0.19
    limiter.stop.set()
    assert not limiter.wait()


# ----------------------------------------------------------------------------------------------
# Downloads from the local server


def test_download_cut_failures_and_rerun(tmp_path, inputs, server):
    segments, labels = inputs
    out = tmp_path / "RAW"
    server.answer_429 = {"slow429": 2, "always429": -1}
    before = set(tmp_path.iterdir())
    assert dl.main(_args(segments, labels, out, server, "--classes", "Violin, fiddle,Guitar", "--workers", "2")) == 0

    # the section is cut exactly: 2 s starting at 1.3 s (frame 13 of the 10 fps source), 20 fps
    video, audio = out / "video" / "-lead_Ab1.mp4", out / "audio" / "-lead_Ab1.wav"
    probed = _ffprobe(video)
    kinds = {s["codec_type"]: s for s in probed["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac"
    assert kinds["video"]["r_frame_rate"] == "20/1" and kinds["video"]["pix_fmt"] == "yuv420p"
    assert abs(float(probed["format"]["duration"]) - 2.0) < 0.08
    assert _first_frames(video) == [13, 13]  # 1.30 s and 1.35 s both show source frame 13
    channels, rate, frames = _wav_facts(audio)
    assert (channels, rate) == (1, 16000) and abs(frames / rate - 2.0) < 0.05
    # slow429 got two 429s, then its section [0.5, 2.5]
    assert _first_frames(out / "video" / "slow429.mp4", 1) == [5]
    assert server.count("slow429", "GET") >= 3

    assert sorted(p.name for p in (out / "video").iterdir()) == ["-lead_Ab1.mp4", "multi_01.mp4", "slow429.mp4"]
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["-lead_Ab1.wav", "multi_01.wav", "slow429.wav"]
    assert _failed(out) == {"missing_1": "http_404", "bad/..x": "invalid_id", "..": "invalid_id",
                            "always429": "rate_limited", "late": "empty_section"}  # late: 10 s into a 4 s video
    assert server.count("always429", "GET") == 3  # 1 + --retries 2, then it stops
    assert server.count("bad/..x") == 0 and server.count("..") == 0
    assert set(tmp_path.iterdir()) == before | {out}  # nothing written outside RAW
    assert list((out / ".staging").iterdir()) == []

    vid2genre = json.loads((out / "vid2genre.json").read_text())
    assert vid2genre == {"-lead_Ab1": "Violin, fiddle", "multi_01": ["Violin, fiddle", "Guitar"],
                         "slow429": "Guitar"}
    assert [c.display_name for c in read_class_labels_csv(out / "class_labels_indices.csv")] == \
        ["Violin, fiddle", "Guitar"]
    assert [s.ytid for s in read_segments(out / "segments.csv")] == \
        ["-lead_Ab1", "multi_01", "missing_1", "slow429", "always429", "late"]

    # a re-run asks again only for the transient failure; the 404 and invalid ids are not retried
    server.clear()
    server.answer_429 = {}
    mtime = video.stat().st_mtime_ns
    assert dl.main(_args(segments, labels, out, server, "--classes", "Violin, fiddle,Guitar")) == 0
    assert server.count("-lead_Ab1") == server.count("multi_01") == server.count("missing_1") == 0
    assert server.count("always429", "GET") >= 1 and (out / "video" / "always429.mp4").is_file()
    assert video.stat().st_mtime_ns == mtime
    assert _failed(out) == {"missing_1": "http_404", "bad/..x": "invalid_id", "..": "invalid_id",
                            "late": "empty_section"}
    assert "always429" in json.loads((out / "vid2genre.json").read_text())
    server.clear()
    assert dl.main(_args(segments, labels, out, server, "--classes", "Guitar", "--retry-failed")) == 0
    assert server.count("missing_1", "GET") == 1 and server.count("-lead_Ab1") == 0
    # the folder splits into a layout the validator accepts
    root = split_tool.build_split(out, tmp_path / "ROOT", val=0.25, test=0.25, seed=0)["root"]
    report = validate(root)
    assert report.ok, report.format()
    assert sum(report.n_clips.values()) == 4 and (root / "class_labels_indices.csv").is_file()


def test_non_h264_download_is_reencoded(tmp_path, source_mp4):
    """A fetcher that returns another codec/rate (not the yt-dlp path) still gives H.264 + AAC at --fps."""
    avi = tmp_path / "src.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source_mp4), "-c:v", "mpeg4", "-c:a", "pcm_s16le", str(avi)],
                   check=True)
    calls = []

    def fetch(opts, url, stem, start, end):
        calls.append((url, start, end))
        if len(calls) == 1:
            raise RuntimeError("ERROR: Unable to download webpage: HTTP Error 429: Too Many Requests")
        dst = stem.with_name(stem.name + ".avi")
        shutil.copy(avi, dst)
        return dst

    opts = dl.DownloadOptions(out=tmp_path / "RAW", sample_rate=8000, fps=12, retries=1, backoff=0.01,
                              url_template="test://{id}")
    for folder in (opts.video_dir, opts.audio_dir, opts.staging_dir):
        folder.mkdir(parents=True)
    result = dl.download_clip(Segment("-x_1", 0.0, 4.0, ("/m/0342h",)), opts, dl.RateLimiter(0), fetch=fetch)
    assert (result.status, result.attempts) == ("done", 2) and calls[0] == ("test://-x_1", 0.0, 4.0)
    streams = {s["codec_type"]: s for s in _ffprobe(opts.video_dir / "-x_1.mp4")["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["video"]["r_frame_rate"] == "12/1"
    assert streams["audio"]["codec_name"] == "aac"
    assert _wav_facts(opts.audio_dir / "-x_1.wav")[:2] == (1, 8000)
    assert list(opts.staging_dir.iterdir()) == []


def test_killed_run_resumes(tmp_path, inputs, server):
    _, labels = inputs
    segments = tmp_path / "three.csv"
    segments.write_text("# YTID, start_seconds, end_seconds, positive_labels\n"
                        'clip_a, 0.0, 1.5, "/m/0342h"\nclip_b, 0.5, 2.0, "/m/0342h"\nclip_c, 1.0, 2.5, "/m/0342h"\n')
    out = tmp_path / "RAW"
    release = threading.Event()
    server.stall["clip_c"] = release  # clip_c's media stops halfway until released
    cmd = [sys.executable, "-m", "data_tools.download_audioset",
           *_args(segments, labels, out, server, "--classes", "Guitar", "--workers", "1")]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while server.count("clip_c", "GET") < 2:  # the extractor's GET, then ffmpeg's (stalled)
            assert proc.poll() is None and time.monotonic() < deadline, "downloader ended or hung early"
            time.sleep(0.05)
        staging = out / ".staging"
        settle = time.monotonic() + 5
        while not any(staging.iterdir()) and time.monotonic() < settle:  # ffmpeg opens its .part file
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    release.set()
    assert (out / "video" / "clip_a.mp4").is_file() and (out / "audio" / "clip_b.wav").is_file()
    assert not (out / "video" / "clip_c.mp4").exists() and not (out / "audio" / "clip_c.wav").exists()
    (out / ".staging" / "clip_c.0123456789.mp4.part").write_bytes(b"\0" * 100)  # as a killed yt-dlp leaves
    # a stale temporary wav, and a video without its wav, from the killed run
    stale = out / "audio" / ".clip_c.wav.avtmp-123-abcdef.wav"
    stale.write_bytes(b"RIFF partial")
    (out / "audio" / "clip_b.wav").unlink()
    server.clear()
    server.stall.clear()
    assert dl.main(_args(segments, labels, out, server, "--classes", "Guitar")) == 0
    assert server.count("clip_a") == 0  # finished clip: not asked again
    assert server.count("clip_b", "GET") >= 1 and server.count("clip_c", "GET") >= 1  # half-done clips redone
    for vid in ("clip_a", "clip_b", "clip_c"):
        assert (out / "video" / f"{vid}.mp4").stat().st_size > 0 and (out / "audio" / f"{vid}.wav").is_file()
    assert not stale.exists() and list((out / ".staging").iterdir()) == []
    assert sorted(json.loads((out / "vid2genre.json").read_text())) == ["clip_a", "clip_b", "clip_c"]
    assert not (out / "failed.csv").read_text().strip().splitlines()[1:]


def test_bad_class_is_an_error(tmp_path, inputs, server, capsys):
    segments, labels = inputs
    assert dl.main(_args(segments, labels, tmp_path / "RAW", server, "--classes", "Violn")) == 1
    assert "'Violn'" in capsys.readouterr().err
    assert dl.main(_args(segments, labels, tmp_path / "RAW", server)) == 1
    assert server.count("-lead_Ab1") == 0


def test_failed_csv_keeps_the_tools_own_reason(tmp_path, inputs, server):
    """A server that answers a text file for a video: failed.csv says what ffmpeg said, not only its exit code."""
    _, labels = inputs
    (server.folder / "text_page.mp4").write_text("<html><body>Sign in to continue</body></html>\n" * 20)
    segments = tmp_path / "one.csv"
    segments.write_text('# YTID, start_seconds, end_seconds, positive_labels\ntext_page, 0.0, 2.0, "/m/0342h"\n')
    out = tmp_path / "RAW"
    assert dl.main(_args(segments, labels, out, server, "--classes", "Guitar")) == 0
    with open(out / "failed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["text_page"] and rows[0]["reason"] == "ffmpeg_error"
    assert "Invalid data found when processing input" in rows[0]["message"], rows[0]["message"]
    assert list((out / ".staging").iterdir()) == []  # the kept stderr goes with the clip's staged files
