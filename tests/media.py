"""Small test media made on the fly with numpy and the ``ffmpeg`` binary.

Every helper writes one file and returns its path, so tests (and benchmarks) never download
anything. Videos carry their frame index in their pixels: :func:`frame_index` reads it back,
so a test can check *which* frame a decoder returned, not only its shape.

Example:
    >>> from tests.media import make_video, make_wav, frame_index
    >>> mp4 = make_video(tmp_path / "a.mp4", duration=1.0, fps=10)        # 10 frames + AAC tone
    >>> wav = make_wav(tmp_path / "a.wav", 440.0, 16000, channels=2)       # 1 s stereo tone

Frame layout (``size=(W, H)``, W >= 32 and H >= 16, both even): the top half holds a 2 x 8 grid
of black/white blocks, the 16 bits of the frame index (row-major, most significant bit first);
the bottom half holds the ``pattern``: a bright vertical bar whose column moves with the index
(``"moving"``), fixed-seed random noise (``"noise"``, incompressible: the worst case for a
decoder) or drifting smooth waves with light grain (``"texture"``, bit rates like a camera's; for
benchmarks).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "CODE_BITS",
    "frame_index",
    "make_audio",
    "make_empty",
    "make_nan_wav",
    "make_non_media",
    "make_corrupt",
    "make_truncated",
    "make_vfr_video",
    "make_video",
    "make_wav",
    "mdat_span",
    "render_frame",
    "tone",
    "wav_expected",
]

CODE_BITS = 16
_CODE_ROWS, _CODE_COLS = 2, 8

# Codecs per container: (video codec args, audio codec args).
_CODECS: dict[str, tuple[list[str], list[str]]] = {
    ".mp4": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "12"],
             ["-c:a", "aac", "-b:a", "128k"]),
    ".mov": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "12"],
             ["-c:a", "aac", "-b:a", "128k"]),
    ".mkv": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "12"],
             ["-c:a", "flac"]),
    ".webm": (["-c:v", "libvpx", "-pix_fmt", "yuv420p", "-b:v", "2M", "-deadline", "realtime",
               "-cpu-used", "8"],
              ["-c:a", "libopus", "-b:a", "96k"]),
    ".avi": (["-c:v", "mpeg4", "-pix_fmt", "yuv420p", "-q:v", "2"], ["-c:a", "pcm_s16le"]),
}

_WAV_SUBTYPES = {  # subtype -> (format tag, bits per sample)
    "PCM_U8": (1, 8),
    "PCM_16": (1, 16),
    "PCM_24": (1, 24),
    "PCM_32": (1, 32),
    "FLOAT": (3, 32),
    "DOUBLE": (3, 64),
}


def _ffmpeg(args: Sequence[str], stdin: bytes | None = None) -> None:
    """Run ffmpeg quietly; raise with its stderr when it fails."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("the `ffmpeg` binary is needed to make test media; install ffmpeg")
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin is None:
        cmd.insert(1, "-nostdin")
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({' '.join(cmd)}):\n{proc.stderr.decode(errors='replace')}")


