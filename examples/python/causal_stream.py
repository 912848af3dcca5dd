"""Causal streaming attention: plan a run, stream it block by block in constant memory, and compare
the stream's own error certificate (probe queries) with exact softmax attention.

    python examples/python/causal_stream.py
"""

from __future__ import annotations

import math

import numpy as np

import streamattn as sa


def main() -> None:
    n, d, dv = 4096, 16, 16
    rng = np.random.default_rng(0)
    Q = rng.uniform(-0.35, 0.35, size=(n, d))
    K = rng.uniform(-0.35, 0.35, size=(n, d))
    V = rng.uniform(-1.0, 1.0, size=(n, dv))

    # 1. Before any data: sizes, cost and the guaranteed error, from the score bound
    #    beta = scale * max||q|| * max||k|| (scale = 1/sqrt(d), the default).
    scale = 1 / math.sqrt(d)
    beta = scale * float(np.linalg.norm(Q, axis=1).max() * np.linalg.norm(K, axis=1).max())
    plan = sa.plan(n, d, dv, beta=beta)
    print(plan)
    assert plan.attention_bound is not None and not plan.vacuous

    # 2. The stream: blocks of any size go in, their output rows come out final. Probe queries
    #    (here 4 rows of Q at their own positions) get their exact softmax output in the same pass.
    positions = np.array([0, 1000, 2500, n - 1])
    stream = sa.CausalStream(d, dv, degree=plan.degree, probes=Q[positions], probe_positions=positions)
    out = np.empty((n, dv))
    for a in range(0, n, 1000):
        out[a : a + 1000] = stream.update(Q[a : a + 1000], K[a : a + 1000], V[a : a + 1000])
    print(f"\n{stream}")
    print(f"  state: {stream.nbytes} bytes after {stream.tokens_seen} tokens (it does not grow with n)")

    # 3. The certificate: measured error on the probes, without keeping any key or value.
    cert = stream.certificate()
    print(f"  certificate: {cert.evaluated}/{cert.probes} probes, max |err| {cert.max_abs_error:.2e}")

    # 4. Check against exact causal softmax attention (O(n^2): only for a demonstration this small).
    exact = sa.exact_attention(Q, K, V, causal=True)
    err = float(np.abs(out - exact).max())
    bound = plan.attention_bound * float(np.abs(V).max())
    print(f"  exact_attention: max |err| over all {n} rows {err:.2e}; guaranteed <= {bound:.2e}")
    assert np.allclose(cert.exact, exact[positions])
    assert np.allclose(cert.approx, out[positions])
    assert cert.max_abs_error <= err <= bound


if __name__ == "__main__":
    main()
