#include "streamattn/stream/kv_stream.hpp"

#include <cmath>
#include <limits>

#include "streamattn/core/validate.hpp"
#include "streamattn/sketch/ams_sketch.hpp"
#include "streamattn/sketch/gaussian_sketch.hpp"

namespace streamattn {

StateKind parse_state_kind(const std::string& name) {
  if (name == "exact") return StateKind::exact;
  if (name == "sketched") return StateKind::sketched;
  throw std::invalid_argument(message("state must be 'exact' or 'sketched', got '", name, "'"));
}

const char* state_kind_name(StateKind k) { return k == StateKind::exact ? "exact" : "sketched"; }

KVStream::KVStream(Index d, Index dv, int degree, std::optional<double> scale, StateKind state, SketchOptions sketch,
                   std::uint64_t first_token, std::uint64_t max_bytes, FeatureKernel kernel, int threads)
    : state_kind_(state), features_(checked_range(d, 1, limits::max_stream_dim, "d"), degree, scale, max_bytes, kernel),
      dv_(checked_range(dv, 1, limits::max_stream_dim, "dv")), first_(first_token) {
  require_range(sketch.size, 1, limits::max_sketch_size, "sketch_size");
  require(first_token <= limits::max_position, "first_token must be < 2^61 - 1, got ", first_token);
  if (state_kind_ == StateKind::exact) {
    exact_.emplace(features_, dv);
  } else {
    const long double bytes = static_cast<long double>(sketch.size) * (features_.dim() + dv) * 8.0L;
    require(bytes <= static_cast<long double>(features_.max_bytes()),
            "the sketched state needs s*(t+dv)*8 = ", static_cast<double>(bytes), " bytes (s = ", sketch.size,
            ", t = ", features_.dim(), "), over max_bytes = ", features_.max_bytes(),
            "; lower s or the degree, or raise max_bytes");
    sketch_.emplace(sketch.distribution, sketch.size, sketch.seed, features_.dim() + dv);
    normalizer_state_ = Eigen::VectorXd::Zero(features_.dim());
  }
  set_threads(threads);
}

void KVStream::set_threads(int threads) {
  const int n = detail::resolve_threads(threads);
  if (n == threads_ && (n == 1 || pool_)) return;
  pool_ = n > 1 ? std::make_shared<ThreadPool>(n) : nullptr;
  threads_ = n;
  ws_.pool = pool_.get();
}

const PolyPrefixState& KVStream::exact_state() const {
  require(exact_.has_value(), "this KVStream has a sketched state, not an exact one");
  return *exact_;
}

RowMatrix<double> KVStream::numerator_state() const {
  if (exact_) return exact_->numerator_state();
  const RowMatrix<double>& A = sketch_->value();
  const Index t = dim();
  return A.leftCols(t).transpose() * A.rightCols(dv_);
}

const Eigen::VectorXd& KVStream::normalizer_state() const {
  return exact_ ? exact_->normalizer_state() : normalizer_state_;
}

const DenseSketch& KVStream::sketch() const {
  require(sketch_.has_value(), "this KVStream has an exact state, not a sketched one");
  return *sketch_;
}

template <class T>
void KVStream::add_impl(const MatrixRef<T>& K, const MatrixRef<T>& V) {
  detail::require_stream_keys(K, V, d(), dv_, scale());
  const std::uint64_t n = static_cast<std::uint64_t>(K.rows());
  require(first_ + tokens_ + n < (std::uint64_t{1} << 61) - 1, "key positions would pass 2^61 - 1");
  if (n == 0) return;
  const std::uint64_t pos = first_ + tokens_;
  if (probes_) probes_->exact.absorb(pos, K, V);
  if (exact_) {
    exact_->absorb_rows(K, V, ws_);
  } else {
    // One pass of Psi over [phi(K) | V], so Psi U2 and Psi V share the same Psi columns.
    const Index t = dim(), step = PolyPrefixState::pass_rows(t + dv_);
    RowMatrix<double> block(std::min<Index>(step, K.rows()), t + dv_);
    for (Index a = 0; a < K.rows(); a += step) {
      const Index r = std::min(step, K.rows() - a);
      features_.transform_into(K.middleRows(a, r), block.data(), t + dv_);
      block.topRightCorner(r, dv_) = V.middleRows(a, r).template cast<double>();
      normalizer_state_.noalias() += block.topLeftCorner(r, t).colwise().sum().transpose();
      sketch_->update_rows(pos + static_cast<std::uint64_t>(a), MatrixRef<double>(block.topRows(r)));
    }
    cached_numerator_.reset();
  }
  tokens_ += n;
}

void KVStream::add(const MatrixRef<float>& K, const MatrixRef<float>& V) { add_impl(K, V); }
void KVStream::add(const MatrixRef<double>& K, const MatrixRef<double>& V) { add_impl(K, V); }

RowMatrix<double> KVStream::compute_sketched_numerator() const {
  const RowMatrix<double>& A = sketch_->value();
  const Index t = dim();
  return A.leftCols(t).transpose() * A.rightCols(dv_);
}

// The state's answer to Q, with the scratch `ws` and (sketched state) the numerator (Psi U2)^T
// (Psi V) when the caller has it (null: computed here). Writes nothing of the stream's own, so
// const callers may run it concurrently, each with its own scratch.
template <class T>
RowMatrix<double> KVStream::answer(const MatrixRef<T>& Q, PolyWorkspace& ws, const RowMatrix<double>* numerator) const {
  const Index n = Q.rows();
  RowMatrix<double> num = RowMatrix<double>::Zero(n, dv_);
  Eigen::VectorXd den = Eigen::VectorXd::Zero(n);
  if (exact_) {
    exact_->accumulate(Q, num, den, ws);
  } else {
    const RowMatrix<double> phi = features_.transform(Q);
    if (numerator) {
      num.noalias() = phi * *numerator;
    } else {
      num.noalias() = phi * compute_sketched_numerator();
    }
    den.noalias() = phi * normalizer_state_;
  }
  detail::require_positive_normalizers(den, 0, degree(), kernel());
  return den.cwiseInverse().asDiagonal() * num;
}

template <class T>
RowMatrix<double> KVStream::query_impl(const MatrixRef<T>& Q) {
  require(Q.cols() == d(), "Q must have d = ", d(), " columns, got ", Q.cols());
  detail::require_clean_rows(Q, scale(), "Q");
  require(tokens_ > 0 || Q.rows() == 0, "query before any key: add(K, V) first");
  if (output_)
    require(queries_ + static_cast<std::uint64_t>(Q.rows()) <= output_->n(),
            "the output sketch covers n = ", output_->n(), " query rows; this call would bring the count to ",
            queries_ + static_cast<std::uint64_t>(Q.rows()));
  if (sketch_ && !cached_numerator_) cached_numerator_ = compute_sketched_numerator();
  RowMatrix<double> out = answer(Q, ws_, sketch_ ? &*cached_numerator_ : nullptr);
  if (output_ && out.rows() > 0) output_->update_rows(queries_, MatrixRef<double>(out));
  queries_ += static_cast<std::uint64_t>(Q.rows());
  return out;
}

RowMatrix<double> KVStream::query(const MatrixRef<float>& Q) { return query_impl(Q); }
RowMatrix<double> KVStream::query(const MatrixRef<double>& Q) { return query_impl(Q); }

void KVStream::set_probes(const MatrixRef<double>& queries) {
  require(tokens_ == 0, "probes must be set before the first add()");
  require(queries.cols() == d(), "probes must have d = ", d(), " columns, got ", queries.cols());
  require(queries.rows() <= (Index{1} << 16), "at most 65536 probes, got ", queries.rows());
  require_finite(queries, "probes");
  ProbeSet ps;
  const std::vector<std::int64_t> positions(static_cast<std::size_t>(queries.rows()), -1);
  ps.exact = OnlineSoftmax(RowMatrix<double>(queries), positions, scale(), dv_);
  ps.positions = positions;
  ps.evaluated.assign(positions.size(), 0);
  ps.approx = RowMatrix<double>::Constant(queries.rows(), dv_, std::numeric_limits<double>::quiet_NaN());
  probes_ = std::move(ps);
}

Certificate KVStream::certificate() const {
  require(probes_.has_value(), "this stream has no probes: pass probes= to get a certificate");
  ProbeSet ps = *probes_;
  if (tokens_ > 0) {
    PolyWorkspace ws;  // its own scratch, on the calling thread: certificate() is const
    ps.approx = answer(MatrixRef<double>(ps.exact.queries()), ws, cached_numerator_ ? &*cached_numerator_ : nullptr);
    ps.evaluated.assign(ps.evaluated.size(), 1);
  }
  return ps.certificate();
}

void KVStream::set_output_sketch(SparseRecoveryMatrix sketch) {
  require(queries_ == 0, "the output sketch must be set before the first query");
  require(sketch.columns() == dv_, "the output sketch must have dv = ", dv_, " columns, got ", sketch.columns());
  output_ = std::move(sketch);
}

const SparseRecoveryMatrix& KVStream::output_sketch() const {
  require(output_.has_value(), "this stream has no output sketch: pass output_sketch=(k, eps) with n");
  return *output_;
}

std::vector<SparseVector> KVStream::sparse_columns(DecodeMethod method) const { return output_sketch().decode(method); }

void KVStream::merge(const KVStream& o) {
  require(state_kind_ == o.state_kind_, "cannot merge a KVStream with a ", state_kind_name(o.state_kind_),
          " state into one with a ", state_kind_name(state_kind_), " state");
  require(d() == o.d() && dv_ == o.dv_ && degree() == o.degree() && scale() == o.scale() && kernel() == o.kernel(),
          "cannot merge KVStream(d=", o.d(), ", dv=", o.dv_, ", degree=", o.degree(), ", scale=", o.scale(),
          ", kernel=", feature_kernel_name(o.kernel()), ") into KVStream(d=", d(), ", dv=", dv_, ", degree=", degree(),
          ", scale=", scale(), ", kernel=", feature_kernel_name(kernel()), ")");
  require(queries_ == 0 && o.queries_ == 0, "merge key shards before answering queries");
  require(probes_.has_value() == o.probes_.has_value(), "cannot merge a stream with probes and one without");
  if (probes_)
    require(probes_->exact.queries() == o.probes_->exact.queries(), "cannot merge streams with different probes");
  require(output_.has_value() == o.output_.has_value(), "cannot merge a stream with an output sketch and one without");
  if (output_) output_->require_compatible(*o.output_);
  if (sketch_) {
    sketch_->require_compatible(*o.sketch_);
    const bool disjoint =
        o.first_ >= first_ + tokens_ || first_ >= o.first_ + o.tokens_ || tokens_ == 0 || o.tokens_ == 0;
    require(disjoint, "cannot merge sketched KVStreams whose key positions overlap ([", first_, ", ", first_ + tokens_,
            ") and [", o.first_, ", ", o.first_ + o.tokens_, ")): give each shard its own first_token");
  }
  // All checks passed: now mutate.
  if (exact_) {
    exact_->merge(*o.exact_);
  } else {
    sketch_->merge(*o.sketch_);
    normalizer_state_ += o.normalizer_state_;
    cached_numerator_.reset();
    if (o.tokens_ > 0 && (tokens_ == 0 || o.first_ < first_)) first_ = o.first_;
  }
  if (probes_) probes_->exact.merge(o.probes_->exact);
  if (output_) output_->merge(*o.output_);
  tokens_ += o.tokens_;
}

std::size_t KVStream::nbytes() const {
  std::size_t b = exact_ ? exact_->nbytes()
                         : sketch_->nbytes() + sizeof(double) * static_cast<std::size_t>(normalizer_state_.size());
  if (probes_) b += probes_->nbytes();
  if (output_) b += output_->nbytes();
  return b;
}

std::string KVStream::repr() const {
  return message(
      "KVStream(d=", d(), ", dv=", dv_, ", degree=", degree(), ", kernel='", feature_kernel_name(kernel()),
      "', scale=", scale(), ", t=", dim(), ", state='", state_kind_name(state_kind_), "'",
      sketch_ ? message(", sketch=", sketch_->name(), "(s=", sketch_->s(), ", seed=", sketch_->seed(), ")") : "",
      threads_ != 1 ? message(", threads=", threads_) : "", ", tokens_seen=", tokens_, ", queries=", queries_,
      probes_ ? message(", probes=", probes_->positions.size()) : "",
      output_ ? message(", output_sketch=(n=", output_->n(), ", k=", output_->k(), ")") : "", ", nbytes=", nbytes(),
      ")");
}

std::vector<std::uint8_t> KVStream::to_bytes() const {
  ByteWriter w(ObjectKind::kv_stream);
  w.u8(static_cast<std::uint8_t>(state_kind_));
  w.u64(first_);
  w.u64(tokens_);
  w.u64(queries_);
  if (exact_) {
    exact_->write_payload(w);
  } else {
    detail::StateParameters::of(features_, dv_).write_payload(w);
    w.f64_array(normalizer_state_.data(), static_cast<std::size_t>(normalizer_state_.size()));
    w.u8(static_cast<std::uint8_t>(sketch_->distribution()));
    w.blob(sketch_->to_bytes());
  }
  detail::write_stream_extras(w, probes_, output_);
  return w.finish();
}

KVStream KVStream::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::kv_stream);
  const std::uint8_t kind = r.u8();
  r.check(kind <= 1, "state kind is not exact/sketched");
  const std::uint64_t first = r.u64(), tokens = r.u64(), queries = r.u64();
  r.check(first < (std::uint64_t{1} << 61) - 1, "first_token out of range");
  std::optional<KVStream> kv;
  if (kind == 0) {
    PolyPrefixState st = PolyPrefixState::read_payload(r);
    r.check(st.tokens() == tokens, "token counts disagree");
    kv.emplace(st.d(), st.dv(), st.degree(), st.scale(), StateKind::exact, SketchOptions{}, first,
               st.features().max_bytes(), st.kernel());
    kv->exact_ = std::move(st);
  } else {
    const auto [d, dv, degree, kernel_byte, scale, max_bytes] = detail::StateParameters::read_payload(r);
    r.check(d >= 1 && d <= (std::uint64_t{1} << 20) && dv >= 1 && dv <= (std::uint64_t{1} << 20) &&
                degree <= static_cast<std::uint64_t>(TaylorFeatures::max_degree) && scale > 0 && std::isfinite(scale),
            "state parameters out of range");
    r.check(kernel_byte <= 1, "state kernel is neither taylor (0) nor power (1)");
    const auto kernel = static_cast<FeatureKernel>(kernel_byte);
    r.check(kernel != FeatureKernel::power || degree % 2 == 0 || degree == 1,
            "power-kernel state with an odd degree > 1");
    const std::int64_t t = feature_dim(static_cast<Index>(d), static_cast<int>(degree), kernel);
    r.check(static_cast<long double>(t) * 8 <= static_cast<long double>(r.remaining()),
            "normalizer exceeds the payload");
    std::vector<double> normalizer_state;
    r.f64_array(normalizer_state, static_cast<std::uint64_t>(t));
    const std::uint8_t dist = r.u8();
    r.check(dist <= 1, "sketch distribution out of range");
    const std::vector<std::uint8_t> blob = r.blob();
    std::optional<DenseSketch> sk;
    try {
      if (dist == 0)
        sk.emplace(AMSSketch::from_bytes(blob.data(), blob.size()));
      else
        sk.emplace(GaussianSketch::from_bytes(blob.data(), blob.size()));
    } catch (const std::invalid_argument& e) {
      r.check(false, std::string("nested sketch: ") + e.what());
    }
    r.check(sk->columns() == t + static_cast<Index>(dv), "sketch columns do not match t + dv");
    SketchOptions opt{sk->distribution(), sk->s(), sk->seed()};
    try {
      kv.emplace(static_cast<Index>(d), static_cast<Index>(dv), static_cast<int>(degree), scale, StateKind::sketched,
                 opt, first, max_bytes, kernel);
    } catch (const std::invalid_argument& e) {
      r.check(false, std::string("state parameters rejected: ") + e.what());
    }
    kv->sketch_ = std::move(sk);
    kv->normalizer_state_ = Eigen::Map<const Eigen::VectorXd>(normalizer_state.data(), t);
    r.check(kv->normalizer_state_.allFinite(), "normalizer is not finite");
  }
  kv->tokens_ = tokens;
  kv->queries_ = queries;
  detail::read_stream_extras(r, kv->d(), kv->dv(), kv->scale(), queries, kv->probes_, kv->output_);
  r.finish();
  return std::move(*kv);
}

}  // namespace streamattn
