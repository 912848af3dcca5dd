// Conversion and checking of Python arguments at the module boundary. Thin by design: this
// file turns Python objects into C++ views (no copies where the layout allows) and raises
// TypeError/ValueError naming the argument; all numeric checks beyond dtype and ndim are the
// C++ API's (it throws std::invalid_argument, which pybind11 turns into ValueError).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/attention/prefix_state.hpp"
#include "streamattn/core/common.hpp"
#include "streamattn/core/strided.hpp"

namespace streamattn::py_bind {

namespace py = pybind11;

std::string type_name(py::handle h);
std::string dtype_name(const py::array& a);

/// A Python integer (or numpy integer, not bool) in [lo, hi]; TypeError/ValueError naming `name`.
std::int64_t to_int(py::handle h, const char* name, std::int64_t lo, std::int64_t hi);
/// An integer as int64 (ranges are the C++ API's to check).
std::int64_t to_index(py::handle h, const char* name);
/// An integer as int (degrees, thread counts; ranges are the C++ API's to check).
int to_cint(py::handle h, const char* name);
/// A positive integer as int64 (for optional sizes whose 0 means "the rule's").
std::int64_t to_positive(py::handle h, const char* name);
/// A non-negative integer as uint64 (positions, lengths; upper limits are the C++ API's).
std::uint64_t to_count(py::handle h, const char* name);
/// None or a real number: the optional score scale (the default and the checks are the C++ API's).
std::optional<double> opt_scale(py::handle h);
/// None (0: the object's default) or a positive integer: a max_bytes memory limit.
std::uint64_t opt_max_bytes(py::handle h);
/// A seed: an integer in [0, 2^64).
std::uint64_t to_seed(py::handle h, const char* name);
/// A real number (int or float, not bool), finite.
double to_float(py::handle h, const char* name);
/// A bool (Python bool or numpy.bool_ only: None, ints, strings and arrays are a TypeError).
bool to_bool(py::handle h, const char* name);
/// A str; TypeError naming `name` otherwise.
std::string to_str(py::handle h, const char* name);
/// compute=: None (the input's dtype) or a str parsed by parse_compute_dtype.
ComputeDtype to_compute(py::handle h);
/// None for ComputeDtype::input, else "float32" / "float64".
py::object compute_to_py(ComputeDtype c);

/// np.asarray(h) (np.from_dlpack(h) for CPU objects with __dlpack__: torch tensors, no copy) with a
/// check that it is a float32/float64 array of the given ndim (0 = 1 or 2, -1 = 3 or 4).
/// 1-D arrays are viewed as column vectors (n x 1).
py::array float_array(py::handle h, const char* name, int ndim);
/// An array of non-negative integers as uint64 (any integer dtype; negatives are a ValueError).
py::array_t<std::uint64_t, py::array::c_style> uint64_keys(py::handle h, const char* name);
/// An array of integers as int64 (range checks are the C++ API's).
py::array_t<std::int64_t, py::array::c_style> int64_indices(py::handle h, const char* name);

template <class T>
using StridedMap = Eigen::Map<const RowMatrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// A view of a float array of dtype T (checked by float_array), 1-D as n x 1, no copy when the
/// strides are positive multiples of the item size and the data is aligned; otherwise (negative
/// strides, zero strides of broadcast arrays, odd strides, misaligned buffers) the array is first
/// copied to C order (`owner` keeps whatever backs the view alive). Eigen reads a zero stride as
/// "contiguous", so a broadcast view must never reach it.
template <class T>
StridedMap<T> view(py::array& owner) {
  // A view into a byte buffer at an odd offset: T loads through a misaligned pointer are UB.
  if (reinterpret_cast<std::uintptr_t>(owner.data()) % alignof(T) != 0)
    owner = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(
        py::module_::import("numpy").attr("array")(owner, py::arg("copy") = true));
  if (owner.ndim() == 1) {
    const auto n = static_cast<Index>(owner.shape(0));
    const auto s = owner.strides(0);
    if (n > 1 && (s <= 0 || s % static_cast<py::ssize_t>(sizeof(T)) != 0))
      owner = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(owner);
    const Index st = n > 0 ? static_cast<Index>(owner.strides(0) / static_cast<py::ssize_t>(sizeof(T))) : 1;
    return StridedMap<T>(static_cast<const T*>(owner.data()), n, 1,
                         Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(st, 1));
  }
  const auto r = static_cast<Index>(owner.shape(0)), c = static_cast<Index>(owner.shape(1));
  auto s0 = owner.strides(0), s1 = owner.strides(1);
  const auto it = static_cast<py::ssize_t>(sizeof(T));
  if (r * c > 0 && ((r > 1 && s0 <= 0) || (c > 1 && s1 <= 0) || s0 < 0 || s1 < 0 || s0 % it != 0 || s1 % it != 0))
    owner = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(owner);
  s0 = owner.strides(0);
  s1 = owner.strides(1);
  Index outer = r * c > 0 ? static_cast<Index>(s0 / it) : std::max<Index>(c, 1);
  Index inner = r * c > 0 ? static_cast<Index>(s1 / it) : 1;
  if (r <= 1 && r * c > 0) outer = c * inner;  // numpy may report any stride for a length-1 axis
  if (c <= 1 && r * c > 0) inner = 1;
  return StridedMap<T>(static_cast<const T*>(owner.data()), r, c,
                       Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(outer, inner));
}

/// Calls f(view) with the float32 or float64 view of `arr` (as checked by float_array).
template <class F>
decltype(auto) with_float(py::array& arr, F&& f) {
  if (arr.dtype().itemsize() == 4) {
    const MatrixRef<float> ref(view<float>(arr));
    return f(ref);
  }
  const MatrixRef<double> ref(view<double>(arr));
  return f(ref);
}

/// The `from_dlpack` of the library an argument came from (torch.from_dlpack for a torch
/// tensor), or None for numpy arrays and objects without DLPack.
py::object dlpack_importer(py::handle like);
/// `out` as the caller's kind of array: shared through DLPack into the library of `like` (a
/// torch tensor for a torch tensor argument; no copy), or `out` itself.
py::object callers_kind(py::array out, py::handle like);
/// A C-contiguous float32 (f32) or float64 array of m's values, written here.
py::array to_numpy_as(const RowMatrix<double>& m, bool f32);
/// The dtype of a float array checked by float_array.
inline ScalarType scalar_type(const py::array& a) {
  return a.dtype().itemsize() == 4 ? ScalarType::float32 : ScalarType::float64;
}
/// True when the C++ rule (output_dtype) gives float32 rows for inputs of these arrays' dtypes.
inline bool float32_out(std::initializer_list<const py::array*> arrays) {
  std::vector<ScalarType> types;
  for (const py::array* a : arrays) types.push_back(scalar_type(*a));
  return output_dtype(types) == ScalarType::float32;
}
/// A float array (checked by float_array) as a StridedArray: no copy when its strides are
/// positive multiples of the item size and its data is aligned; otherwise `owner` is first
/// replaced by a C-contiguous copy (reversed, broadcast or misaligned views).
StridedArray strided_array(py::array& owner);
/// A new, C-contiguous float32 or float64 array of the given shape, and a view to write it.
py::array new_float_array(ScalarType dtype, const std::vector<Index>& shape);
MutableStridedArray strided_out(py::array& out);

/// A C-contiguous float64 numpy array copied from an Eigen row-major matrix.
py::array_t<double> to_numpy(const RowMatrix<double>& m);
py::array_t<double> to_numpy_1d(const std::vector<double>& v);
py::array_t<double> to_numpy_1d(const Eigen::VectorXd& v);

/// bytes -> pointer/size without copying.
struct ByteView {
  const std::uint8_t* data;
  std::size_t size;
};
ByteView byte_view(const py::bytes& b);
py::bytes to_pybytes(const std::vector<std::uint8_t>& v);

}  // namespace streamattn::py_bind

