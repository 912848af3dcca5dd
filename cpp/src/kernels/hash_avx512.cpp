// AVX-512 (F + DQ) polynomial-hash kernels, 8 keys per vector, masked tails. Compiled with
// -mavx512f -mavx512dq only; selected at run time. Same arithmetic as the AVX2 path.
//
// IFMA (vpmadd52luq/huq) was considered: a 61x61-bit product needs three 52-bit partial
// products, each split into lo/hi halves (six IFMA ops plus shifts) against four vpmuludq
// here, so it does not pay for this modulus.
#include <immintrin.h>

#include <algorithm>

#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {
namespace {

struct Consts {
  __m512i p, mask30, mask31;
};

Consts make_consts() {
  return {_mm512_set1_epi64(static_cast<long long>(kMersenne61)), _mm512_set1_epi64((1LL << 30) - 1),
          _mm512_set1_epi64((1LL << 31) - 1)};
}

__m512i cond_sub_p(__m512i v, const Consts& c) {
  const __mmask8 ge = _mm512_cmpge_epu64_mask(v, c.p);
  return _mm512_mask_sub_epi64(v, ge, v, c.p);
}

__m512i reduce_key(__m512i x, const Consts& c) {
  return cond_sub_p(_mm512_add_epi64(_mm512_and_si512(x, c.p), _mm512_srli_epi64(x, 61)), c);
}

// The AVX2 path's arithmetic (hash_avx2.cpp: x = xh 2^30 + xl, partial products aligned on
// positions 0 and 30, lazy reduction below 2^62 + 8, one exact reduction at the end).
struct Key {
  __m512i xl, xl4, xh, xh2;
};

Key split_key(__m512i x, const Consts& c) {
  const __m512i xl = _mm512_and_si512(x, c.mask30), xh = _mm512_srli_epi64(x, 30);
  return {xl, _mm512_slli_epi64(xl, 2), xh, _mm512_add_epi64(xh, xh)};
}

__m512i mul_add_lazy(__m512i a, __m512i ah, const Key& x, __m512i coef, const Consts& c) {
  const __m512i s0 = _mm512_add_epi64(_mm512_mul_epu32(a, x.xl), _mm512_mul_epu32(ah, x.xh2));
  const __m512i m = _mm512_add_epi64(_mm512_mul_epu32(a, x.xh), _mm512_mul_epu32(ah, x.xl4));
  __m512i r = _mm512_add_epi64(s0, _mm512_srli_epi64(m, 31));
  r = _mm512_add_epi64(r, _mm512_slli_epi64(_mm512_and_si512(m, c.mask31), 30));
  r = _mm512_add_epi64(_mm512_and_si512(r, c.p), _mm512_srli_epi64(r, 61));
  return _mm512_add_epi64(r, coef);
}

template <int K, int W>
__attribute__((always_inline)) inline void horner_n(const __m512i* coef, int k, const __m512i* x, __m512i* h,
                                                    const Consts& c) {
  const int kk = K > 0 ? K : k;
  Key key[W];
  __m512i a[W];
  for (int w = 0; w < W; ++w) key[w] = split_key(x[w], c);
  if (kk == 1) {
    for (int w = 0; w < W; ++w) h[w] = coef[0];
    return;
  }
  const __m512i top_h = _mm512_srli_epi64(coef[kk - 1], 32);
  for (int w = 0; w < W; ++w) a[w] = mul_add_lazy(coef[kk - 1], top_h, key[w], coef[kk - 2], c);
  for (int i = kk - 3; i >= 0; --i)
    for (int w = 0; w < W; ++w) a[w] = mul_add_lazy(a[w], _mm512_srli_epi64(a[w], 32), key[w], coef[i], c);
  for (int w = 0; w < W; ++w)
    h[w] = cond_sub_p(_mm512_add_epi64(_mm512_and_si512(a[w], c.p), _mm512_srli_epi64(a[w], 61)), c);
}

constexpr int kMaxK = 64;

template <int K, class Emit>
__attribute__((always_inline)) inline void hash_loop(const __m512i* coef, int k, const std::uint64_t* keys,
                                                     std::size_t n, Emit& emit) {
  const Consts c = make_consts();
  constexpr int W = 4;
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W) {
    __m512i x[W], h[W];
    for (int w = 0; w < W; ++w) x[w] = reduce_key(_mm512_loadu_si512(keys + i + 8 * w), c);
    horner_n<K, W>(coef, k, x, h, c);
    for (int w = 0; w < W; ++w) emit(h[w], i + 8 * static_cast<std::size_t>(w), static_cast<__mmask8>(0xff));
  }
  for (; i < n; i += 8) {
    const __mmask8 m = n - i >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << (n - i)) - 1u);
    __m512i h, x = reduce_key(_mm512_maskz_loadu_epi64(m, keys + i), c);
    horner_n<K, 1>(coef, k, &x, &h, c);
    emit(h, i, m);
  }
}

