#include "streamattn/stream/causal_stream.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "streamattn/core/validate.hpp"
#include "streamattn/kernels/gemm.hpp"
#include "streamattn/stream/causal_segment.hpp"

namespace streamattn {

// --- ProbeSet -------------------------------------------------------------------------------

void ProbeSet::write_payload(ByteWriter& w) const {
  exact.write_payload(w);
  w.u64(positions.size());
  w.i64_array(positions.data(), positions.size());
  for (auto e : evaluated) w.u8(e);
  w.f64_array(approx.data(), static_cast<std::size_t>(approx.size()));
}

ProbeSet ProbeSet::read_payload(ByteReader& r, Index d, Index dv, double scale) {
  ProbeSet ps;
  ps.exact = OnlineSoftmax::read_payload(r);
  r.check(ps.exact.d() == d && ps.exact.dv() == dv && ps.exact.scale() == scale,
          "probe shapes do not match the stream");
  const std::uint64_t p = r.u64();
  r.check(p == static_cast<std::uint64_t>(ps.exact.probes()), "probe count mismatch");
  r.i64_array(ps.positions, p);
  ps.evaluated.resize(static_cast<std::size_t>(p));
  for (auto& e : ps.evaluated) {
    e = r.u8();
    r.check(e <= 1, "probe flag is not 0/1");
  }
  r.check(p * static_cast<std::uint64_t>(dv) <= r.remaining() / 8, "probe approximations exceed the payload");
  ps.approx.resize(static_cast<Index>(p), dv);
  r.f64_array(ps.approx.data(), static_cast<std::uint64_t>(ps.approx.size()));
  return ps;
}

Certificate ProbeSet::certificate() const {
  RowMatrix<double> ap = approx;
  for (Index i = 0; i < ap.rows(); ++i)
    if (!evaluated[static_cast<std::size_t>(i)]) ap.row(i).setConstant(std::numeric_limits<double>::quiet_NaN());
  return make_certificate(exact.result(), std::move(ap), positions);
}

std::size_t ProbeSet::nbytes() const {
  return exact.nbytes() + sizeof(double) * static_cast<std::size_t>(approx.size()) + evaluated.size();
}

namespace detail {

void write_stream_extras(ByteWriter& w, const std::optional<ProbeSet>& probes,
                         const std::optional<SparseRecoveryMatrix>& output) {
  w.u8(probes ? 1 : 0);
  if (probes) probes->write_payload(w);
  w.u8(output ? 1 : 0);
  if (output) output->write_payload(w);
}

void read_stream_extras(ByteReader& r, Index d, Index dv, double scale, std::uint64_t rows,
                        std::optional<ProbeSet>& probes, std::optional<SparseRecoveryMatrix>& output) {
  const std::uint8_t has_probes = r.u8();
  r.check(has_probes <= 1, "probe flag is not 0/1");
  if (has_probes) probes = ProbeSet::read_payload(r, d, dv, scale);
  const std::uint8_t has_output = r.u8();
  r.check(has_output <= 1, "output-sketch flag is not 0/1");
  if (has_output) {
    output = SparseRecoveryMatrix::read_payload(r);
    r.check(output->columns() == dv && output->n() >= rows, "output sketch does not match the stream");
  }
}

}  // namespace detail

// --- CausalStream ---------------------------------------------------------------------------

CausalStream::CausalStream(Index d, Index dv, int degree, std::optional<double> scale, Index chunk,
                           std::uint64_t max_bytes, FeatureKernel kernel, Normalizer norm, ComputeDtype compute,
                           int threads)
    : state_(checked_range(d, 1, limits::max_stream_dim, "d"), checked_range(dv, 1, limits::max_stream_dim, "dv"),
             degree, scale, max_bytes, kernel),
      normalizer_(norm), chunk_(chunk), compute_(compute), max_bytes_(max_bytes) {
  chunk_ = resolve_chunk(chunk, state_.dim());
  require_valid_normalizer(norm);
  set_threads(threads);
}

namespace detail {
int resolve_threads(int threads) {
  require(threads >= 0 && threads <= limits::max_threads, "threads must be in [0, ", limits::max_threads,
          "] (0 = hardware concurrency), got ", threads);
  if (threads > 0) return threads;
  return static_cast<int>(
      std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, static_cast<unsigned>(limits::max_threads)));
}
}  // namespace detail

