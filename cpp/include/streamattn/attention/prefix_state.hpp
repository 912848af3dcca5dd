// streamattn/attention/prefix_state.hpp — the prefix state of the polynomial method and its
// normalizer options (docs/design.md §2.1, §2.4).
//
// With phi the feature map of taylor_features.hpp, the keys seen so far are summarized by
// M = phi(K)^T V (t x dv) and s = phi(K)^T 1 (t), float64 whatever the input type (sums over n
// stay accurate at n = 1e8). absorb adds keys and values, apply answers queries:
// row j = phi(q_j)^T M / phi(q_j)^T s. Every streaming mode and poly_attention are built on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "streamattn/core/common.hpp"
#include "streamattn/core/serialize.hpp"
#include "streamattn/core/thread_pool.hpp"
#include "streamattn/features/taylor_features.hpp"

namespace streamattn {

/// How output rows are normalized: num / (den + eps), or num alone.
struct Normalizer {
  double eps = 0.0;       ///< added to every denominator; finite, >= 0
  bool normalize = true;  ///< false: plain linear attention (numerator only; eps must be 0)
};

/// Throws std::invalid_argument unless eps is finite and >= 0 (and 0 when normalize is false).
void require_valid_normalizer(const Normalizer& norm);

/// Scratch buffers of the state's kernels, owned by the caller so the kernels allocate only
/// when a block is larger than any seen before. One workspace per thread.
struct PolyWorkspace {
  RowMatrix<double> phi;  // feature rows of the current pass (pass_rows x t)
  RowMatrix<double> x;    // float64 copy of the current pass's input rows
  RowMatrix<double> v;    // float64 copy of the current pass's value rows
  Eigen::VectorXd ones;   // a vector of ones (s += phi^T 1 as a GEMV)
  // The float32 compute path: features, values and one product in float32.
  RowMatrix<float> phi32, v32, prod32;
  // Threads the state products may be split over (kernels/gemm.hpp; bit-identical results for
  // any thread count). Not owned; null: the calling thread only.
  ThreadPool* pool = nullptr;
};

/// The arithmetic of the causal streams' products. float32: feature maps, intra-chunk scores
/// and the chunk products in float32 on the float32 GEMM kernels, each chunk's product added
/// into the float64 state (docs/design.md, "The float32 compute path"). float64: everything in
/// float64. input: float32 for float32 inputs, float64 for float64 inputs.
enum class ComputeDtype { input, float32, float64 };
/// "float32" or "float64" (std::invalid_argument otherwise; "input" is the absence of a choice).
ComputeDtype parse_compute_dtype(const std::string& name);
/// "input", "float32" or "float64".
const char* compute_dtype_name(ComputeDtype c);
/// The compute= option: none (Python's None, the default) is ComputeDtype::input, the inputs'
/// dtype (float32 products for float32 inputs, float64 otherwise); a name is parse_compute_dtype's.
ComputeDtype parse_compute_option(const std::optional<std::string>& name);
/// The option's value: none for ComputeDtype::input, else "float32" / "float64".
std::optional<std::string> compute_option_name(ComputeDtype c);
/// Does compute c run float32 products for inputs of type T?
template <class T>
constexpr bool uses_float32(ComputeDtype c) {
  return c == ComputeDtype::float32 || (c == ComputeDtype::input && std::is_same_v<T, float>);
}

class PolyPrefixState {
 public:
  /// Rows of a block featurized at once: up to ~16 MB of features, between 32 and 1024 rows
  /// (the K dimension of the U2^T V GEMM; larger passes run closer to the GEMM peak).
  static Index pass_rows(Index t);

  /// An empty state (no keys yet) for keys of dimension d and values of dimension dv.
  /// @param max_bytes refuse t * d * 8 > max_bytes (0 = TaylorFeatures::default_max_bytes)
  PolyPrefixState(Index d, Index dv, int degree, std::optional<double> scale, std::uint64_t max_bytes = 0,
                  FeatureKernel kernel = FeatureKernel::taylor);
  PolyPrefixState(const TaylorFeatures& features, Index dv);

  const TaylorFeatures& features() const { return features_; }
  Index d() const { return features_.d(); }
  Index dv() const { return dv_; }
  Index dim() const { return features_.dim(); }
  int degree() const { return features_.degree(); }
  double scale() const { return features_.scale(); }
  FeatureKernel kernel() const { return features_.kernel(); }
  /// Key/value rows absorbed so far.
  std::uint64_t tokens() const { return tokens_; }
  /// M = U2^T V over the absorbed rows (t x dv).
  const RowMatrix<double>& numerator_state() const { return M_; }
  /// s = U2^T 1 over the absorbed rows (t).
  const Eigen::VectorXd& normalizer_state() const { return normalizer_state_; }

  /// Adds the rows of K (n x d) and V (n x dv): M += phi(K)^T V, s += phi(K)^T 1. Checks
  /// shapes and finiteness before touching the state (a rejected call changes nothing).
  void absorb(const MatrixRef<float>& K, const MatrixRef<float>& V);
  void absorb(const MatrixRef<double>& K, const MatrixRef<double>& V);

