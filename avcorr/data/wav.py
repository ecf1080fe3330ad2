"""Fast path for PCM/float WAV files: parse the RIFF header, seek, read only the needed bytes.

Plain numpy, no torch, so light tools read WAV files without torch's start-up. Used by
:mod:`avcorr.data.decode` and by ``data_tools``; anything this module does not understand (RIFX,
RF64, ADPCM, mu-law ...) makes :func:`parse_wav` return ``None`` and the caller falls back to
torchcodec (or ffmpeg).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .errors import DecodeError

__all__ = ["WavLayout", "parse_wav", "read_wav_frames"]

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3
_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # written by streaming writers (ffmpeg to a pipe)

# (format, bits) -> numpy dtype of one stored sample; 24-bit is handled apart.
_DTYPES = {
    (_FORMAT_PCM, 8): np.dtype("u1"),
    (_FORMAT_PCM, 16): np.dtype("<i2"),
    (_FORMAT_PCM, 32): np.dtype("<i4"),
    (_FORMAT_FLOAT, 32): np.dtype("<f4"),
    (_FORMAT_FLOAT, 64): np.dtype("<f8"),
}


@dataclass(frozen=True)
class WavLayout:
    """Where and how the samples of a WAV file are stored.

    Args:
        sample_rate: frames per second.
        num_channels: interleaved channels per frame.
        num_frames: frames declared by the header (or present, for an unknown-size stream).
        available_frames: whole frames actually present in the file.
        data_offset: byte offset of the first frame.
        fmt: 1 (integer PCM) or 3 (IEEE float).
        bits: bits per sample (8, 16, 24, 32 or 64).
    """

    sample_rate: int
    num_channels: int
    num_frames: int
    available_frames: int
    data_offset: int
    fmt: int
    bits: int

    @property
    def block_align(self) -> int:
        """Bytes per frame."""
        return self.num_channels * self.bits // 8


def parse_wav(f: BinaryIO, path: str, file_size: int) -> WavLayout | None:
    """Parse a little-endian RIFF/WAVE header.

    Args:
        f: the file, opened in binary mode, positioned at 0.
        path: its path, for error messages.
        file_size: its size in bytes.

    Returns:
        the layout, or None when the file is not a WAV this fast path reads (the caller then
        uses a generic decoder).

    Raises:
        DecodeError: a RIFF/WAVE file whose header is broken (no ``fmt `` or ``data`` chunk,
            inconsistent sizes).
    """
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt_tag = channels = rate = bits = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            if fmt_tag is None:
                raise DecodeError(path, "broken WAV header: no 'fmt ' chunk")
            raise DecodeError(path, "broken WAV header: no 'data' chunk")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"fmt ":
            body = f.read(size + (size & 1))
            if size < 16 or len(body) < 16:
                raise DecodeError(path, f"broken WAV header: 'fmt ' chunk of {size} bytes")
            fmt_tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
            if fmt_tag == _FORMAT_EXTENSIBLE:
                if size < 40 or len(body) < 40:
                    raise DecodeError(path, "broken WAV header: short WAVE_FORMAT_EXTENSIBLE chunk")
                fmt_tag = struct.unpack("<H", body[24:26])[0]  # first 2 bytes of the sub-format GUID
            if (fmt_tag, bits) not in _DTYPES and (fmt_tag, bits) != (_FORMAT_PCM, 24):
                return None  # compressed / exotic: leave it to ffmpeg
            if channels < 1 or rate < 1 or block_align != channels * bits // 8:
                raise DecodeError(
                    path, f"broken WAV header: {channels} channels, {rate} Hz, {bits} bits, "
                          f"block align {block_align}")
        elif cid == b"data":
            if fmt_tag is None:
                raise DecodeError(path, "broken WAV header: 'data' chunk before 'fmt ' chunk")
            offset = f.tell()
            frame_bytes = channels * bits // 8
            available = max(file_size - offset, 0) // frame_bytes
            if size == _UNKNOWN_SIZE:
                declared = available
            else:
                declared = size // frame_bytes
            return WavLayout(rate, channels, declared, min(available, declared), offset, fmt_tag, bits)
        else:
            f.seek(size + (size & 1), 1)


def read_wav_frames(f: BinaryIO, path: str, layout: WavLayout, start: int, stop: int) -> np.ndarray:
    """Read frames ``[start, stop)`` (clipped to the declared length) as float32 in [-1, 1].

    Args:
        f: the open file.
        path: its path, for error messages.
        layout: from :func:`parse_wav`.
        start: first frame index (>= 0).
        stop: one past the last frame index.

    Returns:
        float32 array of shape (stop - start, num_channels); integer PCM of ``b`` bits is
        scaled by ``1 / 2**(b-1)`` (8-bit is unsigned, offset 128).

    Raises:
        DecodeError: the file holds fewer frames than its header declares (truncated).
    """
    if layout.available_frames < layout.num_frames:
        raise DecodeError(
            path, f"truncated WAV: the header declares {layout.num_frames} frames but the file "
                  f"holds only {layout.available_frames}")
    stop = min(stop, layout.num_frames)
    n = max(stop - start, 0)
    ba = layout.block_align
    f.seek(layout.data_offset + start * ba)
    raw = f.read(n * ba)
    if len(raw) != n * ba:  # the file changed under us
        raise DecodeError(path, f"truncated WAV: read {len(raw)} of {n * ba} bytes")
    if layout.bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        wide = np.zeros((b.shape[0], 4), np.uint8)
        wide[:, 1:] = b  # little-endian: sample sits in the top 3 bytes, arithmetic shift signs it
        data = (wide.view("<i4")[:, 0] >> 8).astype(np.float32) * np.float32(1 / 2**23)
    else:
        arr = np.frombuffer(raw, _DTYPES[(layout.fmt, layout.bits)])
        if layout.fmt == _FORMAT_FLOAT:
            data = arr.astype(np.float32, copy=layout.bits == 32)
        elif layout.bits == 8:
            data = (arr.astype(np.float32) - 128.0) * np.float32(1 / 128)
        else:
            data = arr.astype(np.float32) * np.float32(1 / 2 ** (layout.bits - 1))
    return data.reshape(n, layout.num_channels)
