"""KWiseHash: exact arithmetic, documented seeding, bit-identity on every ISA, independence."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import streamattn
from streamattn import KWiseHash

P = (1 << 61) - 1
MASK64 = (1 << 64) - 1
EDGE_KEYS = [0, 1, 2, P - 1, P, P + 1, 1 << 61, (1 << 61) + 1, (1 << 63), MASK64 - 1, MASK64]


# --- a re-implementation from the header comments alone (kwise_hash.hpp, seeding.hpp) -------
def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _coefficients(k: int, seed: int) -> list[int]:
    state, out = seed, []
    while len(out) < k:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        c = _mix64(state) >> 3
        if c < P:
            out.append(c)
    return out


def _ref_hash(coeffs: list[int], key: int) -> int:
    x, h = key % P, 0
    for c in reversed(coeffs):
        h = (h * x + c) % P
    return h


@pytest.mark.parametrize("k", [2, 3, 4, 5, 8, 16, 64])
@pytest.mark.parametrize("seed", [0, 1, 12345, MASK64])
def test_coefficients_follow_the_documented_generator(k, seed):
    h = KWiseHash(k, seed)
    assert h.coefficients == _coefficients(k, seed)
    assert h.k == k and h.seed == seed


@pytest.mark.parametrize("k", [2, 4, 8])
def test_hash_matches_python_big_integers(k, rng):
    h = KWiseHash(k, 99 + k)
    keys = np.concatenate(
        [np.array(EDGE_KEYS, dtype=np.uint64), rng.integers(0, MASK64, 2000, dtype=np.uint64, endpoint=True)]
    )
    want = [_ref_hash(h.coefficients, int(x)) for x in keys]
    assert h.hash(keys).tolist() == want
    assert [h.hash(int(x)) for x in keys[:20]] == want[:20]
    b = 1000
    assert h.bucket(keys, b).tolist() == [(v * b) >> 61 for v in want]
    assert h.sign(keys).tolist() == [1 if v % 2 == 0 else -1 for v in want]


def test_keys_alias_mod_p():
    h = KWiseHash(4, 5)
    assert h.hash(P) == h.hash(0)
    assert h.hash(P + 1) == h.hash(1)
    assert h.hash(MASK64) == h.hash(7)


@pytest.mark.parametrize("k", [2, 3, 4, 8])
def test_every_isa_gives_identical_bits(k, each_isa):
    """>= 10^6 keys incl. edge keys, lengths that are not multiples of any vector width."""
    rng = np.random.default_rng(7 + k)
    keys = np.concatenate(
        [np.array(EDGE_KEYS, dtype=np.uint64), rng.integers(0, MASK64, 1_000_003, dtype=np.uint64, endpoint=True)]
    )
    h = KWiseHash(k, 2024 + k)
    results = {}
    for isa in each_isa:
        streamattn.set_isa(isa)
        assert streamattn.get_isa() == isa
        results[isa] = (h.hash(keys), h.bucket(keys, 12345), h.sign(keys))
        for length in (0, 1, 3, 5, 7, 9, 15, 17, 31, 33):  # tails
            sub = keys[:length]
            np.testing.assert_array_equal(h.hash(sub), results[isa][0][:length])
    ref = results["scalar"]
    for isa, got in results.items():
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b, err_msg=f"ISA {isa} differs from scalar")


def test_outputs_are_in_range(rng):
    keys = rng.integers(0, MASK64, 100_000, dtype=np.uint64, endpoint=True)
    h = KWiseHash(4, 3)
    v = h.hash(keys)
    assert v.dtype == np.uint64 and int(v.max()) < P
    for b in (1, 2, 7, 1000, 2**32 - 1):
        bk = h.bucket(keys, b)
        assert bk.dtype == np.int64 and bk.min() >= 0 and bk.max() < b
    s = h.sign(keys)
    assert s.dtype == np.int8 and set(np.unique(s).tolist()) <= {-1, 1}


def test_integer_key_dtypes_and_lists_are_accepted():
    h = KWiseHash(2, 1)
    want = h.hash(np.arange(10, dtype=np.uint64))
    for dt in (np.int64, np.int32, np.uint32, np.uint8):
        np.testing.assert_array_equal(h.hash(np.arange(10, dtype=dt)), want)
    np.testing.assert_array_equal(h.hash(list(range(10))), want)


def test_set_isa_rejects_unknown_and_unavailable():
    with pytest.raises(ValueError, match="unknown ISA"):
        streamattn.set_isa("sse9")
    for isa in ("avx2", "avx512"):
        if isa not in streamattn.available_isas():
            with pytest.raises(ValueError, match="not available"):
                streamattn.set_isa(isa)


def test_environment_variable_selects_or_rejects_isa():
    code = "import streamattn; print(streamattn.get_isa())"
    env = dict(os.environ, STREAMATTN_ISA="scalar")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "scalar"
    env["STREAMATTN_ISA"] = "bogus"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "STREAMATTN_ISA=bogus" in bad.stderr


def test_build_info_reports_isas():
    info = streamattn.build_info()
    assert {"version", "compiler", "isas_compiled", "isas_available", "isa_selected"} <= set(info)
    assert info["isa_selected"] in info["isas_available"]
    assert "scalar" in info["isas_compiled"]
    assert info["version"] == streamattn.__version__
    # The GEMM kernel of the streams follows the selected ISA (AVX2 without FMA falls back to scalar).
    expect = {"scalar": {"scalar"}, "avx2": {"avx2", "scalar"}, "avx512": {"avx512"}}
    try:
        for isa in info["isas_available"]:
            streamattn.set_isa(isa)
            assert streamattn.build_info()["gemm_kernel"] in expect[isa]
    finally:
        streamattn.set_isa(info["isa_selected"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="k"):
        KWiseHash(1, 0)
    with pytest.raises(ValueError, match="k"):
        KWiseHash(65, 0)
    with pytest.raises(TypeError, match="k"):
        KWiseHash(2.5, 0)
    with pytest.raises(ValueError, match="seed"):
        KWiseHash(2, -1)
    with pytest.raises(ValueError, match="seed"):
        KWiseHash(2, 1 << 64)
    with pytest.raises(TypeError, match="seed"):
        KWiseHash(2, "1")
    h = KWiseHash(2, 0)
    with pytest.raises(ValueError, match="b"):
        h.bucket(np.arange(3, dtype=np.uint64), 0)
    with pytest.raises(ValueError, match="b"):
        h.bucket(np.arange(3, dtype=np.uint64), 2**32)
    with pytest.raises(TypeError, match="keys"):
        h.hash(np.ones(3))
    with pytest.raises(ValueError, match="keys"):
        h.hash(np.array([-1, 2]))
    with pytest.raises(ValueError, match="keys"):
        h.hash(np.zeros((2, 2), dtype=np.uint64))


def test_pickle_and_equality():
    import pickle

    h = KWiseHash(5, 77)
    g = pickle.loads(pickle.dumps(h))
    assert g == h and g.coefficients == h.coefficients
    assert KWiseHash(5, 78) != h


# --- statistical tests: fixed seeds; each threshold's false-failure probability is stated ---
def test_buckets_are_uniform_chi_square():
    # 10^6 consecutive keys into 64 buckets, k = 2. Under uniformity the statistic is
    # chi-square(63); we fail below p = 1e-4 (false-failure probability 1e-4 per family).
    for seed in (1, 2, 3):
        h = KWiseHash(2, seed)
        counts = np.bincount(h.bucket(np.arange(1_000_000, dtype=np.uint64), 64), minlength=64)
        assert stats.chisquare(counts).pvalue > 1e-4


def _family_values(k, seeds, keys, fn):
    return np.array([fn(KWiseHash(k, int(s)), keys) for s in seeds])


def test_pairwise_independence_of_bucket_pairs_k2():
    # Over 20000 seeds, (bucket(x), bucket(y)) for fixed x != y must be uniform on 8x8 cells:
    # chi-square(63) test at p = 1e-4 (false-failure probability 1e-4 per pair).
    seeds = np.arange(20000) + 1000
    for x, y in ((0, 1), (5, 1 << 40), (123, 124)):
        keys = np.array([x, y], dtype=np.uint64)
        b = _family_values(2, seeds, keys, lambda h, kk: h.bucket(kk, 8))
        cells = np.bincount(b[:, 0] * 8 + b[:, 1], minlength=64)
        assert stats.chisquare(cells).pvalue > 1e-4


def _four_way_sign_mean(k, quad, trials=40000):
    seeds = np.arange(trials) + 77
    keys = np.array(quad, dtype=np.uint64)
    s = _family_values(k, seeds, keys, lambda h, kk: h.sign(kk)).astype(np.int64)
    return s.prod(axis=1).mean(), 1.0 / np.sqrt(trials)


@pytest.mark.parametrize("quad", [(0, 1, 2, 3), (10, 20, 30, 40), (1, 2, 1 << 33, (1 << 33) + 1)])
def test_four_wise_sign_products_average_to_zero_k4(quad):
    # For a 4-wise independent family E[s1 s2 s3 s4] = 1/p^2-close to 0. The mean of 40000
    # products has standard error 1/200; we allow 4.5 standard errors (false failure ~7e-6).
    mean, se = _four_way_sign_mean(4, quad)
    assert abs(mean) < 4.5 * se


def test_two_wise_family_fails_the_four_wise_test():
    # A 2-wise (linear) family is not 4-wise independent: for x1 + x4 = x2 + x3 the four hash
    # values are linearly dependent, and the sign product is far from 0 on average. The same
    # threshold as above must reject it, which shows the test above can fail.
    mean, se = _four_way_sign_mean(2, (0, 1, 2, 3))
    assert abs(mean) > 4.5 * se
