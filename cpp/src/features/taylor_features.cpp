#include "streamattn/features/taylor_features.hpp"

#include "streamattn/core/validate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace streamattn {

namespace {
void require_beta(double beta) {
  require(std::isfinite(beta) && beta >= 0.0, "beta must be finite and >= 0, got ", beta);
}
void require_degree(int degree) {
  require(degree >= 0 && degree <= TaylorFeatures::max_degree, "degree must be in [0, ", TaylorFeatures::max_degree,
          "], got ", degree);
}
}  // namespace

FeatureKernel parse_feature_kernel(const std::string& name) {
  if (name == "taylor") return FeatureKernel::taylor;
  if (name == "power") return FeatureKernel::power;
  throw std::invalid_argument(message("kernel must be 'taylor' or 'power', got '", name, "'"));
}

const char* feature_kernel_name(FeatureKernel k) { return k == FeatureKernel::power ? "power" : "taylor"; }

double taylor_error(double beta, int degree) {
  require_beta(beta);
  require_degree(degree);
  // beta^{g+1}/(g+1)! as a running product: no pow, no overflow before the final e^beta.
  double term = 1.0;
  for (int k = 1; k <= degree + 1; ++k) term *= beta / k;
  return std::exp(beta) * term;
}

int choose_degree(double eps, double beta) {
  require(std::isfinite(eps) && eps > 0.0, "eps must be finite and > 0, got ", eps);
  require_beta(beta);
  for (int g = 0; g <= TaylorFeatures::max_degree; g += 2) {
    if (taylor_error(beta, g) <= eps) return g;
  }
  throw std::invalid_argument(message("no even degree <= ", TaylorFeatures::max_degree, " reaches eps = ", eps,
                                      " at beta = ", beta,
                                      " (degree 8 gives eps = ", taylor_error(beta, TaylorFeatures::max_degree),
                                      "); lower beta (normalize q and k, or use a smaller scale) or loosen eps"));
}

std::int64_t taylor_dim(Index d, int degree) {
  require(d >= 1, "d must be >= 1, got ", d);
  require_degree(degree);
  // C(d+i, i) = C(d+i-1, i-1) * (d+i) / i, exact at every step.
  unsigned __int128 c = 1;
  const unsigned __int128 cap = static_cast<unsigned __int128>(std::numeric_limits<std::int64_t>::max());
  for (int i = 1; i <= degree; ++i) {
    c = c * static_cast<unsigned __int128>(d + i) / static_cast<unsigned __int128>(i);
    if (c > cap) return std::numeric_limits<std::int64_t>::max();
  }
  return static_cast<std::int64_t>(c);
}

std::int64_t feature_dim(Index d, int degree, FeatureKernel kernel) {
  if (kernel == FeatureKernel::taylor || degree == 0) return taylor_dim(d, degree);
  // Monomials of degree exactly g: C(d+g-1, g) = C(d+g, g) - C(d+g-1, g-1).
  const std::int64_t all = taylor_dim(d, degree), lower = taylor_dim(d, degree - 1);
  if (all == std::numeric_limits<std::int64_t>::max()) return all;
  return all - lower;
}

namespace {
void require_kernel_degree(int degree, FeatureKernel kernel) {
  require(kernel == FeatureKernel::taylor || kernel == FeatureKernel::power, "kernel must be taylor or power");
  require(kernel != FeatureKernel::power || degree % 2 == 0 || degree == 1,
          "kernel='power' needs an even degree or 1 (got ", degree,
          "): (c q.k)^p changes sign for odd p, so the normalizer could vanish; use p = 1 (linear attention), 2, 4, "
          "6 or 8");
}
}  // namespace