namespace streamattn::py_bind {
/// bytes, bytearray or memoryview -> bytes; TypeError otherwise.
py::bytes as_bytes(py::handle h, const char* name);
}  // namespace streamattn::py_bind

namespace streamattn::py_bind {
/// Calls f(a, b, c) with MatrixRef views of three float arrays of one common type: float32 if
/// all three are float32, else float64 (float32 arrays are then converted).
template <class F>
decltype(auto) with_float3(py::array& a, py::array& b, py::array& c, F&& f) {
  if (a.dtype().itemsize() == 4 && b.dtype().itemsize() == 4 && c.dtype().itemsize() == 4) {
    const MatrixRef<float> ra(view<float>(a)), rb(view<float>(b)), rc(view<float>(c));
    return f(ra, rb, rc);
  }
  for (py::array* x : {&a, &b, &c})
    if (x->dtype().itemsize() == 4) *x = py::array_t<double, py::array::forcecast>::ensure(*x);
  const MatrixRef<double> ra(view<double>(a)), rb(view<double>(b)), rc(view<double>(c));
  return f(ra, rb, rc);
}

/// Same for two arrays.
template <class F>
decltype(auto) with_float2(py::array& a, py::array& b, F&& f) {
  if (a.dtype().itemsize() == 4 && b.dtype().itemsize() == 4) {
    const MatrixRef<float> ra(view<float>(a)), rb(view<float>(b));
    return f(ra, rb);
  }
  for (py::array* x : {&a, &b})
    if (x->dtype().itemsize() == 4) *x = py::array_t<double, py::array::forcecast>::ensure(*x);
  const MatrixRef<double> ra(view<double>(a)), rb(view<double>(b));
  return f(ra, rb);
}
}  // namespace streamattn::py_bind

