// streamattn/stream/multi_head_stream.hpp — causal streams for the heads of one attention layer, with
// grouped keys and values (GQA), run on threads.
//
// `heads` query heads share `kv_heads` key/value heads: query head h reads kv head
// h / (heads / kv_heads) (the convention of Hugging Face transformers and flash-linear-
// attention); heads must be a multiple of kv_heads. Every query head is a CausalStream with the
// same parameters, so a multi-head stream computes exactly (bit for bit) what `heads` separate
// streams fed with the matching K/V rows compute: each head runs the same code on its own data,
// and no arithmetic is shared between heads.
//
// What could be shared, and why it is not. The state (M, s) = (sum phi(k) v^T, sum phi(k)) is a
// function of the keys, values and gates only; the normalizer options act on the query side.
// So without gating, the query heads of one group hold identical states, and one state per kv
// head would save (heads - kv_heads) * t * (dv + 1) * 8 bytes and the repeated phi(K) GEMMs.
// With gating the gates are per query head (log_gate is heads x n, as in gated linear-attention
// models), so each query head's state is different and must be its own. We keep one state per
// query head always: a stream may receive gates at any time, a head's bytes stay a plain
// CausalStream, and per-head equality holds bit for bit. Only the key features phi(k) of a
// group could still be shared under gating (a gate scales the whole row phi(k) v^T); that is a
// possible optimization of the key side, which is ~t*d of the ~t*(d + 3 dv) work per token.
//
// Threads: update() splits the heads over a persistent pool of `threads` threads (core/
// thread_pool.hpp; 0 = hardware concurrency), started once per stream (and again by
// set_threads), not per call. The heads' own chunk products use the same pool when the heads
// run one after another (one head; step() runs serially unless heads * t * dv >= 2^20, because
// one head's step costs microseconds). Rows are bit-identical for any thread count.
//
// Checks: every argument of every head is checked before any head changes, so a rejected call
// leaves the whole stream unchanged; when a normalizer can still fail afterwards (odd degree, or
// the power kernel with eps = 0), all heads are restored.
//
// Serialized payload (kind multi_head_causal_stream): u64 heads | u64 kv_heads |
// heads x blob (each query head's CausalStream bytes, framed and checksummed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "streamattn/core/strided.hpp"
#include "streamattn/stream/causal_stream.hpp"

namespace streamattn {

/// Axis order of the arrays update_layout() takes. Per-batch heads are mapped onto the stream's
/// heads batch-major: batch b's query head h is the stream's head b * H + h (heads = B * H), its
/// kv head b * H_kv + g likewise (kv_heads = B * H_kv), so query head h of batch b reads kv head
/// h / (H / H_kv) of the same batch.
enum class HeadLayout {
  heads,               ///< Q (heads, T, d), K (kv_heads, T, d), V (kv_heads, T, dv), log_gate (heads, T)
  batch_tokens_heads,  ///< Q (B, T, H, d), K, V (B, T, H_kv, .), log_gate (B, T, H): fla's layout
  batch_heads_tokens,  ///< Q (B, H, T, d), K, V (B, H_kv, T, .), log_gate (B, H, T) ("head_first")
};

/// The layout of arrays of rank `rank` (3 or 4): 3-D arrays are (heads, T, features), 4-D ones
/// (B, T, H, features), or (B, H, T, features) with head_first. Throws for head_first with 3-D
/// arrays.
HeadLayout head_layout(bool head_first, Index rank);

/// One head's n x dv output rows: a view with any positive strides, of float or double (the rows
/// of a (batch, tokens, heads, dv) array, for example).
template <class O>
using HeadRows = Eigen::Map<Eigen::Matrix<O, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                            Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

class MultiHeadCausalStream {
 public:
  /// @param heads, kv_heads query and key/value heads (heads % kv_heads == 0, both >= 1)
  /// @param d, dv, degree, scale, chunk, max_bytes, kernel, norm  as for CausalStream (per head)
  /// @param threads  threads for update(): 0 = std::thread::hardware_concurrency()
  /// @param compute  the products' arithmetic, as for CausalStream (every head)
  MultiHeadCausalStream(Index heads, Index kv_heads, Index d, Index dv, int degree, std::optional<double> scale,
                        Index chunk = CausalStream::default_chunk, std::uint64_t max_bytes = 0,
                        FeatureKernel kernel = FeatureKernel::taylor, Normalizer norm = {}, int threads = 0,
                        ComputeDtype compute = ComputeDtype::input);

