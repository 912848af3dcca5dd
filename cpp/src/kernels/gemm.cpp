#include "streamattn/kernels/gemm.hpp"

#include <algorithm>
#include <type_traits>
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

// The kernels of the ISA selected now: the float64 ones (T = double) or the float32 ones.
template <class T>
const auto& kernel() {
  constexpr bool f32 = std::is_same_v<T, float>;
  if constexpr (f32) {
#if defined(STREAMATTN_HAVE_AVX512)
    if (current_isa() == Isa::avx512) return detail::gemm_kernel_f32_avx512;
#endif
#if defined(STREAMATTN_HAVE_AVX2)
    static const bool fma = cpu_has_fma();
    if (current_isa() != Isa::scalar && fma) return detail::gemm_kernel_f32_avx2;
#endif
    return detail::gemm_kernel_f32_scalar;
  } else {
#if defined(STREAMATTN_HAVE_AVX512)
    if (current_isa() == Isa::avx512) return detail::gemm_kernel_avx512;  // AVX-512F has its own FMA
#endif
#if defined(STREAMATTN_HAVE_AVX2)
    static const bool fma = cpu_has_fma();
    if (current_isa() != Isa::scalar && fma) return detail::gemm_kernel_avx2;
#endif
    return detail::gemm_kernel_scalar;
  }
}

// A strided matrix: element (i, j) at data[i * rs + j * cs].
template <class T>
struct View {
  const T* data;
  Index rows, cols, rs, cs;
};

template <class T>
View<T> make_view(const MatrixRef<T>& m, Trans t) {
  const Index rs = m.outerStride(), cs = m.innerStride();
  if (t == Trans::no) return {m.data(), m.rows(), m.cols(), rs, cs};
  return {m.data(), m.cols(), m.rows(), cs, rs};
}

// Rows p0 .. p0+kc-1, columns j0 .. j0+nc-1 of B into panels of nr columns (zero-padded): for
// a B whose columns are not contiguous, or the last, partial panel.
template <class T>
void pack_b(const View<T>& B, Index p0, Index kc, Index j0, Index nc, Index nr, T* out) {
  for (Index q = 0; q < nc; q += nr) {
    const Index cols = std::min(nr, nc - q);
    for (Index p = 0; p < kc; ++p) {
      const T* src = B.data + (p0 + p) * B.rs + (j0 + q) * B.cs;
      Index j = 0;
      if (B.cs == 1)
        for (; j < cols; ++j) out[j] = src[j];
      else
        for (; j < cols; ++j) out[j] = src[j * B.cs];
      for (; j < nr; ++j) out[j] = T(0);
      out += nr;
    }
  }
}

Index round_up(Index x, Index m) { return (x + m - 1) / m * m; }

// C (rows x cols, row-major, ldc) = or += A' B'; with c32 (float32 only): the float64 epilogue
// of gemm_acc64, C the float64 matrix, c32 its float32 copy.
template <class T, class CT>
void gemm_impl(const MatrixRef<T>& Am, Trans ta, const MatrixRef<T>& Bm, Trans tb, CT* C, Index c_rows, Index c_cols,
               Index ldc, bool accumulate, float* c32 = nullptr, Index ldc32 = 0);

}  // namespace

const char* gemm_kernel_name() { return kernel<double>().name; }
const char* gemm_f32_kernel_name() { return kernel<float>().name; }

namespace {

// Runs f(i0, rows, j0, cols) over blocks of the m x n product C: one block on the calling
// thread, or (pool, enough work) one contiguous block of whole tiles per thread, split along
// the longer side of C. Every entry of C belongs to exactly one block.
template <class T, class F>
void split_blocks(ThreadPool* pool, Index m, Index n, Index k, F&& f) {
  const auto& ker = kernel<T>();
  const int threads = pool ? pool->threads() : 1;
  if (threads <= 1 ||
      static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < static_cast<double>(kGemmSplitWork)) {
    f(Index{0}, m, Index{0}, n);
    return;
  }
  const bool rows = m >= n;
  const Index len = rows ? m : n, unit = rows ? ker.mr_max : ker.nr_max;
  const Index units = (len + unit - 1) / unit;
  const Index parts = std::min<Index>(threads, units);
  if (parts <= 1) {
    f(Index{0}, m, Index{0}, n);
    return;
  }
  pool->run(parts, [&](std::int64_t p) {
    const Index u0 = units * p / parts, u1 = units * (p + 1) / parts;
    const Index a = u0 * unit, b = std::min(len, u1 * unit);
    if (b <= a) return;
    if (rows)
      f(a, b - a, Index{0}, n);
    else
      f(Index{0}, m, a, b - a);
  });
}

// Rows i0 .. i0+r-1 of A' (A or A^T) and columns j0 .. j0+c-1 of B'.
template <class T>
MatrixRef<T> rows_of(const MatrixRef<T>& A, Trans t, Index i0, Index r) {
  return t == Trans::no ? MatrixRef<T>(A.middleRows(i0, r)) : MatrixRef<T>(A.middleCols(i0, r));
}
template <class T>
MatrixRef<T> cols_of(const MatrixRef<T>& B, Trans t, Index j0, Index c) {
  return t == Trans::no ? MatrixRef<T>(B.middleCols(j0, c)) : MatrixRef<T>(B.middleRows(j0, c));
}

template <class T>
void gemm_split(const MatrixRef<T>& A, Trans ta, const MatrixRef<T>& B, Trans tb, Eigen::Ref<RowMatrix<T>> C,
                bool accumulate, ThreadPool* pool) {
  const Index m = ta == Trans::no ? A.rows() : A.cols(), n = tb == Trans::no ? B.cols() : B.rows();
  const Index k = ta == Trans::no ? A.cols() : A.rows();
  if (!pool || m != C.rows() || n != C.cols()) {  // shape errors: reported by gemm_impl
    gemm_impl<T, T>(A, ta, B, tb, C.data(), C.rows(), C.cols(), C.outerStride(), accumulate);
    return;
  }
  split_blocks<T>(pool, m, n, k, [&](Index i0, Index r, Index j0, Index c) {
    gemm_impl<T, T>(rows_of(A, ta, i0, r), ta, cols_of(B, tb, j0, c), tb, C.data() + i0 * C.outerStride() + j0, r, c,
                    C.outerStride(), accumulate);
  });
}

}  // namespace

