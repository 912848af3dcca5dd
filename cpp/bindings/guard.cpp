// One object, one thread at a time: detection of concurrent use of a stateful object.
//
// The kernels release the GIL, so two Python threads can be inside methods of the same object
// at once. For different objects that is the point (tests/test_threads.py); for one object it
// would be a data race on its state. Rather than make every C++ object internally locked (the
// C++ API is single-owner, like an Eigen matrix), the binding layer tracks which objects are in
// use and refuses a conflicting call with streamattn.ConcurrentUseError (a RuntimeError):
//
//  * a method that changes the object (update, add, query, absorb, merge, reset, ... and any
//    method not known to be read-only) needs the object to itself;
//  * read-only methods and properties (to_bytes, estimate, decode, apply, repr, every property,
//    ...) may run together, but not while a changing method is running;
//  * objects passed as arguments (merge(other)) are read while the call runs.
//
// A refused call has not touched the object. The wrappers are installed on every class of the
// module after the bindings are defined, so a method added later is covered (as a changing one)
// without any change here.
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "convert.hpp"

namespace streamattn::py_bind {
namespace {

struct Use {
  int readers = 0;
  bool writer = false;
  std::string writer_method;
};

std::mutex g_mutex;
std::unordered_map<PyObject*, Use> g_in_use;
PyObject* g_error = nullptr;  // streamattn.ConcurrentUseError

// Methods and properties that do not change the object and are safe to run concurrently with
// each other (const C++ methods without mutable scratch). Everything else is exclusive.
const std::set<std::string>& read_only_methods() {
  static const std::set<std::string> names{
      "to_bytes",      "__getstate__",   "__repr__",  "__eq__",    "__hash__",  "__len__",  "estimate", "decode",
      "decode_column", "sparse_columns", "apply",     "transform", "exponents", "matrix",   "hash",     "bucket",
      "sign",          "bucket_hash",    "sign_hash", "plan",      "to_dense",  "to_scipy", "then"};
  return names;
}

// Classes whose objects never change after construction: nothing to guard.
const std::set<std::string>& immutable_classes() {
  static const std::set<std::string> names{"KWiseHash", "TaylorFeatures", "SparseVector"};
  return names;
}

class UseGuard {
 public:
  UseGuard(PyObject* obj, bool write, const std::string& where) : obj_(obj), write_(write) {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_in_use.find(obj);
    if (it != g_in_use.end() && (it->second.writer || (write && it->second.readers > 0))) {
      const std::string cls = type_name(py::handle(obj));
      const std::string other = it->second.writer ? it->second.writer_method : std::string("a read-only method");
      PyErr_SetString(g_error, message(where, ": this ", cls, " is in use by another thread (", other,
                                       "); one object may be used by one thread at a time — give each thread its "
                                       "own object (and merge them), or guard it with a lock")
                                   .c_str());
      throw py::error_already_set();
    }
    Use& u = g_in_use[obj];
    if (write) {
      u.writer = true;
      u.writer_method = where;
    } else {
      ++u.readers;
    }
  }
  ~UseGuard() {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_in_use.find(obj_);
    if (it == g_in_use.end()) return;
    if (write_)
      it->second.writer = false;
    else
      --it->second.readers;
    if (!it->second.writer && it->second.readers == 0) g_in_use.erase(it);
  }
  UseGuard(const UseGuard&) = delete;
  UseGuard& operator=(const UseGuard&) = delete;

