// streamattn/stream/causal_stream.hpp — causal one-pass streaming attention (docs/design.md §2.4, mode 1).
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
// Kernel and normalizer (poly_attention.hpp): kernel = taylor (P_g above) or power ((c q.k)^g,
// g even, with the matching intra-chunk kernel x^g); out_j = num_j / (den_j + eps), or num_j
// alone with normalize = false.
//
// Gating: update(Q, K, V, log_gate) with log_gate[l] = gamma_l <= 0 (finite) gives key l the
// weight kappa(q_j, k_l) exp(gamma_{l+1} + ... + gamma_j) for query j, in the numerator and the
// normalizer alike: the state follows S_j = e^{gamma_j} S_{j-1} + phi(k_j) v_j^T. Chunked form,
// still GEMM-shaped: with G_m the cumulative sum of the gates from the chunk's first row to its
// row m (relative to the chunk start, so |G| stays small however long the stream),
//   inter-chunk part of row m:  e^{G_m} phi(q_m)^T S_prev
//   intra-chunk weight (m, l):  kappa(q_m, k_l) e^{G_m - G_l},  l <= m
//   state after the chunk:      e^{G_last} S_prev + sum_l e^{G_last - G_l} phi(k_l) v_l^T
// Every factor is e^{<= 0}: nothing overflows, and a factor underflows only when its weight is
// below 1e-308 of the current one. The chunk's total decay scales the state before the chunk's
// keys are absorbed; 10^6 tokens of gamma = -1e-3 keep 1e-9 relative accuracy (tests).
//
// Decode: step(q, k, v, log_gate) processes one token in O(t dv) in one sweep over M (decay,
// rank-one update, read-out), into workspace buffers sized at the first call: no allocation
// per call (without probes; a stream with probes runs its step through update()). The step
// follows compute like update(): on the float32 path the features and the value are rounded to
// float32, the rank-one term is formed in float32 and added into the float64 state, and the
// read-out phi(q)^T M runs in float32; the denominator stays float64.
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
// even Taylor degree, or eps > 0, or normalize = false, a checked call then cannot fail; with an
// odd degree, or the power kernel at eps = 0 (a row whose scores are all 0), a normalizer <= 0
// makes the call fail and the stream is restored to what it was before the call.
// Gates are refused together with probes (the probes' exact reference is ungated softmax).
//
// Serialized payload (kind causal_stream): u64 chunk | u64 tokens | state block
// (PolyPrefixState::write_payload: u64 d | u64 dv | u64 degree | u8 kernel | f64 scale | u64 max_bytes |
// u64 tokens | f64[t*dv] M | f64[t] s) | f64 eps | u8 normalize | u8 has_probes [probe block] |
// u8 has_output [SparseRecoveryMatrix payload]. Probe block: OnlineSoftmax state, then
// u64 p | i64[p] positions | u8[p] evaluated | f64[p*dv] approximations.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/online_softmax.hpp"
#include "streamattn/attention/prefix_state.hpp"
#include "streamattn/core/common.hpp"
#include "streamattn/core/thread_pool.hpp"
#include "streamattn/recovery/sparse_recovery.hpp"
#include "streamattn/stream/certificate.hpp"

namespace streamattn {

class CausalSegment;

/// Probe queries of a stream: exact accumulators plus the approximations recorded so far.
struct ProbeSet {
  OnlineSoftmax exact;
  std::vector<std::int64_t> positions;  ///< -1 for keys-first probes (all keys)
  std::vector<std::uint8_t> evaluated;  ///< approximation recorded?
  RowMatrix<double> approx;             ///< p x dv

  void write_payload(ByteWriter& w) const;
  static ProbeSet read_payload(ByteReader& r, Index d, Index dv, double scale);
  Certificate certificate() const;
  /// Bytes of the exact accumulators, the approximations and their flags.
  std::size_t nbytes() const;
};

namespace detail {
/// Checks threads in [0, limits::max_threads] and resolves 0 to the hardware concurrency.
int resolve_threads(int threads);
/// The optional parts that end a stream's payload (CausalStream's and KVStream's):
/// u8 has_probes [probe block] | u8 has_output [SparseRecoveryMatrix payload].
void write_stream_extras(ByteWriter& w, const std::optional<ProbeSet>& probes,
                         const std::optional<SparseRecoveryMatrix>& output);
/// Reads them back for a stream of these d, dv and scale whose output sketch has had `rows` rows
/// added (it must have dv columns and n >= rows).
void read_stream_extras(ByteReader& r, Index d, Index dv, double scale, std::uint64_t rows,
                        std::optional<ProbeSet>& probes, std::optional<SparseRecoveryMatrix>& output);
}  // namespace detail

class CausalStream {
 public:
  /// Chunk limits and default (attention/causal_chunk.hpp).
  static constexpr Index max_chunk = kMaxChunk;
  static constexpr Index default_chunk = kDefaultChunk;
  /// Default threads of one stream: 1 (measured: bench/bench_threads.py, docs/design.md
  /// "Threads"; a second thread pays only on a free core and for large t * dv).
  static constexpr int default_threads = 1;

