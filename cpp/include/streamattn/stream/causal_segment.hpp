// streamattn/stream/causal_segment.hpp — what a contiguous block of tokens does to a causal
// stream's state, as a value that composes associatively (docs/design.md §2.7).
//
// A causal stream's state after token j is S_j = e^{gamma_j} S_{j-1} + phi(k_j) (v_j, 1)^T
// (gamma = 0 ungated). A block of tokens [a, b) therefore acts on the state it receives as
//
//     S_out = e^{Lambda} S_in + S_block,   Lambda = gamma_a + ... + gamma_{b-1} (<= 0)
//
// with S_block the state the block produces from an empty state (its keys decayed to the block's
// end). A CausalSegment holds (S_block, Lambda) and the token range. Two adjacent segments A
// ([a, b)) and B ([b, c)) compose into the segment of [a, c):
//
//     A then B = (e^{Lambda_B} S_A + S_B, Lambda_A + Lambda_B)
//
// which is associative (both groupings give e^{L_B + L_C} S_A + e^{L_C} S_B + S_C), so the
// prefix states of many blocks are an exclusive scan over their segments: each block's segment
// is computed independently (in parallel), the scan costs one t x dv scale-and-add per block,
// and a CausalStream started from the segment of [0, a) (CausalStream::start_from) emits the rows
// of the block [a, b) exactly as a single stream over [0, b) would, up to rounding.
//
// Keys are absorbed chunk by chunk (`chunk` rows) as in CausalStream::prefill, so gate sums stay
// relative to each chunk's start; every factor is e^{<= 0}.
//
// Serialized payload (kind causal_segment): u64 chunk | u64 first_token | f64 log_decay |
// state block (PolyPrefixState::write_payload, whose token count is the segment's length).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/prefix_state.hpp"
#include "streamattn/core/common.hpp"

namespace streamattn {

class CausalSegment {
 public:
  /// An empty segment [first_token, first_token) of a stream with these parameters (those of
  /// CausalStream's constructor that the state depends on).
  CausalSegment(Index d, Index dv, int degree, std::optional<double> scale, std::uint64_t first_token = 0,
                Index chunk = kDefaultChunk, std::uint64_t max_bytes = 0, FeatureKernel kernel = FeatureKernel::taylor);

  Index d() const { return state_.d(); }
  Index dv() const { return state_.dv(); }
  int degree() const { return state_.degree(); }
  double scale() const { return state_.scale(); }
  FeatureKernel kernel() const { return state_.kernel(); }
  Index dim() const { return state_.dim(); }
  Index chunk() const { return chunk_; }
  /// Global position of the segment's first token.
  std::uint64_t first_token() const { return first_; }
  /// Tokens in the segment.
  std::uint64_t tokens() const { return state_.tokens(); }
  /// One past the segment's last token: first_token() + tokens().
  std::uint64_t end_token() const { return first_ + state_.tokens(); }
  /// Lambda: the sum of the segment's log-gates (0 ungated; <= 0).
  double log_decay() const { return log_decay_; }
  /// S_block: the state the segment produces from an empty state.
  const PolyPrefixState& state() const { return state_; }

  /// Appends keys (n x d) and values (n x dv) at the segment's end; with log_gate (n entries,
  /// finite, <= 0) the state decays as in CausalStream. Checked like CausalStream::prefill: a
  /// rejected call changes nothing.
  void absorb(const MatrixRef<float>& K, const MatrixRef<float>& V);
  void absorb(const MatrixRef<double>& K, const MatrixRef<double>& V);
  void absorb(const MatrixRef<float>& K, const MatrixRef<float>& V, const VectorRef<double>& log_gate);
  void absorb(const MatrixRef<double>& K, const MatrixRef<double>& V, const VectorRef<double>& log_gate);

  /// This segment followed by `next`, which must start where this one ends and have the same
  /// d, dv, degree, scale and kernel: (e^{Lambda_next} S + S_next, Lambda + Lambda_next).
  void append(const CausalSegment& next);
  /// The composition as a new segment (this one unchanged).
  CausalSegment then(const CausalSegment& next) const;

  /// Bytes of the state.
  std::size_t nbytes() const { return state_.nbytes(); }
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static CausalSegment from_bytes(const std::uint8_t* data, std::size_t n);

 private:
  template <class T>
  void absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate);

  PolyPrefixState state_;
  Index chunk_;
  std::uint64_t first_;
  double log_decay_ = 0.0;
  // Scratch (not state).
  PolyWorkspace ws_;
  CausalChunker chunker_;
};

}  // namespace streamattn
