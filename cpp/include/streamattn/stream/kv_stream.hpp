// streamattn/stream/kv_stream.hpp — keys-first streaming attention (docs/design.md §2.4, modes 2 and 3).
//
// The feature kernel (taylor or power, taylor_features.hpp) is a constructor parameter, as for
// CausalStream; the serialized state records it.
//
// Keys and values are streamed into a state with add(K, V); queries are answered at any time
// from the state with query(Q), each in O(t * dv) whatever the number of keys: the
// constant-memory replacement of a KV cache in a decode loop, and bidirectional/cross attention
// in one pass over the keys.
//
// Two states:
//  * exact:    M = U2^T V (t x dv) and s = U2^T 1 (t), float64 (the polynomial method's state).
//  * sketched: the paper-faithful layout of Theorem 1.3: one implicit sketch Psi (s x n, AMS or
//              Gaussian) applied to [U2 | V], giving Psi U2 (s x t) and Psi V (s x dv), with
//              U2^T V ~ (Psi U2)^T (Psi V) (approximate matrix product, Frobenius error
//              ~ sqrt(2/s) ||U2||_F ||V||_F). The normalizer s = U2^T 1 is kept exact (t floats):
//              a sketched normalizer could vanish or change sign. It is larger than the exact
//              state (s*(t+dv) vs t*dv numbers) and adds sketching error; it exists so the
//              paper's construction can be measured against the exact state.
//
// Key positions: key j of this stream is global token first_token + j; the sketched state uses
// the position as the column of Psi. Two streams merge into the state of the concatenation of
// their keys when they have the same parameters (and, sketched, the same seed and disjoint
// position ranges).
//
// Probes (keys first): queries given in advance attend every key; their exact outputs are
// accumulated during add(), and certificate() compares them with the state's answer.
// Output sketch: query outputs, in the order queries are answered, are rows 0, 1, ... of a
// SparseRecoveryMatrix (n rows, dv columns), decoded by sparse_columns().
//
// Threads: threads > 1 splits the exact state's products (featurizing the keys and queries,
// phi(K)^T V, phi(Q) M) over a persistent pool of that many threads, as in CausalStream: every
// entry is computed by one thread in the same order, so the state and the answers are
// bit-identical for every thread count. The sketched state's products run on the calling thread.
//
// Serialized payload (kind kv_stream): u8 state | u64 first_token | u64 tokens | u64 queries |
// exact: PolyPrefixState | sketched: u64 d | u64 dv | u64 degree | u8 kernel | f64 scale | u64 max_bytes |
// f64[t] s | u8 distribution | blob (the dense sketch's framed bytes) | u8 has_probes
// [probe block] | u8 has_output [SparseRecoveryMatrix payload].
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/sketch/dense_sketch.hpp"
#include "streamattn/stream/causal_stream.hpp"

namespace streamattn {

enum class StateKind : std::uint8_t { exact = 0, sketched = 1 };

/// "exact" / "sketched" -> StateKind; std::invalid_argument otherwise.
StateKind parse_state_kind(const std::string& name);
const char* state_kind_name(StateKind k);

/// The sketch of a sketched KVStream state.
struct StateSketchOptions {
  DenseSketch::Distribution distribution = DenseSketch::Distribution::ams;
  Index size = 256;  ///< s, rows of Psi
  std::uint64_t seed = 0;
};

class KVStream {
 public:
  using SketchOptions = StateSketchOptions;

  KVStream(Index d, Index dv, int degree, std::optional<double> scale, StateKind state = StateKind::exact,
           SketchOptions sketch = {}, std::uint64_t first_token = 0, std::uint64_t max_bytes = 0,
           FeatureKernel kernel = FeatureKernel::taylor, int threads = CausalStream::default_threads);

