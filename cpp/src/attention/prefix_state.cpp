#include "streamattn/attention/prefix_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include "streamattn/core/validate.hpp"
#include "streamattn/kernels/gemm.hpp"

namespace streamattn {

namespace {

template <class Mat>
void ensure_rows(Mat& m, Index rows, Index cols) {
  if (m.rows() < rows || m.cols() != cols) m.resize(std::max(rows, m.cols() == cols ? m.rows() : Index{0}), cols);
}

// Rows split over a pool: below this many feature entries (rows x t) per call, on the calling
// thread (waking a worker costs about what the split saves).
constexpr Index kSplitFeatureEntries = Index{1} << 15;

// Runs f(first row, rows) over contiguous row blocks of r rows, one per thread of the pool (or
// once on the calling thread). Each row is computed by one thread in the same way: the same bits.
template <class F>
void split_rows(ThreadPool* pool, Index r, Index t, F&& f) {
  const Index parts = pool && r * t >= kSplitFeatureEntries ? std::min<Index>(pool->threads(), r) : 1;
  if (parts <= 1) {
    f(Index{0}, r);
    return;
  }
  pool->run(parts, [&](std::int64_t p) {
    const Index a = r * p / parts, b = r * (p + 1) / parts;
    if (b > a) f(a, b - a);
  });
}

// The feature rows of X (r rows) into out (row stride t), split over the pool's threads.
template <class T>
void featurize(const TaylorFeatures& features, const MatrixRef<T>& X, double* out, Index t, ThreadPool* pool) {
  split_rows(pool, X.rows(), t,
             [&](Index a, Index n) { features.transform_into(MatrixRef<T>(X.middleRows(a, n)), out + a * t, t); });
}

// dst rows 0..r-1 = float32(src rows 0..r-1), split over the pool's threads.
void round_rows(const RowMatrix<double>& src, RowMatrix<float>& dst, Index r, ThreadPool* pool) {
  split_rows(pool, r, src.cols(),
             [&](Index a, Index n) { dst.middleRows(a, n) = src.middleRows(a, n).template cast<float>(); });
}

}  // namespace

ComputeDtype parse_compute_dtype(const std::string& name) {
  if (name == "float32") return ComputeDtype::float32;
  if (name == "float64") return ComputeDtype::float64;
  throw std::invalid_argument(
      message("compute must be 'float32' or 'float64' (or None: the input's dtype), got '", name, "'"));
}

const char* compute_dtype_name(ComputeDtype c) {
  switch (c) {
    case ComputeDtype::float32: return "float32";
    case ComputeDtype::float64: return "float64";
    default: return "input";
  }
}

ComputeDtype parse_compute_option(const std::optional<std::string>& name) {
  return name ? parse_compute_dtype(*name) : ComputeDtype::input;
}

std::optional<std::string> compute_option_name(ComputeDtype c) {
  if (c == ComputeDtype::input) return std::nullopt;
  return std::string(compute_dtype_name(c));
}

void require_valid_normalizer(const Normalizer& norm) {
  require(std::isfinite(norm.eps) && norm.eps >= 0.0, "eps must be finite and >= 0, got ", norm.eps);
  require(norm.normalize || norm.eps == 0.0, "eps = ", norm.eps,
          " has no effect with normalize=False (there is no denominator); pass eps=0");
}

namespace detail {
void require_positive_normalizers(const Eigen::Ref<const Eigen::VectorXd>& den, std::uint64_t first_row, int degree,
                                  FeatureKernel kernel) {
  for (Index i = 0; i < den.size(); ++i) {
    const double v = den[i];
    if (!(v > 0.0) || !std::isfinite(v)) {
      const char* why = degree % 2 == 1 ? "odd degrees let P_g go negative; use an even degree"
                        : kernel == FeatureKernel::power && v == 0.0
                            ? "every (c q.k)^p of this row is 0 (a zero query, or one orthogonal to every key); "
                              "pass eps > 0 to keep such rows at 0"
                            : "the inputs are too large for the degree; scale q and k down or lower the scale";
      throw std::invalid_argument(message("the polynomial normalizer phi(q).s is ", v, " for row ",
                                          first_row + static_cast<std::uint64_t>(i), " (degree ", degree, ", kernel ",
                                          feature_kernel_name(kernel), "): ", why));
    }
  }
}

StateParameters StateParameters::of(const TaylorFeatures& features, Index dv) {
  StateParameters p;
  p.d = static_cast<std::uint64_t>(features.d());
  p.dv = static_cast<std::uint64_t>(dv);
  p.degree = static_cast<std::uint64_t>(features.degree());
  p.kernel = static_cast<std::uint8_t>(features.kernel());
  p.scale = features.scale();
  p.max_bytes = features.max_bytes();
  return p;
}

void StateParameters::write_payload(ByteWriter& w) const {
  w.u64(d);
  w.u64(dv);
  w.u64(degree);
  w.u8(kernel);
  w.f64(scale);
  w.u64(max_bytes);
}

StateParameters StateParameters::read_payload(ByteReader& r) {
  StateParameters p;
  p.d = r.u64();
  p.dv = r.u64();
  p.degree = r.u64();
  p.kernel = r.u8();
  p.scale = r.f64();
  p.max_bytes = r.u64();
  return p;
}

void normalize_rows(Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den, std::uint64_t first_row,
                    int degree, FeatureKernel kernel, const Normalizer& norm) {
  if (!norm.normalize) return;
  if (norm.eps != 0.0) den.array() += norm.eps;
  require_positive_normalizers(den, first_row, degree, kernel);
  num = den.cwiseInverse().asDiagonal() * num;
}
}  // namespace detail

Index PolyPrefixState::pass_rows(Index t) {
  const Index target_bytes = Index{16} << 20;
  return std::clamp<Index>(target_bytes / (8 * std::max<Index>(t, 1)), 32, 1024);
}

PolyPrefixState::PolyPrefixState(Index d, Index dv, int degree, std::optional<double> scale, std::uint64_t max_bytes,
                                 FeatureKernel kernel)
    : PolyPrefixState(TaylorFeatures(d, degree, scale, max_bytes, kernel), dv) {}

PolyPrefixState::PolyPrefixState(const TaylorFeatures& features, Index dv) : features_(features), dv_(dv) {
  require_range(dv, 1, limits::max_feature_dim, "dv");
  const long double bytes = static_cast<long double>(features_.dim()) * static_cast<long double>(dv + 1) * 8.0L;
  require(bytes <= static_cast<long double>(features_.max_bytes()), "PolyPrefixState: t = ", features_.dim(),
          " features x (dv + 1) = ", dv + 1, " float64 need ", static_cast<double>(bytes),
          " bytes, over the limit max_bytes = ", features_.max_bytes(), "; lower the degree or raise max_bytes");
  M_ = RowMatrix<double>::Zero(features_.dim(), dv);
  normalizer_state_ = Eigen::VectorXd::Zero(features_.dim());
}

template <class T>
void PolyPrefixState::absorb_rows_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const double* w, PolyWorkspace& ws,
                                       bool f32) {
  const Index n = K.rows(), t = dim(), step = pass_rows(t);
  for (Index p = 0; p < n; p += step) {
    const Index r = std::min(step, n - p);
    ensure_rows(ws.phi, std::min(step, n), t);
    featurize(features_, MatrixRef<T>(K.middleRows(p, r)), ws.phi.data(), t, ws.pool);
    // Gating weights scale the feature rows: phi^T diag(w) V and phi^T w stay one GEMM, one GEMV.
    if (w) ws.phi.topRows(r) = Eigen::Map<const Eigen::VectorXd>(w + p, r).asDiagonal() * ws.phi.topRows(r);
    const auto phi = ws.phi.topRows(r);
    // The U2^T V accumulation: one GEMM (t x r) * (r x dv) per pass (gemm.hpp).
    if (f32) {
      // The pass's product in float32, added into the float64 state, and the float32 copy of M
      // the next queries read, both in the GEMM's epilogue.
      ensure_rows(ws.phi32, std::min(step, n), t);
      ensure_rows(ws.v32, std::min(step, n), dv_);
      round_rows(ws.phi, ws.phi32, r, ws.pool);
      ws.v32.topRows(r) = V.middleRows(p, r).template cast<float>();
      if (M32_.rows() != t || M32_.cols() != dv_) M32_.resize(t, dv_);
      gemm_acc64(ws.phi32.topRows(r), Trans::yes, ws.v32.topRows(r), Trans::no, M_, M32_, ws.pool);
    } else if constexpr (std::is_same_v<T, double>) {
      gemm(phi, Trans::yes, V.middleRows(p, r), Trans::no, M_, true, ws.pool);
    } else {
      ensure_rows(ws.v, std::min(step, n), dv_);
      ws.v.topRows(r) = V.middleRows(p, r).template cast<double>();
      gemm(phi, Trans::yes, ws.v.topRows(r), Trans::no, M_, true, ws.pool);
    }
    // s += phi^T 1 as a GEMV (a column-wise reduction of row-major phi would stride through memory).
    if (ws.ones.size() < r) ws.ones = Eigen::VectorXd::Ones(std::min(step, n));
    normalizer_state_.noalias() += phi.transpose() * ws.ones.head(r);
  }
  tokens_ += static_cast<std::uint64_t>(n);
  // The float32 path keeps M32_ equal to M's rounding; the float64 path leaves it stale.
  m32_fresh_ = f32 && (m32_fresh_ || n > 0);
}

