// streamattn/recovery/sparse_vector.hpp — the result of sparse recovery: a k-sparse vector of length n.
//
// Stored as sorted, distinct int64 indices with their float64 values; n may be as large as
// 2^61 - 1, so nothing of size n is ever allocated unless to_dense() is asked for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"

namespace streamattn {

struct SparseVector {
  /// Length of the vector (the coordinates live in [0, n)).
  std::uint64_t n = 0;
  /// Strictly increasing coordinates of the stored entries.
  std::vector<std::int64_t> indices;
  /// values[i] is the entry at indices[i].
  std::vector<double> values;

  /// Number of stored entries.
  std::size_t size() const { return indices.size(); }

  /// Value at coordinate i (0 when i is not stored); binary search.
  double at(std::int64_t i) const;

  /// Dense copy of length n; throws std::invalid_argument when n exceeds `max_entries`
  /// (so a 2^40-long result is not materialized by accident).
  std::vector<double> to_dense(std::uint64_t max_entries = std::uint64_t{1} << 31) const;

  /// Builds a vector from its parts, checked (see validate()).
  static SparseVector make(std::uint64_t n, std::vector<std::int64_t> indices, std::vector<double> values);

  /// Throws std::invalid_argument unless n <= 2^61 - 1, indices and values have the same length,
  /// indices are strictly increasing inside [0, n) and values are finite.
  void validate() const;

  /// "SparseVector(n=..., nnz=..., indices=[...], values=[...])", long lists elided.
  std::string repr() const;

  bool operator==(const SparseVector& o) const { return n == o.n && indices == o.indices && values == o.values; }
  bool operator!=(const SparseVector& o) const { return !(*this == o); }
};

}  // namespace streamattn
