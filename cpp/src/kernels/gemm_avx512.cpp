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

// The float32 tile: 8 x 32 floats, the float64 tile's register plan (16 accumulators of 16
// floats).
constexpr std::int64_t NR32 = 32;

void tile_f32_avx512(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                     std::int64_t b_rs, float* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  const float* r[MR];
  for (std::int64_t i = 0; i < MR; ++i) r[i] = a + (i < mr ? i : mr - 1) * a_rs;
  __m512 acc[MR][2];
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (std::int64_t i = 0; i < MR; ++i) {
      const __m512 x = _mm512_set1_ps(r[i][o]);
      acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
    }
  }
  const __mmask16 m0 = static_cast<__mmask16>(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
  const __mmask16 m1 = static_cast<__mmask16>(nr >= 32 ? 0xFFFFu : nr <= 16 ? 0u : (1u << (nr - 16)) - 1u);
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* row = c + i * ldc;
    if (overwrite) {
      _mm512_mask_storeu_ps(row, m0, acc[i][0]);
      _mm512_mask_storeu_ps(row + 16, m1, acc[i][1]);
    } else {
      _mm512_mask_storeu_ps(row, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), acc[i][0]));
      _mm512_mask_storeu_ps(row + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), acc[i][1]));
    }
  }
}

// The float64 epilogue (gemm_kernels.hpp): the float32 sums through a buffer, then c64 += them
// and c32 = float(c64), a loop the compiler vectorizes with this file's flags.
void tile_acc64_avx512(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                       std::int64_t b_rs, double* c64, std::int64_t ldc64, float* c32, std::int64_t ldc32,
                       std::int64_t mr, std::int64_t nr) {
  const float* r[MR];
  for (std::int64_t i = 0; i < MR; ++i) r[i] = a + (i < mr ? i : mr - 1) * a_rs;
  __m512 acc[MR][2];
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (std::int64_t i = 0; i < MR; ++i) {
      const __m512 x = _mm512_set1_ps(r[i][o]);
      acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
    }
  }
  alignas(64) float buf[MR][NR32];
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < MR; ++i) {
    _mm512_store_ps(buf[i], acc[i][0]);
    _mm512_store_ps(buf[i] + 16, acc[i][1]);
  }
  for (std::int64_t i = 0; i < mr; ++i) {
    double* d = c64 + i * ldc64;
    float* f = c32 + i * ldc32;
    for (std::int64_t j = 0; j < nr; ++j) {
      const double v = d[j] + static_cast<double>(buf[i][j]);
      d[j] = v;
      f[j] = static_cast<float>(v);
    }
  }
}

}  // namespace

const GemmKernel gemm_kernel_avx512{tile_avx512, MR, NR, "avx512"};
const GemmKernelF32 gemm_kernel_f32_avx512{tile_f32_avx512, tile_acc64_avx512, MR, NR32, "avx512"};

}  // namespace streamattn::detail