void PolyPrefixState::absorb_rows_f32(const MatrixRef<float>& K, const MatrixRef<float>& V, const double* w,
                                      PolyWorkspace& ws) {
  absorb_rows_impl(K, V, w, ws, true);
}
void PolyPrefixState::absorb_rows_f32(const MatrixRef<double>& K, const MatrixRef<double>& V, const double* w,
                                      PolyWorkspace& ws) {
  absorb_rows_impl(K, V, w, ws, true);
}

void PolyPrefixState::accumulate_f32(const MatrixRef<float>& Q, Eigen::Ref<RowMatrix<double>> num,
                                     Eigen::Ref<Eigen::VectorXd> den, PolyWorkspace& ws) const {
  accumulate_impl(Q, num, den, ws, true);
}
void PolyPrefixState::accumulate_f32(const MatrixRef<double>& Q, Eigen::Ref<RowMatrix<double>> num,
                                     Eigen::Ref<Eigen::VectorXd> den, PolyWorkspace& ws) const {
  accumulate_impl(Q, num, den, ws, true);
}

void PolyPrefixState::absorb_rows(const MatrixRef<float>& K, const MatrixRef<float>& V, PolyWorkspace& ws) {
  absorb_rows_impl(K, V, nullptr, ws);
}
void PolyPrefixState::absorb_rows(const MatrixRef<double>& K, const MatrixRef<double>& V, PolyWorkspace& ws) {
  absorb_rows_impl(K, V, nullptr, ws);
}
void PolyPrefixState::absorb_rows_weighted(const MatrixRef<float>& K, const MatrixRef<float>& V, const double* w,
                                           PolyWorkspace& ws) {
  absorb_rows_impl(K, V, w, ws);
}
void PolyPrefixState::absorb_rows_weighted(const MatrixRef<double>& K, const MatrixRef<double>& V, const double* w,
                                           PolyWorkspace& ws) {
  absorb_rows_impl(K, V, w, ws);
}