 private:
  PyObject* obj_;
  bool write_;
};

bool is_guarded(py::handle h, const std::vector<py::handle>& classes) {
  for (py::handle c : classes)
    if (PyObject_TypeCheck(h.ptr(), reinterpret_cast<PyTypeObject*>(c.ptr()))) return true;
  return false;
}

py::object wrap(py::object fn, bool write, std::string where, std::shared_ptr<std::vector<py::handle>> classes,
                const std::string& name, const std::string& doc) {
  return py::cpp_function(
      [fn, write, where, classes](py::args args, py::kwargs kwargs) -> py::object {
        if (args.size() == 0) return fn(*args, **kwargs);
        py::handle self = args[0];
        UseGuard own(self.ptr(), write, where);
        // Other guarded objects among the arguments are read during the call.
        std::vector<std::unique_ptr<UseGuard>> others;
        auto read_arg = [&](py::handle a) {
          if (a.ptr() != self.ptr() && is_guarded(a, *classes))
            others.push_back(std::make_unique<UseGuard>(a.ptr(), false, where));
        };
        for (std::size_t i = 1; i < args.size(); ++i) read_arg(args[i]);
        for (auto kv : kwargs) read_arg(kv.second);
        return fn(*args, **kwargs);
      },
      py::name(name.c_str()), py::doc(doc.c_str()));
}

std::string doc_of(py::handle fn) {
  py::object d = py::getattr(fn, "__doc__", py::none());
  return d.is_none() ? std::string() : d.cast<std::string>();
}

}  // namespace

void install_thread_guards(py::module_& m) {
  py::exception<std::runtime_error> error(m, "ConcurrentUseError", PyExc_RuntimeError);
  g_error = error.ptr();
  Py_INCREF(g_error);  // kept for the life of the process (the module holds it too)
  m.attr("ConcurrentUseError").attr("__doc__") =
      "Raised when one streamattn object is used by two threads at once (the call was refused, the object is "
      "unchanged). Give each thread its own object and merge them, or guard the object with a lock.";

  py::options options;
  options.disable_function_signatures();  // the wrapped docstring keeps the original signature
  auto classes = std::make_shared<std::vector<py::handle>>();
  std::vector<py::handle> todo;
  for (auto item : m.attr("__dict__").cast<py::dict>()) {
    py::handle v = item.second;
    if (!PyType_Check(v.ptr()) || !py::hasattr(v, "_pybind11_conduit_v1_")) continue;
    if (immutable_classes().count(py::str(item.first).cast<std::string>())) continue;
    if (PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(v.ptr()),
                         reinterpret_cast<PyTypeObject*>(PyExc_BaseException)))
      continue;
    classes->push_back(v);
    todo.push_back(v);
  }
  py::object property = py::module_::import("builtins").attr("property");
  for (py::handle cls : todo) {
    const std::string cname = py::str(cls.attr("__name__"));
    std::vector<std::pair<std::string, py::object>> items;
    for (auto item : cls.attr("__dict__").attr("items")())
      items.emplace_back(py::str(item.cast<py::tuple>()[0]),
                         py::reinterpret_borrow<py::object>(item.cast<py::tuple>()[1]));
    for (auto& [name, value] : items) {
      if (name == "__init__" || name == "__new__" || name == "__setstate__" || name == "_pybind11_conduit_v1_")
        continue;
      if (Py_TYPE(value.ptr()) == &PyProperty_Type) {
        py::object fget = value.attr("fget");
        if (fget.is_none()) continue;
        py::object doc = value.attr("__doc__");
        py::object g = wrap(fget, false, cname + "." + name, classes, name, doc_of(fget));
        py::object fset = value.attr("fset");
        py::object s = fset.is_none() ? py::none() : wrap(fset, true, cname + "." + name, classes, name, doc_of(fset));
        cls.attr(name.c_str()) = property(g, s, py::none(), doc);
      } else if (PyInstanceMethod_Check(value.ptr())) {
        py::object fn = py::reinterpret_borrow<py::object>(PyInstanceMethod_GET_FUNCTION(value.ptr()));
        const bool write = read_only_methods().count(name) == 0;
        py::object w = wrap(fn, write, cname + "." + name, classes, name, doc_of(fn));
        cls.attr(name.c_str()) = py::reinterpret_steal<py::object>(PyInstanceMethod_New(w.ptr()));
      }
    }
  }
}

}  // namespace streamattn::py_bind
