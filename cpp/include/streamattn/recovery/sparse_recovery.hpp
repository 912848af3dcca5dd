// streamattn/recovery/sparse_recovery.hpp — (1+ε) ℓ2/ℓ2 k-sparse recovery from a linear sketch, with a
// standard O(n·r) decoder and a sublinear (polylog n) bit-testing decoder.
//
// Guarantee (docs/design.md §2.3): from the sketch of x ∈ R^n, decode a k-sparse z with
//     ‖x − z‖₂ ≤ (1+ε) · min_{k-sparse y} ‖x − y‖₂        with probability ≥ 1 − δ.
//
// Structure. A CountSketch (Charikar, Chen, Farach-Colton 2002) with r rows and b buckets,
// plus, on its first r_bit rows, bit-testing counters (the "bit tests" of Gilbert, Strauss,
// Tropp, Vershynin, "One sketch for all", STOC 2007, and of Cormode and Muthukrishnan's
// combinatorial group testing for heavy hitters, 2005): for every bucket and every bit
// t < L = ceil(log2 n),
//     bits[row, bucket, column, t] = Σ_{i in bucket, bit t of i is 1} s_row(i) · x[i, column].
// The bit counters share the bucket and sign hashes of the CountSketch rows, so an update
// evaluates r hash pairs (as a plain CountSketch) and adds to popcount(i) extra counters.
//
// Decoders (both return the k largest nonzero median estimates, ties to the smaller index):
//   standard   estimate every coordinate (median over the r rows) and keep the top k.
//              O(n·r) time; coordinate ranges are split over threads.
//   sublinear  in every bit row and bucket, read the index of the coordinate that dominates
//              the bucket, bit by bit (bit t is 1 iff |bits[t]| > |total − bits[t]|), drop
//              indices ≥ n or whose bucket hash disagrees, then estimate those r_bit·b
//              candidates with the whole CountSketch and keep the top k.
//              O(r_bit·b·(L + r)) = O(k/ε · log n · log(n/δ)) time: polylog in n.
//              Extra space: r_bit·b·L counters, the O(log n) factor, counted in nbytes().
//
// Sizing rule (SparseRecoveryPlan::make), validated by tests/cpp/recovery/test_sparse_recovery.cpp over ≥ 200 seeds per
// scenario and measured by bench/sparse_recovery_sizing:
//     b     = ceil(8·k/ε)                                         (buckets)
//     r     = max(7, 2·ceil(ln(n/δ) / ln(b/(2k))) − 1)            (CountSketch rows, odd)
//     r_bit = min(r, 3 + ceil(log2(k)/2))                          (rows with bit counters)
//     L     = max(1, ceil(log2 n))                                (bits per bucket)
// (SparseRecoveryPlan::rule states the same rule.)
// Why these constants: with b = 4k/ε the (1+ε) bound fails in 2–75% of trials
// (docs/design.md §2.3); 8k/ε keeps the expected squared error of the k estimates at ≈ ε/8·OPT².
// r grows with ln(n/δ)/ln(b/(2k)) because the median estimate of each of the n coordinates must
// hold at once (a union bound): a coordinate outside the support gets a nonzero median only if
// more than half of its r buckets hold a heavy coordinate, probability ≤ C(r, m)·(k/b)^m with
// m = (r+1)/2; m = ceil(ln(n/δ)/ln(b/(2k))) gives n·(2k/b)^m ≤ δ, the binomial coefficient
// absorbed empirically (tests: exact k-sparse recovery, 200 seeds). Odd r makes the
// median an actual counter, so a coordinate whose buckets are empty in most rows is estimated as
// exactly 0 (exact recovery of k-sparse x).
// r_bit: a heavy coordinate is found when it dominates its bucket in one bit row; each row
// fails independently with probability ≈ k/b + (per-bit noise), and more heavies need more
// rows for all of them to be found.
//
// Seeds: the CountSketch is CountSketch(r, b, derive_seed(seed, 10, 0), columns, n), so its
// hashes never coincide with a plain CountSketch built from the same user seed.
//
// Serialized payload of SparseRecoveryMatrix (kind sparse_recovery_matrix = 6; SparseRecovery
// writes the same payload under kind sparse_recovery = 5), see serialize.hpp for the frame:
//   u64 n | u64 columns | u64 k | f64 eps | f64 delta | u64 rows | u64 buckets | u64 bit_rows
//   u64 bits | u64 seed | blob: the CountSketch's own framed bytes (u64 length + bytes)
//   | f64[bit_rows·buckets·columns·bits] bit counters in (row, bucket, column, bit) order
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"
#include "streamattn/core/serialize.hpp"
#include "streamattn/recovery/sparse_vector.hpp"
#include "streamattn/sketch/count_sketch.hpp"