  Index heads() const { return static_cast<Index>(streams_.size()); }
  Index kv_heads() const { return kv_heads_; }
  /// Query heads per kv head.
  Index group() const { return heads() / kv_heads_; }
  /// The kv head query head h reads (unchecked).
  Index kv_head_of(Index h) const { return h / group(); }
  /// Same, checked: h in [0, heads).
  Index kv_head(Index h) const;
  Index d() const { return streams_[0].d(); }
  Index dv() const { return streams_[0].dv(); }
  int degree() const { return streams_[0].degree(); }
  double scale() const { return streams_[0].scale(); }
  FeatureKernel kernel() const { return streams_[0].kernel(); }
  const Normalizer& normalizer() const { return streams_[0].normalizer(); }
  Index chunk() const { return streams_[0].chunk(); }
  Index dim() const { return streams_[0].dim(); }
  std::uint64_t tokens_seen() const { return streams_[0].tokens_seen(); }
  int threads() const { return threads_; }
  void set_threads(int threads);
  ComputeDtype compute() const { return streams_[0].compute(); }
  void set_compute(ComputeDtype compute);
  /// Query head h's stream.
  const CausalStream& head(Index h) const;

  /// The next n rows of every head: Q[h] (n x d) for each query head, K[g] (n x d) and V[g]
  /// (n x dv) for each kv head, log_gate (heads x n, finite, <= 0) or null. out, if given,
  /// receives heads*n x dv rows: head h's rows are h*n .. h*n + n - 1.
  void update(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
              const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate = nullptr,
              RowMatrix<double>* out = nullptr);
  void update(const std::vector<MatrixRef<double>>& Q, const std::vector<MatrixRef<double>>& K,
              const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate = nullptr,
              RowMatrix<double>* out = nullptr);
  /// Same, writing the heads*n x dv output rows into `out` (checked) without allocating them.
  /// A rejected call leaves every head unchanged, but `out` may have been partly written.
  void update_into(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
                   const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                   Eigen::Ref<RowMatrix<double>> out);
  void update_into(const std::vector<MatrixRef<double>>& Q, const std::vector<MatrixRef<double>>& K,
                   const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate,
                   Eigen::Ref<RowMatrix<double>> out);

  /// Same, writing query head h's n x dv rows into out[h] (one view per query head, checked), each
  /// by the thread that computes the head: float64 rows with unit column stride directly, others
  /// (float32, or strided columns) through a per-thread float64 buffer, converted once.
  void update_heads_into(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
                         const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                         const std::vector<HeadRows<float>>& out);
  void update_heads_into(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
                         const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                         const std::vector<HeadRows<double>>& out);
  void update_heads_into(const std::vector<MatrixRef<double>>& Q, const std::vector<MatrixRef<double>>& K,
                         const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate,
                         const std::vector<HeadRows<float>>& out);
  void update_heads_into(const std::vector<MatrixRef<double>>& Q, const std::vector<MatrixRef<double>>& K,
                         const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate,
                         const std::vector<HeadRows<double>>& out);