  /// @param d, dv     key/query and value dimensions (>= 1)
  /// @param degree    Taylor degree g (0..8; even keeps the normalizer positive)
  /// @param scale     c > 0 (nullopt: 1/sqrt(d), the attention default)
  /// @param chunk     rows per intra-chunk block (1 .. max_chunk)
  /// @param max_bytes TaylorFeatures memory limit (0 = default)
  /// @param kernel    taylor or power (even degree)
  /// @param norm      eps added to each denominator (>= 0), or normalize = false
  /// @param compute   the products' arithmetic (prefix_state.hpp, ComputeDtype): input = the
  ///                  inputs' dtype; the state is float64 either way
  /// @param threads   threads the chunk products are split over (1 .. limits::max_threads, or
  ///                  0 = std::thread::hardware_concurrency()); results are bit-identical for
  ///                  every value (docs/design.md, "Threads")
  CausalStream(Index d, Index dv, int degree, std::optional<double> scale, Index chunk = default_chunk,
               std::uint64_t max_bytes = 0, FeatureKernel kernel = FeatureKernel::taylor, Normalizer norm = {},
               ComputeDtype compute = ComputeDtype::input, int threads = default_threads);

  Index d() const { return state_.d(); }
  Index dv() const { return state_.dv(); }
  int degree() const { return state_.degree(); }
  double scale() const { return state_.scale(); }
  FeatureKernel kernel() const { return state_.kernel(); }
  const Normalizer& normalizer() const { return normalizer_; }
  Index chunk() const { return chunk_; }
  /// The products' arithmetic; not part of the state (not serialized: from_bytes gives input).
  ComputeDtype compute() const { return compute_; }
  void set_compute(ComputeDtype compute) { compute_ = compute; }
  /// Threads of the chunk products; not part of the state (not serialized: from_bytes gives
  /// default_threads). set_threads starts a new pool (0 = hardware concurrency).
  int threads() const { return threads_; }
  void set_threads(int threads);
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

  /// Continues the stream that `prefix` (a segment starting at token 0, causal_segment.hpp)
  /// describes: the state becomes the prefix's and the stream stands at token
  /// prefix.end_token(), so the next rows are those a single stream would see after the prefix.
  /// Only before the first update and without probes (their exact sums would miss the prefix);
  /// d, dv, degree, scale and kernel must agree. An output sketch then gets rows from
  /// prefix.end_token() on.
  void start_from(const CausalSegment& prefix);

  /// Processes the next rows; if out != nullptr it receives the n x dv output rows (float64).
  /// Checks everything first: a rejected call leaves the stream unchanged.
  void update(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
              RowMatrix<double>* out = nullptr);
  void update(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
              RowMatrix<double>* out = nullptr);
  /// Same, gated: log_gate has one entry per row, each finite and <= 0 (see above).
  void update(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
              const VectorRef<double>& log_gate, RowMatrix<double>* out = nullptr);
  void update(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
              const VectorRef<double>& log_gate, RowMatrix<double>* out = nullptr);
  /// Same, writing the n x dv output rows into `out` (any row stride; checked) without
  /// allocating them; log_gate may be null. A rejected call leaves the stream unchanged, but
  /// `out` may have been partly written.
  void update_into(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                   const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>> out);
  void update_into(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                   const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>> out);
  /// Same, float32 inputs with float32 output rows: each chunk's rows are rounded once into
  /// `out`, with no n x dv float64 array in between.
  void update_into(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                   const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<float>> out);

