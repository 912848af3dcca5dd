// AVX2 polynomial-hash kernels, 4 keys per vector, 4 vectors in flight. Compiled with -mavx2
// only; selected at run time. The 61x61-bit products are formed from 32-bit limbs (vpmuludq)
// and reduced with 2^61 = 1 (mod p) lazily; the final reduction yields the unique residue, so
// results equal the scalar path's bits. k = 2, 4 and 8 are unrolled at compile time.
#include <immintrin.h>

#include <cstring>

#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {
namespace {

struct Consts {
  __m256i p, pm1, mask30, mask31, one;
};

Consts make_consts() {
  return {_mm256_set1_epi64x(static_cast<long long>(kMersenne61)),
          _mm256_set1_epi64x(static_cast<long long>(kMersenne61 - 1)), _mm256_set1_epi64x((1LL << 30) - 1),
          _mm256_set1_epi64x((1LL << 31) - 1), _mm256_set1_epi64x(1)};
}

// v - p where v >= p; all values stay below 2^63 so the signed compare is exact.
__m256i cond_sub_p(__m256i v, const Consts& c) {
  const __m256i ge = _mm256_cmpgt_epi64(v, c.pm1);
  return _mm256_sub_epi64(v, _mm256_and_si256(ge, c.p));
}

__m256i reduce_key(__m256i x, const Consts& c) {
  const __m256i r = _mm256_add_epi64(_mm256_and_si256(x, c.p), _mm256_srli_epi64(x, 61));
  return cond_sub_p(r, c);
}

// A key x < p split once for all its Horner steps: x = xh 2^30 + xl, with the multipliers
// xl (< 2^30), 4 xl (< 2^32), xh (< 2^31) and 2 xh (< 2^32), each fitting vpmuludq's 32 bits.
struct Key {
  __m256i xl, xl4, xh, xh2;
};

Key split_key(__m256i x, const Consts& c) {
  const __m256i xl = _mm256_and_si256(x, c.mask30), xh = _mm256_srli_epi64(x, 30);
  return {xl, _mm256_slli_epi64(xl, 2), xh, _mm256_add_epi64(xh, xh)};
}

// a x + coef mod p up to a few p: for a < 2^62 + 2^33 (its high half ah = a >> 32 <= 2^30 and
// its low half al, the low 32 bits vpmuludq reads) returns r = a x + coef (mod p) with
// r < 2^62 + 8. The partial products are aligned on two positions, 0 and 30, by the
// precomputed multipliers (2^64 = 2^3 and 2^61 = 1 mod p):
//   S0 = al xl + ah (2 xh)      (al xl 2^0 and ah xh 2^62 = 2 ah xh)     S0 < 2^62 + 2^62
//   M  = al xh + ah (4 xl)      (al xh 2^30 and ah xl 2^32)              M  < 2^63 + 2^62
// then M 2^30 = (M >> 31) 2^61 + (M mod 2^31) 2^30 = (M >> 31) + (M mod 2^31) 2^30, so
// r0 = S0 + (M >> 31) + (M mod 2^31) 2^30 < 2^64, folded once more to (r0 mod 2^61) +
// (r0 >> 61) < 2^61 + 8 and the coefficient (< p) added. 16 instructions (4 multiplies,
// 4 shifts; the shift a >> 32 included) against 21 for the plain 32 x 32 limb product.
__m256i mul_add_lazy(__m256i a, __m256i ah, const Key& x, __m256i coef, const Consts& c) {
  const __m256i s0 = _mm256_add_epi64(_mm256_mul_epu32(a, x.xl), _mm256_mul_epu32(ah, x.xh2));
  const __m256i m = _mm256_add_epi64(_mm256_mul_epu32(a, x.xh), _mm256_mul_epu32(ah, x.xl4));
  __m256i r = _mm256_add_epi64(s0, _mm256_srli_epi64(m, 31));
  r = _mm256_add_epi64(r, _mm256_slli_epi64(_mm256_and_si256(m, c.mask31), 30));
  r = _mm256_add_epi64(_mm256_and_si256(r, c.p), _mm256_srli_epi64(r, 61));
  return _mm256_add_epi64(r, coef);
}

// Horner with lazy reduction: h stays below 2^62 + 8 and is reduced to the unique residue in
// [0, p) once at the end ((h mod 2^61) + (h >> 61) <= p + 2, then one conditional p), so the
// bits equal the scalar path's. W key vectors per call give the out-of-order core W independent
// dependency chains; K > 0 fixes k at compile time (the common k unrolled, all in registers).
template <int K, int W>
__attribute__((always_inline)) inline void horner_n(const __m256i* coef, int k, const __m256i* x, __m256i* h,
                                                    const Consts& c) {
  const int kk = K > 0 ? K : k;
  Key key[W];
  __m256i a[W];
  for (int w = 0; w < W; ++w) key[w] = split_key(x[w], c);
  if (kk == 1) {
    for (int w = 0; w < W; ++w) h[w] = coef[0];
    return;
  }
  // The first step multiplies the constant a_{k-1}, whose high half is known.
  const __m256i top_h = _mm256_srli_epi64(coef[kk - 1], 32);
  for (int w = 0; w < W; ++w) a[w] = mul_add_lazy(coef[kk - 1], top_h, key[w], coef[kk - 2], c);
  for (int i = kk - 3; i >= 0; --i)
    for (int w = 0; w < W; ++w) a[w] = mul_add_lazy(a[w], _mm256_srli_epi64(a[w], 32), key[w], coef[i], c);
  for (int w = 0; w < W; ++w)
    h[w] = cond_sub_p(_mm256_add_epi64(_mm256_and_si256(a[w], c.p), _mm256_srli_epi64(a[w], 61)), c);
}

constexpr int kMaxK = 64;

// Calls emit(hash_vector, index, count) over n keys, 4 at a time, W vectors per round; the tail
// goes through a zero-padded buffer, so every lane is computed by the same vector code.
template <int K, class Emit>
__attribute__((always_inline)) inline void hash_loop(const __m256i* coef, int k, const std::uint64_t* keys,
                                                     std::size_t n, Emit& emit) {
  const Consts c = make_consts();
  std::size_t i = 0;
  constexpr int W = 4;
  for (; i + 4 * W <= n; i += 4 * W) {
    __m256i x[W], h[W];
    for (int w = 0; w < W; ++w)
      x[w] = reduce_key(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + i + 4 * w)), c);
    horner_n<K, W>(coef, k, x, h, c);
    for (int w = 0; w < W; ++w) emit(h[w], i + 4 * static_cast<std::size_t>(w), std::size_t{4});
  }
  for (; i + 4 <= n; i += 4) {
    __m256i h, x = reduce_key(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + i)), c);
    horner_n<K, 1>(coef, k, &x, &h, c);
    emit(h, i, std::size_t{4});
  }
  if (i < n) {
    alignas(32) std::uint64_t buf[4] = {0, 0, 0, 0};
    for (std::size_t j = i; j < n; ++j) buf[j - i] = keys[j];
    __m256i h, x = reduce_key(_mm256_load_si256(reinterpret_cast<const __m256i*>(buf)), c);
    horner_n<K, 1>(coef, k, &x, &h, c);
    emit(h, i, n - i);
  }
}