namespace streamattn::py_bind {
/// Adds to_bytes(), the static from_bytes(data) and pickling (through the same bytes) to a bound
/// class T that has `std::vector<uint8_t> to_bytes() const` and `static T from_bytes(ptr, n)`.
template <class T>
void def_bytes(py::class_<T>& c, const char* what) {
  c.def(
       "to_bytes", [](const T& s) { return to_pybytes(s.to_bytes()); },
       (std::string("Versioned, checksummed bytes of the ") + what + ".").c_str())
      .def_static(
          "from_bytes",
          [](py::handle b) {
            py::bytes bb = as_bytes(b, "data");
            const ByteView v = byte_view(bb);
            return T::from_bytes(v.data, v.size);
          },
          py::arg("data"),
          (std::string("Rebuild the ") + what + " from to_bytes() output; ValueError on corrupted bytes.").c_str())
      .def(py::pickle([](const T& s) { return to_pybytes(s.to_bytes()); },
                      [](py::bytes b) {
                        const ByteView v = byte_view(b);
                        return T::from_bytes(v.data, v.size);
                      }));
}

/// Adds as_dict(), __getitem__ (the keys of as_dict) and __repr__ (T::repr) to a read-only
/// result class; as_dict(t) builds the dict of its fields.
template <class T, class AsDict>
void def_result(py::class_<T>& c, AsDict as_dict) {
  c.def(
       "as_dict", [as_dict](const T& t) { return as_dict(t); }, "Every field as a dict (JSON-ready values).")
      .def(
          "__getitem__",
          [as_dict](const T& t, const std::string& key) {
            py::dict d = as_dict(t);
            if (!d.contains(key)) throw py::key_error(key);
            return py::object(d[key.c_str()]);
          },
          py::arg("key"), "The field `key` (same as the attribute).")
      .def("__repr__", [](const T& t) { return t.repr(); });
}

/// A 1-D float array (float32/float64) as a C-contiguous float64 array: per-token log-gates.
/// Values and length are the C++ API's to check.
py::array_t<double, py::array::c_style | py::array::forcecast> gate_vector(py::handle h, const char* name = "log_gate");

/// An optional log_gate argument: None, or gate_vector(h) viewed as a VectorRef (no copy).
class GateVector {
 public:
  explicit GateVector(py::handle h) {
    if (h.is_none()) return;
    array_ = gate_vector(h);
    ref_.emplace(Eigen::Map<const Eigen::VectorXd>(array_.data(), array_.shape(0)));
  }
  /// The view, or nullptr for None.
  const VectorRef<double>* get() const { return ref_ ? &*ref_ : nullptr; }

 private:
  py::array_t<double, py::array::c_style | py::array::forcecast> array_;
  std::optional<VectorRef<double>> ref_;
};
}  // namespace streamattn::py_bind
