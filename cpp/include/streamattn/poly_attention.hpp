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
  PolyPrefixState(Index d, Index dv, int degree, double scale, std::uint64_t max_bytes = 0);
  PolyPrefixState(const TaylorFeatures& features, Index dv);

  const TaylorFeatures& features() const { return features_; }
  Index d() const { return features_.d(); }
  Index dv() const { return dv_; }
  Index dim() const { return features_.dim(); }
  int degree() const { return features_.degree(); }
  double scale() const { return features_.scale(); }
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

  /// Adds another state of the same d, dv, degree and scale (the state of both key sets:
  /// the state is linear in the keys).
  void merge(const PolyPrefixState& other);
  /// Back to the empty state.
  void reset();

  /// Bytes of M and s.
  std::size_t nbytes() const;
  std::string repr() const;

  /// Appends d, dv, degree, scale, max_bytes, tokens, M and s to a payload (see causal_stream.hpp).
  void write(ByteWriter& w) const;
  /// Reads what write() wrote; every size and value is checked (std::invalid_argument).
  static PolyPrefixState read(ByteReader& r);

 private:
  template <class T>
  void absorb_impl(const MatrixRef<T>& K, const MatrixRef<T>& V);
  template <class T>
  void absorb_rows_impl(const MatrixRef<T>& K, const MatrixRef<T>& V, PolyWorkspace& ws);
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
/// first_row + i) is positive and finite, saying why it is not (odd degree, or inputs too large).
void require_positive_normalizers(const Eigen::Ref<const Eigen::VectorXd>& den, std::uint64_t first_row, int degree);
}  // namespace detail

/// What poly_attention guarantees for these inputs.
struct PolyStats {
  double beta;   ///< c * max_j ||q_j|| * max_l ||k_l||
  double eps;    ///< taylor_error(beta, degree) (infinity if beta overflows)
  double bound;  ///< 2 eps / (1 - eps) * ||V||_max, infinity when eps >= 1 (vacuous)
  int degree;
  Index dim;     ///< t = C(d + g, g)
};

/// D~^-1 U1 (U2^T V) (n_q x dv, float64), see above. Same argument checks as exact_attention,
/// plus degree in [0, 8], chunk in [1, CausalStream::max_chunk], the TaylorFeatures memory limit (max_bytes,
/// 0 = default), and positive finite normalizers.
RowMatrix<double> poly_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                 int degree, std::optional<double> scale = std::nullopt, bool causal = false,
                                 Index chunk = 256, std::uint64_t max_bytes = 0);
RowMatrix<double> poly_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K,
                                 const MatrixRef<double>& V, int degree, std::optional<double> scale = std::nullopt,
                                 bool causal = false, Index chunk = 256, std::uint64_t max_bytes = 0);

/// beta, eps and the guaranteed max-norm error of poly_attention for these inputs (O(n d)).
PolyStats poly_attention_stats(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               int degree, std::optional<double> scale = std::nullopt);
PolyStats poly_attention_stats(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                               int degree, std::optional<double> scale = std::nullopt);

}  // namespace streamattn