namespace {
// a . b over n entries in a fixed order: four interleaved partial sums, then (s0 + s1) + (s2 + s3).
double dot_fixed(const double* a, const double* b, Index n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  Index i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}
}  // namespace

void PolyPrefixState::fresh_f32() const {
  if (!m32_fresh_) {
    M32_ = M_.template cast<float>();
    m32_fresh_ = true;
  }
}

void PolyPrefixState::add_state_products(Index i0, Index n, const MatrixRef<double>* phi, const MatrixRef<float>* phi32,
                                         Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<RowMatrix<float>> prod32) const {
  if (phi32) {
    if (phi32->rows() == 0) return;
    gemm(*phi32, Trans::no, MatrixRef<float>(M32_.middleRows(i0, n)), Trans::no, prod32, false);
    num += prod32.template cast<double>();
  } else if (phi->rows() > 0) {
    gemm(*phi, Trans::no, MatrixRef<double>(M_.middleRows(i0, n)), Trans::no, num, true);
  }
}

void PolyPrefixState::add_normalizer_dots(Index i0, Index n, const double* phi, Index ld, Index r, double* den) const {
  const double* s = normalizer_state_.data() + i0;
  for (Index m = 0; m < r; ++m) den[m] += dot_fixed(phi + m * ld, s, n);
}