void gemm(const MatrixRef<double>& A, Trans ta, const MatrixRef<double>& B, Trans tb, Eigen::Ref<RowMatrix<double>> C,
          bool accumulate, ThreadPool* pool) {
  gemm_split<double>(A, ta, B, tb, C, accumulate, pool);
}

void gemm(const MatrixRef<float>& A, Trans ta, const MatrixRef<float>& B, Trans tb, Eigen::Ref<RowMatrix<float>> C,
          bool accumulate, ThreadPool* pool) {
  gemm_split<float>(A, ta, B, tb, C, accumulate, pool);
}

void gemm_acc64(const MatrixRef<float>& A, Trans ta, const MatrixRef<float>& B, Trans tb,
                Eigen::Ref<RowMatrix<double>> C64, Eigen::Ref<RowMatrix<float>> C32, ThreadPool* pool) {
  require(C32.rows() == C64.rows() && C32.cols() == C64.cols(), "gemm_acc64: C32 must be ", C64.rows(), " x ",
          C64.cols(), ", got ", C32.rows(), " x ", C32.cols());
  const Index m = ta == Trans::no ? A.rows() : A.cols(), n = tb == Trans::no ? B.cols() : B.rows();
  const Index k = ta == Trans::no ? A.cols() : A.rows();
  if (!pool || m != C64.rows() || n != C64.cols()) {
    gemm_impl<float, double>(A, ta, B, tb, C64.data(), C64.rows(), C64.cols(), C64.outerStride(), true, C32.data(),
                             C32.outerStride());
    return;
  }
  split_blocks<float>(pool, m, n, k, [&](Index i0, Index r, Index j0, Index c) {
    gemm_impl<float, double>(rows_of(A, ta, i0, r), ta, cols_of(B, tb, j0, c), tb,
                             C64.data() + i0 * C64.outerStride() + j0, r, c, C64.outerStride(), true,
                             C32.data() + i0 * C32.outerStride() + j0, C32.outerStride());
  });
}

namespace {

template <class T, class CT>
void gemm_impl(const MatrixRef<T>& Am, Trans ta, const MatrixRef<T>& Bm, Trans tb, CT* C, Index c_rows, Index c_cols,
               Index ldc, bool accumulate, float* c32, Index ldc32) {
  const View<T> A = make_view<T>(Am, ta), B = make_view<T>(Bm, tb);
  require(A.cols == B.rows, "gemm: inner dimensions differ (", A.cols, " vs ", B.rows, ")");
  require(c_rows == A.rows && c_cols == B.cols, "gemm: C must be ", A.rows, " x ", B.cols, ", got ", c_rows, " x ",
          c_cols);
  const Index m = A.rows, n = B.cols, k = A.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) {
        if (!accumulate) C[i * ldc + j] = CT(0);
        if (c32) c32[i * ldc32 + j] = static_cast<float>(C[i * ldc + j]);
      }
    return;
  }
  const auto& ker = kernel<T>();
  const Index mr = ker.mr_max, nr = ker.nr_max;
  // A is read in place (the tile takes any strides). Full panels of a B with contiguous columns
  // are read in place too; the others are packed once per KC x NC block.
  thread_local std::vector<T> pb;
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
          const T* b = jr < packed_from ? B.data + pc * B.rs + jc + jr : pb.data() + (jr - packed_from) * kc;
          const Index b_rs = jr < packed_from ? B.rs : nr;
          for (Index ir = ic; ir < ic + mc; ir += mr) {
            const T* a = A.data + ir * A.rs + pc * A.cs;
            const Index rows = std::min(mr, ic + mc - ir), cols = std::min(nr, nc - jr);
            if constexpr (std::is_same_v<T, float> && std::is_same_v<CT, double>)
              ker.tile_acc64(kc, a, A.rs, A.cs, b, b_rs, C + ir * ldc + jc + jr, ldc, c32 + ir * ldc32 + jc + jr, ldc32,
                             rows, cols);
            else
              ker.tile(kc, a, A.rs, A.cs, b, b_rs, C + ir * ldc + jc + jr, ldc, rows, cols, overwrite);
          }
        }
      }
    }
  }
}

}  // namespace

}  // namespace streamattn
