// streamattn/sketch/count_sketch.hpp — CountSketch (Charikar, Chen, Farach-Colton 2002), implicit.
//
// A CountSketch with r rows and b buckets sketches a vector x in R^dim (or an dim x c matrix,
// column by column with the same hashes) into r*b (times c) counters:
//     table[row, h_row(i), :] += s_row(i) * x[i, :]
// with h_row a 2-wise independent bucket hash and s_row a 4-wise independent sign hash
// (KWiseHash). Nothing of size dim is stored: the hashes are evaluated on the fly.
//
// Seeds: h_row = KWiseHash(2, derive_seed(seed, 0, row)), s_row = KWiseHash(4, derive_seed(seed, 1, row)).
//
// The sketch is linear: sketch(x + y) = sketch(x) + sketch(y); merge() adds the counters of a
// sketch with identical parameters and seed. Counters are float64 whatever the input type.
//
// Serialized payload (see serialize.hpp for the frame): rows u64, buckets u64, columns u64,
// dim u64, seed u64, then rows*buckets*columns f64 counters in (row, bucket, column) order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"
#include "streamattn/hash/kwise_hash.hpp"

namespace streamattn {

class CountSketch {
 public:
  /// Largest supported dimension: indices are hashed in GF(2^61 - 1) and must not alias.
  static constexpr std::uint64_t max_dim = (std::uint64_t{1} << 61) - 1;

  /// @param rows     number of independent rows r (>= 1)
  /// @param buckets  buckets per row b (1 .. 2^32-1)
  /// @param seed     64-bit seed of every hash function
  /// @param columns  c, number of columns of the sketched matrix (1 for a vector)
  /// @param dim      declared length of the sketched vector: indices must lie in [0, dim)
  CountSketch(Index rows, Index buckets, std::uint64_t seed, Index columns = 1, std::uint64_t dim = max_dim);

  Index rows() const { return rows_; }
  Index buckets() const { return buckets_; }
  Index columns() const { return columns_; }
  std::uint64_t dim() const { return dim_; }
  std::uint64_t seed() const { return seed_; }

  /// Turnstile update of a vector stream: x[indices[i], :] += values[i, :].
  /// values is n x columns (a column vector when columns == 1).
  void update(const std::int64_t* indices, Index n, const MatrixRef<float>& values);
  void update(const std::int64_t* indices, Index n, const MatrixRef<double>& values);

  /// Adds rows start .. start+X.rows()-1 of the sketched dim x columns matrix.
  void update_rows(std::uint64_t start, const MatrixRef<float>& X);
  void update_rows(std::uint64_t start, const MatrixRef<double>& X);

  /// Median-of-rows estimate of x[indices[i], :]; out is n x columns.
  RowMatrix<double> estimate(const std::int64_t* indices, Index n) const;

  /// Adds the counters of `other`; throws std::invalid_argument unless parameters and seed match.
  void merge(const CountSketch& other);

  /// Counters, (row, bucket, column) order.
  const std::vector<double>& table() const { return table_; }

  /// The hashes of one row (0 .. rows() - 1; std::invalid_argument otherwise).
  const KWiseHash& bucket_hash(Index row) const;
  const KWiseHash& sign_hash(Index row) const;

  /// Bytes held by the counters and hash coefficients.
  std::size_t nbytes() const;
  std::string repr() const;

  std::vector<std::uint8_t> to_bytes() const;
  static CountSketch from_bytes(const std::uint8_t* data, std::size_t n);

  /// Throws std::invalid_argument naming what differs, unless `other` could be merged.
  void require_compatible(const CountSketch& other) const;

  /// Kernel (no validation): for sketch row r and keys, fill bucket indices and signs.
  void hash_row(Index r, const std::uint64_t* keys, std::size_t n, std::int64_t* bucket_out, double* sign_out) const;

  /// Kernel (no validation): for i < m, adds signs[i] * values.row(first + i) to the counters of
  /// sketch row r at bucket buckets[i] (the row's hashes of m keys, as hash_row gives them).
  void add_to_row(Index r, const std::int64_t* buckets, const double* signs, std::size_t m,
                  const MatrixRef<float>& values, Index first);
  void add_to_row(Index r, const std::int64_t* buckets, const double* signs, std::size_t m,
                  const MatrixRef<double>& values, Index first);

 private:
  template <class T>
  void update_impl(const std::int64_t* indices, Index n, const MatrixRef<T>& values);
  template <class T>
  void update_rows_impl(std::uint64_t start, const MatrixRef<T>& X);
  template <class T>
  void add_to_row_impl(Index r, const std::int64_t* bkt, const double* sgn, std::size_t m, const MatrixRef<T>& values,
                       Index first);

  Index rows_, buckets_, columns_;
  std::uint64_t dim_, seed_;
  std::vector<KWiseHash> bucket_hashes_, sign_hashes_;
  std::vector<double> table_;
};

/// Median of v[0..n-1] (mean of the two middle values for even n); reorders v.
double median_inplace(double* v, std::size_t n);

}  // namespace streamattn
