// streamattn/causal_stream.hpp — causal one-pass streaming attention (DESIGN 2.4, mode 1).
//
// Rows (q_j, k_j, v_j) arrive in blocks of any size; row j attends keys l <= j. The state is the
// prefix sum of the polynomial method (poly_attention.hpp): M = U2^T V (t x dv) and
// s = U2^T 1 (t), float64, so memory never depends on how many rows have passed and every
// output row is final as soon as its block is processed:
//
//     out_j = (phi(q_j)^T M_<c + sum_{c0 <= l <= j} P_g(c q_j.k_l) v_l)
//           / (phi(q_j)^T s_<c + sum_{c0 <= l <= j} P_g(c q_j.k_l))
//
// computed chunk by chunk (`chunk` rows): the inter-chunk part through the state, the intra-
// chunk part directly in O(chunk^2 d), then the chunk's keys are absorbed. Chunks start at each
// block's first row, so splitting a stream into different blocks changes only the rounding
// (tests: <= 1e-12 relative), never the mathematics.
//
// Optional, set before the first update:
//  * probes: a few queries given in advance, each standing at a stream position; the stream
//    accumulates their exact softmax outputs over keys <= position (OnlineSoftmax) and records
//    its own approximation when it reaches the position; certificate() compares them.
//  * an output sketch (SparseRecoveryMatrix over n rows x dv columns): every output row j is
//    added to it as row j, so each output column can be decoded as a k-sparse vector at the end
//    (the paper's output) without the n x dv output ever being stored.
//
// Limits: inputs are finite and, so that no sum can overflow, every row has c*|q|^2 <= 1e30,
// c*|k|^2 <= 1e30 and |v|_max <= 1e30 (far outside the method's useful range anyway). With an
// even degree a checked call then cannot fail; with an odd degree a normalizer <= 0 makes the
// call fail and the state is restored to what it was before the call.
//
// Serialized payload (kind causal_stream): u64 d | u64 dv | u64 degree | f64 scale | u64 chunk |
// u64 max_bytes | u64 tokens | f64[t*dv] M | f64[t] s | u8 has_probes [probe block] |
// u8 has_output [SparseRecoveryMatrix payload]. Probe block: OnlineSoftmax state, then
// u64 p | i64[p] positions | u8[p] evaluated | f64[p*dv] approximations.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/certificate.hpp"
#include "streamattn/common.hpp"
#include "streamattn/online_softmax.hpp"
#include "streamattn/poly_attention.hpp"
#include "streamattn/sparse_recovery.hpp"

namespace streamattn {

/// Probe queries of a stream: exact accumulators plus the approximations recorded so far.
struct ProbeSet {
  OnlineSoftmax exact;
  std::vector<std::int64_t> positions;  ///< -1 for keys-first probes (all keys)
  std::vector<std::uint8_t> evaluated;  ///< approximation recorded?
  RowMatrix<double> approx;             ///< p x dv

  void write(ByteWriter& w) const;
  static ProbeSet read(ByteReader& r, Index d, Index dv, double scale);
  Certificate certificate() const;
};

class CausalStream {
 public:
  /// Largest chunk: the intra-chunk scores are a chunk x chunk float64 scratch matrix.
  static constexpr Index max_chunk = 4096;

  /// @param d, dv     key/query and value dimensions (>= 1)
  /// @param degree    Taylor degree g (0..8; even keeps the normalizer positive)
  /// @param scale     c > 0 (attention uses 1/sqrt(d))
  /// @param chunk     rows per intra-chunk block (1 .. max_chunk)
  /// @param max_bytes TaylorFeatures memory limit (0 = default)
  CausalStream(Index d, Index dv, int degree, double scale, Index chunk = 256, std::uint64_t max_bytes = 0);

  Index d() const { return state_.d(); }
  Index dv() const { return state_.dv(); }
  int degree() const { return state_.degree(); }
  double scale() const { return state_.scale(); }
  Index chunk() const { return chunk_; }
  Index dim() const { return state_.dim(); }
  std::uint64_t tokens_seen() const { return tokens_; }
  const PolyPrefixState& state() const { return state_; }

  /// Probe queries (p x d) at stream positions (>= 0, and >= tokens_seen()). Only before the
  /// first update.
  void set_probes(const MatrixRef<double>& queries, const std::vector<std::int64_t>& positions);
  bool has_probes() const { return probes_.has_value(); }
  /// Measured error on the probes evaluated so far.
  Certificate certificate() const;

  /// Output rows are also added to `sketch` (n rows, dv columns). Only before the first update.
  void set_output_sketch(SparseRecoveryMatrix sketch);
  bool has_output_sketch() const { return output_.has_value(); }
  const SparseRecoveryMatrix& output_sketch() const;
  /// Decodes every output column as a k-sparse vector of length n.
  std::vector<SparseVector> sparse_columns(DecodeMethod method = DecodeMethod::standard) const;

  /// Processes the next rows; if out != nullptr it receives the n x dv output rows (float64).
  /// Checks everything first: a rejected call leaves the stream unchanged.
  void update(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
              RowMatrix<double>* out = nullptr);
  void update(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
              RowMatrix<double>* out = nullptr);

  /// Adds keys and values whose own output rows are not wanted (a context prefix): they are
  /// absorbed into the state (and the probes' exact sums) and advance the stream position; the
  /// output sketch gets no rows for them. Checked like update().
  void prefill(const MatrixRef<float>& K, const MatrixRef<float>& V);
  void prefill(const MatrixRef<double>& K, const MatrixRef<double>& V);

  /// Bytes of the state, probes and output sketch (the memory that does not depend on n).
  std::size_t nbytes() const;
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static CausalStream from_bytes(const std::uint8_t* data, std::size_t n);

 private:
  template <class T>
  void update_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, RowMatrix<double>* out);
  template <class T>
  void prefill_impl(const MatrixRef<T>& K, const MatrixRef<T>& V);
  template <class T>
  void check_keys(const MatrixRef<T>& K, const MatrixRef<T>& V) const;
  template <class T>
  void check_block(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V) const;

  PolyPrefixState state_;
  Index chunk_;
  std::uint64_t max_bytes_;
  std::uint64_t tokens_ = 0;
  std::optional<ProbeSet> probes_;
  std::optional<SparseRecoveryMatrix> output_;
  // Scratch (not state): reused across calls so steady-state updates do not allocate.
  PolyWorkspace ws_;
  RowMatrix<double> num_, q_, k_, v_, s_, pnum_;
  Eigen::VectorXd den_, pden_;
};

namespace detail {
/// Throws unless every row's c*|x|^2 <= 1e30 (the overflow guard described above).
template <class T>
void require_bounded_rows(const MatrixRef<T>& X, double scale, const char* name);
template <class T>
void require_bounded_values(const MatrixRef<T>& V, const char* name);
}  // namespace detail

}  // namespace streamattn
