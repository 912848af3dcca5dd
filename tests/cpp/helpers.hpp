// Shared helpers of the C++ tests: random matrices with a fixed seed, the Taylor polynomial,
// relative differences. Header-only, included by the tests of every layer.
#pragma once

#include <cstdint>
#include <random>

#include "streamattn/core/common.hpp"

namespace streamattn::test {

/// rows x cols entries N(0, sd^2), drawn in row-major order from rng.
inline RowMatrix<double> normal_matrix(Index rows, Index cols, std::mt19937_64& rng, double sd = 1.0) {
  std::normal_distribution<double> dist(0.0, sd);
  RowMatrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
  return m;
}

/// Same, from a fresh generator seeded with `seed`.
inline RowMatrix<double> normal_matrix(Index rows, Index cols, std::uint64_t seed, double sd = 1.0) {
  std::mt19937_64 rng(seed);
  return normal_matrix(rows, cols, rng, sd);
}

/// P_g(x) = sum_{p <= g} x^p / p!, summed in order of p.
inline double taylor_poly(double x, int g) {
  double term = 1.0, sum = 1.0;
  for (int p = 1; p <= g; ++p) {
    term *= x / p;
    sum += term;
  }
  return sum;
}

/// max |a - b| / max |b|.
inline double max_rel_diff(const RowMatrix<double>& a, const RowMatrix<double>& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

}  // namespace streamattn::test
