"""Fuzz harness for every from_bytes (and unpickling) of streamattn, with atheris (libFuzzer for
Python, `pip install atheris`).

One input drives one target: byte 0 picks the class (CountSketch, AMSSketch, GaussianSketch,
SparseRecovery, SparseRecoveryMatrix, CausalStream, KVStream, CausalSegment) and the mode; the rest
is either the whole serialized object (mode "raw": exercises the frame checks) or a payload that the harness
wraps in a correct header and a VALID checksum (mode "framed": the mutations reach the payload
readers, which a checksum would otherwise shield). The seed corpus holds the payloads of small
real objects of every kind (with probes, output sketches, both KVStream states) and of degenerate
ones (degree 0, d = 1): the sample objects of tests/samples.py, shared with the tests.

The property: from_bytes either raises ValueError, or returns an object whose to_bytes() reads
back to the same bytes. Anything else (another exception, a crash, a hang past -timeout, memory
past -rss_limit_mb) is a finding.

    python fuzz/fuzz_from_bytes.py -max_total_time=25 -rss_limit_mb=2048        # CI (short)
    python fuzz/fuzz_from_bytes.py -max_total_time=3600 -rss_limit_mb=2048 -max_len=8192 fuzz/corpus  # long run
    python fuzz/fuzz_from_bytes.py --plain 20     # no atheris: seeded random mutations for 20 s

Feedback: the extension is not compiled with -fsanitize=fuzzer (GCC has no libFuzzer), so the C++
readers give libFuzzer no edge coverage. The harness supplies its own: every distinct outcome
(accepted, or the reader's error message with the numbers blanked out, per target) takes a
different branch of an instrumented classifier, so inputs that get further into a reader — past
the frame, past the sizes, into nested objects — are kept in the corpus. A custom mutator mixes
libFuzzer's byte mutations with structure-aware ones (64-bit length fields set to 0, 2^32, 2^61-1,
2^64-1, ..., payload truncation and splicing) on the seed objects.
"""

from __future__ import annotations

import os
import pathlib
import re
import struct
import sys
import time
import zlib

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import numpy as np  # noqa: E402

import streamattn as sa  # noqa: E402
from framing import frame, payload_of  # noqa: E402
from samples import degenerate_objects, serialized_objects  # noqa: E402

TARGETS = [
    sa.CountSketch,
    sa.AMSSketch,
    sa.GaussianSketch,
    sa.SparseRecovery,
    sa.SparseRecoveryMatrix,
    sa.CausalStream,
    sa.KVStream,
    sa.CausalSegment,
]
KIND = {
    sa.CountSketch: 2,
    sa.AMSSketch: 3,
    sa.GaussianSketch: 4,
    sa.SparseRecovery: 5,
    sa.SparseRecoveryMatrix: 6,
    sa.CausalStream: 7,
    sa.KVStream: 8,
    sa.CausalSegment: 10,
}
STATS = {"runs": 0, "accepted": 0, "refused": 0}
OUTCOMES: set = set()
INTERESTING = [0, 1, 2, 255, 2**16, 2**20, 2**24, 2**31, 2**32, 2**40, 2**61 - 1, 2**62, 2**63, 2**64 - 1]


def _make_classifier(n: int = 512):
    # One branch per outcome class: instrumented by atheris, a new class is new coverage.
    src = "def classify(h):\n" + "".join(
        f"    {'if' if i == 0 else 'elif'} h == {i}:\n        return {i}\n" for i in range(n)
    )
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - generated branch table
    return ns["classify"], n


classify, N_CLASSES = _make_classifier()


def note(target: int, outcome: str) -> None:
    key = f"{target}:{re.sub(r'[-+0-9.e]+', '#', outcome)}"
    OUTCOMES.add(key)
    classify(zlib.crc32(key.encode()) % N_CLASSES)


def seed_objects():
    """The seed objects (tests/samples.py): one small object per serialized kind, and the degenerate ones."""
    return [*serialized_objects().values(), *degenerate_objects().values()]


def encode(obj, framed: bool) -> bytes:
    t = TARGETS.index(type(obj))
    data = obj.to_bytes()
    return bytes([t * 2 + framed]) + (payload_of(data) if framed else data)