  /// Attention of the rows of Q (n x d) over every absorbed key: row j = phi(q_j)^T M /
  /// phi(q_j)^T s (n x dv). Throws if nothing was absorbed yet, or if a normalizer is <= 0 or
  /// not finite (odd degree, or inputs too large for the degree), naming the row.
  RowMatrix<double> apply(const MatrixRef<float>& Q) const;
  RowMatrix<double> apply(const MatrixRef<double>& Q) const;

  /// Kernel: num += phi(Q) M (n x dv), den += phi(Q) s (n). No checks (Q has d columns, num
  /// and den have Q.rows() rows).
  void accumulate(const MatrixRef<float>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                  PolyWorkspace& ws) const;
  void accumulate(const MatrixRef<double>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                  PolyWorkspace& ws) const;
  /// Same, with the float32 product: phi(Q) rounded to float32 times a float32 copy of M (kept
  /// until M next changes), the product added to num in float64; den in float64. Refreshing
  /// that copy writes it: not to be called from two threads at once on one state.
  void accumulate_f32(const MatrixRef<float>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                      PolyWorkspace& ws) const;
  void accumulate_f32(const MatrixRef<double>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                      PolyWorkspace& ws) const;

  /// Kernel: absorb without checks (K has d columns, V has dv, same rows, all finite).
  void absorb_rows(const MatrixRef<float>& K, const MatrixRef<float>& V, PolyWorkspace& ws);
  void absorb_rows(const MatrixRef<double>& K, const MatrixRef<double>& V, PolyWorkspace& ws);
  /// Kernel: absorb with a weight per row, M += phi(K)^T diag(w) V, s += phi(K)^T w (gating;
  /// w has K.rows() entries). No checks.
  void absorb_rows_weighted(const MatrixRef<float>& K, const MatrixRef<float>& V, const double* w, PolyWorkspace& ws);
  void absorb_rows_weighted(const MatrixRef<double>& K, const MatrixRef<double>& V, const double* w, PolyWorkspace& ws);
  /// Kernel: absorb_rows / absorb_rows_weighted with the float32 product: each pass's
  /// phi(K)^T diag(w) V formed in float32 (features and values rounded to float32) and added
  /// into the float64 M; s in float64. w may be null.
  void absorb_rows_f32(const MatrixRef<float>& K, const MatrixRef<float>& V, const double* w, PolyWorkspace& ws);
  void absorb_rows_f32(const MatrixRef<double>& K, const MatrixRef<double>& V, const double* w, PolyWorkspace& ws);
  /// Kernels of one chunk split over threads (attention/causal_chunk.cpp): each computes a part
  /// of its result that no other part touches, every entry in the same order whatever the parts,
  /// so any split gives the same bits.
  /// Rows of the inter-chunk part over features [i0, i0 + n), num += phi M[i0 : i0 + n]: phi32
  /// non-null, float32(phi) (r x n) times those rows of the float32 copy of M (fresh_f32()
  /// first), in prod32, added in float64; else phi (float64, r x n) times those rows of M.
  void add_state_products(Index i0, Index n, const MatrixRef<double>* phi, const MatrixRef<float>* phi32,
                          Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<RowMatrix<float>> prod32) const;
  /// den[m] += phi_m . s[i0 : i0 + n] for r feature rows phi_m = phi + m * ld (n values each,
  /// float64), one fixed-order dot product per row.
  void add_normalizer_dots(Index i0, Index n, const double* phi, Index ld, Index r, double* den) const;
  /// Makes the float32 copy of M current (before add_state_products on the float32 path).
  void fresh_f32() const;
  /// Sizes the float32 copy of M (before add_key_products on the float32 path).
  void begin_featurized(bool f32);
  /// A chunk's update of rows [i0, i0 + n) of the state (features i0 .. i0 + n - 1), M = f M +
  /// phi^T V and s = f s + phi^T 1, where phi (r x n) holds those feature columns of the chunk's r
  /// featurized (and weighted) rows: decay_rows first, then add_key_products and
  /// add_key_features in either order.
  /// Rows [i0, i0 + n): M *= f, s *= f (nothing for f = 1).
  void decay_rows(Index i0, Index n, double f);
  /// s[i0 + i] += phi_m[i] for the r rows phi_m = phi + m * ld (n values each, float64), row by
  /// row in order: each entry one sum over the rows.
  void add_key_features(Index i0, Index n, const double* phi, Index ld, Index r);
  /// M rows += phi^T V: float32 (phi32 and V32 non-null: the rounded rows, each row's n values
  /// contiguous; the product added into the float64 M, and the float32 copy of M updated too) or
  /// float64 (phi and V64).
  void add_key_products(Index i0, Index n, const MatrixRef<double>* phi, const MatrixRef<float>* phi32,
                        const MatrixRef<double>* V64, const MatrixRef<float>* V32);
  /// After every part of a chunk was added by add_key_products: counts its r rows.
  void finish_featurized(Index r, bool f32);
  /// Kernel: M *= factor, s *= factor (a gate's decay; factor in [0, 1]).
  void decay(double factor);
  /// Kernel for one token (decode): M = f M + phi_k v^T, s = f s + phi_k, then
  /// num = phi_q^T M, in one pass over M. phi_q, phi_k have dim() entries, v and num dv().
  /// No checks, no allocation.
  void step_rows(const double* phi_q, const double* phi_k, const double* v, double f, double* num);
  /// Same, on the float32 compute path: phi_q, phi_k and v rounded to float32 (dim(), dim() and
  /// dv() entries), the key's rank-one term phi_k v^T formed in float32 and added into the float64
  /// M; num (dv entries, float32) = phi_q^T float32(M), one float32 chain over the rows of M
  /// in order. s is updated in float64 from phi_k64 (the unrounded key features). No checks, no
  /// allocation.
  void step_rows_f32(const float* phi_q, const float* phi_k, const double* phi_k64, const float* v, double f,
                     float* num);
  /// The normalizer phi_q^T (f s + phi_k) that step_rows' update would give, without changing
  /// the state (so a step can be refused before anything changes).
  double step_normalizer(const double* phi_q, const double* phi_k, double f) const;

