"""streamattn.dask on a process-based dask.distributed LocalCluster (issue 18).

Every result is compared with the single-process computation on the same data: 1, 2 and 7 row
blocks of uneven sizes, with and without gating. One cluster (2 worker processes, 1 thread each)
serves the whole module. Marked `extras`: without dask these tests skip, and in CI
(STREAMATTN_REQUIRE_EXTRAS=1) such a skip is a failure.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

import streamattn as sa

pytestmark = pytest.mark.extras

N = 300
SPLITS = {1: (300,), 2: (120, 180), 7: (10, 50, 33, 1, 77, 64, 65)}
REL = 1e-12


def rel_err(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="1GiB"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        # Test-only helpers (slow loaders) travel by value: the workers cannot import this file.
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        yield c
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def sd():
    return pytest.importorskip("streamattn.dask")


@pytest.fixture(scope="module")
def da():
    return pytest.importorskip("dask.array")


def data(seed, n=N, d=4, dv=3, scale=0.4):
    rng = np.random.default_rng(seed)
    Q, K = rng.normal(scale=scale, size=(n, d)), rng.normal(scale=scale, size=(n, d))
    V = rng.normal(size=(n, dv))
    gate = -rng.uniform(0.0, 0.3, size=n)
    return Q, K, V, gate


# --- sketches ---------------------------------------------------------------------------------
def sketch_cases():
    return [
        ("CountSketch", lambda: sa.CountSketch(rows=5, buckets=64, seed=3, columns=3, dim=N), 2),
        ("AMSSketch", lambda: sa.AMSSketch(16, seed=4, columns=3), 2),
        ("GaussianSketch", lambda: sa.GaussianSketch(16, seed=5, columns=3), 2),
        ("SparseRecovery", lambda: sa.SparseRecovery(N, 4, 0.5, seed=6), 1),
        ("SparseRecoveryMatrix", lambda: sa.SparseRecoveryMatrix(N, 3, 4, 0.5, seed=7), 2),
    ]


def fill_one_pass(like, x):
    if isinstance(like, sa.SparseRecovery):
        like.update_dense(0, x)
    else:
        like.update_rows(0, x)
    return like


def tables(s):
    if isinstance(s, (sa.SparseRecovery, sa.SparseRecoveryMatrix)):
        return s.count_sketch.table, s.to_bytes()
    if isinstance(s, sa.CountSketch):
        return s.table, s.to_bytes()
    return s.value, None


@pytest.mark.parametrize("parts", sorted(SPLITS))
@pytest.mark.parametrize("name, make, ndim", sketch_cases(), ids=[c[0] for c in sketch_cases()])
def test_sketch_equals_one_pass(client, sd, da, parts, name, make, ndim):
    rng = np.random.default_rng(100 + parts)
    # Integer-valued entries: every partial sum is exact, so integer tables agree to the last bit.
    x = rng.integers(-50, 50, size=(N, 3)).astype(np.float64)
    if ndim == 1:
        x = x[:, 0]
    xd = da.from_array(x, chunks=(SPLITS[parts],) + ((3,) if ndim == 2 else ()))
    got = sd.sketch(xd, make(), split_every=3)
    want = fill_one_pass(make(), x)
    assert type(got) is type(want)
    gt, gb = tables(got)
    wt, wb = tables(want)
    assert np.any(wt != 0)
    if name == "GaussianSketch":
        assert rel_err(gt, wt) <= REL
    else:
        np.testing.assert_array_equal(gt, wt)
    if gb is not None:
        # Same parameters, same counters: the same serialized bytes.
        assert gb == wb
    if name == "SparseRecovery":
        assert got.decode("sublinear") == want.decode("sublinear")


@pytest.mark.parametrize("partitions", [1, 2, 7])
@pytest.mark.parametrize("kind", ["CountSketch", "SparseRecovery", "SparseRecoveryMatrix"])
def test_sketch_of_turnstile_updates_in_a_bag(client, sd, partitions, kind):
    db = pytest.importorskip("dask.bag")
    rng = np.random.default_rng(partitions)
    make = {
        "CountSketch": lambda: sa.CountSketch(rows=5, buckets=32, seed=3, columns=2, dim=1000),
        "SparseRecovery": lambda: sa.SparseRecovery(1000, 3, 0.5, seed=4),
        "SparseRecoveryMatrix": lambda: sa.SparseRecoveryMatrix(1000, 2, 3, 0.5, seed=5),
    }[kind]
    cols = () if kind == "SparseRecovery" else (2,)
    # Turnstile: repeated indices, insertions and deletions, integer values (exact counters).
    updates = [
        (rng.integers(0, 1000, size=m), rng.integers(-20, 20, size=(m, *cols)).astype(np.float64))
        for m in rng.integers(1, 40, size=23)
    ]
    got = sd.sketch(db.from_sequence(updates, npartitions=partitions), make(), split_every=2)
    want = make()
    for i, v in updates:
        want.update(i, v)
    assert got.to_bytes() == want.to_bytes()
    with pytest.raises(TypeError, match="turnstile"):
        sd.sketch(db.from_sequence(updates), sa.AMSSketch(4, columns=2))


def test_sketch_like_is_unchanged_and_result_estimates(client, sd, da):
    x = np.zeros((N, 1))
    x[[5, 77, 250], 0] = [100.0, -40.0, 7.0]
    like = sa.CountSketch(rows=7, buckets=64, seed=1, dim=N)
    got = sd.sketch(da.from_array(x, chunks=(SPLITS[7], 1)), like)
    assert not np.any(like.table)
    np.testing.assert_array_equal(got.estimate([5, 77, 250]), [100.0, -40.0, 7.0])


# --- KV states --------------------------------------------------------------------------------
@pytest.mark.parametrize("parts", sorted(SPLITS))
@pytest.mark.parametrize("state", ["exact", "sketched"])
def test_kv_state_equals_one_stream(client, sd, da, parts, state):
    Q, K, V, _ = data(7 + parts)
    chunks = SPLITS[parts]
    params = {"degree": 2, "state": state, "sketch_size": 32, "seed": 9}
    got = sd.kv_state(da.from_array(K, chunks=(chunks, 4)), da.from_array(V, chunks=(chunks, 3)), **params)
    want = sa.KVStream(4, 3, **params)
    want.add(K, V)
    assert got.tokens_seen == N and got.state == state
    assert rel_err(got.numerator_state, want.numerator_state) <= REL
    assert rel_err(got.normalizer_state, want.normalizer_state) <= REL
    assert rel_err(got.query(Q), want.query(Q)) <= REL


# --- causal attention -------------------------------------------------------------------------
@pytest.mark.parametrize("parts", sorted(SPLITS))
@pytest.mark.parametrize("gated", [False, True], ids=["ungated", "gated"])
@pytest.mark.parametrize(
    "params",
    [{"degree": 2}, {"degree": 2, "kernel": "power", "eps": 1e-6, "chunk": 16}, {"degree": 3, "normalize": False}],
    ids=["taylor2", "power2-eps", "taylor3-unnormalized"],
)
def test_causal_attention_equals_one_stream(client, sd, da, parts, gated, params):
    Q, K, V, gate = data(parts + (10 if gated else 0))
    chunks = SPLITS[parts]
    g = da.from_array(gate, chunks=(chunks,)) if gated else None
    out = sd.causal_attention(
        da.from_array(Q, chunks=(chunks, 4)),
        da.from_array(K, chunks=(chunks, 2)),  # split columns are joined per block
        da.from_array(V, chunks=(chunks, 3)),
        g,
        **params,
    )
    assert out.chunks == (chunks, (3,))
    want = sa.CausalStream(4, 3, **params).update(Q, K, V, log_gate=gate if gated else None)
    assert rel_err(out.compute(), want) <= REL


@pytest.mark.parametrize("gated", [False, True], ids=["ungated", "gated"])
def test_multi_head_layout_equals_multi_head_stream(client, sd, da, gated):
    rng = np.random.default_rng(33)
    heads, kv_heads, n, d, dv = 4, 2, 150, 3, 2
    Q = rng.normal(scale=0.4, size=(heads, n, d))
    K, V = rng.normal(scale=0.4, size=(kv_heads, n, d)), rng.normal(size=(kv_heads, n, dv))
    gate = -rng.uniform(0.0, 0.2, size=(heads, n)) if gated else None
    chunks = (40, 7, 61, 42)
    out = sd.causal_attention(
        da.from_array(Q, chunks=(1, chunks, d)),
        da.from_array(K, chunks=(2, chunks, d)),
        da.from_array(V, chunks=(1, chunks, dv)),
        None if gate is None else da.from_array(gate, chunks=(2, chunks)),
        degree=2,
        chunk=8,
    )
    assert out.shape == (heads, n, dv) and out.chunks[1] == chunks
    want = sa.MultiHeadCausalStream(heads, kv_heads, d, dv, degree=2, chunk=8).update(Q, K, V, log_gate=gate)
    assert rel_err(out.compute(), want) <= REL
    with pytest.raises(ValueError, match="kv_heads"):
        sd.causal_attention(da.from_array(Q[:3]), da.from_array(K), da.from_array(V))
    with pytest.raises(ValueError, match="kv heads"):
        sd.causal_attention(da.from_array(Q), da.from_array(K), da.from_array(V[:1]))


def test_many_blocks_use_the_log_depth_scan(client, sd, da):
    """Beyond CHAIN_SCAN_MAX segments the prefixes come from recursive doubling: same rows."""
    Q, K, V, gate = data(55)
    chunks = tuple(int(c) for c in np.random.default_rng(5).multinomial(N - 40, [1 / 40] * 40) + 1)
    assert len(chunks) == 40 > sd.CHAIN_SCAN_MAX + 1 and sum(chunks) == N
    out = sd.causal_attention(
        *(da.from_array(a, chunks=(chunks, a.shape[1])) for a in (Q, K, V)), da.from_array(gate, chunks=(chunks,))
    )
    graph = dict(out.__dask_graph__())
    assert any("-scan-5-" in str(k) for k in graph) and not any("-scan-6-" in str(k) for k in graph)
    want = sa.CausalStream(4, 3).update(Q, K, V, log_gate=gate)
    assert rel_err(out.compute(), want) <= REL


def test_causal_attention_float32_and_a_long_decay(client, sd, da):
    Q, K, V, _ = data(3)
    Q, K, V = Q.astype(np.float32), K.astype(np.float32), V.astype(np.float32)
    gate = np.full(N, -5.0)  # the prefix decays to e^-1500 = 0 in float64 across blocks
    chunks = SPLITS[7]
    arrays = [da.from_array(a, chunks=(chunks, a.shape[1])) for a in (Q, K, V)]
    gates = da.from_array(gate, chunks=(chunks,))
    # float64 products: the same rows as one stream, rounded once to float32.
    out = sd.causal_attention(*arrays, gates, compute="float64")
    want = sa.CausalStream(4, 3, compute="float64").update(Q, K, V, log_gate=gate)
    got = out.compute()
    assert out.dtype == want.dtype == got.dtype == np.float32  # the lazy array's dtype is the rows'
    assert rel_err(got, want) <= REL
    # float32 products (the default for float32 inputs) round at the blocks' own chunk boundaries:
    # within the float32 path's bound, 64 * 2^-24 of the largest row entry (docs/python-api.md).
    got32 = sd.causal_attention(*arrays, gates).compute()
    want32 = sa.CausalStream(4, 3).update(Q, K, V, log_gate=gate)
    assert np.max(np.abs(got32 - want.astype(np.float64))) <= 64 * 2.0**-24 * np.max(np.abs(want))
    assert np.max(np.abs(want32 - want.astype(np.float64))) <= 64 * 2.0**-24 * np.max(np.abs(want))


def test_segments_scan_with_the_threaded_scheduler(sd, da):
    """Tasks are pure: the threaded scheduler (shared objects, no pickling) gives the same rows."""
    pytest.importorskip("dask")
    import dask

    Q, K, V, gate = data(21)
    chunks = SPLITS[7]
    arrs = [da.from_array(a, chunks=(chunks, a.shape[1])) for a in (Q, K, V)]
    out = sd.causal_attention(*arrs, da.from_array(gate, chunks=(chunks,)))
    with dask.config.set(scheduler="threads", num_workers=4):
        got = out.compute()
    want = sa.CausalStream(4, 3).update(Q, K, V, log_gate=gate)
    assert rel_err(got, want) <= REL


# --- faults: a worker process dies in the middle -----------------------------------------------
def slow_rows(seed, rows, cols, delay, integers):
    time.sleep(delay)
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(-50, 50, size=(rows, cols)).astype(np.float64)
    return rng.normal(scale=0.4, size=(rows, cols))


def slow_array(da, seed, chunks, cols, delay, integers=False):
    import dask

    blocks = [
        da.from_delayed(
            dask.delayed(slow_rows, pure=True)(seed * 1000 + i, r, cols, delay, integers), (r, cols), np.float64
        )
        for i, r in enumerate(chunks)
    ]
    return da.concatenate(blocks)


def kill_a_worker_when_busy(client, future):
    """SIGKILL the process of a worker that holds computed results while the computation still
    runs: those results are lost and must be recomputed elsewhere."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 30
    victim = None
    while time.monotonic() < deadline and not future.done():
        holding = {w: keys for w, keys in client.has_what().items() if len(keys) >= 2}
        if holding and any(client.processing().values()):
            victim = next(iter(holding))
            break
        time.sleep(0.02)
    assert victim is not None and not future.done(), "the computation finished before a worker could be killed"
    os.kill(pids[victim], signal.SIGKILL)
    return pids[victim]