void CausalStream::set_threads(int threads) {
  const int n = detail::resolve_threads(threads);
  if (n == threads_ && (n == 1 || pool_)) return;
  pool_ = n > 1 ? std::make_shared<ThreadPool>(n) : nullptr;
  threads_ = n;
  ws_.pool = pool_.get();
}

bool CausalStream::may_fail() const {
  return normalizer_.normalize && (degree() % 2 == 1 || (kernel() == FeatureKernel::power && normalizer_.eps == 0.0));
}

void CausalStream::check_gate(const VectorRef<double>& gate, Index n, bool values) const {
  require(gate.size() == n, "log_gate must have one entry per row (", n, "), got ", gate.size());
  require(!probes_, "log_gate cannot be combined with probes: the probes' exact reference is ungated softmax");
  if (values) detail::require_log_gate(gate);
}

void CausalStream::set_probes(const MatrixRef<double>& queries, const std::vector<std::int64_t>& positions) {
  require(tokens_ == 0, "probes must be set before the first update");
  require(queries.cols() == d(), "probes must have d = ", d(), " columns, got ", queries.cols());
  require(static_cast<std::size_t>(queries.rows()) == positions.size(),
          "probe positions must have one entry per probe: ", queries.rows(), " probes, ", positions.size(),
          " positions");
  require(queries.rows() <= (Index{1} << 16), "at most 65536 probes, got ", queries.rows());
  require_finite(queries, "probes");
  for (std::size_t i = 0; i < positions.size(); ++i)
    require(positions[i] >= 0, "probe position ", i, " is ", positions[i], "; positions must be >= 0");
  ProbeSet ps;
  ps.exact = OnlineSoftmax(RowMatrix<double>(queries), positions, scale(), dv());
  ps.positions = positions;
  ps.evaluated.assign(positions.size(), 0);
  ps.approx = RowMatrix<double>::Constant(queries.rows(), dv(), std::numeric_limits<double>::quiet_NaN());
  probes_ = std::move(ps);
}

Certificate CausalStream::certificate() const {
  require(probes_.has_value(), "this stream has no probes: pass probes= (queries and positions) to get a certificate");
  return probes_->certificate();
}

void CausalStream::set_output_sketch(SparseRecoveryMatrix sketch) {
  require(tokens_ == 0, "the output sketch must be set before the first update");
  require(sketch.columns() == dv(), "the output sketch must have dv = ", dv(), " columns, got ", sketch.columns());
  output_ = std::move(sketch);
}

const SparseRecoveryMatrix& CausalStream::output_sketch() const {
  require(output_.has_value(), "this stream has no output sketch: pass output_sketch=(k, eps) with n");
  return *output_;
}

std::vector<SparseVector> CausalStream::sparse_columns(DecodeMethod method) const {
  return output_sketch().decode(method);
}

void CausalStream::start_from(const CausalSegment& prefix) {
  require(tokens_ == 0, "start_from needs a stream that has not seen any token yet (tokens_seen = ", tokens_, ")");
  require(!probes_, "start_from cannot be combined with probes: their exact sums would miss the prefix's keys");
  require(prefix.first_token() == 0, "start_from needs a prefix starting at token 0, got one starting at token ",
          prefix.first_token());
  require(prefix.d() == d() && prefix.dv() == dv() && prefix.degree() == degree() && prefix.scale() == scale() &&
              prefix.kernel() == kernel(),
          "start_from needs a prefix of the same d, dv, degree, scale and kernel: the stream is ", repr(),
          ", the prefix is ", prefix.repr());
  state_ = prefix.state();
  tokens_ = prefix.end_token();
}

template <class T>
void CausalStream::check_keys(const MatrixRef<T>& K, const MatrixRef<T>& V, bool values) const {
  detail::require_stream_keys(K, V, d(), dv(), scale(), values);
}