TaylorFeatures::TaylorFeatures(Index d, int degree, std::optional<double> scale, std::uint64_t max_bytes,
                               FeatureKernel kernel)
    : d_(d), degree_(degree), scale_(0.0), kernel_(kernel), t_(0), full_t_(0),
      max_bytes_(max_bytes == 0 ? default_max_bytes : max_bytes) {
  require_range(d, 1, limits::max_feature_dim, "d");
  require_degree(degree);
  require_kernel_degree(degree, kernel);
  scale_ = resolve_scale(scale, d);
  require_max_bytes(max_bytes);
  const std::int64_t t = feature_dim(d, degree, kernel);
  const long double bytes = static_cast<long double>(t) * static_cast<long double>(d) * 8.0L;
  require(bytes <= static_cast<long double>(max_bytes_) && t < (std::int64_t{1} << 31), "TaylorFeatures(d=", d,
          ", degree=", degree, ", kernel=", feature_kernel_name(kernel),
          ") has t = ", kernel == FeatureKernel::power ? "C(d+g-1, g) = " : "C(d+g, g) = ", t,
          " features; a t x d float64 state needs ", static_cast<double>(bytes),
          " bytes, over the limit max_bytes = ", max_bytes_, "; lower the degree or d, or raise max_bytes");
  t_ = t;
  full_t_ = taylor_dim(d, degree);

  deg_start_.assign(static_cast<std::size_t>(degree) + 2, 0);
  weight_.assign(static_cast<std::size_t>(full_t_), 1.0);
  // Multiplicity of each feature's smallest variable (alpha! grows by it when that variable is
  // multiplied in again); only needed while building the weights.
  std::vector<std::uint8_t> mult(static_cast<std::size_t>(full_t_), 0);

  // first[i]: offset of the first feature of the previous degree whose smallest variable is
  // >= i (first[d] = end of that degree); the previous degree's block is sorted by smallest
  // variable, so these are suffixes, and the features with smallest variable exactly i are
  // first[i] .. first[i+1]-1.
  std::vector<Index> first(static_cast<std::size_t>(d) + 1, 0);
  first[static_cast<std::size_t>(d)] = 1;  // degree 0: the constant, "smallest variable" = infinity
  Index pos = 1;
  deg_start_[0] = 0;
  deg_start_[1] = 1;
  for (int p = 1; p <= degree; ++p) {
    const Index prev_end = pos;
    std::vector<Index> next_first(static_cast<std::size_t>(d) + 1, 0);
    for (Index i = 0; i < d; ++i) {
      next_first[static_cast<std::size_t>(i)] = pos;
      const Index parent0 = first[static_cast<std::size_t>(i)];
      const Index same_var_end = p == 1 ? parent0 : first[static_cast<std::size_t>(i) + 1];
      const Index len = prev_end - parent0;
      runs_.push_back(Run{pos, parent0, len, i});
      for (Index j = 0; j < len; ++j) {
        const auto f = static_cast<std::size_t>(pos + j);
        const auto par = static_cast<std::size_t>(parent0 + j);
        const int m = (parent0 + j < same_var_end) ? mult[par] + 1 : 1;
        mult[f] = static_cast<std::uint8_t>(m);
        weight_[f] = std::sqrt(scale_ / m);
      }
      pos += len;
    }
    next_first[static_cast<std::size_t>(d)] = pos;
    first.swap(next_first);
    deg_start_[static_cast<std::size_t>(p) + 1] = pos;
  }
  if (kernel_ == FeatureKernel::power && degree > 0) {
    // (q.k)^g = sum_{|alpha|=g} g!/alpha! q^alpha k^alpha: the degree-g Taylor features carry
    // c^{g/2}/sqrt(alpha!), so sqrt(g!) more makes their dot product (c q.k)^g.
    double fact = 1.0;
    for (int p = 2; p <= degree; ++p) fact *= p;
    const double w = std::sqrt(fact);
    for (Index f = deg_start_[static_cast<std::size_t>(degree)]; f < full_t_; ++f)
      weight_[static_cast<std::size_t>(f)] *= w;
  }
}

template <class T>
void TaylorFeatures::degree_one_into(const MatrixRef<T>& X, Index r, double* dst) const {
  // The degree-1 runs are runs_[0 .. d): feature 1 + i is x_i * 1 * w[1 + i], made directly (the
  // same bits: x * 1 is exact).
  const double* w = weight_.data();
  for (Index i = 0; i < d_; ++i) dst[1 + i] = static_cast<double>(X(r, i)) * w[1 + i];
}

template <class T>
void TaylorFeatures::transform_into_impl(const MatrixRef<T>& X, double* out, Index ld) const {
  const double* w = weight_.data();
  // Degree 1 by degree_one_into; the later runs in order, each from its parents of the degree below.
  const auto first_run = static_cast<std::size_t>(degree_ >= 1 ? d_ : 0);
  if (kernel_ == FeatureKernel::power) {
    // Degrees < g go to a scratch row (they are only parents); degree g goes straight to out.
    const Index top = deg_start_[static_cast<std::size_t>(degree_)];
    thread_local std::vector<double> scratch;
    if (scratch.size() < static_cast<std::size_t>(top)) scratch.resize(static_cast<std::size_t>(top));
    double* lo = scratch.data();
    for (Index r = 0; r < X.rows(); ++r) {
      double* o = out + r * ld;
      if (degree_ == 0) {
        o[0] = 1.0;
        continue;
      }
      lo[0] = 1.0;
      degree_one_into(X, r, degree_ == 1 ? o - 1 : lo);  // feature 1 + i at [1 + i]
      for (std::size_t k = first_run; k < runs_.size(); ++k) {
        const Run& run = runs_[k];
        const double x = static_cast<double>(X(r, run.var));
        double* dst = run.out >= top ? o + (run.out - top) : lo + run.out;
        const double* src = lo + run.parent;
        const double* wr = w + run.out;
        for (Index j = 0; j < run.len; ++j) dst[j] = x * src[j] * wr[j];
      }
    }
    return;
  }
  for (Index r = 0; r < X.rows(); ++r) {
    double* o = out + r * ld;
    o[0] = 1.0;
    if (degree_ >= 1) degree_one_into(X, r, o);
    for (std::size_t k = first_run; k < runs_.size(); ++k) {
      const Run& run = runs_[k];
      const double x = static_cast<double>(X(r, run.var));
      double* dst = o + run.out;
      const double* src = o + run.parent;
      const double* wr = w + run.out;
      for (Index j = 0; j < run.len; ++j) dst[j] = x * src[j] * wr[j];
    }
  }
}