def test_causal_attention_survives_a_killed_worker(client, sd, da):
    chunks = (40, 25, 60, 35, 40, 50, 50)
    Q, K, V = (slow_array(da, s, chunks, c, 0.15) for s, c in ((1, 4), (2, 4), (3, 3)))
    gate = da.from_array(-np.linspace(0.0, 0.2, N), chunks=(chunks,))
    out = sd.causal_attention(Q, K, V, gate)
    future = client.compute(out)
    killed = kill_a_worker_when_busy(client, future)
    got = future.result(timeout=120)
    want = sa.CausalStream(4, 3).update(*(a.compute(scheduler="sync") for a in (Q, K, V)), log_gate=gate.compute())
    assert rel_err(got, want) <= REL
    assert killed not in client.run(os.getpid).values()


def test_sketch_survives_a_killed_worker(client, sd, da):
    chunks = (40, 25, 60, 35, 40, 50, 50)
    x = slow_array(da, 5, chunks, 3, 0.15, integers=True)
    like = sa.CountSketch(rows=5, buckets=32, seed=2, columns=3)
    future = client.compute(sd.sketch(x, like, split_every=2, compute=False))
    kill_a_worker_when_busy(client, future)
    got = future.result(timeout=120)
    want = sa.CountSketch(rows=5, buckets=32, seed=2, columns=3)
    want.update_rows(0, x.compute(scheduler="sync"))
    assert got.to_bytes() == want.to_bytes()