  /// One token: out (dv entries) = the output row of (q, k, v), the stream advanced by one.
  /// log_gate: this token's log-decay (finite, <= 0; 0 = none). Checked like update(); O(t dv),
  /// no allocation after the first call (without probes).
  void step(const VectorRef<float>& q, const VectorRef<float>& k, const VectorRef<float>& v,
            Eigen::Ref<Eigen::VectorXd> out, double log_gate = 0.0);
  void step(const VectorRef<double>& q, const VectorRef<double>& k, const VectorRef<double>& v,
            Eigen::Ref<Eigen::VectorXd> out, double log_gate = 0.0);
  /// The denominator (phi(q).s + eps) that step(q, k, ., ., log_gate) would divide by, without
  /// changing the stream: lets a caller holding several streams refuse a step before any of
  /// them changes. q and k must have d entries (checked); log_gate is not checked.
  double step_denominator(const VectorRef<float>& q, const VectorRef<float>& k, double log_gate);
  double step_denominator(const VectorRef<double>& q, const VectorRef<double>& k, double log_gate);

  /// Adds keys and values whose own output rows are not wanted (a context prefix): they are
  /// absorbed into the state (and the probes' exact sums) and advance the stream position; the
  /// output sketch gets no rows for them. Checked like update().
  void prefill(const MatrixRef<float>& K, const MatrixRef<float>& V);
  void prefill(const MatrixRef<double>& K, const MatrixRef<double>& V);
  /// Same, gated (one log-decay per row, finite, <= 0).
  void prefill(const MatrixRef<float>& K, const MatrixRef<float>& V, const VectorRef<double>& log_gate);
  void prefill(const MatrixRef<double>& K, const MatrixRef<double>& V, const VectorRef<double>& log_gate);

  /// Replaces the state by M (t x dv) and s (t): continue from a state saved earlier (the
  /// `initial_state` of linear-attention APIs). Checked first (shapes, finite); refused on a
  /// stream with probes or an output sketch, whose exact references could not follow it.
  /// tokens: the stream position the state stands at (>= 1); nullopt keeps tokens_seen(), or
  /// makes it 1 on a new stream (the position matters for nothing but tokens_seen()).
  void set_state(const MatrixRef<double>& M, const VectorRef<double>& s,
                 std::optional<std::uint64_t> tokens = std::nullopt);

  /// Bytes of the state, probes and output sketch (the memory that does not depend on n).
  std::size_t nbytes() const;
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static CausalStream from_bytes(const std::uint8_t* data, std::size_t n);

 private:
  friend class MultiHeadCausalStream;
  /// values_checked: the caller has already run the finite/bounded checks on Q, K, V and the
  /// gate (a multi-head stream checks each kv head once, not once per query head).
  template <class T, class O = double>
  void update_impl(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate,
                   Eigen::Ref<RowMatrix<O>>* out, bool values_checked = false);
  void update_into_checked(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                           const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>>* out);
  void update_into_checked(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                           const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<double>>* out);
  void update_into_checked(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                           const VectorRef<double>* log_gate, Eigen::Ref<RowMatrix<float>>* out);
  template <class T>
  void update_rows(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate,
                   RowMatrix<double>* out);
  template <class T>
  void prefill_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const VectorRef<double>* gate);
  template <class T>
  void step_impl(const VectorRef<T>& q, const VectorRef<T>& k, const VectorRef<T>& v, Eigen::Ref<Eigen::VectorXd> out,
                 double log_gate);
  template <class T>
  double prepare_step(const MatrixRef<T>& q, const MatrixRef<T>& k, double f);
  void check_gate(const VectorRef<double>& gate, Index n, bool values = true) const;
  /// Can a checked update still fail (a normalizer <= 0)? Then it keeps a backup.
  bool may_fail() const;
  /// The probes standing in the chunk of r rows at pos0 (before its keys are absorbed).
  template <class T>
  void record_probes(std::uint64_t pos0, Index r, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc);
  template <class T>
  void check_keys(const MatrixRef<T>& K, const MatrixRef<T>& V, bool values = true) const;
  template <class T>
  void check_block(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V, bool values = true) const;

  PolyPrefixState state_;
  Normalizer normalizer_;
  Index chunk_;
  ComputeDtype compute_ = ComputeDtype::input;
  std::uint64_t max_bytes_;
  std::uint64_t tokens_ = 0;
  std::optional<ProbeSet> probes_;
  std::optional<SparseRecoveryMatrix> output_;
  // Scratch (not state): reused across calls so steady-state updates do not allocate.
  PolyWorkspace ws_;  // ws_.pool is pool_.get() (or a multi-head stream's pool)
  CausalChunker chunker_;
  int threads_ = 1;
  std::shared_ptr<ThreadPool> pool_;  // null for 1 thread; shared by copies of the stream
  Eigen::VectorXd step_phi_q_, step_phi_k_, step_v_;
  Eigen::VectorXf step_q32_, step_k32_, step_v32_, step_num32_;  // the float32 step
};

}  // namespace streamattn