def tone(freq: float, duration: float, sr: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone; channel ``c`` is scaled by ``1 / (c + 1)`` so channels differ.

    Args:
        freq: frequency in Hz.
        duration: seconds.
        sr: sample rate in Hz.
        channels: number of channels.
        amplitude: peak amplitude of channel 0.

    Returns:
        float32 array of shape (round(duration * sr), channels).
    """
    t = np.arange(int(round(duration * sr))) / sr
    mono = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([mono / (c + 1) for c in range(channels)], axis=1).astype(np.float32)


def render_frame(index: int, size: tuple[int, int] = (64, 48), pattern: str = "moving") -> np.ndarray:
    """The RGB picture of frame ``index`` as written by :func:`make_video`.

    Args:
        index: frame index, 0 <= index < 2**16.
        size: (width, height); width >= 32, height >= 16, both even.
        pattern: "moving" (a bar whose column follows the index), "noise" or "texture".

    Returns:
        uint8 array of shape (H, W, 3).
    """
    w, h = size
    if w < 32 or h < 16 or w % 2 or h % 2:
        raise ValueError(f"size must be even and at least (32, 16), got {size}")
    if not 0 <= index < 2**CODE_BITS:
        raise ValueError(f"frame index {index} does not fit in {CODE_BITS} bits")
    img = np.zeros((h, w, 3), np.uint8)
    half = h // 2
    bw, bh = w // _CODE_COLS, half // _CODE_ROWS
    for bit in range(CODE_BITS):
        if (index >> (CODE_BITS - 1 - bit)) & 1:
            r, c = divmod(bit, _CODE_COLS)
            img[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw] = 255
    if pattern == "moving":
        img[half:] = (40, 60, 90)
        x = (index * 4) % (w - 4)
        img[half:, x:x + 4] = (250, 230, 40)
    elif pattern == "noise":
        rng = np.random.default_rng(index)
        img[half:] = rng.integers(0, 256, size=(h - half, w, 3), dtype=np.uint8)
    elif pattern == "texture":
        img[half:] = _texture(index, w, h - half)
    else:
        raise ValueError(f"unknown pattern {pattern!r}; use 'moving', 'noise' or 'texture'")
    return img


def _texture(index: int, w: int, h: int) -> np.ndarray:
    """Smooth coloured waves drifting 2 px per frame plus light grain: camera-like bit rates."""
    rng = np.random.default_rng(1234)
    k = 6
    fx, fy = rng.uniform(0.01, 0.15, (2, k))
    phase, amp = rng.uniform(0, 2 * np.pi, k), rng.uniform(10, 30, k)
    colour = amp[:, None] * rng.uniform(0.3, 1.0, (k, 3))  # (k, 3)
    x = np.arange(w) + 2.0 * index
    y = np.arange(h, dtype=np.float64)
    # sin(fx*x + phase + fy*y) = cos(fy*y) sin(fx*x + phase) + sin(fy*y) cos(fx*x + phase)
    left = np.concatenate([np.cos(np.outer(y, fy)), np.sin(np.outer(y, fy))], axis=1)  # (h, 2k)
    arg = np.outer(fx, x) + phase[:, None]
    right = np.concatenate([np.sin(arg), np.cos(arg)], axis=0)  # (2k, w)
    weights = np.concatenate([colour, colour], axis=0)  # (2k, 3)
    out = np.einsum("hk,kc,kw->hwc", left, weights, right, optimize=True) + 128.0
    out += np.random.default_rng(index).normal(0, 3, size=(h, w, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def frame_index(frame: np.ndarray | "torch.Tensor") -> int:  # noqa: F821
    """Read back the frame index written by :func:`render_frame` from a decoded frame.

    Args:
        frame: uint8 (3, H, W) tensor/array (CHW) or (H, W, 3) array (HWC), RGB.

    Returns:
        the index encoded in the top-half blocks.
    """
    arr = np.asarray(frame.numpy() if hasattr(frame, "numpy") else frame)
    if arr.ndim != 3:
        raise ValueError(f"expected a (3, H, W) or (H, W, 3) frame, got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    h, w = arr.shape[:2]
    half = h // 2
    bw, bh = w // _CODE_COLS, half // _CODE_ROWS
    gray = arr.astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(CODE_BITS):
        r, c = divmod(bit, _CODE_COLS)
        # Centre of the block only: codec ringing lives at the edges.
        block = gray[r * bh + bh // 4:(r + 1) * bh - bh // 4, c * bw + bw // 4:(c + 1) * bw - bw // 4]
        value = (value << 1) | int(block.mean() > 128)
    return value


def _write_wav(path: Path, data: np.ndarray, sr: int, subtype: str) -> np.ndarray:
    """Write (T, C) float samples as a RIFF/WAVE file; return what a reader should get back."""
    if subtype not in _WAV_SUBTYPES:
        raise ValueError(f"unknown wav subtype {subtype!r}; use one of {sorted(_WAV_SUBTYPES)}")
    tag, bits = _WAV_SUBTYPES[subtype]
    t, channels = data.shape
    if tag == 3:
        raw = data.astype("<f4" if bits == 32 else "<f8")
        payload = raw.tobytes()
        decoded = raw.astype(np.float32)
    else:
        clipped = np.clip(np.nan_to_num(data), -1.0, 1.0)
        scale = 2 ** (bits - 1)
        ints = np.clip(np.round(clipped * scale), -scale, scale - 1).astype(np.int64)
        decoded = (ints / scale).astype(np.float32)
        if bits == 8:
            payload = (ints + 128).astype(np.uint8).tobytes()
        elif bits == 24:
            b = ints.astype("<i4").reshape(-1, 1).view(np.uint8)[:, :3]
            payload = np.ascontiguousarray(b).tobytes()
        else:
            payload = ints.astype("<i2" if bits == 16 else "<i4").tobytes()
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * block_align, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return decoded


def make_wav(
    path: str | Path,
    samples_or_tone: np.ndarray | float,
    sr: int,
    channels: int = 1,
    subtype: str = "PCM_16",
    *,
    duration: float = 1.0,
) -> Path:
    """Write a WAV file from samples or as a sine tone.

    Args:
        path: output file.
        samples_or_tone: float array in [-1, 1] of shape (T,) or (T, C), or a frequency in Hz
            for a ``duration``-second :func:`tone` with ``channels`` channels.
        sr: sample rate in Hz.
        channels: channels of the tone (ignored for an array: its shape decides).
        subtype: "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT" or "DOUBLE".
        duration: seconds of the tone.

    Returns:
        ``path`` as a Path. The exact float32 values a correct reader returns, shape (T, C), are
        given by :func:`wav_expected` on the same inputs.
    """
    path = Path(path)
    _write_wav(path, _as_samples(samples_or_tone, sr, channels, duration), sr, subtype)
    return path


def wav_expected(
    samples_or_tone: np.ndarray | float,
    sr: int,
    channels: int = 1,
    subtype: str = "PCM_16",
    *,
    duration: float = 1.0,
) -> np.ndarray:
    """The float32 (T, C) samples a correct reader returns for :func:`make_wav` with these arguments.

    Integer PCM of ``b`` bits decodes as ``int / 2**(b-1)``.
    """
    data = _as_samples(samples_or_tone, sr, channels, duration)
    with tempfile.TemporaryDirectory() as tmp:
        return _write_wav(Path(tmp) / "x.wav", data, sr, subtype)


def _as_samples(samples_or_tone: np.ndarray | float, sr: int, channels: int, duration: float) -> np.ndarray:
    if np.isscalar(samples_or_tone):
        return tone(float(samples_or_tone), duration, sr, channels)
    data = np.asarray(samples_or_tone, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"samples must be (T,) or (T, C), got shape {data.shape}")
    return data


def make_audio(
    path: str | Path,
    samples_or_tone: np.ndarray | float,
    sr: int,
    channels: int = 1,
    *,
    duration: float = 1.0,
    codec_args: Sequence[str] = (),
) -> Path:
    """Write an encoded audio file (.flac, .mp3, .ogg, .m4a ...; .wav goes to :func:`make_wav`).

    The samples are written to a temporary 16-bit WAV and encoded by ffmpeg, which picks the codec
    from the extension unless ``codec_args`` (e.g. ``["-c:a", "libvorbis"]``) say otherwise.

    Args:
        path: output file.
        samples_or_tone: as in :func:`make_wav`.
        sr: sample rate in Hz.
        channels: channels of the tone.
        duration: seconds of the tone.
        codec_args: extra ffmpeg output arguments.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return make_wav(path, samples_or_tone, sr, channels, duration=duration)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_wav(Path(tmp) / "src.wav", samples_or_tone, sr, channels, duration=duration)
        _ffmpeg(["-i", str(src), *codec_args, str(path)])
    return path


def make_video(
    path: str | Path,
    *,
    duration: float = 1.0,
    fps: float = 10,
    size: tuple[int, int] = (64, 48),
    audio_sr: int | None = 16000,
    pattern: str = "moving",
    gop: int = 5,
    audio_channels: int = 1,
    tone_hz: float = 440.0,
    crf: int = 12,
    audio_seconds: float | None = None,
    audio_codec: Sequence[str] | None = None,
) -> Path:
    """Write a small video whose frames encode their index (see :func:`frame_index`).

    Frames are piped raw to ffmpeg; the container follows the extension: .mp4/.mov (H.264
    yuv420p + AAC, ``+faststart`` so a truncated copy still opens), .mkv (H.264 + FLAC), .webm
    (VP8 + Opus; use 48000/24000/16000/12000/8000 Hz) or .avi (MPEG-4 part 2 + PCM).

    Args:
        path: output file.
        duration: seconds; the video has ``round(duration * fps)`` frames.
        fps: frame rate (constant).
        size: (width, height), even, at least (32, 16).
        audio_sr: sample rate of a ``tone_hz`` sine audio track lasting ``duration``; None
            writes no audio track.
        pattern: "moving", "noise" or "texture" (see :func:`render_frame`).
        gop: key-frame interval in frames (``-g``).
        audio_channels: channels of the audio track.
        tone_hz: frequency of the audio tone.
        crf: H.264 constant rate factor (.mp4/.mov/.mkv); lower is better quality. The default
            keeps the index blocks crisp; ~23 is a typical distribution quality.
        audio_seconds: length of the audio track (default: the video's, ``n / fps``); longer or
            shorter than the video as in real files (an encoder's tail, a cut recording).
        audio_codec: ffmpeg audio codec arguments replacing the container's default, e.g.
            ``["-c:a", "libopus"]`` for H.264 + Opus in .mkv.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _CODECS:
        raise ValueError(f"unsupported video container {ext!r}; use one of {sorted(_CODECS)}")
    vcodec, acodec = _CODECS[ext]
    vcodec = [str(crf) if i and vcodec[i - 1] == "-crf" else a for i, a in enumerate(vcodec)]
    n = int(round(duration * fps))
    if n < 1:
        raise ValueError(f"duration {duration} at {fps} fps gives no frame")
    w, h = size
    raw = b"".join(render_frame(i, size, pattern).tobytes() for i in range(n))
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]
    with tempfile.TemporaryDirectory() as tmp:
        if audio_sr is not None:
            seconds = n / fps if audio_seconds is None else audio_seconds
            wav = make_wav(Path(tmp) / "a.wav", tone_hz, audio_sr, audio_channels, duration=seconds)
            args += ["-i", str(wav), "-map", "0:v", "-map", "1:a", *(acodec if audio_codec is None else audio_codec)]
        args += [*vcodec, "-g", str(gop), "-bf", "0"] if vcodec[1] == "libx264" else [*vcodec, "-g", str(gop)]
        if ext in (".mp4", ".mov"):
            args += ["-movflags", "+faststart"]
        _ffmpeg([*args, str(path)], stdin=raw)
    return path


def make_vfr_video(path: str | Path, frame_times: Sequence[float], *, size: tuple[int, int] = (64, 48)) -> Path:
    """Write a variable-frame-rate H.264 .mp4/.mkv without audio: frame ``i`` starts at ``frame_times[i]``.

    Frame ``i`` is displayed during ``[frame_times[i], frame_times[i + 1])``; the last frame's
    display time is chosen by the muxer. Times are rounded to milliseconds.

    Args:
        path: output file (.mp4 or .mkv).
        frame_times: strictly increasing start times in seconds, the first one 0; at most 200.
        size: (width, height) as in :func:`render_frame`.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    times = [round(float(t), 3) for t in frame_times]
    if not times or times[0] != 0 or any(b <= a for a, b in zip(times, times[1:])) or len(times) > 200:
        raise ValueError("frame_times must be 1-200 strictly increasing times starting at 0")
    expr = "0"
    for i in range(len(times) - 1, 0, -1):  # if(eq(N,1),t1,if(eq(N,2),t2,...))
        expr = f"if(eq(N,{i}),{times[i]},{expr})"
    w, h = size
    raw = b"".join(render_frame(i, size).tobytes() for i in range(len(times)))
    _ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "1000", "-i", "pipe:0",
             "-vf", f"setpts='({expr})/TB'", "-fps_mode", "passthrough",
             *_CODECS[".mp4"][0], "-g", "4", "-bf", "0", str(path)], stdin=raw)
    return path