  Index d() const { return features_.d(); }
  Index dv() const { return dv_; }
  int degree() const { return features_.degree(); }
  double scale() const { return features_.scale(); }
  FeatureKernel kernel() const { return features_.kernel(); }
  Index dim() const { return features_.dim(); }
  StateKind state_kind() const { return state_kind_; }
  std::uint64_t first_token() const { return first_; }
  std::uint64_t tokens_seen() const { return tokens_; }
  /// The exact state (throws for the sketched state).
  const PolyPrefixState& exact_state() const;
  /// s = U2^T 1, exact in both states.
  const Eigen::VectorXd& normalizer_state() const;
  /// U2^T V (exact state), or its estimate (Psi U2)^T (Psi V) (sketched state): t x dv, a copy.
  RowMatrix<double> numerator_state() const;
  std::uint64_t queries_answered() const { return queries_; }
  /// The sketch of the sketched state (throws for the exact state).
  const DenseSketch& sketch() const;
  /// Threads of the exact state's products (1 .. limits::max_threads; 0 at construction or in
  /// set_threads = the hardware concurrency); not part of the state (from_bytes gives 1).
  int threads() const { return threads_; }
  void set_threads(int threads);

  /// Streams keys and values into the state (and into the probes' exact accumulators).
  void add(const MatrixRef<float>& K, const MatrixRef<float>& V);
  void add(const MatrixRef<double>& K, const MatrixRef<double>& V);

  /// Answers queries from the current state (n x dv); with an output sketch, the rows are also
  /// added to it. Throws before any key was added.
  RowMatrix<double> query(const MatrixRef<float>& Q);
  RowMatrix<double> query(const MatrixRef<double>& Q);

  /// Probe queries (p x d) attending every key; only before the first add().
  void set_probes(const MatrixRef<double>& queries);
  bool has_probes() const { return probes_.has_value(); }
  /// Evaluates the approximation for the probes now and compares with their exact outputs.
  Certificate certificate() const;

  void set_output_sketch(SparseRecoveryMatrix sketch);
  bool has_output_sketch() const { return output_.has_value(); }
  const SparseRecoveryMatrix& output_sketch() const;
  std::vector<SparseVector> sparse_columns(DecodeMethod method = DecodeMethod::standard) const;

  /// Adds the keys of `other` (see above); refuses incompatible parameters, and streams that
  /// already answered queries.
  void merge(const KVStream& other);

  std::size_t nbytes() const;
  std::string repr() const;
  std::vector<std::uint8_t> to_bytes() const;
  static KVStream from_bytes(const std::uint8_t* data, std::size_t n);

 private:
  template <class T>
  void add_impl(const MatrixRef<T>& K, const MatrixRef<T>& V);
  template <class T>
  RowMatrix<double> query_impl(const MatrixRef<T>& Q);
  template <class T>
  RowMatrix<double> answer(const MatrixRef<T>& Q, PolyWorkspace& ws, const RowMatrix<double>* numerator) const;
  RowMatrix<double> compute_sketched_numerator() const;

  StateKind state_kind_;
  TaylorFeatures features_;
  Index dv_;
  std::optional<PolyPrefixState> exact_;  // exact state: M, s
  std::optional<DenseSketch> sketch_;     // sketched state: Psi [U2 | V] ...
  Eigen::VectorXd normalizer_state_;      // ... and the exact normalizer s
  std::uint64_t first_, tokens_ = 0;
  std::uint64_t queries_ = 0;
  std::optional<ProbeSet> probes_;
  std::optional<SparseRecoveryMatrix> output_;
  PolyWorkspace ws_;  // scratch of add() and query(); ws_.pool is pool_.get()
  int threads_ = 1;
  std::shared_ptr<ThreadPool> pool_;  // null for 1 thread; shared by copies of the stream
  // (Psi U2)^T (Psi V) of the sketched state, made by the first query() after an add(). const
  // methods (certificate) only read it, so they may run concurrently.
  std::optional<RowMatrix<double>> cached_numerator_;
};

}  // namespace streamattn
