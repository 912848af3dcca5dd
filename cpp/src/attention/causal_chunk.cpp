#include "streamattn/attention/causal_chunk.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <type_traits>
#include <vector>

#include "streamattn/kernels/gemm.hpp"

namespace streamattn {

namespace {
template <class M>
void ensure(M& m, Index rows, Index cols) {
  if (m.rows() < rows || m.cols() != cols) m.resize(rows, cols);
}
}  // namespace

Index chunk_for_features(Index t) { return t < 256 ? 32 : 64; }

Index resolve_chunk(Index chunk, Index t) {
  require(chunk >= 0 && chunk <= kMaxChunk, "chunk must be in [1, ", kMaxChunk, "] (or 0: chosen by shape), got ",
          chunk);
  return chunk == 0 ? chunk_for_features(t) : chunk;
}

Index feature_blocks(Index t, Index dv) { return t * dv >= kBlockedStateEntries ? kFeatureBlocks : 1; }

const std::vector<Index>& CausalChunker::block_bounds(const TaylorFeatures& features, Index blocks) {
  // The columns' split depends on d, the degree and the kernel alone (the runs' layout).
  const std::array<Index, 4> key{features.d(), features.degree(), static_cast<Index>(features.kernel()), blocks};
  if (key != bounds_key_) {
    bounds_ = features.column_blocks(blocks);
    bounds_key_ = key;
  }
  return bounds_;
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

void CausalChunker::run_parts(ThreadPool* pool, Index n, std::int64_t work, bool f32,
                              const std::function<void(Index, Index)>& f) {
  // A float32 multiply-add costs about half a float64 one on the GEMM kernels: float32 chunks
  // need twice the multiply-adds to pay for a hand-off (measured, bench/bench_chunk.py: Based's
  // head, 32 x 153 x 64 per chunk, ran 0.79x on 2 threads in float32 and 1.2x in float64).
  const bool split = pool && (f32 ? work : 2 * work) >= kGemmSplitWork;
  const Index parts = split ? std::min<Index>(pool->threads(), n) : 1;
  if (parts <= 1) {
    f(Index{0}, n);
    return;
  }
  pool->run(parts, [&](std::int64_t p) {
    const Index a = n * p / parts, b = n * (p + 1) / parts;
    if (b > a) f(a, b - a);
  });
}

template <class T>
void CausalChunker::copy_inputs(const MatrixRef<T>* Qc, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, double c,
                                bool f32) {
  const Index r = Kc.rows(), d = Kc.cols(), dv = Vc.cols();
  if (f32) {
    ensure(k32_, r, d);
    ensure(v32_, r, dv);
    k32_.topRows(r) = Kc.template cast<float>();
    v32_.topRows(r) = Vc.template cast<float>();
  } else {
    ensure(k_, r, d);
    ensure(v_, r, dv);
    k_.topRows(r) = Kc.template cast<double>();
    v_.topRows(r) = Vc.template cast<double>();
  }
  if (!Qc) return;
  if (f32) {
    // c q rounded once to float32 (from float64 for float64 inputs).
    ensure(q32_, r, d);
    if constexpr (std::is_same_v<T, float>)
      q32_.topRows(r) = static_cast<float>(c) * *Qc;
    else
      q32_.topRows(r) = (c * *Qc).template cast<float>();
  } else {
    ensure(q_, r, d);
    q_.topRows(r) = c * Qc->template cast<double>();
  }
}

template <class T>
void CausalChunker::key_cols(PolyPrefixState& state, const MatrixRef<T>& Kc, Index i0, Index n, bool gated, bool f32) {
  const Index r = Kc.rows(), t = state.dim();
  if (!f32) {
    state.features().transform_cols_into(Kc, i0, n, phik_.data() + i0, t);
    auto block = phik_.block(0, i0, r, n);
    if (gated) block = wk_.head(r).asDiagonal() * block;
    state.add_key_features(i0, n, phik_.data() + i0, t, r);
    return;
  }
  // A few rows at a time in a float64 buffer that stays in cache: weighted, added into s
  // (float64), rounded into the float32 block; no r x t float64 matrix in memory.
  double* buf = feature_buffer(kFeatureRows * n);
  for (Index b = 0; b < r; b += kFeatureRows) {
    const Index m = std::min(kFeatureRows, r - b);
    state.features().transform_cols_into(MatrixRef<T>(Kc.middleRows(b, m)), i0, n, buf, n);
    Eigen::Map<RowMatrix<double>> rows(buf, m, n);
    if (gated) rows = wk_.segment(b, m).asDiagonal() * rows;
    state.add_key_features(i0, n, buf, n, m);
    phik32_.block(b, i0, m, n) = rows.template cast<float>();
  }
}

double* CausalChunker::feature_buffer(Index size) {
  thread_local std::vector<double> buf;
  if (buf.size() < static_cast<std::size_t>(size)) buf.resize(static_cast<std::size_t>(size));
  return buf.data();
}

void CausalChunker::key_weights(Index r) {
  if (wk_.size() < r) wk_.resize(r);
  const double last = gcum_[r - 1];
  for (Index m = 0; m < r; ++m) wk_[m] = std::exp(last - gcum_[m]);
}

template <class S>
void CausalChunker::intra_rows(const RowMatrix<S>& q, const RowMatrix<S>& k, const RowMatrix<S>& v,
                               RowMatrix<S>& scores, Index a, Index n, Index r, bool gated, int degree,
                               FeatureKernel kernel, Eigen::Ref<RowMatrix<double>> nm, Eigen::Ref<Eigen::VectorXd> dn,
                               RowMatrix<S>* num32) {
  auto sb = scores.block(a, 0, n, r);
  gemm(MatrixRef<S>(q.middleRows(a, n)), Trans::no, MatrixRef<S>(k.topRows(r)), Trans::yes, sb, false);
  kernel_inplace(sb, degree, kernel);
  for (Index i = 0; i < n; ++i) {
    const Index m = a + i;
    S* row = &sb(i, 0);
    for (Index l = m + 1; l < r; ++l) row[l] = S(0);
    if (gated) {
      // Differences of cumulative sums inside one chunk: e^{G_m - G_l} <= 1, never overflows.
      const double gm = gcum_[m];
      for (Index l = 0; l < m; ++l) row[l] *= static_cast<S>(std::exp(gm - gcum_[l]));
    }
  }
  // The zeros above the diagonal cost flops, but the whole block on the GEMM kernel is faster
  // than a triangular product (and adding fma(0, v, x) = x changes no bits).
  if constexpr (std::is_same_v<S, float>) {
    gemm(MatrixRef<float>(sb), Trans::no, MatrixRef<float>(v.topRows(r)), Trans::no, num32->middleRows(a, n), false);
    nm.middleRows(a, n) += num32->middleRows(a, n).template cast<double>();
  } else {
    gemm(MatrixRef<double>(sb), Trans::no, MatrixRef<double>(v.topRows(r)), Trans::no, nm.middleRows(a, n), true);
  }
  // The denominators' intra-chunk sums in float64, each row in order.
  for (Index i = 0; i < n; ++i) {
    const S* row = &sb(i, 0);
    double acc = 0.0;
    for (Index l = 0; l < r; ++l) acc += static_cast<double>(row[l]);
    dn[a + i] += acc;
  }
}

template <class T>
bool CausalChunker::prepare_chunk(const PolyPrefixState& state, const MatrixRef<T>& Qc, const MatrixRef<T>& Kc,
                                  const MatrixRef<T>& Vc, bool gated, bool f32, Index prod_rows) {
  const Index r = Qc.rows(), t = state.dim(), dv = Vc.cols();
  if (f32) {
    ensure(phiq32_, r, t);
    ensure(prod32_, prod_rows, dv);
    ensure(scores32_, r, r);
    ensure(num32_, r, dv);
  } else {
    ensure(phiq_, r, t);
    ensure(scores_, r, r);
  }
  copy_inputs(&Qc, Kc, Vc, state.scale(), f32);
  const bool inter = state.tokens() > 0;
  if (inter && f32) state.fresh_f32();
  if (gated) {
    for (Index m = 0; m < r; ++m) gw_[m] = std::exp(gcum_[m]);
    key_weights(r);
  }
  return inter;
}

void CausalChunker::mark_prepared(const void* k, const void* v, Index r, bool f32, bool gated) {
  prepared_ = true;
  prep_k_ = k;
  prep_v_ = v;
  prep_rows_ = r;
  prep_f32_ = f32;
  prep_gated_ = gated;
}

template <class T>
Eigen::Ref<RowMatrix<double>> CausalChunker::outputs_fused(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                           const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                           std::uint64_t first_row, const Normalizer& norm,
                                                           PolyWorkspace& ws, bool f32) {
  const Index r = Qc.rows(), t = state.dim(), dv = Vc.cols();
  auto nm = num_.topRows(r);
  auto dn = den_.head(r);
  nm.setZero();
  dn.setZero();
  const bool inter = prepare_chunk(state, Qc, Kc, Vc, gated, f32, r);
  // One hand-off for the whole chunk: each thread takes a block of its rows through every step
  // (features of its queries, the inter-chunk product and normalizer, the intra-chunk block),
  // writing only its own rows. The keys' features are made by absorb(), column block by column
  // block on the thread that owns those rows of the state.
  run_parts(ws.pool, r, r * t * dv, f32, [&](Index a, Index n) {
    if (f32) {
      // Features of a few rows at a time in a float64 buffer that stays in cache: their
      // normalizer dots (float64) and their float32 copy; no r x t float64 matrix in memory.
      double* buf = feature_buffer(kFeatureRows * t);
      for (Index b = a; b < a + n; b += kFeatureRows) {
        const Index m = std::min(kFeatureRows, a + n - b);
        state.features().transform_into(MatrixRef<T>(Qc.middleRows(b, m)), buf, t);
        if (inter) state.add_normalizer_dots(0, t, buf, t, m, dn.data() + b);
        phiq32_.middleRows(b, m) = Eigen::Map<const RowMatrix<double>>(buf, m, t).template cast<float>();
      }
    } else {
      state.features().transform_into(MatrixRef<T>(Qc.middleRows(a, n)), phiq_.data() + a * t, t);
      if (inter) state.add_normalizer_dots(0, t, phiq_.data() + a * t, t, n, dn.data() + a);
    }
    if (inter) {
      if (f32) {
        const MatrixRef<float> p32(phiq32_.middleRows(a, n));
        state.add_state_products(0, t, nullptr, &p32, nm.middleRows(a, n), prod32_.middleRows(a, n));
      } else {
        const MatrixRef<double> phi(phiq_.middleRows(a, n));
        state.add_state_products(0, t, &phi, nullptr, nm.middleRows(a, n), prod32_.topRows(0));
      }
      if (gated) {
        nm.middleRows(a, n) = gw_.segment(a, n).asDiagonal() * nm.middleRows(a, n);
        dn.segment(a, n).array() *= gw_.segment(a, n).array();
      }
    }
    if (f32)
      intra_rows<float>(q32_, k32_, v32_, scores32_, a, n, r, gated, state.degree(), state.kernel(), nm, dn, &num32_);
    else
      intra_rows<double>(q_, k_, v_, scores_, a, n, r, gated, state.degree(), state.kernel(), nm, dn, nullptr);
  });
  detail::normalize_rows(nm, dn, first_row, state.degree(), state.kernel(), norm);
  mark_prepared(Kc.data(), Vc.data(), r, f32, gated);
  return nm;
}

template <class T>
void CausalChunker::query_cols(const PolyPrefixState& state, const MatrixRef<T>& Qc, const std::vector<Index>& at,
                               Index b0, Index nb, bool f32) {
  const Index r = Qc.rows(), t = state.dim();
  const Index c0 = at[b0], n = at[b0 + nb] - c0;
  // Each block's normalizer dots into its own partial denominators (part_den_).
  const auto dots = [&](const double* phi, Index ld, Index m, Index row) {
    for (Index b = b0; b < b0 + nb; ++b) {
      const Index i0 = at[b], i1 = at[b + 1];
      state.add_normalizer_dots(i0, i1 - i0, phi + (i0 - c0), ld, m, part_den_.data() + b * r + row);
    }
  };
  if (!f32) {
    state.features().transform_cols_into(Qc, c0, n, phiq_.data() + c0, t);
    dots(phiq_.data() + c0, t, r, 0);
    return;
  }
  double* buf = feature_buffer(kFeatureRows * n);
  for (Index b = 0; b < r; b += kFeatureRows) {
    const Index m = std::min(kFeatureRows, r - b);
    state.features().transform_cols_into(MatrixRef<T>(Qc.middleRows(b, m)), c0, n, buf, n);
    dots(buf, n, m, b);
    phiq32_.block(b, c0, m, n) = Eigen::Map<const RowMatrix<double>>(buf, m, n).template cast<float>();
  }
}

template <class T>
Eigen::Ref<RowMatrix<double>> CausalChunker::outputs_blocked(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                             const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                             std::uint64_t first_row, const Normalizer& norm,
                                                             PolyWorkspace& ws, bool f32) {
  const Index r = Qc.rows(), t = state.dim(), dv = Vc.cols(), B = feature_blocks(t, dv);
  const std::vector<Index>& at = block_bounds(state.features(), B);
  ensure(part_num_, B * r, dv);
  if (part_den_.size() < B * r) part_den_.resize(B * r);
  ensure(intra_num_, r, dv);
  if (intra_den_.size() < r) intra_den_.resize(r);
  const bool inter = prepare_chunk(state, Qc, Kc, Vc, gated, f32, B * r);
  // One hand-off. The inter-chunk part is split by the state's rows, in B fixed feature blocks:
  // block b's partial products phi(q)[:, b] M[b] and normalizer dots, for every row, go to their
  // own scratch; a thread holds the same blocks of the state as in absorb(), so its rows of M stay
  // in its cache. The same thread takes a matching share of the chunk's rows for the intra-chunk
  // block. The blocks do not depend on the thread count, and the partial sums are added below in
  // block order: the same bits for any split.
  run_parts(ws.pool, B, r * t * dv, f32, [&](Index a, Index n) {
    if (inter) {
      part_den_.segment(a * r, n * r).setZero();
      query_cols(state, Qc, at, a, n, f32);  // the part's feature columns in one pass over the rows
    }
    for (Index b = a; b < a + n && inter; ++b) {
      const Index i0 = at[b], nb = at[b + 1] - i0;
      auto pn = part_num_.middleRows(b * r, r);
      pn.setZero();
      if (f32) {
        const MatrixRef<float> p32(phiq32_.block(0, i0, r, nb));
        state.add_state_products(i0, nb, nullptr, &p32, pn, prod32_.middleRows(b * r, r));
      } else {
        const MatrixRef<double> phi(phiq_.block(0, i0, r, nb));
        state.add_state_products(i0, nb, &phi, nullptr, pn, prod32_.topRows(0));
      }
    }
    const Index ra = r * a / B, rn = r * (a + n) / B - ra;
    if (rn == 0) return;
    auto in = intra_num_.middleRows(ra, rn);
    in.setZero();
    intra_den_.segment(ra, rn).setZero();
    if (f32)
      intra_rows<float>(q32_, k32_, v32_, scores32_, ra, rn, r, gated, state.degree(), state.kernel(), intra_num_,
                        intra_den_, &num32_);
    else
      intra_rows<double>(q_, k_, v_, scores_, ra, rn, r, gated, state.degree(), state.kernel(), intra_num_, intra_den_,
                         nullptr);
  });
  auto nm = num_.topRows(r);
  auto dn = den_.head(r);
  if (inter) {
    nm = part_num_.topRows(r);
    dn = part_den_.head(r);
    for (Index b = 1; b < B; ++b) {
      nm += part_num_.middleRows(b * r, r);
      dn += part_den_.segment(b * r, r);
    }
    if (gated) {
      nm = gw_.head(r).asDiagonal() * nm;
      dn.array() *= gw_.head(r).array();
    }
    nm += intra_num_.topRows(r);
    dn += intra_den_.head(r);
  } else {
    nm = intra_num_.topRows(r);
    dn = intra_den_.head(r);
  }
  detail::normalize_rows(nm, dn, first_row, state.degree(), state.kernel(), norm);
  mark_prepared(Kc.data(), Vc.data(), r, f32, gated);
  return nm;
}

template <class T>
Eigen::Ref<RowMatrix<double>> CausalChunker::outputs(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                     const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                     std::uint64_t first_row, const Normalizer& norm, PolyWorkspace& ws,
                                                     bool f32) {
  prepared_ = false;
  if (Qc.rows() <= PolyPrefixState::pass_rows(state.dim())) {
    if (feature_blocks(state.dim(), Vc.cols()) > 1)
      return outputs_blocked(state, Qc, Kc, Vc, gated, first_row, norm, ws, f32);
    return outputs_fused(state, Qc, Kc, Vc, gated, first_row, norm, ws, f32);
  }
  return outputs_passes(state, Qc, Kc, Vc, gated, first_row, norm, ws, f32);
}

template <class T>
Eigen::Ref<RowMatrix<double>> CausalChunker::outputs_passes(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                            const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                            std::uint64_t first_row, const Normalizer& norm,
                                                            PolyWorkspace& ws, bool f32) {
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
  const Index r = Kc.rows(), t = state.dim();
  const bool ready = prepared_ && prep_k_ == static_cast<const void*>(Kc.data()) &&
                     prep_v_ == static_cast<const void*>(Vc.data()) && prep_rows_ == r && prep_f32_ == f32 &&
                     prep_gated_ == gated;
  prepared_ = false;
  if (!ready) {
    if (r > PolyPrefixState::pass_rows(t)) return absorb_passes(state, Kc, Vc, gated, ws, f32);
    copy_inputs<T>(nullptr, Kc, Vc, state.scale(), f32);
    if (gated) key_weights(r);
  }
  if (f32)
    ensure(phik32_, r, t);
  else
    ensure(phik_, r, t);
  // The state's rows (features) split over the threads: each part decays its rows of M and s,
  // makes its feature columns of the chunk's keys (weighted, rounded) and adds them to its rows
  // of s, then adds those columns' product with the values to its rows of M. A thread's rows of
  // the state, and the key features they need, stay in its own cache from chunk to chunk.
  const double f = gated ? std::exp(gcum_[r - 1]) : 1.0;
  const MatrixRef<double> v64(v_.topRows(f32 ? 0 : r));  // float64 path only (copy_inputs)
  const MatrixRef<float> v32(v32_.topRows(f32 ? r : 0));
  state.begin_featurized(f32);
  // With feature blocks (outputs_blocked), each part takes whole blocks: the rows of the state
  // its thread's share of the next outputs() reads.
  const Index B = feature_blocks(t, Vc.cols());
  const std::vector<Index>* at = B > 1 ? &block_bounds(state.features(), B) : nullptr;
  run_parts(ws.pool, B > 1 ? B : t, r * t * Vc.cols(), f32, [&](Index a, Index m) {
    const Index i0 = at ? (*at)[a] : a;
    const Index n = at ? (*at)[a + m] - i0 : m;
    state.decay_rows(i0, n, f);
    key_cols(state, Kc, i0, n, gated, f32);
    if (f32) {
      const MatrixRef<float> phi32(phik32_.block(0, i0, r, n));
      state.add_key_products(i0, n, nullptr, &phi32, nullptr, &v32);
    } else {
      const MatrixRef<double> phi(phik_.block(0, i0, r, n));
      state.add_key_products(i0, n, &phi, nullptr, &v64, nullptr);
    }
  });
  state.finish_featurized(r, f32);
}

template <class T>
void CausalChunker::absorb_passes(PolyPrefixState& state, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
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
