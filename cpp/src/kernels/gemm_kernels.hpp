// Per-ISA float64 and float32 GEMM micro-kernels. Internal to the library (see streamattn/kernels/gemm.hpp).
//
// Included by translation units compiled with different target flags: plain declarations only
// (no inline bodies, no Eigen), so nothing can be merged across ISAs by the linker.
#pragma once

#include <cstdint>

namespace streamattn::detail {

// One register tile: acc(i, j) = sum_{p < kc} A(i, p) B(p, j), each entry one chain of fused
// multiply-adds in order p = 0, 1, ..., starting from +0.0. Then for i < mr, j < nr:
// c[i*ldc + j] = acc(i, j) if overwrite, else c[i*ldc + j] + acc(i, j).
// A(i, p) = a[i*a_rs + p*a_cs] is read for i < mr only (any strides, so A needs no packing);
// B(p, j) = b[p*b_rs + j] is read for all j < nr_max (a full panel: contiguous columns).
using GemmTileFn = void (*)(std::int64_t kc, const double* a, std::int64_t a_rs, std::int64_t a_cs, const double* b,
                            std::int64_t b_rs, double* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr,
                            bool overwrite);

struct GemmKernel {
  GemmTileFn tile;
  std::int64_t mr_max;  ///< rows of a register tile
  std::int64_t nr_max;  ///< columns of a register tile
  const char* name;
};

// The float32 tile: the same contract in float (one fused multiply-add chain per entry, in
// order p, in float32).
using GemmTileF32Fn = void (*)(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                               std::int64_t b_rs, float* c, std::int64_t ldc, std::int64_t mr, std::int64_t nr,
                               bool overwrite);

// The float32 tile with the float64 epilogue of the float32 compute path's state update: the
// tile's float32 sums acc(i, j) (the same chains as the float32 tile) are added in float64,
// c64[i*ldc64 + j] += double(acc(i, j)), and c32[i*ldc32 + j] = float(the new c64 entry).
using GemmTileAcc64Fn = void (*)(std::int64_t kc, const float* a, std::int64_t a_rs, std::int64_t a_cs, const float* b,
                                 std::int64_t b_rs, double* c64, std::int64_t ldc64, float* c32, std::int64_t ldc32,
                                 std::int64_t mr, std::int64_t nr);

struct GemmKernelF32 {
  GemmTileF32Fn tile;
  GemmTileAcc64Fn tile_acc64;
  std::int64_t mr_max;
  std::int64_t nr_max;
  const char* name;
};

extern const GemmKernel gemm_kernel_scalar;
extern const GemmKernelF32 gemm_kernel_f32_scalar;
#if defined(STREAMATTN_HAVE_AVX2)
extern const GemmKernel gemm_kernel_avx2;
extern const GemmKernelF32 gemm_kernel_f32_avx2;
#endif
#if defined(STREAMATTN_HAVE_AVX512)
extern const GemmKernel gemm_kernel_avx512;
extern const GemmKernelF32 gemm_kernel_f32_avx512;
#endif

}  // namespace streamattn::detail