def write_seed_corpus(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(seed_objects()):
        for framed in (0, 1):
            (directory / f"seed-{i}-{framed}").write_bytes(encode(obj, bool(framed)))


def test_one_input(data: bytes) -> None:
    STATS["runs"] += 1
    if not data:
        return
    target = (data[0] // 2) % len(TARGETS)
    cls = TARGETS[target]
    body = data[1:]
    if data[0] & 1:
        body = frame(KIND[cls], body)
    try:
        obj = cls.from_bytes(body) if STATS["runs"] % 5 else cls.__new__(cls).__setstate__(body) or None
    except ValueError as e:
        STATS["refused"] += 1
        note(target, str(e))
        return
    note(target, "accepted")
    if obj is None:  # accepted through __setstate__ on a throwaway object: rebuild to check it
        obj = cls.from_bytes(body)
    STATS["accepted"] += 1
    again = obj.to_bytes()
    if type(obj).from_bytes(again).to_bytes() != again:
        raise AssertionError("to_bytes() of a parsed object does not read back")
    repr(obj)
    _ = obj.nbytes


SEEDS: list = []


def structured_mutation(data: bytes, rnd) -> bytes:
    """Edits that keep the input meaningful: start from a seed object when the input is too short."""
    if not SEEDS:
        SEEDS.extend(encode(o, f) for o in seed_objects() for f in (False, True))
    b = bytearray(data if len(data) > 24 and rnd.random() < 0.7 else SEEDS[rnd.randrange(len(SEEDS))])
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(5)
        if op == 0 and len(b) > 1:
            b[rnd.randrange(1, len(b))] ^= 1 << rnd.randrange(8)
        elif op == 1 and len(b) > 9:
            at = rnd.randrange(1, len(b) - 8)
            b[at : at + 8] = struct.pack("<Q", INTERESTING[rnd.randrange(len(INTERESTING))])
        elif op == 2:
            del b[rnd.randrange(1, len(b) + 1) :]
        elif op == 3:
            b[0] = rnd.randrange(256)
        else:
            other = SEEDS[rnd.randrange(len(SEEDS))]
            at = rnd.randrange(1, len(other))
            b = b[: rnd.randrange(1, len(b) + 1)] + other[at:]
    return bytes(b)


def plain(seconds: float, seed: int = 0) -> None:
    """Without atheris: mutate the seed corpus at random (flips, splices, length fields, truncation)."""
    rng = np.random.default_rng(seed)
    seeds = [encode(o, f) for o in seed_objects() for f in (False, True)]
    t_end = time.perf_counter() + seconds
    interesting = [2**8, 2**16, 2**20, 2**24, 2**31, 2**32, 2**40, 2**61 - 1, 2**63, 2**64 - 1]
    while time.perf_counter() < t_end:
        b = bytearray(seeds[rng.integers(len(seeds))])
        for _ in range(int(rng.integers(1, 4))):
            op = rng.integers(5)
            if op == 0 and len(b) > 1:
                b[rng.integers(1, len(b))] ^= 1 << int(rng.integers(8))
            elif op == 1 and len(b) > 9:
                at = int(rng.integers(1, len(b) - 8))
                b[at : at + 8] = struct.pack("<Q", int(interesting[rng.integers(len(interesting))]))
            elif op == 2:
                del b[int(rng.integers(1, len(b) + 1)) :]
            elif op == 3:
                b[0] = int(rng.integers(256))
            else:
                b += rng.integers(0, 256, size=int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        test_one_input(bytes(b))
    print(
        f"plain fuzzing: {STATS['runs']} executions in {seconds:.0f} s, {STATS['accepted']} accepted, "
        f"{STATS['refused']} refused, {len(OUTCOMES)} distinct outcomes, no crash"
    )


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--plain":
        plain(float(sys.argv[2]) if len(sys.argv) > 2 else 20.0)
        return
    import atheris

    args = list(sys.argv)
    corpus = [a for a in args[1:] if not a.startswith("-")]
    if not corpus:  # a fresh seed corpus in a scratch directory
        d = pathlib.Path(os.environ.get("STREAMATTN_FUZZ_CORPUS", "/tmp/streamattn-fuzz-corpus"))
        write_seed_corpus(d)
        args.append(str(d))
    else:
        for c in corpus:
            write_seed_corpus(pathlib.Path(c))
    import atexit
    import random

    global classify
    classify = atheris.instrument_func(classify)
    rnd = random.Random(0)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rnd.seed(seed)
        out = atheris.Mutate(data, max_size) if rnd.random() < 0.5 else structured_mutation(data, rnd)
        return out[:max_size]

    atexit.register(
        lambda: print(
            f"streamattn fuzz: {STATS['runs']} executions, {STATS['accepted']} accepted, "
            f"{STATS['refused']} refused (ValueError), {len(OUTCOMES)} distinct outcomes",
            file=sys.stderr,
        )
    )
    atheris.Setup(args, test_one_input, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
