"""An independent Python implementation of the byte frame of cpp/include/streamattn/core/serialize.hpp,
for tests and the fuzz harness: they craft frames with a valid checksum around any payload, so the
payload readers (not only the frame check) see hostile input.

    offset 0  magic "SATN" | 4 u16 version | 6 u16 kind | 8 u64 payload length L | 16 payload
    16+L u64 checksum of bytes [0, 16+L)
"""

from __future__ import annotations

import struct

MASK = (1 << 64) - 1
MAGIC = b"SATN"
VERSION = 1
KINDS = {
    "KWiseHash": 1,
    "CountSketch": 2,
    "AMSSketch": 3,
    "GaussianSketch": 4,
    "SparseRecovery": 5,
    "SparseRecoveryMatrix": 6,
    "CausalStream": 7,
    "KVStream": 8,
    "MultiHeadCausalStream": 9,
    "CausalSegment": 10,
}


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def checksum64(data: bytes) -> int:
    n = len(data)
    h = 0x243F6A8885A308D3 ^ n
    for i in range(0, n, 8):
        w = int.from_bytes(data[i : i + 8], "little")  # the last word zero-padded
        h = (rotl(h ^ ((w * 0x9E3779B97F4A7C15) & MASK), 29) * 0xBF58476D1CE4E5B9) & MASK
    return mix64(h)


def frame(kind: int, payload: bytes, version: int = VERSION, magic: bytes = MAGIC, length: int | None = None) -> bytes:
    """A complete object: header + payload + a valid checksum (length overrides the header field)."""
    head = magic + struct.pack("<HHQ", version, kind, len(payload) if length is None else length)
    body = head + payload
    return body + struct.pack("<Q", checksum64(body))


def payload_of(data: bytes) -> bytes:
    return data[16:-8]


def kind_of(data: bytes) -> int:
    return struct.unpack_from("<H", data, 6)[0]


def u64(*values: int) -> bytes:
    return b"".join(struct.pack("<Q", v & MASK) for v in values)


def f64(*values: float) -> bytes:
    return b"".join(struct.pack("<d", v) for v in values)