template <class Emit>
void for_each_hash(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, Emit emit) {
  __m512i coef[kMaxK];
  for (int i = 0; i < k; ++i) coef[i] = _mm512_set1_epi64(static_cast<long long>(coeffs[i]));
  switch (k) {
    case 2: return hash_loop<2>(coef, k, keys, n, emit);
    case 4: return hash_loop<4>(coef, k, keys, n, emit);
    case 8: return hash_loop<8>(coef, k, keys, n, emit);
    default: return hash_loop<0>(coef, k, keys, n, emit);
  }
}

void hash_avx512(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t* out) {
  for_each_hash(coeffs, k, keys, n,
                [&](__m512i h, std::size_t i, __mmask8 m) { _mm512_mask_storeu_epi64(out + i, m, h); });
}

void bucket_avx512(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t b,
                   std::int64_t* out) {
  const __m512i vb = _mm512_set1_epi64(static_cast<long long>(b));
  for_each_hash(coeffs, k, keys, n, [&](__m512i h, std::size_t i, __mmask8 m) {
    const __m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(h, 32), vb);
    const __m512i lo = _mm512_srli_epi64(_mm512_mul_epu32(h, vb), 32);
    _mm512_mask_storeu_epi64(out + i, m, _mm512_srli_epi64(_mm512_add_epi64(hi, lo), 29));
  });
}

void sign_avx512(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, double* out) {
  const __m512i one_bits = _mm512_castpd_si512(_mm512_set1_pd(1.0));
  const __m512i lsb = _mm512_set1_epi64(1);
  for_each_hash(coeffs, k, keys, n, [&](__m512i h, std::size_t i, __mmask8 m) {
    const __m512i s = _mm512_xor_si512(one_bits, _mm512_slli_epi64(_mm512_and_si512(h, lsb), 63));
    _mm512_mask_storeu_pd(out + i, m, _mm512_castsi512_pd(s));
  });
}

// Forward differences (hash_kernels.hpp), the 8 lanes in one vector.
template <int D>
void range_lanes(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  static_assert(kRangeLanes == 8, "one vector of lanes");
  const Consts c = make_consts();
  const int dd = D > 0 ? D : deg;
  __m512i v[kMaxK];
  for (int j = 0; j <= dd; ++j) v[j] = _mm512_loadu_si512(d + 8 * j);
  const __m512i vb = _mm512_set1_epi64(static_cast<long long>(b));
  const __m512i one_bits = _mm512_castpd_si512(_mm512_set1_pd(1.0)), lsb = _mm512_set1_epi64(1);
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 m = n - i >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << (n - i)) - 1u);
    const __m512i h = v[0];
    if (kind == kRangeHash) {
      _mm512_mask_storeu_epi64(static_cast<std::uint64_t*>(out) + i, m, h);
    } else if (kind == kRangeBucket) {
      const __m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(h, 32), vb);
      const __m512i lo = _mm512_srli_epi64(_mm512_mul_epu32(h, vb), 32);
      _mm512_mask_storeu_epi64(static_cast<std::int64_t*>(out) + i, m, _mm512_srli_epi64(_mm512_add_epi64(hi, lo), 29));
    } else {
      const __m512i sgn = _mm512_xor_si512(one_bits, _mm512_slli_epi64(_mm512_and_si512(h, lsb), 63));
      _mm512_mask_storeu_pd(static_cast<double*>(out) + i, m, _mm512_castsi512_pd(sgn));
    }
    for (int j = 0; j < dd; ++j) v[j] = cond_sub_p(_mm512_add_epi64(v[j], v[j + 1]), c);
  }
  for (int j = 0; j <= dd; ++j) _mm512_storeu_si512(d + 8 * j, v[j]);
}

void range_avx512(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  switch (deg) {
    case 1: range_lanes<1>(d, deg, n, kind, b, out); return;
    case 3: range_lanes<3>(d, deg, n, kind, b, out); return;
    default: range_lanes<0>(d, deg, n, kind, b, out); return;
  }
}

// The loops that follow a hash (hash_kernels.hpp): 8 columns per vector, the rest one by one.

void add_rows_avx512(double* table, std::size_t C, const std::int64_t* bkt, const double* sgn, std::size_t m,
                     const double* x, std::size_t ld) {
  const std::size_t C8 = C & ~std::size_t{7};
  for (std::size_t i = 0; i < m; ++i) {
    double* cell = table + static_cast<std::size_t>(bkt[i]) * C;
    const double s = sgn[i], *xr = x + i * ld;
    const __m512d vs = _mm512_set1_pd(s);
    std::size_t c = 0;
    for (; c < C8; c += 8)
      _mm512_storeu_pd(cell + c, _mm512_add_pd(_mm512_loadu_pd(cell + c), _mm512_mul_pd(vs, _mm512_loadu_pd(xr + c))));
    for (; c < C; ++c) cell[c] += s * xr[c];
  }
}