def make_truncated(src: str | Path, dst: str | Path, keep_fraction: float) -> Path:
    """Copy the first ``keep_fraction`` of ``src``'s bytes to ``dst`` (a file cut short).

    Args:
        src: an existing media file.
        dst: output file.
        keep_fraction: fraction of bytes kept, in [0, 1].

    Returns:
        ``dst`` as a Path.
    """
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction}")
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def make_corrupt(src: str | Path, dst: str | Path, at: float = 0.5, nbytes: int = 2000, seed: int = 0) -> Path:
    """Copy ``src`` to ``dst`` with ``nbytes`` random bytes written over the data at ``at`` of its size.

    Args:
        src: an existing media file.
        dst: output file.
        at: where the damage starts, as a fraction of the file size.
        nbytes: how many bytes are overwritten.
        seed: random seed of the garbage.

    Returns:
        ``dst`` as a Path.
    """
    data = bytearray(Path(src).read_bytes())
    i = int(len(data) * at)
    junk = np.random.default_rng(seed).integers(0, 256, size=len(data[i:i + nbytes]), dtype=np.uint8)
    data[i:i + len(junk)] = junk.tobytes()
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def mdat_span(path: str | Path) -> tuple[int, int]:
    """Byte offsets ``(start, end)`` of the media data (the top-level ``mdat`` box) of an .mp4/.mov file.

    Damage placed inside this span hits the coded frames and samples and leaves the header (``moov``)
    intact, like a download cut short or a fuzzed file.
    """
    data = Path(path).read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if kind == b"mdat":
            return pos + header, pos + size
        pos += size
    raise ValueError(f"{path}: no mdat box")


def make_empty(path: str | Path) -> Path:
    """Create a zero-length file (any extension)."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_non_media(path: str | Path) -> Path:
    """Create a file that is not media at all (text), whatever its extension says."""
    path = Path(path)
    path.write_text("this is not a media file\n" * 20)
    return path


def make_nan_wav(path: str | Path, sr: int = 16000, duration: float = 1.0, nan_at: float = 0.5) -> Path:
    """Write a float32 mono WAV tone with one NaN and one +Inf sample ``nan_at`` seconds in.

    Args:
        path: output file.
        sr: sample rate in Hz.
        duration: seconds.
        nan_at: time of the bad samples.

    Returns:
        ``path`` as a Path.
    """
    data = tone(440.0, duration, sr)
    i = min(int(nan_at * sr), len(data) - 2)
    data[i] = np.nan
    data[i + 1] = np.inf
    return make_wav(path, data, sr, subtype="FLOAT")
