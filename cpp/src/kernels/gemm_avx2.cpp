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

}  // namespace

const GemmKernel gemm_kernel_avx2{tile_avx2, MR, NR, "avx2"};

}  // namespace streamattn::detail
