#include "streamattn/attention/causal_chunk.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "streamattn/kernels/gemm.hpp"

namespace streamattn {

namespace {
template <class M>
void ensure(M& m, Index rows, Index cols) {
  if (m.rows() < rows || m.cols() != cols) m.resize(rows, cols);
}
}  // namespace

void require_valid_chunk(Index chunk) {
  require(chunk >= 1 && chunk <= kMaxChunk, "chunk must be in [1, ", kMaxChunk, "], got ", chunk);
}

void CausalChunker::reserve(Index rows, Index d, Index dv, bool gated, Index chunk) {
  ensure(num_, rows, dv);
  ensure(q_, rows, d);
  ensure(k_, rows, d);
  ensure(v_, rows, dv);
  ensure(scores_, rows, rows);
  if (den_.size() < rows) den_.resize(rows);
  if (gated && gw_.size() < rows) gw_.resize(std::max(rows, chunk));
}

void CausalChunker::cumulative_gates(const VectorRef<double>& gate, Index a, Index r, Index chunk) {
  if (gcum_.size() < r) gcum_.resize(std::max<Index>(r, chunk));
  if (gw_.size() < r) gw_.resize(std::max<Index>(r, chunk));
  double acc = 0.0;
  for (Index m = 0; m < r; ++m) gcum_[m] = acc += gate[a + m];
}

template <class T>
Eigen::Ref<RowMatrix<double>> CausalChunker::outputs(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                     const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                     std::uint64_t first_row, const Normalizer& norm, PolyWorkspace& ws,
                                                     bool f32) {
  const Index r = Qc.rows();
  const double c = state.scale();
  auto nm = num_.topRows(r);
  auto dn = den_.head(r);
  nm.setZero();
  dn.setZero();
  // Inter-chunk part: every earlier key, through the prefix state (decayed by e^{G_m}).
  if (state.tokens() > 0) {
    if (f32)
      state.accumulate_f32(Qc, nm, dn, ws);
    else
      state.accumulate(Qc, nm, dn, ws);
    if (gated) {
      for (Index m = 0; m < r; ++m) gw_[m] = std::exp(gcum_[m]);
      nm = gw_.head(r).asDiagonal() * nm;
      dn.array() *= gw_.head(r).array();
    }
  }
  if (f32) {
    k_.topRows(r) = Kc.template cast<double>();  // keys() and values() for the probes
    v_.topRows(r) = Vc.template cast<double>();
    intra_f32(Qc, Kc, Vc, gated, c, state.degree(), state.kernel(), nm, dn);
    detail::normalize_rows(nm, dn, first_row, state.degree(), state.kernel(), norm);
    return nm;
  }
  // Intra-chunk part: kappa(c q.k) over this chunk's keys, causally masked (and decayed).
  q_.topRows(r) = c * Qc.template cast<double>();
  k_.topRows(r) = Kc.template cast<double>();
  v_.topRows(r) = Vc.template cast<double>();
  auto sb = scores_.topLeftCorner(r, r);
  gemm(q_.topRows(r), Trans::no, k_.topRows(r), Trans::yes, sb, false);
  kernel_inplace(sb, state.degree(), state.kernel());
  sb.template triangularView<Eigen::StrictlyUpper>().setZero();
  if (gated) {
    // Differences of cumulative sums inside one chunk: e^{G_m - G_l} <= 1, never overflows.
    for (Index m = 0; m < r; ++m) {
      const double gm = gcum_[m];
      for (Index l = 0; l < m; ++l) sb(m, l) *= std::exp(gm - gcum_[l]);
    }
  }
  // The zeros above the diagonal cost flops, but the whole block on the GEMM kernel is faster
  // than Eigen's triangular product (and adding fma(0, v, x) = x changes no bits).
  gemm(sb, Trans::no, v_.topRows(r), Trans::no, nm, true);
  dn.noalias() += sb.rowwise().sum();
  detail::normalize_rows(nm, dn, first_row, state.degree(), state.kernel(), norm);
  return nm;
}

template <class T>
void CausalChunker::intra_f32(const MatrixRef<T>& Qc, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                              double c, int degree, FeatureKernel kernel, Eigen::Ref<RowMatrix<double>> nm,
                              Eigen::Ref<Eigen::VectorXd> dn) {
  const Index r = Qc.rows(), d = Qc.cols(), dv = Vc.cols();
  ensure(q32_, r, d);
  ensure(k32_, r, d);
  ensure(v32_, r, dv);
  ensure(scores32_, r, r);
  ensure(num32_, r, dv);
  // c q rounded once to float32 (from float64 for float64 inputs).
  if constexpr (std::is_same_v<T, float>)
    q32_.topRows(r) = static_cast<float>(c) * Qc;
  else
    q32_.topRows(r) = (c * Qc).template cast<float>();
  k32_.topRows(r) = Kc.template cast<float>();
  v32_.topRows(r) = Vc.template cast<float>();
  auto sb = scores32_.topLeftCorner(r, r);
  gemm(q32_.topRows(r), Trans::no, k32_.topRows(r), Trans::yes, sb, false);
  kernel_inplace(sb, degree, kernel);
  sb.template triangularView<Eigen::StrictlyUpper>().setZero();
  if (gated) {
    for (Index m = 0; m < r; ++m) {
      const double gm = gcum_[m];
      for (Index l = 0; l < m; ++l) sb(m, l) *= static_cast<float>(std::exp(gm - gcum_[l]));
    }
  }
  gemm(sb, Trans::no, v32_.topRows(r), Trans::no, num32_.topRows(r), false);
  nm += num32_.topRows(r).template cast<double>();
  // The denominators' intra-chunk sums in float64 (r^2 additions: the normalizer stays exact
  // to float64 rounding of float32 scores).
  dn.noalias() += sb.template cast<double>().rowwise().sum();
}

template <class T>
void CausalChunker::absorb(PolyPrefixState& state, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                           PolyWorkspace& ws, bool f32) {
  if (!gated) {
    if (f32) return state.absorb_rows_f32(Kc, Vc, nullptr, ws);
    return state.absorb_rows(Kc, Vc, ws);
  }
  // The chunk's total decay scales the state before its keys are absorbed.
  const Index r = Kc.rows();
  const double last = gcum_[r - 1];
  for (Index m = 0; m < r; ++m) gw_[m] = std::exp(last - gcum_[m]);
  state.decay(std::exp(last));
  if (f32) return state.absorb_rows_f32(Kc, Vc, gw_.data(), ws);
  state.absorb_rows_weighted(Kc, Vc, gw_.data(), ws);
}

template Eigen::Ref<RowMatrix<double>> CausalChunker::outputs<float>(const PolyPrefixState&, const MatrixRef<float>&,
                                                                     const MatrixRef<float>&, const MatrixRef<float>&,
                                                                     bool, std::uint64_t, const Normalizer&,
                                                                     PolyWorkspace&, bool);
template Eigen::Ref<RowMatrix<double>> CausalChunker::outputs<double>(const PolyPrefixState&, const MatrixRef<double>&,
                                                                      const MatrixRef<double>&,
                                                                      const MatrixRef<double>&, bool, std::uint64_t,
                                                                      const Normalizer&, PolyWorkspace&, bool);
template void CausalChunker::absorb<float>(PolyPrefixState&, const MatrixRef<float>&, const MatrixRef<float>&, bool,
                                           PolyWorkspace&, bool);
template void CausalChunker::absorb<double>(PolyPrefixState&, const MatrixRef<double>&, const MatrixRef<double>&, bool,
                                            PolyWorkspace&, bool);

}  // namespace streamattn
