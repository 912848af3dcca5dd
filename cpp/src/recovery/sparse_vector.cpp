#include "streamattn/recovery/sparse_vector.hpp"

#include <algorithm>

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

double SparseVector::squared_norm() const {
  double s = 0.0;
  for (double v : values) s += v * v;
  return s;
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