namespace streamattn {

enum class DecodeMethod { standard, sublinear };

/// "standard" / "sublinear" -> DecodeMethod; std::invalid_argument otherwise.
DecodeMethod parse_decode_method(const std::string& name);

/// Sizes of a sparse-recovery sketch, from the rule above (or explicit overrides).
struct SparseRecoveryPlan {
  std::uint64_t n = 0;  ///< vector length
  Index columns = 1;    ///< columns of the sketched n x columns matrix
  Index k = 0;          ///< sparsity of the answer
  double eps = 0;       ///< approximation ε
  double delta = 0;     ///< failure probability δ
  Index rows = 0;       ///< r, CountSketch rows
  Index buckets = 0;    ///< b, buckets per row
  Index bit_rows = 0;   ///< r_bit, rows that carry bit counters
  int bits = 0;         ///< L = ceil(log2 n), bit counters per bucket

  /// The sizing rule in words.
  static constexpr const char* rule =
      "buckets = ceil(8 k / eps); rows = max(7, 2 ceil(ln(n/delta) / ln(buckets/(2k))) - 1); "
      "bit_rows = min(rows, 3 + ceil(log2(k)/2)); bits = ceil(log2 n)";

  /// The documented sizing rule.
  /// @param n      length of x, 1 .. 2^61 - 1
  /// @param k      sparsity, 1 .. n
  /// @param eps    ε in (0, 1]
  /// @param delta  δ in (0, 1)
  /// @param columns number of columns sketched with shared hashes
  static SparseRecoveryPlan make(std::uint64_t n, Index k, double eps, double delta = 0.01, Index columns = 1);

  /// A copy with rows / buckets / bit_rows replaced by the given values (0 keeps the rule's).
  SparseRecoveryPlan with_sizes(Index rows, Index buckets, Index bit_rows) const;

  std::size_t count_sketch_bytes() const;  ///< CountSketch counters + hash coefficients
  std::size_t bit_bytes() const;           ///< bit-testing counters (the sublinear decoder's extra space)
  std::size_t nbytes() const { return count_sketch_bytes() + bit_bytes(); }
  std::string repr() const;

  /// Throws std::invalid_argument naming the first out-of-range field.
  void validate() const;
};

/// Sparse recovery of every column of an n x columns matrix streamed by rows, with one shared
/// hash across columns (used for the attention output T̃ in the streaming algorithm).
class SparseRecoveryMatrix {
 public:
  static constexpr std::uint64_t max_n = CountSketch::max_dim;

  /// @param n       rows of the sketched matrix (length of each column)
  /// @param columns number of columns c
  /// @param k, eps, delta  recovery target, sized by SparseRecoveryPlan::make
  /// @param seed    64-bit seed of every hash function
  SparseRecoveryMatrix(std::uint64_t n, Index columns, Index k, double eps, double delta = 0.01,
                       std::uint64_t seed = 0);
  /// From an explicit plan (e.g. with overridden sizes).
  explicit SparseRecoveryMatrix(const SparseRecoveryPlan& plan, std::uint64_t seed = 0);
  /// The sketch of a stream's n output rows (columns = dv), sized by SparseRecoveryPlan::make.
  static SparseRecoveryMatrix planned(std::uint64_t n, Index columns, Index k, double eps, double delta,
                                      std::uint64_t seed);

  const SparseRecoveryPlan& plan() const { return plan_; }
  std::uint64_t n() const { return plan_.n; }
  Index columns() const { return plan_.columns; }
  Index k() const { return plan_.k; }
  std::uint64_t seed() const { return seed_; }
  /// The CountSketch whose median estimates both decoders rank.
  const CountSketch& count_sketch() const { return count_sketch_; }
  /// A copy of the bit counters in the payload's (bit row, bucket, column, bit) order (held
  /// internally in (bit row, bucket, bit, column) order).
  std::vector<double> bit_counters() const;

