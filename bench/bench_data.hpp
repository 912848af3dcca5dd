// Fixed benchmark inputs shared by the Google Benchmark files: deterministic, no RNG state.
#pragma once

#include "streamattn/core/common.hpp"

namespace streamattn::bench {

/// rows x cols entries in [-0.5, 0.5): ((i*31 + j*17 + 7*salt) mod 97) / 97 - 1/2.
template <class T>
RowMatrix<T> fixed_rows(Index rows, Index cols, int salt = 0) {
  RowMatrix<T> x(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) x(i, j) = static_cast<T>(((i * 31 + j * 17 + salt * 7) % 97) / 97.0 - 0.5);
  return x;
}

}  // namespace streamattn::bench