void TaylorFeatures::transform_into(const MatrixRef<float>& X, double* out, Index ld) const {
  transform_into_impl(X, out, ld);
}
void TaylorFeatures::transform_into(const MatrixRef<double>& X, double* out, Index ld) const {
  transform_into_impl(X, out, ld);
}

template <class T>
void TaylorFeatures::transform_cols_into_impl(const MatrixRef<T>& X, Index c0, Index n, double* out, Index ld) const {
  if (n <= 0) return;
  if (c0 == 0 && n == t_) return transform_into_impl(X, out, ld);
  // Feature f of the full layout (runs_, weight_) is output column f - off: the power kernel
  // keeps only degree g. Degrees < g (parents only, or also outputs for taylor) go to a scratch
  // row in full; of the degree-g runs only those that meet the wanted columns are made, clipped
  // to them and written straight to out.
  const Index top = deg_start_[static_cast<std::size_t>(degree_)];
  const Index off = kernel_ == FeatureKernel::power ? top : 0;
  const Index f0 = c0 + off, f1 = c0 + n + off;  // wanted features [f0, f1) of the full layout
  const double* w = weight_.data();
  thread_local std::vector<double> scratch;
  if (scratch.size() < static_cast<std::size_t>(std::max<Index>(top, 1)))
    scratch.resize(static_cast<std::size_t>(std::max<Index>(top, 1)));
  double* lo = scratch.data();
  // runs_ is sorted by out: [0, d) degree 1 (made directly below when g >= 2), [.., lo_end) the
  // rest of degrees < g, then degree g, of which [first, last) meet [f0, f1).
  const auto below = [](Index bound) { return [bound](const Run& run) { return run.out < bound; }; };
  const auto lo_end = std::partition_point(runs_.begin(), runs_.end(), below(top));
  const auto first =
      std::partition_point(lo_end, runs_.end(), [f0](const Run& run) { return run.out + run.len <= f0; });
  const auto last = std::partition_point(first, runs_.end(), below(f1));
  const auto lo_begin = runs_.begin() + (degree_ >= 2 ? d_ : 0);
  for (Index r = 0; r < X.rows(); ++r) {
    double* o = out + r * ld;  // feature f at o[f - f0], for f in [f0, f1)
    if (degree_ == 0) {
      o[0] = 1.0;  // the one feature, the constant
      continue;
    }
    lo[0] = 1.0;
    if (degree_ >= 2) degree_one_into(X, r, lo);
    for (auto it = lo_begin; it != lo_end; ++it) {
      const Run& run = *it;
      const double x = static_cast<double>(X(r, run.var));
      const double* src = lo + run.parent;
      const double* wr = w + run.out;
      double* dst = lo + run.out;
      for (Index j = 0; j < run.len; ++j) dst[j] = x * src[j] * wr[j];
    }
    for (auto it = first; it != last; ++it) {
      const Run& run = *it;
      const double x = static_cast<double>(X(r, run.var));
      const double* src = lo + run.parent;
      const double* wr = w + run.out;
      const Index j0 = std::max<Index>(f0 - run.out, 0), j1 = std::min<Index>(f1 - run.out, run.len);
      for (Index j = j0; j < j1; ++j) o[run.out + j - f0] = x * src[j] * wr[j];
    }
    // taylor: the wanted features of degree < g are the scratch row's.
    for (Index f = f0; f < std::min(f1, top); ++f) o[f - f0] = lo[f];
  }
}

std::vector<Index> TaylorFeatures::column_blocks(Index blocks) const {
  require(blocks >= 1, "column_blocks needs blocks >= 1, got ", blocks);
  // cost(c) = columns before c + kRunCost * top-degree runs starting before c (a run is charged
  // to the block holding its first column; a block starting inside a run pays it again, which
  // the boundaries below ignore).
  const Index top = deg_start_[static_cast<std::size_t>(degree_)];
  const Index off = kernel_ == FeatureKernel::power ? top : 0;
  std::vector<Index> starts;  // output columns where top-degree runs start, ascending
  for (const Run& run : runs_)
    if (run.out >= top) starts.push_back(run.out - off);
  const double total = static_cast<double>(t_) + kRunCost * static_cast<double>(starts.size());
  std::vector<Index> out(static_cast<std::size_t>(blocks) + 1, t_);
  out[0] = 0;
  std::size_t k = 0;
  double cost = 0.0;
  Index b = 1;
  for (Index c = 0; c < t_ && b < blocks; ++c) {
    while (k < starts.size() && starts[k] == c) {
      cost += kRunCost;
      ++k;
    }
    cost += 1.0;
    while (b < blocks && cost >= total * static_cast<double>(b) / static_cast<double>(blocks))
      out[static_cast<std::size_t>(b++)] = c + 1;
  }
  return out;
}

