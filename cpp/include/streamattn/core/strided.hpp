// streamattn/core/strided.hpp — non-owning views of float arrays as array libraries lay them
// out (a base pointer, a dtype, a shape and strides in elements: numpy arrays, torch tensors),
// the rows of one 2-D slice of such an array, reading those rows in place or packing them into a
// contiguous tile, and the dtype rule of the rows a stream returns.
//
// Strides: an axis longer than 1 needs a stride > 0 (a negative or zero stride — reversed or
// broadcast views — is refused; copy such arrays first); the stride of an axis of length 0 or 1
// is never used, so any value is accepted there (libraries report anything for them).
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "streamattn/core/common.hpp"

namespace streamattn {

enum class ScalarType { float32, float64 };

/// "float32" or "float64".
const char* scalar_type_name(ScalarType t);

/// sizeof of one element.
inline std::size_t scalar_size(ScalarType t) { return t == ScalarType::float32 ? 4 : 8; }

template <class T>
constexpr ScalarType scalar_type_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  return std::is_same_v<T, float> ? ScalarType::float32 : ScalarType::float64;
}

/// The dtype of the rows a stream returns for inputs of these dtypes: float32 when every input
/// is float32, otherwise float64 (the products accumulate in float64 either way). The same rule
/// picks the type inputs are computed in: float32 only when all are float32.
ScalarType output_dtype(const std::vector<ScalarType>& inputs);

/// An N-D float array: data points at element [0, ..., 0]; strides in elements, one per axis.
template <class Pointer>
struct BasicStridedArray {
  Pointer data = nullptr;
  ScalarType dtype = ScalarType::float64;
  std::vector<Index> shape;
  std::vector<Index> strides;

  Index rank() const { return static_cast<Index>(shape.size()); }
  Index size() const {
    Index n = 1;
    for (Index s : shape) n *= s;
    return n;
  }
  /// Throws std::invalid_argument naming `name` unless shape and strides have one entry per
  /// axis, every extent is >= 0, every axis longer than 1 of an array with elements has a
  /// stride > 0 (an empty array reads nothing: exporters such as DLPack give it zero strides),
  /// and data is not null when the array has elements.
  void check(const char* name) const {
    require(strides.size() == shape.size(), name, " has ", shape.size(), " axes but ", strides.size(),
            " strides: pass one stride (in elements) per axis");
    for (std::size_t i = 0; i < shape.size(); ++i)
      require(shape[i] >= 0, name, " has a negative extent (", shape[i], ") on axis ", i);
    const bool empty = size() == 0;
    for (std::size_t i = 0; i < shape.size(); ++i)
      require(empty || shape[i] <= 1 || strides[i] > 0, name, " has stride ", strides[i], " on axis ", i, " (length ",
              shape[i], "): strides must be > 0 (copy reversed or broadcast arrays to a contiguous one first)");
    require(empty || data != nullptr, name, " has ", size(), " elements but no data (null pointer)");
  }
};
using StridedArray = BasicStridedArray<const void*>;
using MutableStridedArray = BasicStridedArray<void*>;

/// A rows x cols slice of a strided array: element (i, j) is at data + i * row_stride +
/// j * col_stride elements. Strides of axes of length <= 1 are normalized (row_stride = cols *
/// col_stride, col_stride = 1), so a slice whose rows follow each other is contiguous().
template <class Pointer>
struct BasicStridedRows {
  Pointer data = nullptr;
  ScalarType dtype = ScalarType::float64;
  Index rows = 0, cols = 0, row_stride = 0, col_stride = 1;

  BasicStridedRows() = default;
  BasicStridedRows(Pointer p, ScalarType t, Index r, Index c, Index rs, Index cs)
      : data(p), dtype(t), rows(r), cols(c), col_stride(c > 1 ? cs : 1) {
    row_stride = r > 1 ? rs : c * col_stride;
    if (row_stride == 0) row_stride = 1;  // zero-size slices: Eigen wants positive strides
  }
  bool contiguous() const { return col_stride == 1 && row_stride == cols; }
  /// Rows a .. a + r - 1 of a slice of element type T, as an Eigen map (no copy).
  template <class T>
  Eigen::Map<std::conditional_t<std::is_const_v<std::remove_pointer_t<Pointer>>, const RowMatrix<T>, RowMatrix<T>>, 0,
             Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>
  map(Index a, Index r) const {
    using Elem = std::conditional_t<std::is_const_v<std::remove_pointer_t<Pointer>>, const T, T>;
    return {static_cast<Elem*>(data) + a * row_stride, r, cols,
            Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(row_stride, col_stride)};
  }
};
using StridedRows = BasicStridedRows<const void*>;
using MutableStridedRows = BasicStridedRows<void*>;

namespace detail {
/// d[j] = s[j * stride] for j < n, converted (a plain loop the compiler vectorizes for stride 1).
template <class S, class D>
void copy_row(const S* s, Index n, Index stride, D* d) {
  if (stride == 1) {
    for (Index j = 0; j < n; ++j) d[j] = static_cast<D>(s[j]);
  } else {
    for (Index j = 0; j < n; ++j) d[j] = static_cast<D>(s[j * stride]);
  }
}
}  // namespace detail

/// Rows a .. a + r - 1 of `src` as a T matrix: a view of src itself when it is of type T and each
/// row's entries are adjacent (column stride 1, any row stride: no copy), else packed (and
/// converted) row by row into `tile`, resized to r x cols.
template <class T>
Eigen::Map<const RowMatrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> rows_of(const StridedRows& src,
                                                                                         Index a, Index r,
                                                                                         RowMatrix<T>& tile) {
  if (src.dtype == scalar_type_of<T>() && src.col_stride == 1) return src.map<T>(a, r);
  tile.resize(r, src.cols);
  for (Index i = 0; i < r; ++i) {
    T* d = tile.data() + i * src.cols;
    if (src.dtype == ScalarType::float32)
      detail::copy_row(static_cast<const float*>(src.data) + (a + i) * src.row_stride, src.cols, src.col_stride, d);
    else
      detail::copy_row(static_cast<const double*>(src.data) + (a + i) * src.row_stride, src.cols, src.col_stride, d);
  }
  return {tile.data(), r, src.cols, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(src.cols > 0 ? src.cols : 1, 1)};
}

/// Writes the r x cols float64 rows `rows` into rows a .. a + r - 1 of `dst` (in dst's dtype).
inline void write_rows(const RowMatrix<double>& rows, const MutableStridedRows& dst, Index a) {
  for (Index i = 0; i < rows.rows(); ++i) {
    const double* s = rows.data() + i * rows.cols();
    if (dst.dtype == ScalarType::float32) {
      float* d = static_cast<float*>(dst.data) + (a + i) * dst.row_stride;
      if (dst.col_stride == 1)
        detail::copy_row(s, rows.cols(), 1, d);
      else
        for (Index j = 0; j < rows.cols(); ++j) d[j * dst.col_stride] = static_cast<float>(s[j]);
    } else {
      double* d = static_cast<double*>(dst.data) + (a + i) * dst.row_stride;
      for (Index j = 0; j < rows.cols(); ++j) d[j * dst.col_stride] = s[j];
    }
  }
}

}  // namespace streamattn
