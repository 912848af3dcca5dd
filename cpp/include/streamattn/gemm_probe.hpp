// streamattn/gemm_probe.hpp — the rate of a plain Eigen GEMM in this build (same compiler, same
// baseline ISA flags as the library), so benchmarks can report GEMM-shaped work as a fraction
// of the GEMM peak measured in the same run (DESIGN.md 5).
#pragma once

#include "streamattn/common.hpp"

namespace streamattn {

/// Median wall-clock seconds of C += A B with A (m x k) and B (k x n) float64, row-major,
/// over `repeats` runs after one warm-up. Dimensions 1 .. 2^16, repeats 1 .. 1000.
double gemm_seconds(Index m, Index k, Index n, int repeats = 5);

}  // namespace streamattn
