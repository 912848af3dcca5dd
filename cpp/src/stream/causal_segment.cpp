#include "streamattn/stream/causal_segment.hpp"

#include <algorithm>
#include <cmath>

#include "streamattn/core/serialize.hpp"
#include "streamattn/core/validate.hpp"

namespace streamattn {

CausalSegment::CausalSegment(Index d, Index dv, int degree, std::optional<double> scale, std::uint64_t first_token,
                             Index chunk, std::uint64_t max_bytes, FeatureKernel kernel)
    : state_(checked_range(d, 1, limits::max_stream_dim, "d"), checked_range(dv, 1, limits::max_stream_dim, "dv"),
             degree, scale, max_bytes, kernel),
      chunk_(chunk), first_(first_token) {
  chunk_ = resolve_chunk(chunk, state_.dim());
  require(first_token <= limits::max_position, "first_token must be in [0, ", limits::max_position, "], got ",
          first_token);
}

template <class T>
void CausalSegment::absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate) {
  detail::require_stream_keys(K, V, d(), dv(), scale());
  if (gate) {
    require(gate->size() == K.rows(), "log_gate must have one entry per row (", K.rows(), "), got ", gate->size());
    detail::require_log_gate(*gate);
  }
  const std::uint64_t n = static_cast<std::uint64_t>(K.rows());
  require(n <= limits::max_position - end_token(), "the segment would end past token ", limits::max_position);
  if (n == 0) return;
  if (!gate) {
    state_.absorb_rows(K, V, ws_);
    return;
  }
  // Chunk by chunk, as CausalStream::prefill: decays relative to each chunk's start stay small.
  double total = 0.0;
  for (Index a = 0; a < K.rows(); a += chunk_) {
    const Index r = std::min(chunk_, K.rows() - a);
    chunker_.cumulative_gates(*gate, a, r, chunk_);
    chunker_.absorb(state_, MatrixRef<T>(K.middleRows(a, r)), MatrixRef<T>(V.middleRows(a, r)), true, ws_);
    for (Index m = 0; m < r; ++m) total += (*gate)[a + m];
  }
  log_decay_ += total;
}

void CausalSegment::absorb(const MatrixRef<float>& K, const MatrixRef<float>& V) { absorb_impl(K, V, nullptr); }
void CausalSegment::absorb(const MatrixRef<double>& K, const MatrixRef<double>& V) { absorb_impl(K, V, nullptr); }
void CausalSegment::absorb(const MatrixRef<float>& K, const MatrixRef<float>& V, const VectorRef<double>& log_gate) {
  absorb_impl(K, V, &log_gate);
}
void CausalSegment::absorb(const MatrixRef<double>& K, const MatrixRef<double>& V, const VectorRef<double>& log_gate) {
  absorb_impl(K, V, &log_gate);
}

void CausalSegment::append(const CausalSegment& next) {
  require(next.d() == d() && next.dv() == dv() && next.degree() == degree() && next.scale() == scale() &&
              next.kernel() == kernel(),
          "cannot append ", next.repr(), " to ", repr(), ": d, dv, degree, scale and kernel must agree");
  require(next.first_token() == end_token(), "cannot append a segment starting at token ", next.first_token(),
          " to one ending at token ", end_token(), ": segments compose only when adjacent");
  state_.decay(std::exp(next.log_decay_));
  state_.merge(next.state_);
  log_decay_ += next.log_decay_;
}

CausalSegment CausalSegment::then(const CausalSegment& next) const {
  CausalSegment out(*this);
  out.append(next);
  return out;
}

std::string CausalSegment::repr() const {
  return message("CausalSegment(d=", d(), ", dv=", dv(), ", degree=", degree(), ", kernel='",
                 feature_kernel_name(kernel()), "', scale=", scale(), ", t=", dim(), ", tokens=[", first_, ", ",
                 end_token(), "), log_decay=", log_decay_, ", nbytes=", nbytes(), ")");
}

std::vector<std::uint8_t> CausalSegment::to_bytes() const {
  ByteWriter w(ObjectKind::causal_segment);
  w.u64(static_cast<std::uint64_t>(chunk_));
  w.u64(first_);
  w.f64(log_decay_);
  state_.write_payload(w);
  return w.finish();
}

CausalSegment CausalSegment::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::causal_segment);
  const std::uint64_t chunk = r.u64(), first = r.u64();
  const double log_decay = r.f64();
  r.check(chunk >= 1 && chunk <= static_cast<std::uint64_t>(kMaxChunk), "chunk out of range");
  r.check(first <= limits::max_position, "first token out of range");
  r.check(log_decay <= 0.0, "log_decay is not <= 0");
  PolyPrefixState st = PolyPrefixState::read_payload(r);
  r.check(st.tokens() <= limits::max_position - first, "segment ends past the largest position");
  r.finish();
  CausalSegment seg(st.d(), st.dv(), st.degree(), st.scale(), first, static_cast<Index>(chunk),
                    st.features().max_bytes(), st.kernel());
  seg.state_ = std::move(st);
  seg.log_decay_ = log_decay;
  return seg;
}

}  // namespace streamattn
