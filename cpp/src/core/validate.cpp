#include "streamattn/core/validate.hpp"

#include <cmath>

namespace streamattn {

namespace detail {

template <class T>
void require_bounded_rows(const MatrixRef<T>& X, double scale, const char* name) {
  constexpr double kLimit = 1e30;
  for (Index i = 0; i < X.rows(); ++i) {
    const double sq = scale * X.row(i).template cast<double>().squaredNorm();
    if (!(sq <= kLimit))
      throw std::invalid_argument(message(name, " row ", i, " has scale*|x|^2 = ", sq,
                                          " > 1e30: far outside the range where the polynomial method "
                                          "is meaningful (and its sums could overflow); rescale the input"));
  }
}

template <class T>
void require_clean_rows(const MatrixRef<T>& X, double scale, const char* name) {
  // Fast path: a row whose scale*|x|^2 is finite and <= 1e30 has only finite entries (NaN and Inf
  // propagate into the sum). Only when some row fails are the detailed checks run, for their
  // messages (non-finite entries are named first, as require_finite does).
  constexpr double kLimit = 1e30;
  bool ok = true;
  for (Index i = 0; i < X.rows() && ok; ++i)
    ok = scale * row_squares(X.data() + i * X.outerStride(), X.cols(), X.innerStride()) <= kLimit;
  if (ok) return;
  require_finite(X, name);
  require_bounded_rows(X, scale, name);
}

template <class T>
void require_clean_values(const MatrixRef<T>& V, const char* name) {
  // Fast path: every |v| <= 1e30 (false for NaN), then the detailed checks only on failure.
  const T lim = static_cast<T>(1e30);
  bool bad = false;
  for (Index i = 0; i < V.rows(); ++i) {
    const T* x = V.data() + i * V.outerStride();
    const Index st = V.innerStride();
    for (Index j = 0; j < V.cols(); ++j) bad |= !(std::abs(x[j * st]) <= lim);
  }
  if (!bad) return;
  require_finite(V, name);
  require_bounded_values(V, name);
}

template <class T>
void require_bounded_values(const MatrixRef<T>& V, const char* name) {
  constexpr double kLimit = 1e30;
  if (V.size() == 0) return;
  const double m = V.template cast<double>().cwiseAbs().maxCoeff();
  require(m <= kLimit, name, " has an entry of magnitude ", m, " > 1e30; rescale the values");
}

void require_log_gate(const VectorRef<double>& g, const char* name) {
  for (Index i = 0; i < g.size(); ++i) {
    const double x = g[i];
    if (!(x <= 0.0) || !std::isfinite(x))
      throw std::invalid_argument(
          message(name, "[", i, "] is ", x, ": log-gates are log-decays, each finite and <= 0 (a decay factor exp(",
                  name, ") in (0, 1]); ", x > 0 ? "a positive one would amplify the past" : "remove NaN/Inf",
                  ". For a hard reset use a large negative value such as -1e4"));
  }
}

template <class T>
void require_stream_keys(const MatrixRef<T>& K, const MatrixRef<T>& V, Index d, Index dv, double scale, bool values) {
  require(K.cols() == d, "K must have d = ", d, " columns, got ", K.cols());
  require(V.cols() == dv, "V must have dv = ", dv, " columns, got ", V.cols());
  require(V.rows() == K.rows(), "K and V must have the same number of rows, got ", K.rows(), " and ", V.rows());
  if (!values) return;
  require_clean_rows(K, scale, "K");
  require_clean_values(V, "V");
}

template void require_bounded_rows<float>(const MatrixRef<float>&, double, const char*);
template void require_bounded_rows<double>(const MatrixRef<double>&, double, const char*);
template void require_bounded_values<float>(const MatrixRef<float>&, const char*);
template void require_bounded_values<double>(const MatrixRef<double>&, const char*);
template void require_clean_rows<float>(const MatrixRef<float>&, double, const char*);
template void require_clean_rows<double>(const MatrixRef<double>&, double, const char*);
template void require_clean_values<float>(const MatrixRef<float>&, const char*);
template void require_clean_values<double>(const MatrixRef<double>&, const char*);
template void require_stream_keys<float>(const MatrixRef<float>&, const MatrixRef<float>&, Index, Index, double, bool);
template void require_stream_keys<double>(const MatrixRef<double>&, const MatrixRef<double>&, Index, Index, double,
                                          bool);

}  // namespace detail

}  // namespace streamattn