template <class Emit>
void for_each_hash(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, Emit emit) {
  __m256i coef[kMaxK];
  for (int i = 0; i < k; ++i) coef[i] = _mm256_set1_epi64x(static_cast<long long>(coeffs[i]));
  switch (k) {
    case 2: return hash_loop<2>(coef, k, keys, n, emit);
    case 4: return hash_loop<4>(coef, k, keys, n, emit);
    case 8: return hash_loop<8>(coef, k, keys, n, emit);
    default: return hash_loop<0>(coef, k, keys, n, emit);
  }
}

void hash_avx2(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t* out) {
  for_each_hash(coeffs, k, keys, n, [&](__m256i h, std::size_t i, std::size_t cnt) {
    if (cnt == 4) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
    } else {
      alignas(32) std::uint64_t buf[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), h);
      for (std::size_t j = 0; j < cnt; ++j) out[i + j] = buf[j];
    }
  });
}

void bucket_avx2(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t b,
                 std::int64_t* out) {
  const __m256i vb = _mm256_set1_epi64x(static_cast<long long>(b));
  for_each_hash(coeffs, k, keys, n, [&](__m256i h, std::size_t i, std::size_t cnt) {
    const __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(h, 32), vb);
    const __m256i lo = _mm256_srli_epi64(_mm256_mul_epu32(h, vb), 32);
    const __m256i r = _mm256_srli_epi64(_mm256_add_epi64(hi, lo), 29);
    if (cnt == 4) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), r);
    } else {
      alignas(32) std::int64_t buf[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), r);
      for (std::size_t j = 0; j < cnt; ++j) out[i + j] = buf[j];
    }
  });
}