  /// Turnstile update X[indices[i], :] += values[i, :] (values is m x columns).
  void update(const std::int64_t* indices, Index m, const MatrixRef<float>& values);
  void update(const std::int64_t* indices, Index m, const MatrixRef<double>& values);

  /// Adds rows start .. start+X.rows()-1 of the sketched matrix.
  void update_rows(std::uint64_t start, const MatrixRef<float>& X);
  void update_rows(std::uint64_t start, const MatrixRef<double>& X);

  /// Adds the counters of a sketch with the same plan and seed (the sketch of both streams).
  void merge(const SparseRecoveryMatrix& other);
  /// Throws std::invalid_argument naming what differs, unless `other` could be merged.
  void require_compatible(const SparseRecoveryMatrix& other) const;

  /// One k-sparse vector per column.
  /// @param threads  worker threads for the standard decoder (0 = hardware concurrency)
  std::vector<SparseVector> decode(DecodeMethod method = DecodeMethod::standard, int threads = 0) const;
  /// Decodes a single column.
  SparseVector decode_column(Index column, DecodeMethod method = DecodeMethod::standard, int threads = 0) const;

  /// Median estimates of X[indices[i], :] (m x columns).
  RowMatrix<double> estimate(const std::int64_t* indices, Index m) const;

  std::size_t nbytes() const;
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static SparseRecoveryMatrix from_bytes(const std::uint8_t* data, std::size_t size);

  /// Payload writer/reader shared with SparseRecovery (which frames it under its own kind).
  void write_payload(ByteWriter& w) const;
  static SparseRecoveryMatrix read_payload(ByteReader& r);

 private:
  template <class T>
  void update_impl(const std::int64_t* indices, Index m, const MatrixRef<T>& values);
  template <class T>
  void update_rows_impl(std::uint64_t start, const MatrixRef<T>& X);
  template <class KeyAt, class T>
  void add_window(KeyAt key_at, Index first, std::size_t m, const MatrixRef<T>& values, bool consecutive);

  std::vector<SparseVector> decode_standard(Index c0, Index c1, int threads) const;
  SparseVector decode_sublinear(Index column) const;

  SparseRecoveryPlan plan_;
  std::uint64_t seed_;
  CountSketch count_sketch_;
  std::vector<double> bit_counters_;  // (bit row, bucket, bit, column) order
  bool negative_zero_bits_ = false;   // a bit counter read from bytes is -0.0 (updates never make one)
};

/// Sparse recovery of one vector x ∈ R^n (a SparseRecoveryMatrix with one column).
class SparseRecovery {
 public:
  static constexpr std::uint64_t max_n = SparseRecoveryMatrix::max_n;

  SparseRecovery(std::uint64_t n, Index k, double eps, double delta = 0.01, std::uint64_t seed = 0);
  explicit SparseRecovery(const SparseRecoveryPlan& plan, std::uint64_t seed = 0);

  const SparseRecoveryPlan& plan() const { return matrix_.plan(); }
  std::uint64_t n() const { return matrix_.n(); }
  Index k() const { return matrix_.k(); }
  std::uint64_t seed() const { return matrix_.seed(); }
  const CountSketch& count_sketch() const { return matrix_.count_sketch(); }
  const SparseRecoveryMatrix& matrix() const { return matrix_; }

  /// Turnstile update x[indices[i]] += values[i].
  void update(const std::int64_t* indices, Index m, const VectorRef<float>& values);
  void update(const std::int64_t* indices, Index m, const VectorRef<double>& values);
  /// x[start : start + len(values)] += values.
  void update_dense(std::uint64_t start, const VectorRef<float>& values);
  void update_dense(std::uint64_t start, const VectorRef<double>& values);

  void merge(const SparseRecovery& other) { matrix_.merge(other.matrix_); }
  SparseVector decode(DecodeMethod method = DecodeMethod::standard, int threads = 0) const {
    return matrix_.decode_column(0, method, threads);
  }
  /// Median estimates of x[indices].
  std::vector<double> estimate(const std::int64_t* indices, Index m) const;

  std::size_t nbytes() const { return matrix_.nbytes(); }
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static SparseRecovery from_bytes(const std::uint8_t* data, std::size_t size);

 private:
  explicit SparseRecovery(SparseRecoveryMatrix m) : matrix_(std::move(m)) {}
  SparseRecoveryMatrix matrix_;
};

}  // namespace streamattn
