"""Sparse recovery: sketch a long vector from a stream of updates in a fraction of its size, then
decode its k largest coordinates, with the (1 + eps) guarantee on the error checked against the
vector itself.

    python examples/python/sparse_recovery.py
"""

from __future__ import annotations

import numpy as np

import streamattn as sa


def main() -> None:
    n, k, eps = 1 << 20, 8, 0.25
    rng = np.random.default_rng(1)

    # 1. The sizes for (n, k, eps, delta) and the rule behind them, before building anything.
    plan = sa.sparse_recovery_plan(n, k, eps, delta=0.01)
    print(plan)

    # 2. x = a k-sparse signal plus small noise everywhere, arriving as a stream: the signal in
    #    two turnstile halves per coordinate (any order), the noise as dense slices.
    support = np.sort(rng.choice(n, size=k, replace=False))
    signal = rng.choice([-1.0, 1.0], size=k) * rng.uniform(5.0, 10.0, size=k)
    noise = rng.normal(0.0, 0.01, size=n)
    sketch = sa.SparseRecovery(n, k, eps, seed=2)
    sketch.update(support, signal / 2)
    for a in range(0, n, 1 << 16):
        sketch.update_dense(a, noise[a : a + (1 << 16)])
    sketch.update(support[::-1], signal[::-1] / 2)
    print(f"\n{sketch}: {sketch.nbytes} bytes for a vector of {n} float64 ({8 * n} bytes)")

    # 3. Decode: "sublinear" reads the heavy indices from bit counters (polylog n time),
    #    "standard" ranks the estimate of every coordinate (O(n) time); both give k-sparse z.
    x = noise.copy()
    x[support] += signal
    tail = float(np.linalg.norm(np.sort(np.abs(x))[:-k]))  # min over k-sparse y of ||x - y||
    for method in ("sublinear", "standard"):
        z = sketch.decode(method)
        err = float(np.linalg.norm(x - z.to_dense()))
        print(f"  decode({method!r}): {len(z)} entries at {z.indices.tolist()}")
        print(f"    ||x - z|| = {err:.4f} <= (1 + eps) * {tail:.4f} = {(1 + eps) * tail:.4f}")
        assert np.array_equal(z.indices, support)
        assert err <= (1 + eps) * tail
    print(f"  true support       {support.tolist()}")


if __name__ == "__main__":
    main()