void sign_avx2(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, double* out) {
  const __m256i one_bits = _mm256_castpd_si256(_mm256_set1_pd(1.0));
  const __m256i lsb = _mm256_set1_epi64x(1);
  for_each_hash(coeffs, k, keys, n, [&](__m256i h, std::size_t i, std::size_t cnt) {
    // Odd hash -> flip the sign bit of 1.0.
    const __m256i s = _mm256_xor_si256(one_bits, _mm256_slli_epi64(_mm256_and_si256(h, lsb), 63));
    const __m256d d = _mm256_castsi256_pd(s);
    if (cnt == 4) {
      _mm256_storeu_pd(out + i, d);
    } else {
      alignas(32) double buf[4];
      _mm256_store_pd(buf, d);
      for (std::size_t j = 0; j < cnt; ++j) out[i + j] = buf[j];
    }
  });
}

// Forward differences (hash_kernels.hpp), the 8 lanes in two vectors.
template <int D>
void range_lanes(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  static_assert(kRangeLanes == 8, "two vectors of lanes");
  const Consts c = make_consts();
  const int dd = D > 0 ? D : deg;
  __m256i v[2][kMaxK];
  for (int j = 0; j <= dd; ++j)
    for (int h = 0; h < 2; ++h) v[h][j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + 8 * j + 4 * h));
  const __m256i vb = _mm256_set1_epi64x(static_cast<long long>(b));
  const __m256i one_bits = _mm256_castpd_si256(_mm256_set1_pd(1.0));
  for (std::size_t i = 0; i < n; i += 8) {
    for (int h = 0; h < 2; ++h) {
      const std::size_t at = i + 4 * static_cast<std::size_t>(h);
      if (at >= n) break;
      const std::size_t cnt = n - at >= 4 ? 4 : n - at;
      const __m256i x = v[h][0];
      alignas(32) std::uint64_t buf[4];
      if (kind == kRangeHash) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(buf), x);
      } else if (kind == kRangeBucket) {
        const __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), vb);
        const __m256i lo = _mm256_srli_epi64(_mm256_mul_epu32(x, vb), 32);
        _mm256_store_si256(reinterpret_cast<__m256i*>(buf), _mm256_srli_epi64(_mm256_add_epi64(hi, lo), 29));
      } else {
        const __m256i sgn = _mm256_xor_si256(one_bits, _mm256_slli_epi64(_mm256_and_si256(x, c.one), 63));
        _mm256_store_si256(reinterpret_cast<__m256i*>(buf), sgn);
      }
      if (cnt == 4) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<std::uint64_t*>(out) + at),
                            _mm256_load_si256(reinterpret_cast<const __m256i*>(buf)));
      } else {
        for (std::size_t j = 0; j < cnt; ++j) std::memcpy(static_cast<std::uint64_t*>(out) + at + j, buf + j, 8);
      }
    }
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < dd; ++j) v[h][j] = cond_sub_p(_mm256_add_epi64(v[h][j], v[h][j + 1]), c);
  }
  for (int j = 0; j <= dd; ++j)
    for (int h = 0; h < 2; ++h) _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 8 * j + 4 * h), v[h][j]);
}

void range_avx2(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  switch (deg) {
    case 1: range_lanes<1>(d, deg, n, kind, b, out); return;
    case 3: range_lanes<3>(d, deg, n, kind, b, out); return;
    default: range_lanes<0>(d, deg, n, kind, b, out); return;
  }
}

// The loops that follow a hash (hash_kernels.hpp): 4 columns per vector, the rest one by one.

