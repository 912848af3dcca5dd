#include "streamattn/attention/exact_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "streamattn/core/validate.hpp"

namespace streamattn {

namespace detail {
template <class T>
double check_attention_args(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V,
                            std::optional<double> scale, bool causal) {
  require(Q.cols() >= 1, "Q must have at least one column (d >= 1), got ", Q.cols());
  require(K.cols() == Q.cols(), "K must have as many columns as Q (d = ", Q.cols(), "), got ", K.cols());
  require(K.rows() >= 1, "K must have at least one row (a key to attend to)");
  require(V.rows() == K.rows(), "V must have as many rows as K (", K.rows(), "), got ", V.rows());
  require(V.cols() >= 1, "V must have at least one column, got ", V.cols());
  require(!causal || Q.rows() <= K.rows(),
          "causal attention needs n_q <= n_k (query i attends keys j <= i + n_k - n_q); got n_q = ", Q.rows(),
          ", n_k = ", K.rows());
  const double c = resolve_scale(scale, Q.cols());
  require_finite(Q, "Q");
  require_finite(K, "K");
  require_finite(V, "V");
  return c;
}
template double check_attention_args<float>(const MatrixRef<float>&, const MatrixRef<float>&, const MatrixRef<float>&,
                                            std::optional<double>, bool);
template double check_attention_args<double>(const MatrixRef<double>&, const MatrixRef<double>&,
                                             const MatrixRef<double>&, std::optional<double>, bool);
}  // namespace detail

namespace {

constexpr Index query_block = 64;
constexpr Index key_block = 512;

template <class T>
RowMatrix<double> exact_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V,
                             std::optional<double> scale, bool causal) {
  const double c = detail::check_attention_args(Q, K, V, scale, causal);
  const Index nq = Q.rows(), nk = K.rows(), d = Q.cols(), dv = V.cols();
  const Index offset = nk - nq;  // causal: query i stands at position i + offset
  RowMatrix<double> out(nq, dv);
  RowMatrix<double> q(query_block, d), k(key_block, d), v(key_block, dv), s(query_block, key_block),
      acc(query_block, dv);
  Eigen::VectorXd m(query_block), l(query_block);
  constexpr double neg_inf = -std::numeric_limits<double>::infinity();

  for (Index q0 = 0; q0 < nq; q0 += query_block) {
    const Index bq = std::min(query_block, nq - q0);
    q.topRows(bq) = (c * Q.middleRows(q0, bq).template cast<double>()).eval();
    m.head(bq).setConstant(neg_inf);
    l.head(bq).setZero();
    acc.topRows(bq).setZero();
    const Index kend = causal ? q0 + bq + offset : nk;  // last query of the block sees keys < kend
    for (Index k0 = 0; k0 < kend; k0 += key_block) {
      const Index bk = std::min(key_block, kend - k0);
      k.topRows(bk) = K.middleRows(k0, bk).template cast<double>();
      v.topRows(bk) = V.middleRows(k0, bk).template cast<double>();
      auto sb = s.topLeftCorner(bq, bk);
      sb.noalias() = q.topRows(bq) * k.topRows(bk).transpose();
      if (causal && k0 + bk - 1 > q0 + offset) {
        for (Index i = 0; i < bq; ++i) {
          const Index first_masked = q0 + i + offset + 1 - k0;  // key columns >= this are in the future
          if (first_masked < bk) sb.row(i).tail(bk - std::max<Index>(first_masked, 0)).setConstant(neg_inf);
        }
      }
      for (Index i = 0; i < bq; ++i) {
        // Key 0 is in the first block of every row (n_q <= n_k), so m is finite from then on.
        const double m_new = std::max(m[i], sb.row(i).maxCoeff());
        const double rescale = std::exp(m[i] - m_new);  // exp(-inf) = 0 on the first block
        sb.row(i) = (sb.row(i).array() - m_new).exp().matrix();
        l[i] = l[i] * rescale + sb.row(i).sum();
        acc.row(i) *= rescale;
        m[i] = m_new;
      }
      acc.topRows(bq).noalias() += sb * v.topRows(bk);
    }
    out.middleRows(q0, bq) = l.head(bq).cwiseInverse().asDiagonal() * acc.topRows(bq);
  }
  return out;
}

}  // namespace

RowMatrix<double> exact_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                  std::optional<double> scale, bool causal) {
  return exact_impl(Q, K, V, scale, causal);
}
RowMatrix<double> exact_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                                  std::optional<double> scale, bool causal) {
  return exact_impl(Q, K, V, scale, causal);
}

}  // namespace streamattn
