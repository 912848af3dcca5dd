// streamattn/attention/causal_chunk.hpp — the chunked causal scheme of the polynomial method
// (docs/design.md §2.4), shared by poly_attention(causal = true) and the causal streams.
//
// Rows are processed in chunks of at most `chunk` rows. For a chunk starting at stream row pos0,
// with G_m the cumulative log-decay from the chunk's first row to its row m (all 0 ungated):
//   inter-chunk part of row m:  e^{G_m} phi(q_m)^T (M, s)          (every earlier key, via the state)
//   intra-chunk weight (m, l):  kappa(c q_m.k_l) e^{G_m - G_l}, l <= m  (computed directly, O(chunk^2 d))
//   state after the chunk:      e^{G_last} (M, s) + sum_l e^{G_last - G_l} phi(k_l) (v_l, 1)^T
// Every factor is e^{<= 0}: nothing overflows. The intra-chunk scores run on the GEMM kernels
// (kernels/gemm.hpp); the zeros above the diagonal cost flops but change no bits.
//
// Threads (ws.pool): a chunk of at most PolyPrefixState::pass_rows(t) rows costs two hand-offs.
// absorb() splits the state's rows (features): each thread decays and updates its rows of M and
// s from every key. outputs() splits the chunk's rows (each thread takes a block of rows through
// the features of its queries, phi(q) M and phi(q).s, and the intra-chunk rows, writing only
// those rows), unless the state is large (feature_blocks): then the inter-chunk part is split by
// the state's rows too, in kFeatureBlocks fixed blocks whose partial sums are added in block
// order, so that each thread reads only the rows of M its absorb() part writes. Each entry is
// computed in the same order for any split, so the results are bit-identical for every thread
// count; a larger chunk runs pass by pass with each product split on its own
// (kernels/gemm.hpp), also bit-identical.
//
// CausalChunker holds the scratch of one caller (no allocation once the largest chunk was seen);
// it does no argument checks: callers validate shapes, values and gates first.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "streamattn/attention/prefix_state.hpp"
#include "streamattn/core/common.hpp"

namespace streamattn {

/// Largest chunk: the intra-chunk scores are a chunk x chunk float64 scratch matrix.
constexpr Index kMaxChunk = 4096;
/// The default `chunk` argument: 0, "by shape" (chunk_for_features).
constexpr Index kDefaultChunk = 0;

/// The chunk chosen by shape for t features (docs/design.md, "Chunk size"): 32 below 256
/// features, 64 from 256 on. Measured (bench/bench_chunk.py): the intra-chunk work per token
/// grows with the chunk (about 2 chunk (d + dv) flops) while the state products do not, so small
/// feature maps want short chunks; with more features each chunk reads and writes more state,
/// and longer chunks pay it less often (most with several threads). It depends on t alone, not on
/// the thread count or the ISA, so a stream's results do not either.
Index chunk_for_features(Index t);

/// The chunk a stream of t features uses: chunk_for_features(t) for chunk = 0, else chunk.
/// Throws std::invalid_argument unless chunk is 0 or in [1, kMaxChunk].
Index resolve_chunk(Index chunk, Index t);

/// Feature blocks of the inter-chunk part (a chunk of at most PolyPrefixState::pass_rows(t)
/// rows): kFeatureBlocks when the state has at least kBlockedStateEntries entries (t x dv), else
/// 1. Split into blocks, each thread reads and writes only its own rows of the state, which then
/// stay in its cache from chunk to chunk; the partial products are added in block order. The
/// count depends on t and dv alone and the blocks' columns on the feature map alone
/// (TaylorFeatures::column_blocks), not on the thread count, so results do not either.
constexpr Index kFeatureBlocks = 4;
constexpr Index kBlockedStateEntries = Index{1} << 16;
Index feature_blocks(Index t, Index dv);

class CausalChunker {
 public:
  /// Sizes the scratch for chunks of up to `rows` rows of d-dimensional keys and dv-dimensional
  /// values (gated: also the gate buffers, at least `chunk` entries).
  void reserve(Index rows, Index d, Index dv, bool gated, Index chunk);

  /// Cumulative log-decays of rows a .. a+r-1 of gate, relative to row a (used by the next
  /// outputs / absorb calls with gated = true).
  void cumulative_gates(const VectorRef<double>& gate, Index a, Index r, Index chunk);

  /// The normalized output rows of one chunk (Qc, Kc, Vc: r rows, r <= reserved rows) over the
  /// keys in `state` and the chunk's own keys up to each row. Returns r x dv rows in the
  /// chunker's scratch (valid until the next call). first_row numbers the rows in errors.
  /// f32: the float32 compute path (prefix_state.hpp, ComputeDtype): the state product, the
  /// intra-chunk scores and their product with V in float32, each part added into float64
  /// numerators and denominators, normalized in float64.
  template <class T>
  Eigen::Ref<RowMatrix<double>> outputs(const PolyPrefixState& state, const MatrixRef<T>& Qc, const MatrixRef<T>& Kc,
                                        const MatrixRef<T>& Vc, bool gated, std::uint64_t first_row,
                                        const Normalizer& norm, PolyWorkspace& ws, bool f32 = false);

  /// Adds the chunk's keys and values to the state (decayed by the gates when gated); f32: the
  /// chunk's product in float32, added into the float64 state.
  template <class T>
  void absorb(PolyPrefixState& state, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated, PolyWorkspace& ws,
              bool f32 = false);