template <class T>
void CausalStream::prefill_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate) {
  check_keys(K, V);
  if (gate) check_gate(*gate, K.rows());
  if (K.rows() == 0) return;
  if (!gate) {
    if (probes_) probes_->exact.absorb(tokens_, K, V);
    if (uses_float32<T>(compute_))
      state_.absorb_rows_f32(K, V, nullptr, ws_);
    else
      state_.absorb_rows(K, V, ws_);
  } else {
    // Chunk by chunk, as in update(): decays relative to each chunk's start stay small.
    for (Index a = 0; a < K.rows(); a += chunk_) {
      const Index r = std::min(chunk_, K.rows() - a);
      chunker_.cumulative_gates(*gate, a, r, chunk_);
      chunker_.absorb(state_, MatrixRef<T>(K.middleRows(a, r)), MatrixRef<T>(V.middleRows(a, r)), true, ws_,
                      uses_float32<T>(compute_));
    }
  }
  tokens_ += static_cast<std::uint64_t>(K.rows());
}

void CausalStream::prefill(const MatrixRef<float>& K, const MatrixRef<float>& V) { prefill_impl(K, V, nullptr); }
void CausalStream::prefill(const MatrixRef<double>& K, const MatrixRef<double>& V) { prefill_impl(K, V, nullptr); }
void CausalStream::prefill(const MatrixRef<float>& K, const MatrixRef<float>& V, const VectorRef<double>& log_gate) {
  prefill_impl(K, V, &log_gate);
}
void CausalStream::prefill(const MatrixRef<double>& K, const MatrixRef<double>& V, const VectorRef<double>& log_gate) {
  prefill_impl(K, V, &log_gate);
}

template <class T>
void CausalStream::check_block(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, bool values) const {
  require(Q.cols() == d(), "Q must have d = ", d(), " columns, got ", Q.cols());
  require(K.rows() == Q.rows() && V.rows() == Q.rows(), "Q, K and V must have the same number of rows, got ", Q.rows(),
          ", ", K.rows(), ", ", V.rows());
  check_keys(K, V, values);
  if (values) detail::require_clean_rows(Q, scale(), "Q");
  if (output_)
    require(tokens_ + static_cast<std::uint64_t>(Q.rows()) <= output_->n(),
            "the output sketch covers n = ", output_->n(), " rows; this block would bring the stream to ",
            tokens_ + static_cast<std::uint64_t>(Q.rows()));
}

template <class T>
void CausalStream::record_probes(std::uint64_t pos0, Index r, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc) {
  const double c = scale();
  const int g = degree();
  const FeatureKernel kern = kernel();
  const Index dd = d(), dvv = dv();
  const RowMatrix<double> kc = Kc.template cast<double>();
  const RowMatrix<double> vc = Vc.template cast<double>();
  // Probes standing in this chunk: the same two parts, with the key range cut at the probe.
  std::vector<Index> hit;
  for (std::size_t i = 0; i < probes_->positions.size(); ++i) {
    const auto p = static_cast<std::uint64_t>(probes_->positions[i]);
    if (p >= pos0 && p < pos0 + static_cast<std::uint64_t>(r)) hit.push_back(static_cast<Index>(i));
  }
  if (!hit.empty()) {
    const Index m = static_cast<Index>(hit.size());
    RowMatrix<double> qp(m, dd);
    for (Index i = 0; i < m; ++i) qp.row(i) = probes_->exact.queries().row(hit[static_cast<std::size_t>(i)]);
    RowMatrix<double> pn = RowMatrix<double>::Zero(m, dvv);
    Eigen::VectorXd pd = Eigen::VectorXd::Zero(m);
    if (state_.tokens() > 0) state_.accumulate(MatrixRef<double>(qp), pn, pd, ws_);
    RowMatrix<double> sp = (c * qp) * kc.topRows(r).transpose();
    kernel_inplace(sp, g, kern);
    for (Index i = 0; i < m; ++i) {
      const Index last = static_cast<Index>(
          static_cast<std::uint64_t>(probes_->positions[static_cast<std::size_t>(hit[static_cast<std::size_t>(i)])]) -
          pos0);
      sp.row(i).tail(r - last - 1).setZero();
    }
    pn.noalias() += sp * vc.topRows(r);
    pd.noalias() += sp.rowwise().sum();
    detail::normalize_rows(pn, pd, pos0, g, kern, normalizer_);
    for (Index i = 0; i < m; ++i) {
      const auto at = static_cast<std::size_t>(hit[static_cast<std::size_t>(i)]);
      probes_->approx.row(static_cast<Index>(at)) = pn.row(i);
      probes_->evaluated[at] = 1;
    }
  }
  probes_->exact.absorb(pos0, Kc, Vc);
}