void add_rows_avx2(double* table, std::size_t C, const std::int64_t* bkt, const double* sgn, std::size_t m,
                   const double* x, std::size_t ld) {
  const std::size_t C4 = C & ~std::size_t{3};
  for (std::size_t i = 0; i < m; ++i) {
    double* cell = table + static_cast<std::size_t>(bkt[i]) * C;
    const double s = sgn[i], *xr = x + i * ld;
    const __m256d vs = _mm256_set1_pd(s);
    std::size_t c = 0;
    for (; c < C4; c += 4)
      _mm256_storeu_pd(cell + c, _mm256_add_pd(_mm256_loadu_pd(cell + c), _mm256_mul_pd(vs, _mm256_loadu_pd(xr + c))));
    for (; c < C; ++c) cell[c] += s * xr[c];
  }
}

void add_bits_avx2(double* cells, int L, std::size_t C, const std::uint64_t* keys, const std::int64_t* bkt,
                   const double* sgn, std::size_t m, const double* x, std::size_t ld) {
  const std::size_t stride = static_cast<std::size_t>(L) * C, C4 = C & ~std::size_t{3};
  const __m256d zero = _mm256_setzero_pd();
  for (std::size_t i = 0; i < m; ++i) {
    const double s = sgn[i], *xr = x + i * ld;
    bool any = false;
    std::size_t c = 0;
    for (; c < C4 && !any; c += 4)
      any = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(xr + c), zero, _CMP_NEQ_OQ)) != 0;
    for (; c < C && !any; ++c) any = xr[c] != 0.0;
    if (!any) continue;
    double* cell = cells + static_cast<std::size_t>(bkt[i]) * stride;
    const __m256d vs = _mm256_set1_pd(s);
    for (std::uint64_t rest = keys[i]; rest != 0; rest &= rest - 1) {
      double* p = cell + static_cast<std::size_t>(__builtin_ctzll(rest)) * C;
      std::size_t j = 0;
      for (; j < C4; j += 4)
        _mm256_storeu_pd(p + j, _mm256_add_pd(_mm256_loadu_pd(p + j), _mm256_mul_pd(vs, _mm256_loadu_pd(xr + j))));
      for (; j < C; ++j) p[j] += s * xr[j];
    }
  }
}

std::size_t count_beyond_avx2(const double* table, std::size_t B, std::size_t stride, std::size_t cols,
                              const std::int64_t* bkt, std::size_t ld_bkt, std::size_t R, std::size_t m,
                              const double* tau, std::size_t need, std::uint64_t* out) {
  std::size_t found = 0;
  const __m256d sign = _mm256_set1_pd(-0.0), one = _mm256_set1_pd(1.0);
  const __m256d vneed = _mm256_set1_pd(static_cast<double>(need));
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t c4 = 0; c4 < cols; c4 += 4) {
      const std::size_t lanes = cols - c4 < 4 ? cols - c4 : 4;
      const __m256i live = _mm256_set_epi64x(lanes > 3 ? -1 : 0, lanes > 2 ? -1 : 0, lanes > 1 ? -1 : 0, -1);
      const __m256d vtau = _mm256_maskload_pd(tau + c4, live);
      __m256d cnt = _mm256_setzero_pd();  // 0 in the lanes past the last column: never >= need >= 1
      bool hopeless = false;
      for (std::size_t r = 0; r < R; ++r) {
        const double* cell = table + (r * B + static_cast<std::size_t>(bkt[r * ld_bkt + i])) * stride + c4;
        const __m256d v = _mm256_andnot_pd(sign, _mm256_maskload_pd(cell, live));
        cnt = _mm256_add_pd(cnt, _mm256_and_pd(_mm256_cmp_pd(v, vtau, _CMP_GT_OQ), one));
        // After row r, R-1-r rows remain: a column below need-(R-1-r) cannot reach need.
        if (r + need >= R && r + 1 < R &&
            _mm256_movemask_pd(
                _mm256_cmp_pd(cnt, _mm256_set1_pd(static_cast<double>(need - (R - 1 - r))), _CMP_GE_OQ)) == 0) {
          hopeless = true;
          break;
        }
      }
      if (hopeless) continue;
      for (unsigned pass = static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(cnt, vneed, _CMP_GE_OQ))); pass != 0;
           pass &= pass - 1)
        out[found++] = i * cols + c4 + static_cast<std::size_t>(__builtin_ctz(pass));
    }
  }
  return found;
}

}  // namespace

const HashKernels hash_kernels_avx2{hash_avx2,     bucket_avx2,   sign_avx2,        range_avx2,
                                    add_rows_avx2, add_bits_avx2, count_beyond_avx2};

}  // namespace streamattn::detail
