#include "convert.hpp"

#include <limits>

namespace streamattn::py_bind {

std::string type_name(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }

std::string dtype_name(const py::array& a) { return py::str(a.dtype()); }

namespace {
bool is_bool(py::handle h) {
  if (PyBool_Check(h.ptr())) return true;
  static py::object np_bool = py::module_::import("numpy").attr("bool_");
  return py::isinstance(h, np_bool);
}

bool is_nonscalar_array(py::handle h) {
  return py::isinstance<py::array>(h) && py::reinterpret_borrow<py::array>(h).ndim() != 0;
}

py::int_ as_pyint(py::handle h, const char* name) {
  if (is_bool(h) || !PyIndex_Check(h.ptr()) || is_nonscalar_array(h))
    throw py::type_error(message(name, " must be an integer, got ", type_name(h)));
  PyObject* v = PyNumber_Index(h.ptr());
  if (v == nullptr) {
    PyErr_Clear();
    throw py::type_error(message(name, " must be an integer, got ", type_name(h)));
  }
  return py::reinterpret_steal<py::int_>(v);
}
}  // namespace

std::int64_t to_int(py::handle h, const char* name, std::int64_t lo, std::int64_t hi) {
  py::int_ v = as_pyint(h, name);
  if (v < py::int_(lo) || v > py::int_(hi))
    throw py::value_error(message(name, " must be in [", lo, ", ", hi, "], got ", std::string(py::str(v))));
  return v.cast<std::int64_t>();
}

std::int64_t to_index(py::handle h, const char* name) {
  return to_int(h, name, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
}

int to_cint(py::handle h, const char* name) {
  return static_cast<int>(to_int(h, name, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

std::int64_t to_positive(py::handle h, const char* name) {
  return to_int(h, name, 1, std::numeric_limits<std::int64_t>::max());
}

std::uint64_t to_count(py::handle h, const char* name) {
  return static_cast<std::uint64_t>(to_int(h, name, 0, std::numeric_limits<std::int64_t>::max()));
}

std::optional<double> opt_scale(py::handle h) {
  if (h.is_none()) return std::nullopt;
  return to_float(h, "scale");
}

std::uint64_t opt_max_bytes(py::handle h) {
  if (h.is_none()) return 0;
  return static_cast<std::uint64_t>(to_int(h, "max_bytes", 1, std::numeric_limits<std::int64_t>::max()));
}

std::uint64_t to_seed(py::handle h, const char* name) {
  py::int_ v = as_pyint(h, name);
  if (v < py::int_(0) || v > py::int_(std::numeric_limits<std::uint64_t>::max()))
    throw py::value_error(message(name, " must be in [0, 2**64), got ", std::string(py::str(v))));
  return v.cast<std::uint64_t>();
}

double to_float(py::handle h, const char* name) {
  if (is_bool(h)) throw py::type_error(message(name, " must be a real number, got bool"));
  if (!PyFloat_Check(h.ptr()) && !PyIndex_Check(h.ptr()) && !PyNumber_Check(h.ptr()))
    throw py::type_error(message(name, " must be a real number, got ", type_name(h)));
  if (PyComplex_Check(h.ptr()) || is_nonscalar_array(h))
    throw py::type_error(message(name, " must be a real number, got ", type_name(h)));
  double v;
  try {
    v = py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>();
  } catch (const py::error_already_set&) {
    throw py::type_error(message(name, " must be a real number, got ", type_name(h)));
  }
  if (!std::isfinite(v)) throw py::value_error(message(name, " must be finite, got ", v));
  return v;
}

bool to_bool(py::handle h, const char* name) {
  if (!is_bool(h)) throw py::type_error(message(name, " must be True or False, got ", type_name(h)));
  return PyObject_IsTrue(h.ptr()) == 1;
}

std::string to_str(py::handle h, const char* name) {
  if (!PyUnicode_Check(h.ptr())) throw py::type_error(message(name, " must be a str, got ", type_name(h)));
  return h.cast<std::string>();
}

ComputeDtype to_compute(py::handle h) {
  return parse_compute_option(h.is_none() ? std::nullopt : std::optional<std::string>(to_str(h, "compute")));
}

py::object compute_to_py(ComputeDtype c) {
  const std::optional<std::string> name = compute_option_name(c);
  if (!name) return py::none();
  return py::str(*name);
}

py::array float_array(py::handle h, const char* name, int ndim) {
  py::array a;
  if (py::isinstance<py::array>(h)) {
    a = py::reinterpret_borrow<py::array>(h);
  } else if (py::hasattr(h, "__dlpack__") && py::hasattr(h, "__dlpack_device__")) {
    // torch, jax, cupy, ...: shared memory through DLPack when the data is on the CPU.
    int device = -1;
    try {
      const py::tuple dev = h.attr("__dlpack_device__")();
      device = py::int_(dev[0]).cast<int>();
    } catch (py::error_already_set& e) {
      throw py::value_error(message(name, " is on a device DLPack cannot share (", std::string(py::str(e.value())),
                                    "); move it to the CPU first (e.g. tensor.cpu())"));
    }
    if (device != 1 && device != 3)  // kDLCPU, kDLCUDAHost (pinned, CPU-addressable)
      throw py::value_error(message(name, " is on a non-CPU device (DLPack device type ", device,
                                    "); move it to the CPU first (e.g. tensor.cpu())"));
    try {
      a = py::module_::import("numpy").attr("from_dlpack")(h);
    } catch (py::error_already_set& e) {
      throw py::type_error(message(name, " (", type_name(h),
                                   ") could not be shared through DLPack: ", std::string(py::str(e.value())),
                                   " (pass a float32/float64 CPU tensor; detach() tensors that require grad)"));
    }
  } else {
    try {
      a = py::module_::import("numpy").attr("asarray")(h);
    } catch (const py::error_already_set&) {
      throw py::type_error(message(name, " must be a numpy array of float32 or float64, got ", type_name(h)));
    }
  }
  const char kind = a.dtype().kind();
  const auto item = a.dtype().itemsize();
  if (kind != 'f' || (item != 4 && item != 8))
    throw py::type_error(
        message(name, " must have dtype float32 or float64, got ", dtype_name(a),
                kind == 'i' || kind == 'u' || kind == 'b' ? " (convert with .astype(np.float64))" : ""));
  if (ndim == 0) {
    if (a.ndim() != 1 && a.ndim() != 2)
      throw py::value_error(message(name, " must be 1-D or 2-D, got ", a.ndim(), "-D"));
  } else if (ndim == -1) {
    if (a.ndim() != 3 && a.ndim() != 4)
      throw py::value_error(message(name, " must be 3-D (heads, n, d) or 4-D (batch, n, heads, d), got ", a.ndim(),
                                    "-D array of shape ", std::string(py::str(a.attr("shape")))));
  } else if (a.ndim() != ndim) {
    throw py::value_error(message(name, " must be ", ndim, "-D, got ", a.ndim(), "-D array of shape ",
                                  std::string(py::str(a.attr("shape")))));
  }
  // Byte order: only native.
  if (!a.dtype().attr("isnative").cast<bool>())
    a = py::module_::import("numpy").attr("ascontiguousarray")(a, a.dtype().attr("newbyteorder")("="));
  return a;
}

py::array_t<std::uint64_t, py::array::c_style> uint64_keys(py::handle h, const char* name) {
  py::array a = py::isinstance<py::array>(h) ? py::reinterpret_borrow<py::array>(h)
                                             : py::array(py::module_::import("numpy").attr("asarray")(h));
  const char kind = a.dtype().kind();
  if (kind != 'u' && kind != 'i')
    throw py::type_error(message(name, " must be an array of integers (uint64), got dtype ", dtype_name(a)));
  if (a.ndim() != 1) throw py::value_error(message(name, " must be 1-D, got ", a.ndim(), "-D"));
  if (kind == 'i' && a.size() > 0) {
    py::object mn = a.attr("min")();
    if (mn.cast<std::int64_t>() < 0)
      throw py::value_error(message(name, " must be non-negative, got a minimum of ", mn.cast<std::int64_t>()));
  }
  return py::array_t<std::uint64_t, py::array::c_style>::ensure(
      py::module_::import("numpy").attr("ascontiguousarray")(a, "uint64"));
}

py::array_t<std::int64_t, py::array::c_style> int64_indices(py::handle h, const char* name) {
  py::array a = py::isinstance<py::array>(h) ? py::reinterpret_borrow<py::array>(h)
                                             : py::array(py::module_::import("numpy").attr("asarray")(h));
  const char kind = a.dtype().kind();
  if (kind != 'u' && kind != 'i')
    throw py::type_error(message(name, " must be an array of integers (int64), got dtype ", dtype_name(a)));
  if (a.ndim() != 1) throw py::value_error(message(name, " must be 1-D, got ", a.ndim(), "-D"));
  if (kind == 'u' && a.dtype().itemsize() == 8 && a.size() > 0) {
    py::object mx = a.attr("max")();
    if (mx.cast<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw py::value_error(message(name, " has an index ", mx.cast<std::uint64_t>(), " beyond int64"));
  }
  return py::array_t<std::int64_t, py::array::c_style>::ensure(
      py::module_::import("numpy").attr("ascontiguousarray")(a, "int64"));
}

py::object dlpack_importer(py::handle like) {
  if (py::isinstance<py::array>(like) || !py::hasattr(like, "__dlpack__")) return py::none();
  const std::string module = py::str(py::type::handle_of(like).attr("__module__"));
  const std::string top = module.substr(0, module.find('.'));
  if (top.empty() || top == "numpy") return py::none();
  py::module_ lib = py::module_::import(top.c_str());
  if (!py::hasattr(lib, "from_dlpack")) return py::none();
  return lib.attr("from_dlpack");
}

py::object callers_kind(py::array out, py::handle like) {
  py::object importer = dlpack_importer(like);
  if (importer.is_none()) return std::move(out);
  return importer(out);
}

py::array to_numpy_as(const RowMatrix<double>& m, bool f32) {
  if (!f32) return to_numpy(m);
  py::array_t<float> out({static_cast<py::ssize_t>(m.rows()), static_cast<py::ssize_t>(m.cols())});
  if (m.size() > 0) Eigen::Map<RowMatrix<float>>(out.mutable_data(), m.rows(), m.cols()) = m.template cast<float>();
  return std::move(out);
}

py::array_t<double> to_numpy(const RowMatrix<double>& m) {
  py::array_t<double> out({static_cast<py::ssize_t>(m.rows()), static_cast<py::ssize_t>(m.cols())});
  if (m.size() > 0) std::memcpy(out.mutable_data(), m.data(), sizeof(double) * static_cast<std::size_t>(m.size()));
  return out;
}

py::array_t<double> to_numpy_1d(const std::vector<double>& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), sizeof(double) * v.size());
  return out;
}

py::array_t<double> to_numpy_1d(const Eigen::VectorXd& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  if (v.size() > 0) std::memcpy(out.mutable_data(), v.data(), sizeof(double) * static_cast<std::size_t>(v.size()));
  return out;
}

StridedArray strided_array(py::array& owner) {
  const auto it = static_cast<py::ssize_t>(owner.dtype().itemsize());
  if (reinterpret_cast<std::uintptr_t>(owner.data()) % static_cast<std::uintptr_t>(it) != 0)
    owner = py::module_::import("numpy").attr("array")(owner, py::arg("copy") = true);
  bool ok = true;
  for (int i = 0; i < owner.ndim(); ++i)
    ok = ok && owner.strides(i) % it == 0 && (owner.shape(i) <= 1 || owner.strides(i) > 0);
  if (!ok) owner = py::module_::import("numpy").attr("ascontiguousarray")(owner);
  StridedArray a;
  a.data = owner.data();
  a.dtype = scalar_type(owner);
  for (int i = 0; i < owner.ndim(); ++i) {
    a.shape.push_back(static_cast<Index>(owner.shape(i)));
    a.strides.push_back(static_cast<Index>(owner.strides(i) / it));
  }
  return a;
}

py::array new_float_array(ScalarType dtype, const std::vector<Index>& shape) {
  const std::vector<py::ssize_t> s(shape.begin(), shape.end());
  if (dtype == ScalarType::float32) return py::array_t<float>(s);
  return py::array_t<double>(s);
}

MutableStridedArray strided_out(py::array& out) {
  const StridedArray a = strided_array(out);
  return {out.mutable_data(), a.dtype, a.shape, a.strides};
}

ByteView byte_view(const py::bytes& b) {
  char* p = nullptr;
  Py_ssize_t n = 0;
  if (PyBytes_AsStringAndSize(b.ptr(), &p, &n) != 0) throw py::error_already_set();
  return {reinterpret_cast<const std::uint8_t*>(p), static_cast<std::size_t>(n)};
}

py::bytes to_pybytes(const std::vector<std::uint8_t>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

}  // namespace streamattn::py_bind

namespace streamattn::py_bind {
py::bytes as_bytes(py::handle h, const char* name) {
  if (PyBytes_Check(h.ptr())) return py::reinterpret_borrow<py::bytes>(h);
  if (PyByteArray_Check(h.ptr()) || PyMemoryView_Check(h.ptr()))
    return py::reinterpret_steal<py::bytes>(PyBytes_FromObject(h.ptr()));
  throw py::type_error(message(name, " must be bytes (from to_bytes()), got ", type_name(h)));
}
}  // namespace streamattn::py_bind

namespace streamattn::py_bind {
py::array_t<double, py::array::c_style | py::array::forcecast> gate_vector(py::handle h, const char* name) {
  py::array a = float_array(h, name, 1);
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
}
}  // namespace streamattn::py_bind