template <class T, class O>
void CausalStream::update_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V,
                               const VectorRef<double>* gate, Eigen::Ref<RowMatrix<O>>* out, bool values_checked) {
  check_block(Q, K, V, !values_checked);
  if (gate) check_gate(*gate, Q.rows(), !values_checked);
  const Index n = Q.rows(), dd = d(), dvv = dv();
  if (out)
    require(out->rows() == n && out->cols() == dvv, "out must be n x dv = ", n, " x ", dvv, ", got ", out->rows(),
            " x ", out->cols());
  if (n == 0) return;

  // Only a normalizer <= 0 can fail after the checks (see may_fail): keep what is needed to undo.
  const bool backup = may_fail();
  std::optional<PolyPrefixState> backup_state;
  std::optional<ProbeSet> backup_probes;
  std::optional<SparseRecoveryMatrix> backup_output;
  const std::uint64_t backup_tokens = tokens_;
  if (backup) {
    backup_state = state_;
    backup_probes = probes_;
    backup_output = output_;
  }
  try {
    chunker_.reserve(std::min(chunk_, n), dd, dvv, gate != nullptr, chunk_);
    const bool f32 = uses_float32<T>(compute_);
    for (Index a = 0; a < n; a += chunk_) {
      const Index r = std::min(chunk_, n - a);
      const std::uint64_t pos0 = tokens_;
      const MatrixRef<T> Qc(Q.middleRows(a, r)), Kc(K.middleRows(a, r)), Vc(V.middleRows(a, r));
      if (gate) chunker_.cumulative_gates(*gate, a, r, chunk_);
      const auto nm = chunker_.outputs(state_, Qc, Kc, Vc, gate != nullptr, pos0, normalizer_, ws_, f32);
      if (probes_) record_probes(pos0, r, Kc, Vc);
      if (out) out->middleRows(a, r) = nm.template cast<O>();
      if (output_) output_->update_rows(pos0, MatrixRef<double>(nm));
      chunker_.absorb(state_, Kc, Vc, gate != nullptr, ws_, f32);
      tokens_ += static_cast<std::uint64_t>(r);
    }
  } catch (...) {
    if (backup) {
      state_ = std::move(*backup_state);
      probes_ = std::move(backup_probes);
      output_ = std::move(backup_output);
      tokens_ = backup_tokens;
    }
    throw;
  }
}

template <class T>
void CausalStream::update_rows(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V,
                               const VectorRef<double>* gate, RowMatrix<double>* out) {
  if (!out) return update_impl<T, double>(Q, K, V, gate, nullptr);
  RowMatrix<double> rows(Q.rows(), dv());
  Eigen::Ref<RowMatrix<double>> ref(rows);
  update_impl(Q, K, V, gate, &ref);
  *out = std::move(rows);  // only after success: a rejected call leaves *out as it was
}

void CausalStream::update(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                          RowMatrix<double>* out) {
  update_rows(Q, K, V, nullptr, out);
}
void CausalStream::update(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                          RowMatrix<double>* out) {
  update_rows(Q, K, V, nullptr, out);
}
void CausalStream::update(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                          const VectorRef<double>& log_gate, RowMatrix<double>* out) {
  update_rows(Q, K, V, &log_gate, out);
}
void CausalStream::update(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                          const VectorRef<double>& log_gate, RowMatrix<double>* out) {
  update_rows(Q, K, V, &log_gate, out);
}
void CausalStream::update_into(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>> out) {
  update_impl(Q, K, V, log_gate, &out);
}
void CausalStream::update_into(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                               const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>> out) {
  update_impl(Q, K, V, log_gate, &out);
}
void CausalStream::update_into(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<float>> out) {
  update_impl(Q, K, V, log_gate, &out);
}
void CausalStream::update_into_checked(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                       const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>>* out) {
  update_impl(Q, K, V, log_gate, out, true);
}
void CausalStream::update_into_checked(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                       const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<float>>* out) {
  update_impl(Q, K, V, log_gate, out, true);
}
void CausalStream::update_into_checked(const MatrixRef<double>& Q, const MatrixRef<double>& K,
                                       const MatrixRef<double>& V, const VectorRef<double>* log_gate,
                                       Eigen::Ref<RowMatrix<double>>* out) {
  update_impl(Q, K, V, log_gate, out, true);
}