void PolyPrefixState::decay_rows(Index i0, Index n, double f) {
  if (n == 0 || f == 1.0) return;
  M_.middleRows(i0, n) *= f;
  normalizer_state_.segment(i0, n) *= f;
}

void PolyPrefixState::add_key_features(Index i0, Index n, const double* phi, Index ld, Index r) {
  double* sb = normalizer_state_.data() + i0;
  Index m = 0;
  // Four rows per pass over s: each entry still gets the rows added one by one, in row order.
  for (; m + 4 <= r; m += 4) {
    const double *p0 = phi + m * ld, *p1 = p0 + ld, *p2 = p1 + ld, *p3 = p2 + ld;
    for (Index i = 0; i < n; ++i) sb[i] = (((sb[i] + p0[i]) + p1[i]) + p2[i]) + p3[i];
  }
  for (; m < r; ++m) {
    const double* p = phi + m * ld;
    for (Index i = 0; i < n; ++i) sb[i] += p[i];
  }
}

void PolyPrefixState::add_key_products(Index i0, Index n, const MatrixRef<double>* phi, const MatrixRef<float>* phi32,
                                       const MatrixRef<double>* V64, const MatrixRef<float>* V32) {
  if (n == 0) return;
  auto Mb = M_.middleRows(i0, n);
  if (phi32)
    gemm_acc64(*phi32, Trans::yes, *V32, Trans::no, Mb, M32_.middleRows(i0, n));
  else
    gemm(*phi, Trans::yes, *V64, Trans::no, Mb, true);
}

void PolyPrefixState::begin_featurized(bool f32) {
  if (f32 && (M32_.rows() != dim() || M32_.cols() != dv_)) M32_.resize(dim(), dv_);
}

void PolyPrefixState::finish_featurized(Index r, bool f32) {
  tokens_ += static_cast<std::uint64_t>(r);
  if (r > 0) m32_fresh_ = f32;  // every part's gemm_acc64 rewrote its rows of the float32 copy
}

void PolyPrefixState::decay(double factor) {
  if (factor == 1.0) return;
  m32_fresh_ = false;
  M_ *= factor;
  normalizer_state_ *= factor;
}

double PolyPrefixState::step_normalizer(const double* phi_q, const double* phi_k, double f) const {
  const double* s = normalizer_state_.data();
  double dn = 0.0;
  for (Index i = 0; i < dim(); ++i) dn += phi_q[i] * (f * s[i] + phi_k[i]);
  return dn;
}

void PolyPrefixState::step_rows(const double* phi_q, const double* phi_k, const double* v, double f, double* num) {
  const Index t = dim(), dv = dv_;
  double* M = M_.data();
  double* s = normalizer_state_.data();
  m32_fresh_ = false;
  for (Index j = 0; j < dv; ++j) num[j] = 0.0;
  // One sweep over the rows of M: decay, add the key's rank-one term, read it with the query.
  for (Index i = 0; i < t; ++i) {
    double* m = M + i * dv;
    const double a = phi_k[i], b = phi_q[i];
    for (Index j = 0; j < dv; ++j) {
      m[j] = f * m[j] + a * v[j];
      num[j] += b * m[j];
    }
    s[i] = f * s[i] + a;
  }
  ++tokens_;
}

void PolyPrefixState::step_rows_f32(const float* phi_q, const float* phi_k, const double* phi_k64, const float* v,
                                    double f, float* num) {
  const Index t = dim(), dv = dv_;
  double* M = M_.data();
  double* s = normalizer_state_.data();
  m32_fresh_ = false;
  for (Index j = 0; j < dv; ++j) num[j] = 0.0f;
  for (Index i = 0; i < t; ++i) {
    double* m = M + i * dv;
    const float a = phi_k[i], b = phi_q[i];
    for (Index j = 0; j < dv; ++j) {
      const float kv = a * v[j];  // the rank-one term in float32, as absorb_rows_f32 forms it
      m[j] = f * m[j] + static_cast<double>(kv);
      num[j] += b * static_cast<float>(m[j]);
    }
    s[i] = f * s[i] + phi_k64[i];
  }
  ++tokens_;
}

