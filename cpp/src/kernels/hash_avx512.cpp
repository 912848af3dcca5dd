// AVX-512 (F + DQ) polynomial-hash kernels, 8 keys per vector, masked tails. Compiled with
// -mavx512f -mavx512dq only; selected at run time. Same limb arithmetic as the AVX2 path.
//
// IFMA (vpmadd52luq/huq) was considered: a 61x61-bit product needs three 52-bit partial
// products, each split into lo/hi halves (six IFMA ops plus shifts) against four vpmuludq
// here, so it does not pay for this modulus.
#include <immintrin.h>

#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {
namespace {

struct Consts {
  __m512i p, mask29;
};

Consts make_consts() {
  return {_mm512_set1_epi64(static_cast<long long>(kMersenne61)), _mm512_set1_epi64((1LL << 29) - 1)};
}

__m512i cond_sub_p(__m512i v, const Consts& c) {
  const __mmask8 ge = _mm512_cmpge_epu64_mask(v, c.p);
  return _mm512_mask_sub_epi64(v, ge, v, c.p);
}

__m512i reduce_key(__m512i x, const Consts& c) {
  return cond_sub_p(_mm512_add_epi64(_mm512_and_si512(x, c.p), _mm512_srli_epi64(x, 61)), c);
}

__m512i mulmod(__m512i a, __m512i b, const Consts& c) {
  const __m512i ah = _mm512_srli_epi64(a, 32), bh = _mm512_srli_epi64(b, 32);
  const __m512i ll = _mm512_mul_epu32(a, b);
  const __m512i mid = _mm512_add_epi64(_mm512_mul_epu32(a, bh), _mm512_mul_epu32(ah, b));
  const __m512i hh = _mm512_mul_epu32(ah, bh);
  __m512i r = _mm512_slli_epi64(hh, 3);
  r = _mm512_add_epi64(r, _mm512_srli_epi64(mid, 29));
  r = _mm512_add_epi64(r, _mm512_slli_epi64(_mm512_and_si512(mid, c.mask29), 32));
  r = _mm512_add_epi64(r, _mm512_and_si512(ll, c.p));
  r = _mm512_add_epi64(r, _mm512_srli_epi64(ll, 61));
  r = _mm512_add_epi64(_mm512_and_si512(r, c.p), _mm512_srli_epi64(r, 61));
  return cond_sub_p(r, c);
}

__m512i horner(const __m512i* coef, int k, __m512i x, const Consts& c) {
  __m512i h = coef[k - 1];
  for (int i = k - 2; i >= 0; --i) h = cond_sub_p(_mm512_add_epi64(mulmod(h, x, c), coef[i]), c);
  return h;
}

constexpr int kMaxK = 64;

template <class Emit>
void for_each_hash(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, Emit emit) {
  const Consts c = make_consts();
  __m512i coef[kMaxK];
  for (int i = 0; i < k; ++i) coef[i] = _mm512_set1_epi64(static_cast<long long>(coeffs[i]));
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i x = reduce_key(_mm512_loadu_si512(keys + i), c);
    emit(horner(coef, k, x, c), i, static_cast<__mmask8>(0xff));
  }
  if (i < n) {
    const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1u);
    const __m512i x = reduce_key(_mm512_maskz_loadu_epi64(m, keys + i), c);
    emit(horner(coef, k, x, c), i, m);
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

}  // namespace

const HashKernels hash_kernels_avx512{hash_avx512, bucket_avx512, sign_avx512};

}  // namespace streamattn::detail
