// AVX2 polynomial-hash kernels, 4 keys per vector. Compiled with -mavx2 only; selected at run
// time. The 61x61-bit products are formed from 32-bit limbs (vpmuludq) and reduced with
// 2^61 = 1 (mod p), which yields the unique residue, so results equal the scalar path's bits.
#include <immintrin.h>

#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {
namespace {

struct Consts {
  __m256i p, pm1, mask32, mask29, one;
};

Consts make_consts() {
  return {_mm256_set1_epi64x(static_cast<long long>(kMersenne61)),
          _mm256_set1_epi64x(static_cast<long long>(kMersenne61 - 1)), _mm256_set1_epi64x(0xffffffffLL),
          _mm256_set1_epi64x((1LL << 29) - 1), _mm256_set1_epi64x(1)};
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

// a * b mod p up to one extra p: for a < 2^62 and b < p, returns r = a*b (mod p) with
// r <= p + 8. With a = ah 2^32 + al, b = bh 2^32 + bl: hh = ah bh < 2^59, mid < 2^63,
// ll < 2^64, and 2^64 = 2^3, 2^61 = 1 (mod p), so the five folded terms sum below 2^64.
__m256i mulmod_lazy(__m256i a, __m256i b, __m256i bh, const Consts& c) {
  const __m256i ah = _mm256_srli_epi64(a, 32);
  const __m256i ll = _mm256_mul_epu32(a, b);
  const __m256i mid = _mm256_add_epi64(_mm256_mul_epu32(a, bh), _mm256_mul_epu32(ah, b));
  const __m256i hh = _mm256_mul_epu32(ah, bh);
  __m256i r = _mm256_slli_epi64(hh, 3);
  r = _mm256_add_epi64(r, _mm256_srli_epi64(mid, 29));
  r = _mm256_add_epi64(r, _mm256_slli_epi64(_mm256_and_si256(mid, c.mask29), 32));
  r = _mm256_add_epi64(r, _mm256_and_si256(ll, c.p));
  r = _mm256_add_epi64(r, _mm256_srli_epi64(ll, 61));
  return _mm256_add_epi64(_mm256_and_si256(r, c.p), _mm256_srli_epi64(r, 61));
}

// Horner with lazy reduction: h stays below 2p + 9 < 2^62 (mulmod_lazy's bound plus a
// coefficient < p) and is reduced to the unique residue in [0, p) once at the end, so the bits
// equal the scalar path's. W key vectors per call give the out-of-order core W independent
// dependency chains.
template <int W>
void horner_n(const __m256i* coef, int k, const __m256i* x, __m256i* h, const Consts& c) {
  __m256i xh[W], a[W];
  for (int w = 0; w < W; ++w) {
    xh[w] = _mm256_srli_epi64(x[w], 32);
    a[w] = coef[k - 1];
  }
  for (int i = k - 2; i >= 0; --i)
    for (int w = 0; w < W; ++w) a[w] = _mm256_add_epi64(mulmod_lazy(a[w], x[w], xh[w], c), coef[i]);
  for (int w = 0; w < W; ++w)
    h[w] = cond_sub_p(_mm256_add_epi64(_mm256_and_si256(a[w], c.p), _mm256_srli_epi64(a[w], 61)), c);
}

__m256i horner(const __m256i* coef, int k, __m256i x, const Consts& c) {
  __m256i h;
  horner_n<1>(coef, k, &x, &h, c);
  return h;
}

constexpr int kMaxK = 64;

// Calls f(hash_vector, index, count) over n keys, 4 at a time; the tail goes through a
// zero-padded buffer, so every lane is computed by the same vector code.
template <class Emit>
void for_each_hash(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, Emit emit) {
  const Consts c = make_consts();
  __m256i coef[kMaxK];
  for (int i = 0; i < k; ++i) coef[i] = _mm256_set1_epi64x(static_cast<long long>(coeffs[i]));
  std::size_t i = 0;
  constexpr int W = 4;
  for (; i + 4 * W <= n; i += 4 * W) {
    __m256i x[W], h[W];
    for (int w = 0; w < W; ++w)
      x[w] = reduce_key(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + i + 4 * w)), c);
    horner_n<W>(coef, k, x, h, c);
    for (int w = 0; w < W; ++w) emit(h[w], i + 4 * static_cast<std::size_t>(w), std::size_t{4});
  }
  for (; i + 4 <= n; i += 4) {
    const __m256i x = reduce_key(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + i)), c);
    emit(horner(coef, k, x, c), i, std::size_t{4});
  }
  if (i < n) {
    alignas(32) std::uint64_t buf[4] = {0, 0, 0, 0};
    for (std::size_t j = i; j < n; ++j) buf[j - i] = keys[j];
    const __m256i x = reduce_key(_mm256_load_si256(reinterpret_cast<const __m256i*>(buf)), c);
    emit(horner(coef, k, x, c), i, n - i);
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

}  // namespace

const HashKernels hash_kernels_avx2{hash_avx2, bucket_avx2, sign_avx2};

}  // namespace streamattn::detail
