// streamattn/attention/exact_attention.hpp — the reference softmax attention (docs/design.md §2), in bounded memory.
//
//     Attn(Q, K, V) = D^-1 A V,   A = exp(c Q K^T),   D = diag(A 1)
//
// Computed block by block: a block of query rows meets the keys one block at a time, with the
// running row maximum m, running denominator l and running numerator as in online softmax,
// so every exponent is <= 0 and scores of +-1000 neither overflow nor underflow to 0/0. Extra
// memory is O(query_block * key_block + query_block * dv), never n_q x n_k. Accumulation is
// float64 for float32 and float64 inputs; the result is float64.
//
// Scale: `scale` c > 0; the default 1/sqrt(d) is the one of torch's scaled_dot_product_attention
// (the polynomial-method paper uses c = 1/d: pass it explicitly).
//
// Causal alignment for n_q != n_k (bottom-right, the decoding convention): query i stands at
// stream position i + (n_k - n_q) and attends keys j <= i + (n_k - n_q). Causal calls need
// n_q <= n_k so that every query sees at least one key. For n_q == n_k this is the usual mask;
// torch's is_causal=True aligns top-left instead, which differs only when n_q != n_k.
#pragma once

#include <optional>

#include "streamattn/core/common.hpp"

namespace streamattn {

/// Softmax attention, n_q x dv float64. Q: n_q x d, K: n_k x d, V: n_k x dv, n_k >= 1.
/// @param scale  c > 0; std::nullopt = 1/sqrt(d)
/// @param causal bottom-right aligned mask (see above); needs n_q <= n_k
/// Throws std::invalid_argument on mismatched shapes, NaN/Inf (naming the row), bad scale.
RowMatrix<double> exact_attention(const MatrixRef<float>& Q, const MatrixRef<float>& K, const MatrixRef<float>& V,
                                  std::optional<double> scale = std::nullopt, bool causal = false);
RowMatrix<double> exact_attention(const MatrixRef<double>& Q, const MatrixRef<double>& K, const MatrixRef<double>& V,
                                  std::optional<double> scale = std::nullopt, bool causal = false);

namespace detail {
/// The boundary checks shared by the attention functions; returns the scale to use.
template <class T>
double check_attention_args(const MatrixRef<T>& Q, const MatrixRef<T>& K, const MatrixRef<T>& V,
                            std::optional<double> scale, bool causal);
}  // namespace detail

}  // namespace streamattn