  /// The next T rows of every head from arrays of any positive strides in `layout` (element
  /// strides; float32 or float64, each array its own): Q, K, V and log_gate (null for none) as
  /// HeadLayout says. Ranks, shapes, strides, head counts (B * H must be heads(), B * H_kv
  /// kv_heads()) and every value are checked before any head changes. The rows are computed in
  /// float32 when Q, K and V all are float32, else in float64 (float32 inputs converted); rows
  /// whose features are adjacent (any row stride, as in fla's layout) are read in place, the
  /// others (an array strided along its features, or of the other dtype) packed into a tile per
  /// thread, and the result is bit for bit the one of update() on the same rows packed
  /// contiguously. out (Q's shape with
  /// dv features, either dtype, any positive strides, not overlapping the inputs) receives the
  /// rows; a rejected call leaves every head unchanged, but out may have been partly written.
  void update_layout(HeadLayout layout, const StridedArray& Q, const StridedArray& K, const StridedArray& V,
                     const StridedArray* log_gate, const MutableStridedArray& out);
  /// The shape of update_layout's out for these arguments (Q's with dv features), after the same
  /// checks of ranks, shapes, strides and head counts (not of the values).
  std::vector<Index> layout_output_shape(HeadLayout layout, const StridedArray& Q, const StridedArray& K,
                                         const StridedArray& V, const StridedArray* log_gate) const;

  /// One token for every head: q (heads x d), k (kv_heads x d), v (kv_heads x dv), log_gate
  /// (heads entries) or null; out (heads x dv) receives the output rows.
  void step(const MatrixRef<float>& q, const MatrixRef<float>& k, const MatrixRef<float>& v,
            Eigen::Ref<RowMatrix<double>> out, const VectorRef<double>* log_gate = nullptr);
  void step(const MatrixRef<double>& q, const MatrixRef<double>& k, const MatrixRef<double>& v,
            Eigen::Ref<RowMatrix<double>> out, const VectorRef<double>* log_gate = nullptr);

  /// Replaces every query head's state: M[h] (t x dv) and s[h] (t), one per query head. Every
  /// head is checked before any changes (CausalStream::set_state, with the same tokens).
  void set_state(const std::vector<MatrixRef<double>>& M, const std::vector<VectorRef<double>>& s,
                 std::optional<std::uint64_t> tokens = std::nullopt);

  std::size_t nbytes() const;
  std::string repr() const;
  std::vector<std::uint8_t> to_bytes() const;
  static MultiHeadCausalStream from_bytes(const std::uint8_t* data, std::size_t n);

 private:
  MultiHeadCausalStream() = default;
  template <class T, class O = double>
  void update_impl(const std::vector<MatrixRef<T>>& Q, const std::vector<MatrixRef<T>>& K,
                   const std::vector<MatrixRef<T>>& V, const MatrixRef<double>* log_gate,
                   Eigen::Ref<RowMatrix<double>>* out, const std::vector<HeadRows<O>>* heads_out = nullptr);
  template <class T>
  void update_rows(const std::vector<MatrixRef<T>>& Q, const std::vector<MatrixRef<T>>& K,
                   const std::vector<MatrixRef<T>>& V, const MatrixRef<double>* log_gate, RowMatrix<double>* out);
  template <class T>
  void step_impl(const MatrixRef<T>& q, const MatrixRef<T>& k, const MatrixRef<T>& v, Eigen::Ref<RowMatrix<double>> out,
                 const VectorRef<double>* log_gate);
  struct LayoutGrid;
  LayoutGrid check_layout(HeadLayout layout, const StridedArray& Q, const StridedArray& K, const StridedArray& V,
                          const StridedArray* log_gate, const MutableStridedArray* out) const;
  template <class T>
  void run_layout(const LayoutGrid& grid, const RowMatrix<double>* gates, const MutableStridedArray& out);
  template <class T>
  void run_tile(const LayoutGrid& grid, const RowMatrix<double>* gates, const MutableStridedArray& out, Index h,
                Index a, Index r);
  /// Runs f(h) for every head on up to `workers` threads; rethrows the first exception.
  template <class F>
  void for_heads(int workers, F&& f);

  std::vector<CausalStream> streams_;
  Index kv_heads_ = 1;
  int threads_ = 1;
  std::shared_ptr<ThreadPool> pool_;  // null for 1 thread; the heads' ws_.pool points to it
};

}  // namespace streamattn
