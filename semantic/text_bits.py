"""Captions as bits, robust to any corruption on the way back.

Container (bytes, sent MSB first as bits, see :mod:`lgvsc.link.bits`)::

    byte 0       header: 0 = raw UTF-8 payload, 1 = raw DEFLATE payload
    bytes 1..2   N, payload length in bytes, unsigned big-endian (N <= 65535)
    bytes 3..    N payload bytes

DEFLATE is zlib's raw stream (RFC 1951, ``zlib.compressobj(level=9,
wbits=-15)``: no zlib header or checksum).  The encoder sends whichever of
raw / DEFLATE is shorter (raw on a tie), so short strings go raw.

Several captions (:func:`encode_texts`) share one container whose
uncompressed content is the concatenation of records ``[2-byte big-endian
length L][L bytes UTF-8]``, one per caption; the whole concatenation is
compressed once.

Decoding never raises: a bit count that is not a multiple of 8 loses its
tail; any header other than 1 (including >= 128) means raw; a length larger
than what arrived uses what arrived; a DEFLATE error keeps the output produced
before it; UTF-8 is decoded with ``errors="replace"``; :func:`decode_texts`
always returns exactly ``n`` strings (missing ones are "").
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from ..link.bits import bytes_to_bits

RAW, DEFLATE = 0, 1
HEADER_BYTES = 3
MAX_PAYLOAD = 0xFFFF
#: Cap on decompressed bytes, so a corrupted stream cannot blow up memory.
MAX_INFLATED = 1 << 22


# -- container ---------------------------------------------------------------
def _deflate(data: bytes) -> bytes:
    co = zlib.compressobj(level=9, wbits=-15)
    return co.compress(data) + co.flush()


def pack(data: bytes) -> bytes:
    """Payload bytes -> container bytes (header, length, raw or DEFLATE payload)."""
    packed = _deflate(data)
    kind, payload = (DEFLATE, packed) if len(packed) < len(data) else (RAW, data)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"text is too long: payload {len(payload)} bytes > {MAX_PAYLOAD}")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def _inflate(payload: bytes) -> bytes:
    """Raw DEFLATE -> bytes; on error or past MAX_INFLATED, what came out before it."""
    d, out, size = zlib.decompressobj(-15), [], 0
    for i in range(len(payload)):
        try:
            chunk = d.decompress(payload[i:i + 1])
        except zlib.error:
            break
        out.append(chunk)
        size += len(chunk)
        if d.eof or size >= MAX_INFLATED:
            break
    return b"".join(out)[:MAX_INFLATED]


def unpack(data: bytes) -> bytes:
    """Container bytes (possibly corrupted / truncated) -> payload bytes; never raises."""
    if len(data) < 1:
        return b""
    length = int.from_bytes(data[1:HEADER_BYTES], "big") if len(data) >= HEADER_BYTES else 0
    payload = data[HEADER_BYTES:HEADER_BYTES + length]
    return _inflate(payload) if data[0] == DEFLATE else payload


def _to_bytes(bits) -> bytes:
    """Any bits [L] (nonzero -> 1) -> bytes, tail of L % 8 bits dropped."""
    arr = (torch.as_tensor(bits).reshape(-1).detach().cpu().numpy() != 0).astype(np.uint8)
    return np.packbits(arr[: len(arr) // 8 * 8]).tobytes()


# -- one caption -------------------------------------------------------------
def encode_text(text: str) -> torch.Tensor:
    """``str`` -> uint8 bits [8 * (3 + N)] (see the module docstring for the format)."""
    return bytes_to_bits(pack(text.encode("utf-8")))


def decode_text(bits) -> str:
    """uint8 bits [L] (any corruption, any L) -> ``str``; never raises."""
    return unpack(_to_bytes(bits)).decode("utf-8", errors="replace")


# -- several captions --------------------------------------------------------
def _records(texts: list[str]) -> bytes:
    out = bytearray()
    for t in texts:
        raw = t.encode("utf-8")
        if len(raw) > MAX_PAYLOAD:
            raise ValueError(f"texts: a caption is {len(raw)} bytes > {MAX_PAYLOAD}")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def _split_records(data: bytes, n: int) -> list[str]:
    out, pos = [], 0
    while len(out) < n and pos + 2 <= len(data):
        length = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + length].decode("utf-8", errors="replace"))
        pos += 2 + length
    return out + [""] * (n - len(out))


def encode_texts(texts: list[str]) -> torch.Tensor:
    """Several captions -> uint8 bits: length-prefixed records, compressed once."""
    return bytes_to_bits(pack(_records(list(texts))))


def decode_texts(bits, n: int) -> list[str]:
    """uint8 bits [L] -> exactly ``n`` strings (missing ones ""); never raises on bits."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    return _split_records(unpack(_to_bytes(bits)), n)