void TaylorFeatures::transform_cols_into(const MatrixRef<float>& X, Index c0, Index n, double* out, Index ld) const {
  transform_cols_into_impl(X, c0, n, out, ld);
}
void TaylorFeatures::transform_cols_into(const MatrixRef<double>& X, Index c0, Index n, double* out, Index ld) const {
  transform_cols_into_impl(X, c0, n, out, ld);
}

template <class T>
RowMatrix<double> TaylorFeatures::transform_impl(const MatrixRef<T>& X) const {
  require(X.cols() == d_, "X must have d = ", d_, " columns, got ", X.cols());
  require_finite(X, "X");
  RowMatrix<double> out(X.rows(), t_);
  if (X.rows() > 0) transform_into_impl(X, out.data(), t_);
  return out;
}

RowMatrix<double> TaylorFeatures::transform(const MatrixRef<float>& X) const { return transform_impl(X); }
RowMatrix<double> TaylorFeatures::transform(const MatrixRef<double>& X) const { return transform_impl(X); }

std::vector<int> TaylorFeatures::exponents(Index f) const {
  require(f >= 0 && f < t_, "feature index must be in [0, ", t_, "), got ", f);
  std::vector<int> e(static_cast<std::size_t>(d_), 0);
  if (kernel_ == FeatureKernel::power) f += deg_start_[static_cast<std::size_t>(degree_)];
  // Walk up the parents: the run holding f gives its smallest variable and its parent.
  while (f > 0) {
    const auto it = std::upper_bound(runs_.begin(), runs_.end(), f, [](Index x, const Run& r) { return x < r.out; });
    const Run& run = *(it - 1);
    ++e[static_cast<std::size_t>(run.var)];
    f = run.parent + (f - run.out);
  }
  return e;
}

namespace {
template <class T>
void taylor_polynomial_inplace_t(Eigen::Ref<RowMatrix<T>> x, int degree) {
  if (degree == 0) {
    x.setConstant(T(1));
    return;
  }
  double inv_fact[TaylorFeatures::max_degree + 1];
  inv_fact[0] = 1.0;
  for (int p = 1; p <= degree; ++p) inv_fact[p] = inv_fact[p - 1] / p;
  // r = x/g! + 1/(g-1)!, then r = r x + 1/p! for p = g-2 .. 0; entry by entry, in place (no
  // scratch copy of the block: this runs once per chunk).
  for (Index i = 0; i < x.rows(); ++i) {
    T* row = x.data() + i * x.outerStride();
    for (Index j = 0; j < x.cols(); ++j) {
      const T v = row[j];
      T r = v * static_cast<T>(inv_fact[degree]) + static_cast<T>(inv_fact[degree - 1]);
      for (int p = degree - 2; p >= 0; --p) r = r * v + static_cast<T>(inv_fact[p]);
      row[j] = r;
    }
  }
}

template <class T>
void kernel_inplace_t(Eigen::Ref<RowMatrix<T>> x, int degree, FeatureKernel kernel) {
  if (kernel == FeatureKernel::taylor) {
    taylor_polynomial_inplace_t<T>(x, degree);
    return;
  }
  // x^g by squaring (g = 1 or even, <= 8), elementwise in place: no temporary matrix.
  auto a = x.array();
  switch (degree) {
    case 0: a.setConstant(T(1)); break;
    case 1: break;
    case 2: a = a.square(); break;
    case 4: a = a.square().square(); break;
    case 6: a = a.square() * a.square() * a.square(); break;
    default: a = a.square().square().square(); break;  // 8
  }
}

}  // namespace

void taylor_polynomial_inplace(Eigen::Ref<RowMatrix<double>> x, int degree) {
  taylor_polynomial_inplace_t<double>(x, degree);
}
void kernel_inplace(Eigen::Ref<RowMatrix<double>> x, int degree, FeatureKernel kernel) {
  kernel_inplace_t<double>(x, degree, kernel);
}
void kernel_inplace(Eigen::Ref<RowMatrix<float>> x, int degree, FeatureKernel kernel) {
  kernel_inplace_t<float>(x, degree, kernel);
}

}  // namespace streamattn
