#include "streamattn/attention/poly_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/exact_attention.hpp"
#include "streamattn/core/validate.hpp"

namespace streamattn {

namespace {

void check_poly_args(int degree, Index chunk) {
  require(degree >= 0 && degree <= TaylorFeatures::max_degree, "degree must be in [0, ", TaylorFeatures::max_degree,
          "], got ", degree);
  resolve_chunk(chunk, 1);  // 0 (by shape) or 1 .. kMaxChunk; resolved once t is known
}

template <class T>
RowMatrix<double> poly_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, int degree,
                            std::optional<double> scale, bool causal, Index chunk, std::uint64_t max_bytes,
                            const PolyOptions& opt) {
  check_poly_args(degree, chunk);
  require_valid_normalizer(opt.norm);
  const double c = detail::check_attention_args(Q, K, V, scale, causal);
  require(causal || opt.log_gate == nullptr,
          "log_gate needs causal=True (a decay between positions j < i has no "
          "meaning when every query attends every key)");
  const Index nq = Q.rows(), nk = K.rows(), d = Q.cols(), dv = V.cols();

  if (!causal) {
    detail::require_bounded_rows(Q, c, "Q");
    detail::require_bounded_rows(K, c, "K");
    detail::require_bounded_values(V, "V");
    PolyPrefixState state(d, dv, degree, c, max_bytes, opt.kernel);
    PolyWorkspace ws;
    state.absorb_rows(K, V, ws);
    RowMatrix<double> out = RowMatrix<double>::Zero(nq, dv);
    Eigen::VectorXd den = Eigen::VectorXd::Zero(nq);
    state.accumulate(Q, out, den, ws);
    detail::normalize_rows(out, den, 0, degree, opt.kernel, opt.norm);
    return out;
  }

  // Causal: the chunked scheme of the causal streams (causal_chunk.hpp), with the same checks.
  // Keys before the first query's position are absorbed first.
  detail::require_clean_rows(K, c, "K");
  detail::require_clean_values(V, "V");
  detail::require_clean_rows(Q, c, "Q");
  const VectorRef<double>* gate = opt.log_gate;
  if (gate) {
    require(gate->size() == nk, "log_gate must have one entry per key (", nk, "), got ", gate->size());
    detail::require_log_gate(*gate);
  }
  const Index offset = nk - nq;
  PolyPrefixState state(d, dv, degree, c, max_bytes, opt.kernel);
  chunk = resolve_chunk(chunk, state.dim());
  PolyWorkspace ws;
  CausalChunker chunker;
  if (offset > 0) {
    if (!gate) {
      state.absorb_rows(K.topRows(offset), V.topRows(offset), ws);
    } else {
      for (Index a = 0; a < offset; a += chunk) {
        const Index r = std::min(chunk, offset - a);
        chunker.cumulative_gates(*gate, a, r, chunk);
        chunker.absorb(state, MatrixRef<T>(K.middleRows(a, r)), MatrixRef<T>(V.middleRows(a, r)), true, ws);
      }
    }
  }
  RowMatrix<double> out(nq, dv);
  if (nq == 0) return out;
  chunker.reserve(std::min(chunk, nq), d, dv, gate != nullptr, chunk);
  for (Index a = 0; a < nq; a += chunk) {
    const Index r = std::min(chunk, nq - a);
    const MatrixRef<T> Qc(Q.middleRows(a, r)), Kc(K.middleRows(offset + a, r)), Vc(V.middleRows(offset + a, r));
    if (gate) chunker.cumulative_gates(*gate, offset + a, r, chunk);
    out.middleRows(a, r) =
        chunker.outputs(state, Qc, Kc, Vc, gate != nullptr, static_cast<std::uint64_t>(offset + a), opt.norm, ws);
    chunker.absorb(state, Kc, Vc, gate != nullptr, ws);
  }
  return out;
}

template <class T>
PolyStats stats_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, int degree,
                     std::optional<double> scale) {
  check_poly_args(degree, 1);
  const double c = detail::check_attention_args(Q, K, V, scale, false);
  auto max_row_norm = [](const MatrixRef<T>& X) {
    double m = 0.0;
    for (Index i = 0; i < X.rows(); ++i) m = std::max(m, X.row(i).template cast<double>().norm());
    return m;
  };
  PolyStats st{};
  st.degree = degree;
  st.dim = taylor_dim(Q.cols(), degree);
  st.beta = c * max_row_norm(Q) * max_row_norm(K);
  constexpr double inf = std::numeric_limits<double>::infinity();
  st.eps = std::isfinite(st.beta) ? taylor_error(st.beta, degree) : inf;
  const double vmax = V.template cast<double>().cwiseAbs().maxCoeff();
  st.bound = (st.eps < 1.0) ? 2.0 * st.eps / (1.0 - st.eps) * vmax : inf;
  return st;
}

}  // namespace

void require_stats_options(const PolyOptions& opt) {
  require(opt.kernel == FeatureKernel::taylor && opt.log_gate == nullptr && opt.norm.eps == 0.0 && opt.norm.normalize,
          "return_stats describes the Taylor approximation of softmax: it needs kernel='taylor', eps=0, "
          "normalize=True and no log_gate");
}

std::string PolyStats::repr() const {
  return message("PolyStats(beta=", beta, ", eps=", eps, ", bound=", bound, ", degree=", degree, ", dim=", dim,
                 bound == std::numeric_limits<double>::infinity() ? ", vacuous" : "", ")");
}

RowMatrix<double> poly_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                 int degree, std::optional<double> scale, bool causal, Index chunk,
                                 std::uint64_t max_bytes, const PolyOptions& options) {
  return poly_impl(Q, K, V, degree, scale, causal, chunk, max_bytes, options);
}
RowMatrix<double> poly_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                                 int degree, std::optional<double> scale, bool causal, Index chunk,
                                 std::uint64_t max_bytes, const PolyOptions& options) {
  return poly_impl(Q, K, V, degree, scale, causal, chunk, max_bytes, options);
}

PolyStats poly_attention_stats(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               int degree, std::optional<double> scale) {
  return stats_impl(Q, K, V, degree, scale);
}
PolyStats poly_attention_stats(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                               int degree, std::optional<double> scale) {
  return stats_impl(Q, K, V, degree, scale);
}

}  // namespace streamattn