# --- bad input: refused on the client, before any task runs -----------------------------------
def test_bad_input_is_refused_before_any_task(sd, da):
    Q, K, V, gate = data(1)
    q, k, v = (da.from_array(a, chunks=(SPLITS[2], a.shape[1])) for a in (Q, K, V))
    with pytest.raises(TypeError, match="dask.array.Array"):
        sd.causal_attention(Q, k, v)
    with pytest.raises(ValueError, match="same row blocks"):
        sd.causal_attention(q, da.from_array(K, chunks=(SPLITS[7], 4)), v)
    with pytest.raises(ValueError, match="same row blocks"):
        sd.causal_attention(q, k, v, da.from_array(gate, chunks=(SPLITS[7],)))
    with pytest.raises(ValueError, match="rows"):
        sd.causal_attention(q, k, da.from_array(V[:-1], chunks=(100, 3)))
    with pytest.raises(ValueError, match="same number of columns"):
        sd.causal_attention(da.from_array(Q[:, :3], chunks=(SPLITS[2], 3)), k, v)
    with pytest.raises(ValueError, match="chunk"):
        sd.causal_attention(q, k, v, chunk=-1)
    with pytest.raises(ValueError, match="degree"):
        sd.causal_attention(q, k, v, kernel="power", degree=3)
    with pytest.raises(TypeError):
        sd.causal_attention(q.astype(np.int64), k, v)
    with pytest.raises(ValueError, match="same row blocks"):
        sd.kv_state(k, da.from_array(V, chunks=(SPLITS[7], 3)))
    with pytest.raises(TypeError, match="dask.array.Array"):
        sd.kv_state(K, v)
    with pytest.raises(TypeError, match="d from the arrays"):
        sd.kv_state(k, v, d=4)
    with pytest.raises(ValueError, match="state"):
        sd.kv_state(k, v, state="dense")
    x = da.from_array(V, chunks=(SPLITS[2], 3))
    with pytest.raises(TypeError, match="like must be"):
        sd.sketch(x, sa.KWiseHash(2, 1))
    with pytest.raises(TypeError, match="dask.array.Array"):
        sd.sketch(V, sa.CountSketch(rows=3, buckets=8, columns=3))
    with pytest.raises(ValueError, match="columns"):
        sd.sketch(x, sa.CountSketch(rows=3, buckets=8, columns=2))
    with pytest.raises(ValueError):
        sd.sketch(x, sa.CountSketch(rows=3, buckets=8, columns=3, dim=100))  # rows beyond dim
    used = sa.AMSSketch(8, columns=3)
    used.update_rows(0, V[:2])
    with pytest.raises(ValueError, match="empty"):
        sd.sketch(x, used)
    with pytest.raises(ValueError, match="split_every"):
        sd.sketch(x, sa.AMSSketch(8, columns=3), split_every=1)


