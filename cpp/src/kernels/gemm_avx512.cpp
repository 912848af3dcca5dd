// AVX-512 GEMM tile, 8 x 16 float64 (16 zmm accumulators, 2 loads of B and 1 broadcast of A per
// row and step: 19 of the 32 zmm registers), A read in place through its strides. Compiled with
// -mavx512f; selected at run time. Each accumulator lane is one fma chain in order p, so the
// results equal the scalar and AVX2 tiles' bits.
#include <immintrin.h>

#include "gemm_kernels.hpp"

namespace streamattn::detail {
namespace {

constexpr std::int64_t MR = 8, NR = 16;

void tile_avx512(std::int64_t kc, const double* a, std::int64_t a_rs, std::int64_t a_cs, const double* b,
                 std::int64_t b_rs, double* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  // Rows past mr read row mr - 1 again (valid memory); their results are never stored.
  const double* r[MR];
  for (std::int64_t i = 0; i < MR; ++i) r[i] = a + (i < mr ? i : mr - 1) * a_rs;
  __m512d acc[MR][2];
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
#pragma GCC unroll 8
    for (std::int64_t i = 0; i < MR; ++i) {
      const __m512d x = _mm512_set1_pd(r[i][o]);
      acc[i][0] = _mm512_fmadd_pd(x, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(x, b1, acc[i][1]);
    }
  }
  // Columns j < nr of each stored row (a partial panel through a mask, no buffer).
  const __mmask8 m0 = static_cast<__mmask8>(nr >= 8 ? 0xFF : (1u << nr) - 1u);
  const __mmask8 m1 = static_cast<__mmask8>(nr >= 16 ? 0xFF : nr <= 8 ? 0u : (1u << (nr - 8)) - 1u);
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) {
    if (i >= mr) break;
    double* row = c + i * ldc;
    if (overwrite) {
      _mm512_mask_storeu_pd(row, m0, acc[i][0]);
      _mm512_mask_storeu_pd(row + 8, m1, acc[i][1]);
    } else {
      _mm512_mask_storeu_pd(row, m0, _mm512_add_pd(_mm512_maskz_loadu_pd(m0, row), acc[i][0]));
      _mm512_mask_storeu_pd(row + 8, m1, _mm512_add_pd(_mm512_maskz_loadu_pd(m1, row + 8), acc[i][1]));
    }
  }
}

}  // namespace

const GemmKernel gemm_kernel_avx512{tile_avx512, MR, NR, "avx512"};

}  // namespace streamattn::detail
