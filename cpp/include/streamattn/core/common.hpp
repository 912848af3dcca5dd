// streamattn/core/common.hpp — shared types and the argument-checking convention.
//
// Every public entry point of the C++ API validates its arguments and throws
// std::invalid_argument with a message that names the argument and says what to change.
// Kernels behind those entry points do not validate again.
//
// Matrix arguments: public methods take MatrixRef<float> and MatrixRef<double> overloads
// (non-template, so Eigen matrices, maps and blocks convert implicitly) and forward to one
// private template. Accumulation is float64 whatever the input type.
#pragma once

#include <Eigen/Core>

#include <charconv>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace streamattn {

using Index = std::int64_t;

/// Row-major dense matrix (the layout of a C-contiguous numpy array).
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Read-only view of any strided matrix (C order, F order or sliced), no copy.
template <class T>
using MatrixRef = Eigen::Ref<const RowMatrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// Read-only view of any strided vector.
template <class T>
using VectorRef = Eigen::Ref<const Eigen::Matrix<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;

namespace detail {
/// A float or double as the shortest text that reads back to the same value ("0.3", not
/// "0.29999999999999999"): exact and readable.
inline void put(std::ostringstream& os, double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  os.write(buf, r.ptr - buf);
}
inline void put(std::ostringstream& os, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  os.write(buf, r.ptr - buf);
}
template <class T>
void put(std::ostringstream& os, T&& v) {
  os << std::forward<T>(v);
}

inline void append_all(std::ostringstream&) {}
template <class First, class... Rest>
void append_all(std::ostringstream& os, First&& first, Rest&&... rest) {
  put(os, std::forward<First>(first));
  append_all(os, std::forward<Rest>(rest)...);
}
}  // namespace detail

/// Builds a message from its parts (streamed with operator<<; floats and doubles in their
/// shortest exact form).
template <class... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream os;
  os.precision(17);
  detail::append_all(os, std::forward<Parts>(parts)...);
  return os.str();
}

/// Throws std::invalid_argument(message(parts...)) unless `ok`.
template <class... Parts>
void require(bool ok, Parts&&... parts) {
  if (!ok) throw std::invalid_argument(message(std::forward<Parts>(parts)...));
}

}  // namespace streamattn
