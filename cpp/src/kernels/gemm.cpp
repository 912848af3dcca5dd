#include "streamattn/kernels/gemm.hpp"

#include <algorithm>
#include <vector>

#include "gemm_kernels.hpp"
#include "streamattn/kernels/isa.hpp"

namespace streamattn {

namespace {

// Block sizes (float64): MC rows of A and of C (MC x KC of A, ~240 KB at most, stays in L2)
// meet one KC x NR panel of B (8-32 KB for NR = 4..16, in L1) at a time. KC is part of the
// rounding contract (see gemm.hpp).
constexpr Index KC = 256, MC = 120, NC = 4096;

bool cpu_has_fma() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const detail::GemmKernel& kernel() {
#if defined(STREAMATTN_HAVE_AVX512)
  if (current_isa() == Isa::avx512) return detail::gemm_kernel_avx512;  // AVX-512F has its own FMA
#endif
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

// Rows p0 .. p0+kc-1, columns j0 .. j0+nc-1 of B into panels of nr columns (zero-padded): for
// a B whose columns are not contiguous, or the last, partial panel.
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
  // A is read in place (the tile takes any strides). Full panels of a B with contiguous columns
  // are read in place too; the others are packed once per KC x NC block.
  thread_local std::vector<double> pb;
  const bool b_in_place = B.cs == 1;
  for (Index jc = 0; jc < n; jc += NC) {
    const Index nc = std::min(NC, n - jc);
    for (Index pc = 0; pc < k; pc += KC) {
      const Index kc = std::min(KC, k - pc);
      const bool overwrite = pc == 0 && !accumulate;
      const Index packed_from = b_in_place ? nc / nr * nr : 0;  // panels from here on are packed
      if (packed_from < nc) {
        const std::size_t need = static_cast<std::size_t>(kc * round_up(nc - packed_from, nr));
        if (pb.size() < need) pb.resize(need);
        pack_b(B, pc, kc, jc + packed_from, nc - packed_from, nr, pb.data());
      }
      for (Index ic = 0; ic < m; ic += MC) {
        const Index mc = std::min(MC, m - ic);
        for (Index jr = 0; jr < nc; jr += nr) {
          const double* b = jr < packed_from ? B.data + pc * B.rs + jc + jr : pb.data() + (jr - packed_from) * kc;
          const Index b_rs = jr < packed_from ? B.rs : nr;
          for (Index ir = ic; ir < ic + mc; ir += mr)
            ker.tile(kc, A.data + ir * A.rs + pc * A.cs, A.rs, A.cs, b, b_rs, C.data() + ir * ldc + jc + jr, ldc,
                     std::min(mr, ic + mc - ir), std::min(nr, nc - jr), overwrite);
        }
      }
    }
  }
}

}  // namespace streamattn
