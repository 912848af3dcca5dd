// streamattn/poly_attention.hpp — static attention by the polynomial method (DESIGN.md 2.1, 2.4).
//
// With phi the Taylor features of degree g (taylor_features.hpp), U1 = phi(Q), U2 = phi(K):
//
//     T~ = D~^-1 U1 (U2^T V),   D~ = diag(U1 (U2^T 1))
//
// i.e. output row j is phi(q_j)^T M / phi(q_j)^T s with the state M = U2^T V (t x dv) and
// s = U2^T 1 (t), never an n x n matrix: O(n t (d + dv)) time, O(t dv) state.
//
// Causal (row j attends keys l <= j) is the chunked linear-attention scheme: for each chunk
// of `chunk` rows, the inter-chunk part phi(Q_c) M_prev, phi(Q_c) s_prev comes from the prefix
// state of all earlier keys; the intra-chunk part P_g(c Q_c K_c^T), lower-triangular masked,
// is computed directly in O(chunk^2 d) (Horner's rule on the scores — the same numbers as
// phi(q).phi(k) up to rounding); then the chunk's keys are absorbed into the state. The state
// is accumulated in float64 whatever the input type (sums over n stay accurate at n = 1e8).
// Alignment for n_q != n_k is the one of exact_attention.hpp: query i stands at position
// i + n_k - n_q (keys before the first query are absorbed first); needs n_q <= n_k.
//
// PolyPrefixState is that prefix state, (M, s) plus a token count, with absorb (add keys and
// values) and apply (answer queries); the streaming modes are built on it.
//
// Error (DESIGN.md 2.1): with beta = c max_j ||q_j|| max_l ||k_l|| and eps = taylor_error(beta, g),
// every retained entry of exp(c Q K^T) is approximated within relative eps, so for eps < 1
// ||T~ - Attn||_max <= 2 eps / (1 - eps) ||V||_max (poly_attention_stats reports it; infinity
// when eps >= 1, where the guarantee is vacuous).
//
// Kernels: everything above holds for either kernel of taylor_features.hpp (kernel = taylor,
// the default, or power: (c q.k)^g for even g, with only the degree-g features); the error
// bound is the Taylor one and so only describes the taylor kernel.
//
// Normalizer options (Normalizer): out_j = num_j / (den_j + eps) with eps >= 0 (flash-linear-
// attention's Based uses 1e-6), or, with normalize = false, out_j = num_j (plain linear
// attention, the normalizer is not computed).
//
// Gating (causal only): optional per-token log-decays gamma_l <= 0; key l's weight for query j
// is kappa(q_j, k_l) exp(sum_{l < m <= j} gamma_m), in the numerator and the normalizer alike
// (the recurrent state S_j = e^{gamma_j} S_{j-1} + phi(k_j) v_j^T). See causal_stream.hpp.
//
// Degrees: even g keep P_g > 0, so the normalizer is positive. Odd g are computed when asked for;
// every normalizer is checked and a row whose value is <= 0 (or not finite) raises an error naming
// the row, for any degree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "streamattn/common.hpp"
#include "streamattn/serialize.hpp"
#include "streamattn/taylor_features.hpp"

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
};

class PolyPrefixState {
 public:
  /// Rows of a block featurized at once: up to ~16 MB of features, between 32 and 1024 rows
  /// (the K dimension of the U2^T V GEMM; larger passes run closer to the GEMM peak).
  static Index pass_rows(Index t);