namespace {
/// A 1 x n row view of a vector (no copy: MatrixRef binds any strides).
template <class T>
Eigen::Map<const RowMatrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> as_row(const VectorRef<T>& x) {
  const Index st = x.innerStride();
  return {x.data(), 1, x.size(), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(x.size() * st, st)};
}
}  // namespace

template <class T>
double CausalStream::prepare_step(const MatrixRef<T>& q, const MatrixRef<T>& k, double f) {
  const Index t = dim();
  if (step_phi_q_.size() != t) {
    step_phi_q_.resize(t);
    step_phi_k_.resize(t);
    step_v_.resize(dv());
  }
  state_.features().transform_into(q, step_phi_q_.data(), t);
  state_.features().transform_into(k, step_phi_k_.data(), t);
  const double den = state_.step_normalizer(step_phi_q_.data(), step_phi_k_.data(), f);
  return normalizer_.eps != 0.0 ? den + normalizer_.eps : den;
}

template <class T>
void CausalStream::step_impl(const VectorRef<T>& q, const VectorRef<T>& k, const VectorRef<T>& v,
                             Eigen::Ref<Eigen::VectorXd> out, double log_gate) {
  require(q.size() == d(), "q must have d = ", d(), " entries, got ", q.size());
  require(k.size() == d(), "k must have d = ", d(), " entries, got ", k.size());
  require(v.size() == dv(), "v must have dv = ", dv(), " entries, got ", v.size());
  require(out.size() == dv(), "out must have dv = ", dv(), " entries, got ", out.size());
  const MatrixRef<T> Q(as_row(q)), K(as_row(k)), V(as_row(v));
  if (log_gate != 0.0) {  // NaN too
    const Eigen::Matrix<double, 1, 1> g(log_gate);
    check_gate(VectorRef<double>(g), 1);
  }
  if (probes_) {
    // The probe bookkeeping lives in update(); a stream with probes pays its allocations.
    RowMatrix<double> o;
    update_rows(Q, K, V, nullptr, &o);
    out = o.row(0).transpose();
    return;
  }
  check_block(Q, K, V);
  const double f = std::exp(log_gate);
  const double den = prepare_step(Q, K, f);
  if (normalizer_.normalize) {
    // Checked before the state changes, so a refused step leaves the stream as it was.
    detail::require_positive_normalizers(Eigen::Matrix<double, 1, 1>(den), tokens_, degree(), kernel());
  }
  if (uses_float32<T>(compute_)) {
    if (step_q32_.size() != dim()) {
      step_q32_.resize(dim());
      step_k32_.resize(dim());
      step_v32_.resize(dv());
      step_num32_.resize(dv());
    }
    step_q32_ = step_phi_q_.cast<float>();
    step_k32_ = step_phi_k_.cast<float>();
    step_v32_ = v.template cast<float>();
    state_.step_rows_f32(step_q32_.data(), step_k32_.data(), step_phi_k_.data(), step_v32_.data(), f,
                         step_num32_.data());
    out = step_num32_.cast<double>();
  } else {
    step_v_ = v.template cast<double>();
    state_.step_rows(step_phi_q_.data(), step_phi_k_.data(), step_v_.data(), f, out.data());
  }
  if (normalizer_.normalize) out /= den;
  if (output_) output_->update_rows(tokens_, MatrixRef<double>(as_row(VectorRef<double>(out))));
  ++tokens_;
}

