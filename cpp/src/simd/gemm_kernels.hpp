// Per-ISA float64 GEMM micro-kernels. Internal to the library (see streamattn/gemm.hpp).
//
// Included by translation units compiled with different target flags: plain declarations only
// (no inline bodies, no Eigen), so nothing can be merged across ISAs by the linker.
#pragma once

#include <cstdint>

namespace streamattn::detail {

// One register tile: acc(i, j) = sum_{p < kc} a[p*mr_max + i] * b[p*nr_max + j], each entry one
// chain of fused multiply-adds in order p = 0, 1, ..., starting from +0.0. Then for i < mr,
// j < nr: c[i*ldc + j] = acc(i, j) if overwrite, else c[i*ldc + j] + acc(i, j).
// `a` and `b` are packed panels (zero-padded to mr_max x nr_max).
using GemmTileFn = void (*)(std::int64_t kc, const double* a, const double* b, double* c, std::int64_t ldc,
                            std::int64_t mr, std::int64_t nr, bool overwrite);

struct GemmKernel {
  GemmTileFn tile;
  std::int64_t mr_max;  ///< rows of a register tile
  std::int64_t nr_max;  ///< columns of a register tile
  const char* name;
};

extern const GemmKernel gemm_kernel_scalar;
#if defined(STREAMATTN_HAVE_AVX2)
extern const GemmKernel gemm_kernel_avx2;
#endif

}  // namespace streamattn::detail
