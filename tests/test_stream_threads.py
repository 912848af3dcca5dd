"""Threads inside one stream (issue 16): CausalStream(threads=) validation, the same bits for every
thread count, MultiHeadCausalStream on its pool."""

import numpy as np
import pytest

import streamattn


def _inputs(n, d, dv, dtype, seed=3):
    rng = np.random.default_rng(seed)
    return tuple((rng.standard_normal((n, c)) * 0.3).astype(dtype) for c in (d, d, dv))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d, dv", [(16, 96), (12, 768)])
def test_threads_bit_identical(dtype, d, dv):
    # t = 153, dv = 96, chunk 64: the chunk products are large enough to be split. d = 12,
    # dv = 768: t * dv = 91 * 768 >= 2^16, the inter-chunk part goes in 4 feature blocks.
    Q, K, V = _inputs(500, d, dv, dtype)
    gate = np.full(500, -1e-3)
    ref = None
    for threads in (1, 2, 3, 7):
        s = streamattn.CausalStream(d, dv, chunk=64, threads=threads)
        assert s.threads == threads
        rows = np.concatenate([s.update(Q[:200], K[:200], V[:200]), s.update(Q[200:], K[200:], V[200:])])
        g = streamattn.CausalStream(d, dv, chunk=64, threads=threads).update(Q, K, V, log_gate=gate)
        got = (rows, g, s.numerator_state, s.normalizer_state)
        if ref is None:
            ref = got
        else:
            for a, b in zip(got, ref):
                assert a.dtype == b.dtype
                assert np.array_equal(a, b)  # bit for bit, not approximately


def test_threads_validation_and_not_serialized():
    with pytest.raises(ValueError, match=r"threads must be in \[0, 1024\] \(0 = hardware concurrency\), got -1"):
        streamattn.CausalStream(4, threads=-1)
    with pytest.raises(ValueError, match="got 1025"):
        streamattn.CausalStream(4, threads=1025)
    s = streamattn.CausalStream(4)
    assert s.threads == 1
    s.threads = 2
    assert s.threads == 2 and "threads=2" in repr(s)
    s.threads = 0
    assert s.threads >= 1
    s.threads = 2
    Q, K, V = _inputs(10, 4, 4, np.float64)
    s.update(Q, K, V)
    restored = streamattn.CausalStream.from_bytes(s.to_bytes())
    assert restored.threads == 1
    assert np.array_equal(restored.numerator_state, s.numerator_state)


def test_multi_head_threads_bit_identical():
    rng = np.random.default_rng(0)
    H, n, d = 3, 300, 16
    Q, K, V = ((rng.standard_normal((H, n, d)) * 0.3) for _ in range(3))
    ref = None
    for threads in (1, 2, 3):
        m = streamattn.MultiHeadCausalStream(H, H, d, threads=threads)
        out = m.update(Q, K, V)
        if ref is None:
            ref = out
        else:
            assert np.array_equal(out, ref)


@pytest.mark.parametrize("state", ["exact", "sketched"])
def test_kv_stream_threads_bit_identical(state):
    # t = 153, dv = 96, 1000-row blocks: featurizing and both state products are split.
    rng = np.random.default_rng(5)
    K, V = rng.standard_normal((2500, 16)) * 0.3, rng.standard_normal((2500, 96))
    Q = rng.standard_normal((600, 16)) * 0.3
    ref = None
    for threads in (1, 2, 3):
        kv = streamattn.KVStream(16, 96, state=state, threads=threads)
        assert kv.threads == threads
        kv.add(K[:1000], V[:1000])
        kv.add(K[1000:].astype(np.float32), V[1000:].astype(np.float32))
        got = (kv.query(Q), kv.query(Q.astype(np.float32)), kv.numerator_state, kv.normalizer_state)
        if ref is None:
            ref = got
        else:
            for a, b in zip(got, ref):
                assert a.dtype == b.dtype
                assert np.array_equal(a, b)  # bit for bit


def test_kv_stream_threads_validation_and_not_serialized():
    with pytest.raises(ValueError, match=r"threads must be in \[0, 1024\] \(0 = hardware concurrency\), got -1"):
        streamattn.KVStream(4, threads=-1)
    with pytest.raises(TypeError):
        streamattn.KVStream(4, threads=1.5)
    kv = streamattn.KVStream(4)
    assert kv.threads == 1
    kv.threads = 2
    assert kv.threads == 2 and "threads=2" in repr(kv)
    kv.threads = 0
    assert kv.threads >= 1
    Q, K, V = _inputs(10, 4, 4, np.float64)
    kv.add(K, V)
    restored = streamattn.KVStream.from_bytes(kv.to_bytes())
    assert restored.threads == 1
    assert np.array_equal(restored.query(Q), kv.query(Q))


@pytest.mark.parametrize("compute", ["float32", "float64"])
def test_gated_prefill_and_step_bit_identical(compute):
    # Gated prefill runs the chunk's key features and the state rows as separate splits; the
    # update after it and a step read the state: the same bits for 1, 2 and 3 threads.
    Q, K, V = _inputs(300, 16, 96, np.float32, seed=8)
    gate = np.linspace(-0.02, 0.0, 300)
    ref = None
    for threads in (1, 2, 3):
        s = streamattn.CausalStream(16, 96, chunk=64, threads=threads, compute=compute)
        s.prefill(K[:200], V[:200], log_gate=gate[:200])
        rows = s.update(Q[200:], K[200:], V[200:], log_gate=gate[200:])
        one = s.step(Q[0], K[0], V[0], log_gate=-0.01)
        got = (rows, one, s.numerator_state, s.normalizer_state)
        if ref is None:
            ref = got
        else:
            for a, b in zip(got, ref):
                assert np.array_equal(a, b)
