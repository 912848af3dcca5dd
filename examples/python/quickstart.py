"""Quick start: k-wise independent hashing, and a CountSketch that is linear, mergeable and serializable.

python examples/python/quickstart.py
"""

from __future__ import annotations

import pickle

import numpy as np

import streamattn as sa


def main() -> None:
    print(f"streamattn {sa.__version__}, kernels: {sa.get_isa()}")

    # 1. Hashing: h is a random polynomial of degree k - 1 over GF(2^61 - 1), fixed by its seed.
    h = sa.KWiseHash(k=4, seed=7)
    keys = np.arange(6, dtype=np.uint64)
    print(f"\n{h}, p = {sa.KWiseHash.prime}; keys {keys}:")
    print("  h(key) / p      ", np.round(h.hash(keys) / sa.KWiseHash.prime, 3))
    print("  bucket(key, 8)  ", h.bucket(keys, 8))
    print("  sign(key)       ", h.sign(keys))
    one = h.hash(3)  # one key in, one int out
    assert one == int(h.hash(keys)[3])
    assert sa.KWiseHash(4, seed=7) == h  # the seed is the whole hash

    # 2. A stream of turnstile updates x[i] += v to a vector of length n = 10^9, split over two
    #    workers. Each keeps a CountSketch of 5 x 256 counters (same seed); merging them gives the
    #    sketch of the whole stream, from which any coordinate is estimated.
    n = 10**9
    rng = np.random.default_rng(0)
    heavy = np.array([17, 4_242, 999_999_999], dtype=np.int64)
    workers = [sa.CountSketch(rows=5, buckets=256, seed=1, dim=n) for _ in range(2)]
    workers[0].update(heavy, [60.0, -25.0, 10.0])
    workers[1].update(heavy, [40.0, 5.0, 10.0])  # x[heavy] = [100, -20, 20] in total
    for w in workers:  # plus many small updates anywhere (noise)
        w.update(rng.integers(0, n, size=20_000), rng.normal(0.0, 0.05, size=20_000))

    total = workers[0]
    total.merge(workers[1])
    est = total.estimate(heavy)
    print(f"\n{total}")
    print(f"  counters: {total.rows} x {total.buckets}, {total.nbytes} bytes for a vector of length {n}")
    print("  x[heavy] = [100, -20, 20], estimated", np.round(est, 2))
    assert np.allclose(est, [100.0, -20.0, 20.0], atol=2.0)

    # 3. Bytes: versioned and checksummed; from_bytes (or pickle) gives back the same sketch.
    blob = total.to_bytes()
    again = sa.CountSketch.from_bytes(blob)
    assert again.to_bytes() == blob and np.array_equal(again.estimate(heavy), est)
    assert pickle.loads(pickle.dumps(total)).to_bytes() == blob
    print(f"  to_bytes(): {len(blob)} bytes; from_bytes() and pickle round-trip exactly")


if __name__ == "__main__":
    main()
