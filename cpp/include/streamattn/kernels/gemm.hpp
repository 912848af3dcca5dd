// streamattn/kernels/gemm.hpp — the float64 matrix products of the polynomial method on per-ISA kernels.
//
// The library is compiled for the baseline CPU (SSE2, no FMA), and so is Eigen inside it (mixing
// ISA flags across files that include Eigen would merge different inline definitions), which
// holds Eigen's products to about a third of what AVX2 + FMA gives. The hot products of the
// causal stream and the prefix state (phi(Q) M, phi(K)^T V, the intra-chunk scores and their
// product with V) run here instead: a register-blocked micro-kernel per ISA (cpp/src/kernels/
// gemm_{scalar,avx2,avx512}.cpp, chosen at run time from the ISA selected in isa.hpp; AVX2
// without FMA uses the scalar one) multiplies blocks of MC x KC of A, read in place through its
// strides, with KC x NR panels of B (NR = 4, 8 or 16 columns by kernel), read in place when its
// columns are contiguous and packed otherwise. These products are small (the state and one
// chunk, all in L2), so packing A would cost more than it saves.
//
// Rounding is the same on every path: each entry of C is one chain of fused multiply-adds over
// k in order, restarted every KC = 256 terms, and the chains are added to C block by block in
// order. So the scalar and SIMD paths give identical bits (tests), whatever the thread count.
//
// Threads: given a ThreadPool (core/thread_pool.hpp) with more than one thread and a product of
// at least kGemmSplitWork multiply-adds, the product is split into contiguous blocks of rows of C
// (when C has at least as many rows as columns; blocks of whole register tiles) or of columns
// of C (whole panels), one task per thread. Each entry of C is then still the same chains over
// k in the same order, computed by one thread, and no two threads write the same entry: the
// result is bit-identical for every thread count (tests).
#pragma once

#include "streamattn/core/common.hpp"
#include "streamattn/core/thread_pool.hpp"

namespace streamattn {

/// Is A or B used as it is or transposed?
enum class Trans { no, yes };

/// Products of fewer multiply-adds (rows x cols x inner) than this run on the calling thread
/// even with a pool: below it, waking the workers costs about what the split saves (measured
/// with bench/bench_threads.py at t = 153 .. 2211).
constexpr std::int64_t kGemmSplitWork = std::int64_t{1} << 19;

/// C = A' B' (accumulate = false) or C += A' B' (accumulate = true), where A' is A or A^T and
/// B' is B or B^T; C must be rows(A') x cols(B') (checked) and must not alias A or B.
/// Any strides for A and B (views, blocks, transposes cost nothing); C row-major.
/// pool: split the product over its threads (see above; null = the calling thread only).
void gemm(const MatrixRef<double>& A, Trans ta, const MatrixRef<double>& B, Trans tb, Eigen::Ref<RowMatrix<double>> C,
          bool accumulate, ThreadPool* pool = nullptr);

/// The float32 product on the float32 micro-kernels of the same ISA (the compute="float32" path
/// of the causal streams): each entry one chain of float32 fused multiply-adds, the same
/// blocking and the same bits on every path.
void gemm(const MatrixRef<float>& A, Trans ta, const MatrixRef<float>& B, Trans tb, Eigen::Ref<RowMatrix<float>> C,
          bool accumulate, ThreadPool* pool = nullptr);

/// The float32 compute path's state update: C64 += A' B' with the products formed in float32
/// (each KC block's float32 sums added in float64), and C32 = float32(C64) afterwards, both in
/// the tiles' epilogue (no extra pass over C). C32 must have C64's shape.
void gemm_acc64(const MatrixRef<float>& A, Trans ta, const MatrixRef<float>& B, Trans tb,
                Eigen::Ref<RowMatrix<double>> C64, Eigen::Ref<RowMatrix<float>> C32, ThreadPool* pool = nullptr);

/// The micro-kernel gemm() uses now ("scalar", "avx2" or "avx512"), float64 and float32.
const char* gemm_kernel_name();
const char* gemm_f32_kernel_name();

}  // namespace streamattn