  /// Adds another state of the same d, dv, degree, scale and kernel (the state of both key sets:
  /// the state is linear in the keys).
  void merge(const PolyPrefixState& other);
  /// Back to the empty state.
  void reset();
  /// Replaces M (t x dv) and s (t) by the given ones (a state saved earlier, or one made by
  /// another implementation of the same features) that stands for `tokens` absorbed rows
  /// (>= 1); shapes and finiteness are checked first.
  void assign(const MatrixRef<double>& M, const VectorRef<double>& s, std::uint64_t tokens);
  /// The checks of assign(), without assigning.
  void check_assign(const MatrixRef<double>& M, const VectorRef<double>& s) const;

  /// Bytes of M and s.
  std::size_t nbytes() const;
  std::string repr() const;

  /// Appends d, dv, degree, kernel, scale, max_bytes, tokens, M and s to a payload:
  /// u64 d | u64 dv | u64 degree | u8 kernel | f64 scale | u64 max_bytes | u64 tokens |
  /// f64[t*dv] M | f64[t] s.
  void write_payload(ByteWriter& w) const;
  /// Reads what write_payload() wrote; every size and value is checked (std::invalid_argument).
  static PolyPrefixState read_payload(ByteReader& r);

 private:
  template <class T>
  void absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V);
  // f32: the float32 compute path (products in float32 against M32_, accumulated in float64).
  template <class T>
  void absorb_rows_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const double* w, PolyWorkspace& ws,
                        bool f32 = false);
  template <class T>
  void accumulate_impl(const MatrixRef<T>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                       PolyWorkspace& ws, bool f32 = false) const;
  template <class T>
  RowMatrix<double> apply_impl(const MatrixRef<T>& Q) const;

  TaylorFeatures features_;
  Index dv_;
  RowMatrix<double> M_;
  Eigen::VectorXd normalizer_state_;
  std::uint64_t tokens_ = 0;
  PolyWorkspace ws_;
  // float32 copy of M for accumulate_f32 (not state: rebuilt from M when stale).
  mutable RowMatrix<float> M32_;
  mutable bool m32_fresh_ = false;
};

namespace detail {
/// The parameters a polynomial state is built from, as its payload starts (PolyPrefixState's, and
/// the sketched KVStream state's): u64 d | u64 dv | u64 degree | u8 kernel | f64 scale | u64 max_bytes.
/// read_payload reads the fields only; each reader checks them.
struct StateParameters {
  std::uint64_t d = 0, dv = 0, degree = 0;
  std::uint8_t kernel = 0;
  double scale = 0.0;
  std::uint64_t max_bytes = 0;

  static StateParameters of(const TaylorFeatures& features, Index dv);
  void write_payload(ByteWriter& w) const;
  static StateParameters read_payload(ByteReader& r);
};

/// Throws std::invalid_argument unless every den[i] (the normalizer of stream/query row
/// first_row + i) is positive and finite, saying why it is not (odd degree, a power kernel
/// whose scores are all 0, or inputs too large).
void require_positive_normalizers(const Eigen::Ref<const Eigen::VectorXd>& den, std::uint64_t first_row, int degree,
                                  FeatureKernel kernel = FeatureKernel::taylor);
/// Applies the normalizer options to rows num (den holds phi(q).s): den += eps, checked
/// positive, num = diag(den)^-1 num; nothing when norm.normalize is false.
void normalize_rows(Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den, std::uint64_t first_row,
                    int degree, FeatureKernel kernel, const Normalizer& norm);
}  // namespace detail

}  // namespace streamattn
