// AVX2 + FMA GEMM tile, 6 x 8 float64 (12 accumulators, 2 loads of B and 1 broadcast of A per
// row: 15 of the 16 ymm registers), A read in place through its strides. Compiled with -mavx2 -mfma; selected at run
// time. Each accumulator lane is one fma chain in order p, so the results equal the scalar tile's bits.
#include <immintrin.h>

#include "gemm_kernels.hpp"

namespace streamattn::detail {
namespace {

constexpr std::int64_t MR = 6, NR = 8;

void tile_avx2(std::int64_t kc, const double* a, std::int64_t a_rs, std::int64_t a_cs, const double* b,
               std::int64_t b_rs, double* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  // Rows past mr read row mr - 1 again (valid memory); their results are never stored.
  const double* r0 = a;
  const double* r1 = a + (mr > 1 ? 1 : 0) * a_rs;
  const double* r2 = a + (mr > 2 ? 2 : mr - 1) * a_rs;
  const double* r3 = a + (mr > 3 ? 3 : mr - 1) * a_rs;
  const double* r4 = a + (mr > 4 ? 4 : mr - 1) * a_rs;
  const double* r5 = a + (mr > 5 ? 5 : mr - 1) * a_rs;
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd(), c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd(),
          c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd(), c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd(),
          c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd(), c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
    __m256d x = _mm256_broadcast_sd(r0 + o);
    c00 = _mm256_fmadd_pd(x, b0, c00);
    c01 = _mm256_fmadd_pd(x, b1, c01);
    x = _mm256_broadcast_sd(r1 + o);
    c10 = _mm256_fmadd_pd(x, b0, c10);
    c11 = _mm256_fmadd_pd(x, b1, c11);
    x = _mm256_broadcast_sd(r2 + o);
    c20 = _mm256_fmadd_pd(x, b0, c20);
    c21 = _mm256_fmadd_pd(x, b1, c21);
    x = _mm256_broadcast_sd(r3 + o);
    c30 = _mm256_fmadd_pd(x, b0, c30);
    c31 = _mm256_fmadd_pd(x, b1, c31);
    x = _mm256_broadcast_sd(r4 + o);
    c40 = _mm256_fmadd_pd(x, b0, c40);
    c41 = _mm256_fmadd_pd(x, b1, c41);
    x = _mm256_broadcast_sd(r5 + o);
    c50 = _mm256_fmadd_pd(x, b0, c50);
    c51 = _mm256_fmadd_pd(x, b1, c51);
  }
  const __m256d acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (std::int64_t i = 0; i < MR; ++i) {
      double* row = c + i * ldc;
      if (overwrite) {
        _mm256_storeu_pd(row, acc[i][0]);
        _mm256_storeu_pd(row + 4, acc[i][1]);
      } else {
        _mm256_storeu_pd(row, _mm256_add_pd(_mm256_loadu_pd(row), acc[i][0]));
        _mm256_storeu_pd(row + 4, _mm256_add_pd(_mm256_loadu_pd(row + 4), acc[i][1]));
      }
    }
    return;
  }
  // Edge tile: through a buffer, only the mr x nr part is written.
  alignas(32) double buf[MR][NR];
  for (std::int64_t i = 0; i < MR; ++i) {
    _mm256_store_pd(buf[i], acc[i][0]);
    _mm256_store_pd(buf[i] + 4, acc[i][1]);
  }
  for (std::int64_t i = 0; i < mr; ++i)
    for (std::int64_t j = 0; j < nr; ++j) c[i * ldc + j] = overwrite ? buf[i][j] : c[i * ldc + j] + buf[i][j];
}

// The float32 tile: 6 x 16 floats, the same register plan as the float64 one (12 accumulators
// of 8 floats), twice the columns per instruction.
constexpr std::int64_t NR32 = 16;

void tile_f32_avx2(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                   std::int64_t b_rs, float* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  const float* r[MR];
  for (std::int64_t i = 0; i < MR; ++i) r[i] = a + (i < mr ? i : mr - 1) * a_rs;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (std::int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (std::int64_t i = 0; i < MR; ++i) {
      const __m256 x = _mm256_broadcast_ss(r[i] + o);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
    }
  }
  if (mr == MR && nr == NR32) {
#pragma GCC unroll 6
    for (std::int64_t i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
      if (overwrite) {
        _mm256_storeu_ps(row, acc[i][0]);
        _mm256_storeu_ps(row + 8, acc[i][1]);
      } else {
        _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[i][0]));
        _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[i][1]));
      }
    }
    return;
  }
  alignas(32) float buf[MR][NR32];
#pragma GCC unroll 6
  for (std::int64_t i = 0; i < MR; ++i) {
    _mm256_store_ps(buf[i], acc[i][0]);
    _mm256_store_ps(buf[i] + 8, acc[i][1]);
  }
  for (std::int64_t i = 0; i < mr; ++i)
    for (std::int64_t j = 0; j < nr; ++j) c[i * ldc + j] = overwrite ? buf[i][j] : c[i * ldc + j] + buf[i][j];
}

// The float64 epilogue (gemm_kernels.hpp): the float32 sums through a buffer, then c64 += them
// and c32 = float(c64), a loop the compiler vectorizes with this file's flags.
void tile_acc64_avx2(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                     std::int64_t b_rs, double* c64, std::int64_t ldc64, float* c32, std::int64_t ldc32,
                     std::int64_t mr, std::int64_t nr) {
  const float* r[MR];
  for (std::int64_t i = 0; i < MR; ++i) r[i] = a + (i < mr ? i : mr - 1) * a_rs;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (std::int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (std::int64_t p = 0, o = 0; p < kc; ++p, o += a_cs, b += b_rs) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (std::int64_t i = 0; i < MR; ++i) {
      const __m256 x = _mm256_broadcast_ss(r[i] + o);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
    }
  }
  alignas(64) float buf[MR][NR32];
#pragma GCC unroll 6
  for (std::int64_t i = 0; i < MR; ++i) {
    _mm256_store_ps(buf[i], acc[i][0]);
    _mm256_store_ps(buf[i] + 8, acc[i][1]);
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

const GemmKernel gemm_kernel_avx2{tile_avx2, MR, NR, "avx2"};
const GemmKernelF32 gemm_kernel_f32_avx2{tile_f32_avx2, tile_acc64_avx2, MR, NR32, "avx2"};

}  // namespace streamattn::detail
