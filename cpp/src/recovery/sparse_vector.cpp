#include "streamattn/recovery/sparse_vector.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "streamattn/core/validate.hpp"

namespace streamattn {

double SparseVector::at(std::int64_t i) const {
  const auto it = std::lower_bound(indices.begin(), indices.end(), i);
  if (it == indices.end() || *it != i) return 0.0;
  return values[static_cast<std::size_t>(it - indices.begin())];
}

std::vector<double> SparseVector::to_dense(std::uint64_t max_entries) const {
  require(n <= max_entries, "to_dense() would allocate ", n, " entries (more than ", max_entries,
          "); use indices and values instead");
  std::vector<double> out(static_cast<std::size_t>(n), 0.0);
  for (std::size_t i = 0; i < indices.size(); ++i) out[static_cast<std::size_t>(indices[i])] = values[i];
  return out;
}

SparseVector SparseVector::make(std::uint64_t n, std::vector<std::int64_t> indices, std::vector<double> values) {
  SparseVector v;
  v.n = n;
  v.indices = std::move(indices);
  v.values = std::move(values);
  v.validate();
  return v;
}

void SparseVector::validate() const {
  require(indices.size() == values.size(), "indices and values must have the same length, got ", indices.size(),
          " and ", values.size());
  require(n <= limits::max_position + 1, "n must be in [0, 2^61 - 1], got ", n);
  for (std::size_t i = 0; i < indices.size(); ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < n, "indices[", i, "] = ", indices[i],
            " is outside [0, n = ", n, ")");
    require(i == 0 || indices[i] > indices[i - 1], "indices must be strictly increasing");
    require(std::isfinite(values[i]), "values[", i, "] is not finite (", values[i], ")");
  }
}

std::string SparseVector::repr() const {
  constexpr std::size_t kShown = 6;
  std::ostringstream os;
  os.precision(6);
  os << "SparseVector(n=" << n << ", nnz=" << indices.size() << ", indices=[";
  const std::size_t shown = std::min(indices.size(), kShown);
  for (std::size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << indices[i];
  if (indices.size() > shown) os << ", ...";
  os << "], values=[";
  for (std::size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << values[i];
  if (values.size() > shown) os << ", ...";
  os << "])";
  return os.str();
}

}  // namespace streamattn
