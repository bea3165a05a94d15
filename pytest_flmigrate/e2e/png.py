"""A small PNG encoder (8-bit RGB, no interlace) in pure Python, and the reader its tests use.

Enough for the generated prompt images; no Pillow needed. The encoder is deterministic for a
given zlib: the same pixels give the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

SIGNATURE = b"\x89PNG\r\n\x1a\n"
Pixel = tuple[int, int, int]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_rgb(width: int, height: int, pixels: bytes) -> bytes:
    """PNG bytes of an 8-bit RGB image given as ``width * height * 3`` bytes, row by row."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height}: both sides must be positive")
    stride = width * 3
    if len(pixels) != stride * height:
        raise ValueError(f"expected {stride * height} pixel bytes for {width}x{height} RGB, got {len(pixels)}")
    raw = bytearray()
    for row in range(height):
        raw.append(0)  # filter type 0 (None) for every scanline
        raw += pixels[row * stride : (row + 1) * stride]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _chunk(b"IEND", b"")


def render(width: int, height: int, paint: Callable[[int, int], Pixel]) -> bytes:
    """PNG bytes of the image whose pixel at (x, y) is ``paint(x, y)``."""
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            pixels += bytes(paint(x, y))
    return encode_rgb(width, height, bytes(pixels))


def decode_rgb(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a PNG this module wrote; checks signature, CRCs and layout.

    Supports only what ``encode_rgb`` writes (8-bit RGB, filter 0); raises ValueError otherwise.
    """
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG: bad signature")
    offset, chunks = len(SIGNATURE), []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"PNG chunk {kind!r}: CRC mismatch")
        chunks.append((kind, body))
        offset += 12 + length
    kinds = [kind for kind, _ in chunks]
    if not kinds or kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or b"IDAT" not in kinds:
        raise ValueError(f"PNG chunk order {kinds}: expected IHDR ... IDAT ... IEND")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if (depth, colour, interlace) != (8, 2, 0):
        raise ValueError(f"PNG depth {depth}, colour type {colour}, interlace {interlace}: only 8-bit RGB is read here")
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * 3
    if len(raw) != (stride + 1) * height:
        raise ValueError("PNG image data has the wrong size")
    pixels = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        if raw[start] != 0:
            raise ValueError(f"PNG row {row}: filter {raw[start]} (only 0 is read here)")
        pixels += raw[start + 1 : start + 1 + stride]
    return width, height, bytes(pixels)


def image_mime(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from the file's magic bytes; None for anything else."""
    if data.startswith(SIGNATURE):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None