template <class T>
void PolyPrefixState::absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V) {
  require(K.cols() == d(), "K must have d = ", d(), " columns, got ", K.cols());
  require(V.cols() == dv_, "V must have dv = ", dv_, " columns, got ", V.cols());
  require(V.rows() == K.rows(), "V must have as many rows as K (", K.rows(), "), got ", V.rows());
  // Non-finite or unbounded rows would turn M and s into inf/NaN for good (every later answer,
  // merge and to_bytes would carry it): refuse them like the streams do.
  detail::require_clean_rows(K, scale(), "K");
  detail::require_clean_values(V, "V");
  absorb_rows_impl(K, V, nullptr, ws_);
}

void PolyPrefixState::absorb(const MatrixRef<float>& K, const MatrixRef<float>& V) { absorb_impl(K, V); }
void PolyPrefixState::absorb(const MatrixRef<double>& K, const MatrixRef<double>& V) { absorb_impl(K, V); }

template <class T>
void PolyPrefixState::accumulate_impl(const MatrixRef<T>& Q, Eigen::Ref<RowMatrix<double>> num,
                                      Eigen::Ref<Eigen::VectorXd> den, PolyWorkspace& ws, bool f32) const {
  if (f32 && !m32_fresh_) {
    M32_ = M_.template cast<float>();
    m32_fresh_ = true;
  }
  const Index n = Q.rows(), t = dim(), step = pass_rows(t);
  for (Index p = 0; p < n; p += step) {
    const Index r = std::min(step, n - p);
    ensure_rows(ws.phi, std::min(step, n), t);
    featurize(features_, MatrixRef<T>(Q.middleRows(p, r)), ws.phi.data(), t, ws.pool);
    const auto phi = ws.phi.topRows(r);
    if (f32) {
      ensure_rows(ws.phi32, std::min(step, n), t);
      ensure_rows(ws.prod32, std::min(step, n), dv_);
      round_rows(ws.phi, ws.phi32, r, ws.pool);
      gemm(ws.phi32.topRows(r), Trans::no, M32_, Trans::no, ws.prod32.topRows(r), false, ws.pool);
      num.middleRows(p, r) += ws.prod32.topRows(r).template cast<double>();
    } else {
      gemm(phi, Trans::no, M_, Trans::no, num.middleRows(p, r), true, ws.pool);
    }
    den.segment(p, r).noalias() += phi * normalizer_state_;
  }
}

void PolyPrefixState::accumulate(const MatrixRef<float>& Q, Eigen::Ref<RowMatrix<double>> num,
                                 Eigen::Ref<Eigen::VectorXd> den, PolyWorkspace& ws) const {
  accumulate_impl(Q, num, den, ws);
}
void PolyPrefixState::accumulate(const MatrixRef<double>& Q, Eigen::Ref<RowMatrix<double>> num,
                                 Eigen::Ref<Eigen::VectorXd> den, PolyWorkspace& ws) const {
  accumulate_impl(Q, num, den, ws);
}

template <class T>
RowMatrix<double> PolyPrefixState::apply_impl(const MatrixRef<T>& Q) const {
  require(Q.cols() == d(), "Q must have d = ", d(), " columns, got ", Q.cols());
  require(tokens_ > 0, "the state is empty: absorb keys and values before applying queries");
  detail::require_clean_rows(Q, scale(), "Q");
  RowMatrix<double> out = RowMatrix<double>::Zero(Q.rows(), dv_);
  Eigen::VectorXd den = Eigen::VectorXd::Zero(Q.rows());
  PolyWorkspace ws;
  accumulate_impl(Q, out, den, ws);
  detail::require_positive_normalizers(den, 0, degree(), kernel());
  out = den.cwiseInverse().asDiagonal() * out;
  return out;
}

RowMatrix<double> PolyPrefixState::apply(const MatrixRef<float>& Q) const { return apply_impl(Q); }
RowMatrix<double> PolyPrefixState::apply(const MatrixRef<double>& Q) const { return apply_impl(Q); }

