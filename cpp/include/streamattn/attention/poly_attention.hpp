// streamattn/attention/poly_attention.hpp — static attention by the polynomial method (docs/design.md §2.1, 2.4).
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
// Error (docs/design.md §2.1): with beta = c max_j ||q_j|| max_l ||k_l|| and eps = taylor_error(beta, g),
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

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/prefix_state.hpp"
#include "streamattn/core/common.hpp"

namespace streamattn {

/// What poly_attention guarantees for these inputs.
struct PolyStats {
  double beta;   ///< c * max_j ||q_j|| * max_l ||k_l||
  double eps;    ///< taylor_error(beta, degree) (infinity if beta overflows)
  double bound;  ///< 2 eps / (1 - eps) * ||V||_max, infinity when eps >= 1 (vacuous)
  int degree;
  Index dim;  ///< t = C(d + g, g)

  std::string repr() const;
};

/// The optional arguments of poly_attention beyond the first ones.
struct PolyOptions {
  FeatureKernel kernel = FeatureKernel::taylor;
  Normalizer norm{};
  /// Causal only: per-key log-decays (length n_k, each finite and <= 0), or null for none.
  const VectorRef<double>* log_gate = nullptr;
};

/// D~^-1 U1 (U2^T V) (n_q x dv, float64), see above. Same argument checks as exact_attention,
/// plus degree in [0, 8], chunk in [1, kMaxChunk] or 0 (by shape, causal_chunk.hpp), the TaylorFeatures memory limit
/// (max_bytes, 0 = default), and positive finite normalizers. log_gate (key positions, so n_k entries) only with
/// causal.
RowMatrix<double> poly_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                 int degree, std::optional<double> scale = std::nullopt, bool causal = false,
                                 Index chunk = kDefaultChunk, std::uint64_t max_bytes = 0,
                                 const PolyOptions& options = {});
RowMatrix<double> poly_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                                 int degree, std::optional<double> scale = std::nullopt, bool causal = false,
                                 Index chunk = kDefaultChunk, std::uint64_t max_bytes = 0,
                                 const PolyOptions& options = {});

/// Throws unless `options` describe the Taylor approximation of softmax that PolyStats bounds:
/// kernel taylor, eps = 0, normalize, no log_gate.
void require_stats_options(const PolyOptions& options);

/// beta, eps and the guaranteed max-norm error of poly_attention for these inputs (O(n d)).
PolyStats poly_attention_stats(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                               int degree, std::optional<double> scale = std::nullopt);
PolyStats poly_attention_stats(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                               int degree, std::optional<double> scale = std::nullopt);

}  // namespace streamattn
