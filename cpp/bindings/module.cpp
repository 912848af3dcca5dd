// The extension module streamattn._core: one bind_<area> function per area.
#include "convert.hpp"
#include "streamattn/core/build_info.hpp"
#include "streamattn/kernels/isa.hpp"

namespace streamattn::py_bind {
void bind_hash(py::module_& m);
void bind_poly(py::module_& m);
void bind_sketch(py::module_& m);
void bind_stream(py::module_& m);
void bind_multi_head(py::module_& m);
void bind_sparse(py::module_& m);
void install_thread_guards(py::module_& m);
}  // namespace streamattn::py_bind

PYBIND11_MODULE(_core, m) {
  using namespace streamattn::py_bind;
  m.doc() = "streamattn C++ core";
  m.attr("__version__") = streamattn::version();
  // Resolve STREAMATTN_ISA now, so a bad value fails the import with a clear message.
  streamattn::current_isa();
  bind_hash(m);
  bind_poly(m);
  bind_sketch(m);
  bind_stream(m);
  bind_multi_head(m);
  bind_sparse(m);
  // Last: wraps the methods of every class defined above (cpp/bindings/guard.cpp).
  install_thread_guards(m);
}
