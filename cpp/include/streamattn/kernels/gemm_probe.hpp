// streamattn/kernels/gemm_probe.hpp — the rate of a float64 GEMM in this build, on Eigen (same compiler,
// same baseline ISA flags as the library) or on the library's own per-ISA kernel (gemm.hpp, the
// one the streams use), so benchmarks can report GEMM-shaped work as a fraction of the GEMM peak
// measured in the same run (docs/design.md §5).
#pragma once

#include <string>

#include "streamattn/core/common.hpp"

namespace streamattn {

/// Which implementation gemm_seconds times.
enum class GemmImpl { eigen, streamattn };

/// "eigen" or "streamattn"; std::invalid_argument for anything else.
GemmImpl parse_gemm_impl(const std::string& name);

/// Median wall-clock seconds of C += A B with A (m x k) and B (k x n) float64, row-major,
/// over `repeats` runs after one warm-up. Dimensions 1 .. 2^16, repeats 1 .. 1000.
double gemm_seconds(Index m, Index k, Index n, int repeats = 5, GemmImpl impl = GemmImpl::eigen);

}  // namespace streamattn
