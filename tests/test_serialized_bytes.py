"""Hostile bytes for every from_bytes (and unpickling): truncated at every offset, every single-bit
flip, wrong magic/version/kind, and frames with a VALID checksum around corrupted payloads and
absurd sizes. Always a ValueError/TypeError, never a crash, a hang or a giant allocation.

The frame and its checksum are re-implemented independently in tests/framing.py, so the payload
readers are attacked directly (a plain bit flip never gets past the checksum).
"""

from __future__ import annotations

import pickle
import resource
import time

import numpy as np
import pytest

import streamattn as sa
from framing import KINDS, f64, frame, kind_of, payload_of, u64
from samples import serialized_objects

OBJECTS = serialized_objects()  # one small object per serialized kind
NAMES = list(OBJECTS)


def rejected(cls, data: bytes) -> bool:
    """from_bytes either refuses with ValueError, or returns an object that serializes again."""
    try:
        obj = cls.from_bytes(data)
    except ValueError:
        return True
    again = obj.to_bytes()  # a parsed object must be usable
    assert type(obj).from_bytes(again).to_bytes() == again
    repr(obj)
    return False


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_pickle(name):
    obj = OBJECTS[name]
    data = obj.to_bytes()
    cls = type(obj)
    assert cls.from_bytes(data).to_bytes() == data
    assert pickle.loads(pickle.dumps(obj)).to_bytes() == data


@pytest.mark.parametrize("name", NAMES)
def test_truncated_at_every_offset(name):
    obj = OBJECTS[name]
    cls, data = type(obj), obj.to_bytes()
    w = cls.__new__(cls)
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            cls.from_bytes(data[:cut])
    for cut in range(0, len(data), 7):  # the unpickling path reads the same bytes
        with pytest.raises(ValueError):
            w.__setstate__(data[:cut])
    # and with one byte too many
    with pytest.raises(ValueError):
        cls.from_bytes(data + b"\0")


@pytest.mark.parametrize("name", NAMES)
def test_every_single_bit_flip(name):
    """Any single flipped bit, anywhere (header, payload, checksum), is caught."""
    obj = OBJECTS[name]
    cls, data = type(obj), obj.to_bytes()
    buf = bytearray(data)
    for i in range(len(buf)):
        for b in range(8):
            buf[i] ^= 1 << b
            with pytest.raises(ValueError):
                cls.from_bytes(bytes(buf))
            buf[i] ^= 1 << b


@pytest.mark.parametrize("name", NAMES)
def test_payload_bit_flips_with_a_valid_checksum(name):
    """Re-framed flips reach the payload reader: each is refused or yields a usable object."""
    obj = OBJECTS[name]
    cls, data = type(obj), obj.to_bytes()
    kind, payload = kind_of(data), bytearray(payload_of(data))
    refused = 0
    bits = (0, 3, 6, 7) if len(payload) < 2000 else (1, 7)
    for i in range(len(payload)):
        for b in bits:
            payload[i] ^= 1 << b
            refused += rejected(cls, frame(kind, bytes(payload)))
            payload[i] ^= 1 << b
    assert refused > 0


@pytest.mark.parametrize("name", NAMES)
def test_payload_truncated_with_a_valid_checksum(name):
    obj = OBJECTS[name]
    cls, data = type(obj), obj.to_bytes()
    kind, payload = kind_of(data), payload_of(data)
    for cut in range(len(payload)):
        with pytest.raises(ValueError):
            cls.from_bytes(frame(kind, payload[:cut]))
        # and with garbage appended instead
    with pytest.raises(ValueError, match="trailing|match|exceed"):
        cls.from_bytes(frame(kind, payload + b"\x01" * 8))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_magic_version_kind(name):
    obj = OBJECTS[name]
    cls, data = type(obj), obj.to_bytes()
    kind, payload = kind_of(data), payload_of(data)
    with pytest.raises(ValueError, match="magic"):
        cls.from_bytes(frame(kind, payload, magic=b"SATM"))
    with pytest.raises(ValueError, match="magic"):
        cls.from_bytes(b"\x89PNG\r\n\x1a\n" + data[8:])
    for version in (0, 2, 0xFFFF):
        with pytest.raises(ValueError, match="version"):
            cls.from_bytes(frame(kind, payload, version=version))
    for other in list(KINDS.values()) + [0, 11, 0xFFFF]:
        if other != kind:
            with pytest.raises(ValueError, match="kind"):
                cls.from_bytes(frame(other, payload))
    for length in (0, len(payload) - 1, len(payload) + 1, 2**32, 2**63, 2**64 - 1):
        with pytest.raises(ValueError, match="payload|truncated"):
            cls.from_bytes(frame(kind, payload, length=length))


