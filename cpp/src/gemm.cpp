#include "streamattn/gemm.hpp"

#include <algorithm>
#include <vector>

#include "simd/gemm_kernels.hpp"
#include "streamattn/isa.hpp"

namespace streamattn {

namespace {

// Block sizes (float64): an MC x KC block of A (240 KB) stays in L2 while KC x NR micro-panels
// of B (16 KB) stream through L1. KC is part of the rounding contract (see gemm.hpp).
constexpr Index KC = 256, MC = 120, NC = 4096;

bool cpu_has_fma() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const detail::GemmKernel& kernel() {
#if defined(STREAMATTN_HAVE_AVX2)
  static const bool fma = cpu_has_fma();
  if (current_isa() != Isa::scalar && fma) return detail::gemm_kernel_avx2;
#endif
  return detail::gemm_kernel_scalar;
}

// A strided matrix: element (i, j) at data[i * rs + j * cs].
struct View {
  const double* data;
  Index rows, cols, rs, cs;
};

View make_view(const MatrixRef<double>& m, Trans t) {
  const Index rs = m.outerStride(), cs = m.innerStride();
  if (t == Trans::no) return {m.data(), m.rows(), m.cols(), rs, cs};
  return {m.data(), m.cols(), m.rows(), cs, rs};
}

// Rows i0 .. i0+mc-1, columns p0 .. p0+kc-1 of A into panels of mr rows: panel q holds
// A(i0 + q*mr + i, p0 + p) at q*kc*mr + p*mr + i, zero rows past the end.
void pack_a(const View& A, Index i0, Index mc, Index p0, Index kc, Index mr, double* out) {
  for (Index q = 0; q < mc; q += mr) {
    const Index rows = std::min(mr, mc - q);
    for (Index p = 0; p < kc; ++p) {
      const double* src = A.data + (i0 + q) * A.rs + (p0 + p) * A.cs;
      Index i = 0;
      for (; i < rows; ++i) out[i] = src[i * A.rs];
      for (; i < mr; ++i) out[i] = 0.0;
      out += mr;
    }
  }
}

// Rows p0 .. p0+kc-1, columns j0 .. j0+nc-1 of B into panels of nr columns (zero-padded).
void pack_b(const View& B, Index p0, Index kc, Index j0, Index nc, Index nr, double* out) {
  for (Index q = 0; q < nc; q += nr) {
    const Index cols = std::min(nr, nc - q);
    for (Index p = 0; p < kc; ++p) {
      const double* src = B.data + (p0 + p) * B.rs + (j0 + q) * B.cs;
      Index j = 0;
      if (B.cs == 1)
        for (; j < cols; ++j) out[j] = src[j];
      else
        for (; j < cols; ++j) out[j] = src[j * B.cs];
      for (; j < nr; ++j) out[j] = 0.0;
      out += nr;
    }
  }
}

Index round_up(Index x, Index m) { return (x + m - 1) / m * m; }

}  // namespace

const char* gemm_kernel_name() { return kernel().name; }

void gemm(const MatrixRef<double>& Am, Trans ta, const MatrixRef<double>& Bm, Trans tb, Eigen::Ref<RowMatrix<double>> C,
          bool accumulate) {
  const View A = make_view(Am, ta), B = make_view(Bm, tb);
  require(A.cols == B.rows, "gemm: inner dimensions differ (", A.cols, " vs ", B.rows, ")");
  require(C.rows() == A.rows && C.cols() == B.cols, "gemm: C must be ", A.rows, " x ", B.cols, ", got ", C.rows(),
          " x ", C.cols());
  const Index m = A.rows, n = B.cols, k = A.cols, ldc = C.outerStride();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) C.setZero();
    return;
  }
  const detail::GemmKernel& ker = kernel();
  const Index mr = ker.mr_max, nr = ker.nr_max;
  thread_local std::vector<double> pa, pb;
  for (Index jc = 0; jc < n; jc += NC) {
    const Index nc = std::min(NC, n - jc);
    for (Index pc = 0; pc < k; pc += KC) {
      const Index kc = std::min(KC, k - pc);
      const bool overwrite = pc == 0 && !accumulate;
      const std::size_t need_b = static_cast<std::size_t>(kc * round_up(nc, nr));
      if (pb.size() < need_b) pb.resize(need_b);
      pack_b(B, pc, kc, jc, nc, nr, pb.data());
      for (Index ic = 0; ic < m; ic += MC) {
        const Index mc = std::min(MC, m - ic);
        const std::size_t need_a = static_cast<std::size_t>(kc * round_up(mc, mr));
        if (pa.size() < need_a) pa.resize(need_a);
        pack_a(A, ic, mc, pc, kc, mr, pa.data());
        for (Index jr = 0; jr < nc; jr += nr) {
          const double* b = pb.data() + (jr / nr) * kc * nr;
          for (Index ir = 0; ir < mc; ir += mr) {
            double* c = C.data() + (ic + ir) * ldc + jc + jr;
            ker.tile(kc, pa.data() + (ir / mr) * kc * mr, b, c, ldc, std::min(mr, mc - ir), std::min(nr, nc - jr),
                     overwrite);
          }
        }
      }
    }
  }
}

}  // namespace streamattn