double CausalStream::step_denominator(const VectorRef<float>& q, const VectorRef<float>& k, double log_gate) {
  require(q.size() == d() && k.size() == d(), "q and k must have d = ", d(), " entries");
  return prepare_step(MatrixRef<float>(as_row(q)), MatrixRef<float>(as_row(k)), std::exp(log_gate));
}
double CausalStream::step_denominator(const VectorRef<double>& q, const VectorRef<double>& k, double log_gate) {
  require(q.size() == d() && k.size() == d(), "q and k must have d = ", d(), " entries");
  return prepare_step(MatrixRef<double>(as_row(q)), MatrixRef<double>(as_row(k)), std::exp(log_gate));
}

void CausalStream::step(const VectorRef<float>& q, const VectorRef<float>& k, const VectorRef<float>& v,
                        Eigen::Ref<Eigen::VectorXd> out, double log_gate) {
  step_impl(q, k, v, out, log_gate);
}
void CausalStream::step(const VectorRef<double>& q, const VectorRef<double>& k, const VectorRef<double>& v,
                        Eigen::Ref<Eigen::VectorXd> out, double log_gate) {
  step_impl(q, k, v, out, log_gate);
}

void CausalStream::set_state(const MatrixRef<double>& M, const VectorRef<double>& s,
                             std::optional<std::uint64_t> tokens) {
  require(!probes_ && !output_, "set_state: a stream with probes or an output sketch cannot take a state from outside");
  const std::uint64_t t = tokens ? *tokens : std::max<std::uint64_t>(tokens_, 1);
  state_.assign(M, s, t);
  tokens_ = t;
}

std::size_t CausalStream::nbytes() const {
  std::size_t b = state_.nbytes();
  if (probes_) b += probes_->nbytes();
  if (output_) b += output_->nbytes();
  return b;
}

std::string CausalStream::repr() const {
  return message("CausalStream(d=", d(), ", dv=", dv(), ", degree=", degree(), ", kernel='",
                 feature_kernel_name(kernel()), "', scale=", scale(), ", t=", dim(),
                 normalizer_.eps != 0.0 ? message(", eps=", normalizer_.eps) : "",
                 normalizer_.normalize ? "" : ", normalize=False", ", chunk=", chunk_,
                 threads_ != 1 ? message(", threads=", threads_) : "", ", tokens_seen=", tokens_,
                 probes_ ? message(", probes=", probes_->positions.size()) : "",
                 output_ ? message(", output_sketch=(n=", output_->n(), ", k=", output_->k(), ")") : "",
                 ", nbytes=", nbytes(), ")");
}

std::vector<std::uint8_t> CausalStream::to_bytes() const {
  ByteWriter w(ObjectKind::causal_stream);
  w.u64(static_cast<std::uint64_t>(chunk_));
  w.u64(tokens_);
  state_.write_payload(w);
  w.f64(normalizer_.eps);
  w.u8(normalizer_.normalize ? 1 : 0);
  detail::write_stream_extras(w, probes_, output_);
  return w.finish();
}

CausalStream CausalStream::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::causal_stream);
  const std::uint64_t chunk = r.u64(), tokens = r.u64();
  r.check(chunk >= 1 && chunk <= (std::uint64_t{1} << 16), "chunk out of range");
  PolyPrefixState st = PolyPrefixState::read_payload(r);
  r.check(st.tokens() == tokens, "token counts disagree");
  CausalStream cs(st.d(), st.dv(), st.degree(), st.scale(), static_cast<Index>(chunk), st.features().max_bytes(),
                  st.kernel());
  cs.state_ = std::move(st);
  cs.tokens_ = tokens;
  Normalizer norm;
  norm.eps = r.f64();
  const std::uint8_t normalize = r.u8();
  r.check(normalize <= 1, "normalize flag is not 0/1");
  norm.normalize = normalize == 1;
  r.check(std::isfinite(norm.eps) && norm.eps >= 0.0 && (norm.normalize || norm.eps == 0.0),
          "normalizer eps out of range");
  cs.normalizer_ = norm;
  detail::read_stream_extras(r, cs.d(), cs.dv(), cs.scale(), tokens, cs.probes_, cs.output_);
  r.finish();
  return cs;
}

}  // namespace streamattn
