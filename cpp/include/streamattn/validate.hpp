// streamattn/validate.hpp — boundary checks on numeric input (finite values, shapes).
#pragma once

#include <cmath>
#include <string>

#include "streamattn/common.hpp"

namespace streamattn {

/// Throws std::invalid_argument naming the first non-finite entry of `x` as `name[row, col]`.
template <class T>
void require_finite(const MatrixRef<T>& x, const char* name) {
  if (x.allFinite()) return;
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = 0; j < x.cols(); ++j) {
      const T v = x(i, j);
      if (!std::isfinite(v)) {
        throw std::invalid_argument(message(name, " has a non-finite value (", v, ") at row ", i,
                                            ", column ", j, "; remove NaN/Inf before streaming"));
      }
    }
  }
}

/// Same for a vector: names `name[i]`.
template <class T>
void require_finite(const VectorRef<T>& x, const char* name) {
  if (x.allFinite()) return;
  for (Index i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw std::invalid_argument(message(name, " has a non-finite value (", x[i], ") at index ", i,
                                          "; remove NaN/Inf before streaming"));
    }
  }
}

/// Throws unless `x` has exactly `cols` columns.
template <class T>
void require_cols(const MatrixRef<T>& x, Index cols, const char* name) {
  require(x.cols() == cols, name, " must have ", cols, " columns, got ", x.cols());
}

}  // namespace streamattn
