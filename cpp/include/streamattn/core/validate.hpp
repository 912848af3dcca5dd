// streamattn/core/validate.hpp — the checks at the API boundary: named limits, ranges, finite
// values, shapes, the default scale. The C++ entry points run them; the Python bindings only
// convert types, so both APIs refuse the same inputs with the same messages.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "streamattn/core/common.hpp"

namespace streamattn {

/// Named limits of the public API.
namespace limits {
/// d and dv of TaylorFeatures and PolyPrefixState (their memory limit, max_bytes, binds first
/// for any degree >= 1).
constexpr Index max_feature_dim = Index{1} << 24;
/// d and dv of the streams (CausalStream, KVStream, MultiHeadCausalStream) and of plan().
constexpr Index max_stream_dim = Index{1} << 16;
/// Sketch sizes s and columns of the dense sketches; columns of sparse recovery.
constexpr Index max_sketch_size = Index{1} << 24;
/// Stream positions and sketched lengths stay below the hash field's modulus 2^61 - 1.
constexpr std::uint64_t max_position = (std::uint64_t{1} << 61) - 2;
/// Largest max_bytes a memory limit may be set to.
constexpr std::uint64_t max_bytes_cap = std::uint64_t{1} << 62;
/// Heads of a multi-head stream; threads of any pool.
constexpr Index max_heads = 4096;
constexpr int max_threads = 1024;
}  // namespace limits

/// Throws std::invalid_argument("<name> must be in [lo, hi], got v") unless lo <= v <= hi.
inline void require_range(std::int64_t v, std::int64_t lo, std::int64_t hi, const char* name) {
  require(v >= lo && v <= hi, name, " must be in [", lo, ", ", hi, "], got ", v);
}

/// require_range, then returns v (for member initializer lists).
inline std::int64_t checked_range(std::int64_t v, std::int64_t lo, std::int64_t hi, const char* name) {
  require_range(v, lo, hi, name);
  return v;
}

/// The score scale c: `scale` if given (finite, > 0), else 1/sqrt(d), the attention default.
inline double resolve_scale(const std::optional<double>& scale, Index d) {
  if (!scale) return 1.0 / std::sqrt(static_cast<double>(d));
  require(std::isfinite(*scale) && *scale > 0.0, "scale must be finite and > 0, got ", *scale);
  return *scale;
}

/// A memory limit: 0 (the default of the object) or 1 .. limits::max_bytes_cap.
inline void require_max_bytes(std::uint64_t max_bytes) {
  require(max_bytes <= limits::max_bytes_cap, "max_bytes must be in [1, 2^62], got ", max_bytes);
}

/// Largest state one object may allocate (16 GiB): beyond it a constructor refuses with a
/// std::invalid_argument naming the sizes, instead of failing inside the allocator or having
/// the process killed when the zero-filled pages are touched.
constexpr std::uint64_t kMaxStateBytes = std::uint64_t{1} << 34;

/// Throws unless `count` float64 values fit in kMaxStateBytes; `what` names the sizes.
inline void require_state_fits(long double count, const std::string& what, const char* hint = "use smaller sizes") {
  require(count * 8.0L <= static_cast<long double>(kMaxStateBytes), what, " needs ", static_cast<double>(count * 8.0L),
          " bytes of float64 state, over the limit of 2^34 bytes (16 GiB) on one object; ", hint);
}

/// Throws std::invalid_argument naming the first non-finite entry of `x` as `name[row, col]`.
template <class T>
void require_finite(const MatrixRef<T>& x, const char* name) {
  if (x.allFinite()) return;
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = 0; j < x.cols(); ++j) {
      const T v = x(i, j);
      if (!std::isfinite(v)) {
        throw std::invalid_argument(message(name, " has a non-finite value (", v, ") at row ", i, ", column ", j,
                                            "; remove NaN/Inf before streaming"));
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
      throw std::invalid_argument(
          message(name, " has a non-finite value (", x[i], ") at index ", i, "; remove NaN/Inf before streaming"));
    }
  }
}

/// Throws unless `x` has exactly `cols` columns.
template <class T>
void require_cols(const MatrixRef<T>& x, Index cols, const char* name) {
  require(x.cols() == cols, name, " must have ", cols, " columns, got ", x.cols());
}

namespace detail {
/// The sum of squares of a row of n entries `stride` apart, in double, in one pass (four partial
/// sums for stride 1: only compared with a limit, so the order of the additions does not matter).
/// NaN and Inf entries propagate into the sum. Defined here so that the per-row loops of the value
/// checks inline it.
template <class T>
double row_squares(const T* x, Index n, Index stride) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  Index j = 0;
  if (stride == 1) {
    for (; j + 4 <= n; j += 4) {
      const double a = x[j], b = x[j + 1], c = x[j + 2], d = x[j + 3];
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
  }
  for (; j < n; ++j) {
    const double a = x[j * stride];
    s0 += a * a;
  }
  return (s0 + s1) + (s2 + s3);
}
/// Throws unless every log_gate entry is finite and <= 0, naming the first bad one.
void require_log_gate(const VectorRef<double>& log_gate, const char* name = "log_gate");
/// Throws unless every row has c*|x|^2 <= 1e30 (so that no sum of the polynomial method can overflow).
template <class T>
void require_bounded_rows(const MatrixRef<T>& X, double scale, const char* name);
template <class T>
void require_bounded_values(const MatrixRef<T>& V, const char* name);
/// require_finite and require_bounded_rows in one pass (the detailed checks run only on failure).
template <class T>
void require_clean_rows(const MatrixRef<T>& X, double scale, const char* name);
/// require_finite and require_bounded_values in one pass.
template <class T>
void require_clean_values(const MatrixRef<T>& V, const char* name);
/// A stream's keys K (n x d) and values V (n x dv): the shapes, then (values) require_clean_rows
/// on K and require_clean_values on V.
template <class T>
void require_stream_keys(const MatrixRef<T>& K, const MatrixRef<T>& V, Index d, Index dv, double scale,
                         bool values = true);
}  // namespace detail

}  // namespace streamattn
