// Portable GEMM tile: the reference the SIMD tiles match bit for bit (std::fma, one chain per
// entry in order p). Slow without FMA hardware (glibc emulates fma exactly), but exact.
#include <cmath>

#include "gemm_kernels.hpp"

namespace streamattn::detail {
namespace {

constexpr std::int64_t MR = 4, NR = 4;

void tile_scalar(std::int64_t kc, const double* a, std::int64_t a_rs, std::int64_t a_cs, const double* b,
                 std::int64_t b_rs, double* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  double acc[MR][NR] = {};
  for (std::int64_t p = 0; p < kc; ++p)
    for (std::int64_t i = 0; i < mr; ++i) {
      const double x = a[i * a_rs + p * a_cs];
      for (std::int64_t j = 0; j < NR; ++j) acc[i][j] = std::fma(x, b[p * b_rs + j], acc[i][j]);
    }
  for (std::int64_t i = 0; i < mr; ++i)
    for (std::int64_t j = 0; j < nr; ++j) c[i * ldc + j] = overwrite ? acc[i][j] : c[i * ldc + j] + acc[i][j];
}

void tile_f32_scalar(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                     std::int64_t b_rs, float* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr, bool overwrite) {
  float acc[MR][NR] = {};
  for (std::int64_t p = 0; p < kc; ++p)
    for (std::int64_t i = 0; i < mr; ++i) {
      const float x = a[i * a_rs + p * a_cs];
      for (std::int64_t j = 0; j < NR; ++j) acc[i][j] = std::fma(x, b[p * b_rs + j], acc[i][j]);
    }
  for (std::int64_t i = 0; i < mr; ++i)
    for (std::int64_t j = 0; j < nr; ++j) c[i * ldc + j] = overwrite ? acc[i][j] : c[i * ldc + j] + acc[i][j];
}

void tile_acc64_scalar(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                       std::int64_t b_rs, double* c64, std::int64_t ldc64, float* c32, std::int64_t ldc32,
                       std::int64_t mr, std::int64_t nr) {
  float acc[MR][NR] = {};
  for (std::int64_t p = 0; p < kc; ++p)
    for (std::int64_t i = 0; i < mr; ++i) {
      const float x = a[i * a_rs + p * a_cs];
      for (std::int64_t j = 0; j < NR; ++j) acc[i][j] = std::fma(x, b[p * b_rs + j], acc[i][j]);
    }
  for (std::int64_t i = 0; i < mr; ++i)
    for (std::int64_t j = 0; j < nr; ++j) {
      const double v = c64[i * ldc64 + j] + static_cast<double>(acc[i][j]);
      c64[i * ldc64 + j] = v;
      c32[i * ldc32 + j] = static_cast<float>(v);
    }
}

}  // namespace

const GemmKernel gemm_kernel_scalar{tile_scalar, MR, NR, "scalar"};
const GemmKernelF32 gemm_kernel_f32_scalar{tile_f32_scalar, tile_acc64_scalar, MR, NR, "scalar"};

}  // namespace streamattn::detail