void add_bits_avx512(double* cells, int L, std::size_t C, const std::uint64_t* keys, const std::int64_t* bkt,
                     const double* sgn, std::size_t m, const double* x, std::size_t ld) {
  const std::size_t stride = static_cast<std::size_t>(L) * C, C8 = C & ~std::size_t{7};
  const __m512d zero = _mm512_setzero_pd();
  for (std::size_t i = 0; i < m; ++i) {
    const double s = sgn[i], *xr = x + i * ld;
    bool any = false;
    std::size_t c = 0;
    for (; c < C8 && !any; c += 8) any = _mm512_cmp_pd_mask(_mm512_loadu_pd(xr + c), zero, _CMP_NEQ_OQ) != 0;
    for (; c < C && !any; ++c) any = xr[c] != 0.0;
    if (!any) continue;
    double* cell = cells + static_cast<std::size_t>(bkt[i]) * stride;
    const __m512d vs = _mm512_set1_pd(s);
    if (C8 == 8) {
      // The common width 8..15: the vector part of s·x computed once per key, not once per bit.
      const __m512d v = _mm512_mul_pd(vs, _mm512_loadu_pd(xr));
      for (std::uint64_t rest = keys[i]; rest != 0; rest &= rest - 1) {
        double* p = cell + static_cast<std::size_t>(__builtin_ctzll(rest)) * C;
        _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), v));
        for (std::size_t j = 8; j < C; ++j) p[j] += s * xr[j];
      }
      continue;
    }
    for (std::uint64_t rest = keys[i]; rest != 0; rest &= rest - 1) {
      double* p = cell + static_cast<std::size_t>(__builtin_ctzll(rest)) * C;
      std::size_t j = 0;
      for (; j < C8; j += 8)
        _mm512_storeu_pd(p + j, _mm512_add_pd(_mm512_loadu_pd(p + j), _mm512_mul_pd(vs, _mm512_loadu_pd(xr + j))));
      for (; j < C; ++j) p[j] += s * xr[j];
    }
  }
}

std::size_t count_beyond_avx512(const double* table, std::size_t B, std::size_t stride, std::size_t cols,
                                const std::int64_t* bkt, std::size_t ld_bkt, std::size_t R, std::size_t m,
                                const double* tau, std::size_t need, std::uint64_t* out) {
  // 16 columns per pass over the rows, in two vectors (the second may be empty).
  std::size_t found = 0;
  const __m512i one = _mm512_set1_epi64(1), vneed = _mm512_set1_epi64(static_cast<long long>(need));
  for (std::size_t c16 = 0; c16 < cols; c16 += 16) {
    const std::size_t lanes = cols - c16 < 16 ? cols - c16 : 16;
    const __mmask8 live0 = static_cast<__mmask8>(lanes >= 8 ? 0xffu : (1u << lanes) - 1u);
    const __mmask8 live1 = static_cast<__mmask8>(lanes >= 16 ? 0xffu : lanes > 8 ? (1u << (lanes - 8)) - 1u : 0u);
    const __m512d tau0 = _mm512_maskz_loadu_pd(live0, tau + c16), tau1 = _mm512_maskz_loadu_pd(live1, tau + c16 + 8);
    for (std::size_t i = 0; i < m; ++i) {
      __m512i cnt0 = _mm512_setzero_si512(), cnt1 = _mm512_setzero_si512();
      bool hopeless = false;
      for (std::size_t r = 0; r < R; ++r) {
        const double* cell = table + (r * B + static_cast<std::size_t>(bkt[r * ld_bkt + i])) * stride + c16;
        const __m512d v0 = _mm512_abs_pd(_mm512_maskz_loadu_pd(live0, cell));
        const __m512d v1 = _mm512_abs_pd(_mm512_maskz_loadu_pd(live1, cell + 8));
        cnt0 = _mm512_mask_add_epi64(cnt0, _mm512_mask_cmp_pd_mask(live0, v0, tau0, _CMP_GT_OQ), cnt0, one);
        cnt1 = _mm512_mask_add_epi64(cnt1, _mm512_mask_cmp_pd_mask(live1, v1, tau1, _CMP_GT_OQ), cnt1, one);
        // After row r, R-1-r rows remain: a column below need-(R-1-r) cannot reach need.
        if (r + need >= R && r + 1 < R) {
          const __m512i low = _mm512_set1_epi64(static_cast<long long>(need - (R - 1 - r)));
          if ((_mm512_mask_cmpge_epi64_mask(live0, cnt0, low) | _mm512_mask_cmpge_epi64_mask(live1, cnt1, low)) == 0) {
            hopeless = true;
            break;
          }
        }
      }
      if (hopeless) continue;
      const unsigned pass = static_cast<unsigned>(_mm512_mask_cmpge_epi64_mask(live0, cnt0, vneed)) |
                            static_cast<unsigned>(_mm512_mask_cmpge_epi64_mask(live1, cnt1, vneed)) << 8;
      for (unsigned p = pass; p != 0; p &= p - 1)
        out[found++] = i * cols + c16 + static_cast<std::size_t>(__builtin_ctz(p));
    }
  }
  // Pairs of different 16-column groups were written group by group: restore (i, c) order.
  if (cols > 16) std::sort(out, out + found);
  return found;
}

}  // namespace

const HashKernels hash_kernels_avx512{hash_avx512,     bucket_avx512,   sign_avx512,        range_avx512,
                                      add_rows_avx512, add_bits_avx512, count_beyond_avx512};

}  // namespace streamattn::detail