 private:
  template <class T>
  Eigen::Ref<RowMatrix<double>> outputs_fused(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                              const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                              std::uint64_t first_row, const Normalizer& norm, PolyWorkspace& ws,
                                              bool f32);
  /// The fused chunk's set-up: scratch sized (prod_rows rows of float32 products), inputs
  /// copied, the float32 copy of M made current, gate factors; returns whether the state holds
  /// tokens (an inter-chunk part).
  template <class T>
  bool prepare_chunk(const PolyPrefixState& state, const MatrixRef<T>& Qc, const MatrixRef<T>& Kc,
                     const MatrixRef<T>& Vc, bool gated, bool f32, Index prod_rows);
  /// Records that the keys and values at k, v (r rows) are copied for the next absorb().
  void mark_prepared(const void* k, const void* v, Index r, bool f32, bool gated);
  /// outputs_fused with the inter-chunk part in feature blocks (feature_blocks(t, dv) > 1).
  template <class T>
  Eigen::Ref<RowMatrix<double>> outputs_blocked(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                                const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                                std::uint64_t first_row, const Normalizer& norm, PolyWorkspace& ws,
                                                bool f32);
  /// The feature columns of blocks b0 .. b0+nb-1 (first columns `at`, from block_bounds()) of the
  /// chunk's queries (float64 in phiq_, or rounded into phiq32_ on the float32 path), every row;
  /// each block's dots with its part of s added into that block's partial denominators.
  template <class T>
  void query_cols(const PolyPrefixState& state, const MatrixRef<T>& Qc, const std::vector<Index>& at, Index b0,
                  Index nb, bool f32);
  template <class T>
  Eigen::Ref<RowMatrix<double>> outputs_passes(const PolyPrefixState& state, const MatrixRef<T>& Qc,
                                               const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                                               std::uint64_t first_row, const Normalizer& norm, PolyWorkspace& ws,
                                               bool f32);
  template <class T>
  void absorb_passes(PolyPrefixState& state, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated,
                     PolyWorkspace& ws, bool f32);
  /// f(first, count) over contiguous blocks of [0, n), one per thread of the pool when the work
  /// (multiply-adds, in float32 when f32) pays for a hand-off, else once on the calling thread.
  static void run_parts(ThreadPool* pool, Index n, std::int64_t work, bool f32,
                        const std::function<void(Index, Index)>& f);
  /// Copies of the keys and values (float32 when f32, else float64) and c Q, in the compute's type.
  template <class T>
  void copy_inputs(const MatrixRef<T>* Qc, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, double c, bool f32);
  /// Feature columns i0 .. i0+n-1 of the chunk's keys (weighted; float64 in phik_, or rounded
  /// into phik32_ on the float32 path), every row, added into those rows of s.
  template <class T>
  void key_cols(PolyPrefixState& state, const MatrixRef<T>& Kc, Index i0, Index n, bool gated, bool f32);
  /// The feature blocks' first columns (TaylorFeatures::column_blocks), kept for the last map.
  const std::vector<Index>& block_bounds(const TaylorFeatures& features, Index blocks);
  /// A float64 scratch of at least size entries, one per thread (the float32 path's feature
  /// rows, kFeatureRows at a time, before they are rounded).
  static double* feature_buffer(Index size);
  static constexpr Index kFeatureRows = 4;
  /// The keys' gate weights e^{G_last - G_l}.
  void key_weights(Index r);
  /// Rows a .. a+n-1 of the intra-chunk block (scores of the whole chunk's keys, masked, decayed)
  /// added to nm and dn; S = float (num32: the float32 product) or double.
  template <class S>
  void intra_rows(const RowMatrix<S>& q, const RowMatrix<S>& k, const RowMatrix<S>& v, RowMatrix<S>& scores, Index a,
                  Index n, Index r, bool gated, int degree, FeatureKernel kernel, Eigen::Ref<RowMatrix<double>> nm,
                  Eigen::Ref<Eigen::VectorXd> dn, RowMatrix<S>* num32);
  template <class T>
  void intra_f32(const MatrixRef<T>& Qc, const MatrixRef<T>& Kc, const MatrixRef<T>& Vc, bool gated, double c,
                 int degree, FeatureKernel kernel, Eigen::Ref<RowMatrix<double>> nm, Eigen::Ref<Eigen::VectorXd> dn);

  RowMatrix<double> num_, q_, k_, v_, scores_;
  RowMatrix<float> q32_, k32_, v32_, scores32_, num32_;
  Eigen::VectorXd den_, gcum_, gw_;
  // The fused chunk (chunks of at most PolyPrefixState::pass_rows(t) rows): feature rows of the
  // queries and keys (float64, or float32 only on the float32 path), the query product, the keys' gate
  // weights; and which keys and values outputs() has copied for the next absorb().
  RowMatrix<double> phiq_, phik_;
  RowMatrix<float> phiq32_, phik32_, prod32_;
  Eigen::VectorXd wk_;
  // Feature blocks (outputs_blocked): block b's partial numerators (rows b r .. b r + r - 1) and
  // denominators, and the intra-chunk part apart.
  RowMatrix<double> part_num_, intra_num_;
  Eigen::VectorXd part_den_, intra_den_;
  std::vector<Index> bounds_;
  std::array<Index, 4> bounds_key_{-1, -1, -1, -1};  // d, degree, kernel, blocks of bounds_
  bool prepared_ = false, prep_f32_ = false, prep_gated_ = false;
  const void* prep_k_ = nullptr;
  const void* prep_v_ = nullptr;
  Index prep_rows_ = 0;
};

}  // namespace streamattn