def test_objects_of_another_class_are_refused_by_kind():
    for obj in OBJECTS.values():
        for other in {type(o) for o in OBJECTS.values()} - {type(obj)}:
            with pytest.raises(ValueError, match="kind"):
                other.from_bytes(obj.to_bytes())


# --- absurd sizes behind a valid checksum ------------------------------------------------------------
BIG = 2**64 - 1


def poly_state(d, dv, degree, scale=0.5, max_bytes=0, tokens=0, body=b""):
    return u64(d, dv, degree) + f64(scale) + u64(max_bytes, tokens) + body


def srm_payload(n, columns, k, eps, delta, rows, buckets, bit_rows, bits, seed, blob_len, blob=b""):
    return u64(n, columns, k) + f64(eps, delta) + u64(rows, buckets, bit_rows, bits, seed, blob_len) + blob


ABSURD = [
    # CountSketch: rows u64, buckets u64, columns u64, dim u64, seed u64, counters
    ("CountSketch 2^40 columns", sa.CountSketch, 2, u64(1024, 2**32 - 1, 2**40, 2**61 - 1, 0)),
    ("CountSketch u64 max everywhere", sa.CountSketch, 2, u64(BIG, BIG, BIG, BIG, BIG)),
    ("CountSketch product wraps to 8", sa.CountSketch, 2, u64(2**32, 2**32, 1, 10, 0) + f64(0.0)),
    # AMS / Gaussian: dist u8, s, columns, seed, tokens, values
    ("AMSSketch 2^24 x 2^24", sa.AMSSketch, 3, b"\0" + u64(2**24, 2**24, 0, 0)),
    ("AMSSketch empty with 2^24 rows", sa.AMSSketch, 3, b"\0" + u64(2**24, 0, 0, 0)),
    ("GaussianSketch huge", sa.GaussianSketch, 4, b"\1" + u64(BIG, BIG, 0, BIG)),
    # SparseRecovery(Matrix)
    (
        "SparseRecovery huge plan",
        sa.SparseRecovery,
        5,
        srm_payload(2**61 - 1, 1, 2**40, 1e-9, 0.5, 1024, 2**32 - 1, 1024, 61, 0, BIG),
    ),
    ("SparseRecovery blob length 2^64-1", sa.SparseRecovery, 5, srm_payload(8, 1, 1, 1.0, 0.5, 3, 4, 1, 3, 0, BIG)),
    (
        "SparseRecoveryMatrix 2^40 columns",
        sa.SparseRecoveryMatrix,
        6,
        srm_payload(8, 2**40, 1, 1.0, 0.5, 3, 4, 1, 3, 0, 8),
    ),
    ("SparseRecovery NaN eps", sa.SparseRecovery, 5, srm_payload(8, 1, 1, float("nan"), 0.5, 3, 4, 1, 3, 0, 0)),
    # CausalStream: chunk, tokens, poly state, probes, output
    ("CausalStream d=2^20 degree 8", sa.CausalStream, 7, u64(16, 0) + poly_state(2**20, 2**20, 8)),
    ("CausalStream degree 0 d=2^20 dv=2^20", sa.CausalStream, 7, u64(16, 0) + poly_state(2**20, 2**20, 0)),
    ("CausalStream u64 max sizes", sa.CausalStream, 7, u64(BIG, BIG) + poly_state(BIG, BIG, BIG)),
    (
        "CausalStream negative scale",
        sa.CausalStream,
        7,
        u64(16, 0) + poly_state(2, 1, 2, scale=-1.0, body=f64(*[0.0] * 12)),
    ),
    (
        "CausalStream 2^20 probes",
        sa.CausalStream,
        7,
        u64(16, 0) + poly_state(1, 1, 0, body=f64(0.0, 0.0)) + b"\1" + u64(2**20, 1, 1) + f64(1.0),
    ),
    (
        "CausalStream probe d 2^20",
        sa.CausalStream,
        7,
        u64(16, 0) + poly_state(1, 1, 0, body=f64(0.0, 0.0)) + b"\1" + u64(1, 2**20, 2**20) + f64(1.0),
    ),
    (
        "CausalStream output plan absurd",
        sa.CausalStream,
        7,
        u64(16, 0)
        + poly_state(1, 1, 0, body=f64(0.0, 0.0))
        + b"\0\1"
        + srm_payload(BIG, BIG, BIG, 0.5, 0.5, BIG, BIG, BIG, BIG, 0, BIG),
    ),
    # KVStream: kind u8, first, tokens, queries, state...
    ("KVStream exact huge state", sa.KVStream, 8, b"\0" + u64(0, 0, 0) + poly_state(2**20, 2**20, 8)),
    (
        "KVStream sketched d=2^20 degree 8",
        sa.KVStream,
        8,
        b"\1" + u64(0, 0, 0) + u64(2**20, 2**20, 8) + f64(0.5) + u64(0),
    ),
    (
        "KVStream sketched nested blob 2^64-1",
        sa.KVStream,
        8,
        b"\1" + u64(0, 0, 0) + u64(1, 1, 0) + f64(0.5) + u64(0) + f64(1.0) + b"\0" + u64(BIG),
    ),
    (
        "KVStream sketched nested AMS 2^24 rows",
        sa.KVStream,
        8,
        b"\1"
        + u64(0, 0, 0)
        + u64(1, 1, 0)
        + f64(0.5)
        + u64(0)
        + f64(1.0)
        + b"\0"
        + u64(24 + 33)
        + frame(3, b"\0" + u64(2**24, 0, 0, 0)),
    ),
    (
        "KVStream first_token 2^64-1",
        sa.KVStream,
        8,
        b"\0" + u64(BIG, 0, 0) + poly_state(1, 1, 0, body=f64(0.0, 0.0)) + b"\0\0",
    ),
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("label, cls, kind, payload", [pytest.param(*a, id=a[0]) for a in ABSURD])
def test_absurd_sizes_with_a_valid_checksum(label, cls, kind, payload):
    rss0, t0 = peak_rss_mb(), time.perf_counter()
    for p in (payload, payload + b"\0" * 64):
        with pytest.raises(ValueError):
            cls.from_bytes(frame(kind, p))
    assert time.perf_counter() - t0 < 2.0, "the reader took too long"
    assert peak_rss_mb() - rss0 < 128, "the reader allocated far more than the bytes it was given"


def test_an_empty_ams_sketch_up_to_2_18_rows_still_round_trips():
    for s in (1, 1000, 2**18):
        a = sa.AMSSketch(s, seed=1)
        assert sa.AMSSketch.from_bytes(a.to_bytes()).s == s


def test_random_garbage_is_refused():
    r = np.random.default_rng(5)
    classes = {type(o) for o in OBJECTS.values()}
    for _ in range(300):
        n = int(r.integers(0, 400))
        junk = r.integers(0, 256, size=n, dtype=np.uint8).tobytes()
        for cls in classes:
            with pytest.raises(ValueError):
                cls.from_bytes(junk)
            with pytest.raises(ValueError):  # the right header and checksum around garbage
                cls.from_bytes(frame(kind_of(next(o for o in OBJECTS.values() if type(o) is cls).to_bytes()), junk))