  /// An empty state (no keys yet) for keys of dimension d and values of dimension dv.
  /// @param max_bytes refuse t * d * 8 > max_bytes (0 = TaylorFeatures::default_max_bytes)
  PolyPrefixState(Index d, Index dv, int degree, double scale, std::uint64_t max_bytes = 0,
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
  const Eigen::VectorXd& normalizer_state() const { return s_; }

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

  /// Kernel: absorb without checks (K has d columns, V has dv, same rows, all finite).
  void absorb_rows(const MatrixRef<float>& K, const MatrixRef<float>& V, PolyWorkspace& ws);
  void absorb_rows(const MatrixRef<double>& K, const MatrixRef<double>& V, PolyWorkspace& ws);
  /// Kernel: absorb with a weight per row, M += phi(K)^T diag(w) V, s += phi(K)^T w (gating;
  /// w has K.rows() entries). No checks.
  void absorb_rows_weighted(const MatrixRef<float>& K, const MatrixRef<float>& V, const double* w, PolyWorkspace& ws);
  void absorb_rows_weighted(const MatrixRef<double>& K, const MatrixRef<double>& V, const double* w,
                            PolyWorkspace& ws);
  /// Kernel: M *= factor, s *= factor (a gate's decay; factor in [0, 1]).
  void decay(double factor);
  /// Kernel for one token (decode): M = f M + phi_k v^T, s = f s + phi_k, then
  /// num = phi_q^T M, in one pass over M. phi_q, phi_k have dim() entries, v and num dv().
  /// No checks, no allocation.
  void step_rows(const double* phi_q, const double* phi_k, const double* v, double f, double* num);
  /// The normalizer phi_q^T (f s + phi_k) that step_rows' update would give, without changing
  /// the state (so a step can be refused before anything changes).
  double step_normalizer(const double* phi_q, const double* phi_k, double f) const;

  /// Adds another state of the same d, dv, degree, scale and kernel (the state of both key sets:
  /// the state is linear in the keys).
  void merge(const PolyPrefixState& other);
  /// Back to the empty state.
  void reset();

  /// Bytes of M and s.
  std::size_t nbytes() const;
  std::string repr() const;

  /// Appends d, dv, degree, kernel, scale, max_bytes, tokens, M and s to a payload:
  /// u64 d | u64 dv | u64 degree | u8 kernel | f64 scale | u64 max_bytes | u64 tokens |
  /// f64[t*dv] M | f64[t] s.
  void write(ByteWriter& w) const;
  /// Reads what write() wrote; every size and value is checked (std::invalid_argument).
  static PolyPrefixState read(ByteReader& r);

 private:
  template <class T>
  void absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V);
  template <class T>
  void absorb_rows_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, const double* w, PolyWorkspace& ws);
  template <class T>
  void accumulate_impl(const MatrixRef<T>& Q, Eigen::Ref<RowMatrix<double>> num, Eigen::Ref<Eigen::VectorXd> den,
                       PolyWorkspace& ws) const;
  template <class T>
  RowMatrix<double> apply_impl(const MatrixRef<T>& Q) const;

  TaylorFeatures features_;
  Index dv_;
  RowMatrix<double> M_;
  Eigen::VectorXd s_;
  std::uint64_t tokens_ = 0;
  PolyWorkspace ws_;
};

namespace detail {
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

/// What poly_attention guarantees for these inputs.
struct PolyStats {
  double beta;   ///< c * max_j ||q_j|| * max_l ||k_l||
  double eps;    ///< taylor_error(beta, degree) (infinity if beta overflows)
  double bound;  ///< 2 eps / (1 - eps) * ||V||_max, infinity when eps >= 1 (vacuous)
  int degree;
  Index dim;     ///< t = C(d + g, g)
};

/// The optional arguments of poly_attention beyond the first ones.
struct PolyOptions {
  FeatureKernel kernel = FeatureKernel::taylor;
  Normalizer norm{};
  /// Causal only: per-key log-decays (length n_k, each finite and <= 0), or null for none.
  const VectorRef<double>* log_gate = nullptr;
};

/// D~^-1 U1 (U2^T V) (n_q x dv, float64), see above. Same argument checks as exact_attention,
/// plus degree in [0, 8], chunk in [1, CausalStream::max_chunk], the TaylorFeatures memory limit (max_bytes,
/// 0 = default), and positive finite normalizers. log_gate (key positions, so n_k entries)
/// only with causal.
RowMatrix<double> poly_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                 int degree, std::optional<double> scale = std::nullopt, bool causal = false,
                                 Index chunk = 32, std::uint64_t max_bytes = 0, const PolyOptions& options = {});
RowMatrix<double> poly_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K,
                                 const MatrixRef<double>& V, int degree, std::optional<double> scale = std::nullopt,
                                 bool causal = false, Index chunk = 32, std::uint64_t max_bytes = 0,
                                 const PolyOptions& options = {});

/// beta, eps and the guaranteed max-norm error of poly_attention for these inputs (O(n d)).
PolyStats poly_attention_stats(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               int degree, std::optional<double> scale = std::nullopt);
PolyStats poly_attention_stats(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                               int degree, std::optional<double> scale = std::nullopt);

}  // namespace streamattn