void PolyPrefixState::merge(const PolyPrefixState& other) {
  require(other.d() == d() && other.dv() == dv_ && other.degree() == degree() && other.scale() == scale() &&
              other.kernel() == kernel(),
          "merge needs states of the same d, dv, degree, scale and kernel: this is ", repr(), ", other is ",
          other.repr());
  m32_fresh_ = false;
  M_ += other.M_;
  normalizer_state_ += other.normalizer_state_;
  tokens_ += other.tokens_;
}

void PolyPrefixState::reset() {
  m32_fresh_ = false;
  M_.setZero();
  normalizer_state_.setZero();
  tokens_ = 0;
}

void PolyPrefixState::check_assign(const MatrixRef<double>& M, const VectorRef<double>& s) const {
  require(M.rows() == dim() && M.cols() == dv_, "state M must be t x dv = ", dim(), " x ", dv_, ", got ", M.rows(),
          " x ", M.cols());
  require(s.size() == dim(), "state s must have t = ", dim(), " entries, got ", s.size());
  require_finite(M, "state M");
  require_finite(s, "state s");
}

void PolyPrefixState::assign(const MatrixRef<double>& M, const VectorRef<double>& s, std::uint64_t tokens) {
  check_assign(M, s);
  require(tokens >= 1, "a state stands for at least one absorbed row (tokens >= 1), got tokens = 0");
  M_ = M;
  normalizer_state_ = s;
  tokens_ = tokens;
}

std::size_t PolyPrefixState::nbytes() const {
  return sizeof(double) * static_cast<std::size_t>(M_.size() + normalizer_state_.size());
}

void PolyPrefixState::write_payload(ByteWriter& w) const {
  detail::StateParameters::of(features_, dv_).write_payload(w);
  w.u64(tokens_);
  w.f64_array(M_.data(), static_cast<std::size_t>(M_.size()));
  w.f64_array(normalizer_state_.data(), static_cast<std::size_t>(normalizer_state_.size()));
}

PolyPrefixState PolyPrefixState::read_payload(ByteReader& r) {
  const auto [d, dv, degree, kernel_byte, scale, max_bytes] = detail::StateParameters::read_payload(r);
  const std::uint64_t tokens = r.u64();
  r.check(d >= 1 && d <= (std::uint64_t{1} << 20) && dv >= 1 && dv <= (std::uint64_t{1} << 20) &&
              degree <= static_cast<std::uint64_t>(TaylorFeatures::max_degree),
          "state sizes out of range");
  r.check(kernel_byte <= 1, "state kernel is neither taylor (0) nor power (1)");
  const auto kernel = static_cast<FeatureKernel>(kernel_byte);
  r.check(kernel != FeatureKernel::power || degree % 2 == 0 || degree == 1,
          "power-kernel state with an odd degree > 1");
  r.check(scale > 0 && std::isfinite(scale), "state scale is not a positive finite number");
  const std::int64_t t = feature_dim(static_cast<Index>(d), static_cast<int>(degree), kernel);
  // The state must be present in full before anything of its size is allocated.
  r.check(
      static_cast<long double>(t) * (static_cast<long double>(dv) + 1) * 8 <= static_cast<long double>(r.remaining()),
      "state size exceeds the payload");
  std::optional<PolyPrefixState> st;
  try {
    st.emplace(static_cast<Index>(d), static_cast<Index>(dv), static_cast<int>(degree), scale, max_bytes, kernel);
  } catch (const std::invalid_argument& e) {
    r.check(false, std::string("state parameters rejected: ") + e.what());
  }
  r.f64_array(st->M_.data(), static_cast<std::uint64_t>(st->M_.size()));
  r.f64_array(st->normalizer_state_.data(), static_cast<std::uint64_t>(st->normalizer_state_.size()));
  r.check(st->M_.allFinite() && st->normalizer_state_.allFinite(), "state values are not finite");
  st->tokens_ = tokens;
  return std::move(*st);
}

std::string PolyPrefixState::repr() const {
  return message("PolyPrefixState(d=", d(), ", dv=", dv_, ", degree=", degree(), ", kernel='",
                 feature_kernel_name(kernel()), "', scale=", scale(), ", dim=", dim(), ", tokens=", tokens_, ")");
}

}  // namespace streamattn
