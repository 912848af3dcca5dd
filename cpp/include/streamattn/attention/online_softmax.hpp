// streamattn/attention/online_softmax.hpp — exact softmax attention of a few fixed queries against a
// stream of keys and values, in O(p * dv) memory: the engine of the probe certificate
// (docs/design.md §2.4).
//
// For probe i with query q_i and key limit L_i (the probe attends keys j <= L_i; L_i = -1
// means no limit), the running state is
//     m_i = max_j c q_i.k_j,   l_i = sum_j exp(c q_i.k_j - m_i),   o_i = sum_j exp(c q_i.k_j - m_i) v_j
// over the keys seen so far; a new block rescales the old sums by exp(m_old - m_new) before
// adding its own, so scores of any magnitude (+-1000 and beyond) neither overflow nor underflow.
// The exact attention output of probe i is o_i / l_i.
#pragma once

#include <cstdint>
#include <vector>

#include "streamattn/core/common.hpp"
#include "streamattn/core/serialize.hpp"

namespace streamattn {

class OnlineSoftmax {
 public:
  OnlineSoftmax() = default;
  /// @param queries  p x d probe queries
  /// @param limits   p key limits (attend keys j <= limit), or empty for "all keys"; -1 = all keys
  /// @param scale    c > 0
  /// @param dv       value dimension
  OnlineSoftmax(RowMatrix<double> queries, std::vector<std::int64_t> limits, double scale, Index dv);

  Index probes() const { return queries_.rows(); }
  Index d() const { return queries_.cols(); }
  Index dv() const { return dv_; }
  double scale() const { return scale_; }
  const RowMatrix<double>& queries() const { return queries_; }
  const std::vector<std::int64_t>& limits() const { return limits_; }

  /// Absorbs keys key_start .. key_start+K.rows()-1 (kernel: no validation).
  void absorb(std::uint64_t key_start, const MatrixRef<float>& K, const MatrixRef<float>& V);
  void absorb(std::uint64_t key_start, const MatrixRef<double>& K, const MatrixRef<double>& V);

  /// p x dv exact outputs; a probe that has seen no key gets a row of NaN.
  RowMatrix<double> result() const;
  /// Number of keys each probe has seen.
  const std::vector<std::uint64_t>& keys_seen() const { return seen_; }

  /// Combines the state of another accumulator over other keys, for the same probes (same
  /// queries, limits and scale): the result is the state over both key sets.
  void merge(const OnlineSoftmax& other);

  std::size_t nbytes() const;
  /// Appends the probes' queries, limits, scale and running sums to a payload.
  void write_payload(ByteWriter& w) const;
  /// Reads what write_payload() wrote; every size and value is checked (std::invalid_argument).
  static OnlineSoftmax read_payload(ByteReader& r);

 private:
  template <class T>
  void absorb_impl(std::uint64_t key_start, const MatrixRef<T>& K, const MatrixRef<T>& V);

  RowMatrix<double> queries_;
  std::vector<std::int64_t> limits_;
  double scale_ = 1.0;
  Index dv_ = 0;
  std::vector<double> max_, sum_;
  std::vector<std::uint64_t> seen_;
  RowMatrix<double> acc_;
};

}  // namespace streamattn