def test_graph_is_lazy_and_the_client_holds_no_rows(sd, da):
    """causal_attention builds a graph only; its tasks hold one block and one state each."""
    calls = []

    def loader(i, rows):
        calls.append(i)
        return np.full((rows, 2), 0.1)

    import dask

    chunks = (5, 6, 7)
    arr = da.concatenate(
        [da.from_delayed(dask.delayed(loader, pure=True)(i, r), (r, 2), np.float64) for i, r in enumerate(chunks)]
    )
    out = sd.causal_attention(arr, arr, arr)
    assert calls == [] and out.shape == (18, 2)
    graph = dict(out.__dask_graph__())
    assert sum("segment" in str(k) for k in graph) == len(chunks) - 1
    assert sum("prefix" in str(k) for k in graph) == len(chunks)


# --- many sequences ---------------------------------------------------------------------------
def test_map_sequences_writes_each_output(client, sd, tmp_path):
    seqs, wants = [], []
    for i, n in enumerate((50, 1, 130)):
        Q, K, V, gate = data(40 + i, n=n)
        seqs.append((Q, K, V, gate) if i % 2 else (Q, K, V))
        wants.append(sa.CausalStream(4, 3, chunk=8).update(Q, K, V, log_gate=gate if i % 2 else None))
    paths = sd.map_sequences(seqs, tmp_path / "out", block_rows=16, chunk=8)
    assert [os.path.basename(p) for p in paths] == ["0.npy", "1.npy", "2.npy"]
    for p, want in zip(paths, wants):
        assert rel_err(np.load(p), want) <= REL
    with pytest.raises(TypeError, match="unknown stream parameters"):
        sd.map_sequences(seqs, tmp_path, degre=2)
    with pytest.raises(ValueError, match="block_rows"):
        sd.map_sequences(seqs, tmp_path, block_rows=0)


def test_import_streamattn_does_not_import_dask():
    import subprocess

    code = "import sys, streamattn; assert 'dask' not in sys.modules, sorted(m for m in sys.modules if 'dask' in m)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_dask_the_import_says_what_to_install():
    import subprocess

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dask' or name.startswith('dask.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import streamattn\n"
        "try:\n"
        "    import streamattn.dask\n"
        "except ImportError as e:\n"
        "    assert 'streamattn[dask]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('streamattn.dask imported without dask')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
