// Python bindings: MultiHeadCausalStream (heads x n x d arrays in, heads x n x dv out).
#include <cmath>
#include <optional>
#include <vector>

#include "convert.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

namespace streamattn::py_bind {
namespace {

using GateArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

/// One strided 2-D view per leading index of a 3-D float array of dtype T (no copy unless the
/// strides are negative or not multiples of the item size).
template <class T>
std::vector<MatrixRef<T>> head_views(py::array& a) {
  const auto it = static_cast<py::ssize_t>(sizeof(T));
  bool ok = true;
  for (int i = 0; i < 3; ++i) ok = ok && a.strides(i) >= 0 && a.strides(i) % it == 0;
  if (!ok || a.size() == 0) a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  const Index H = a.shape(0), n = a.shape(1), c = a.shape(2);
  const Index s0 = a.strides(0) / it, s1 = a.strides(1) / it, s2 = a.strides(2) / it;
  std::vector<MatrixRef<T>> out;
  out.reserve(static_cast<std::size_t>(H));
  const T* base = static_cast<const T*>(a.data());
  for (Index h = 0; h < H; ++h) {
    // Eigen wants positive strides even for empty or length-1 axes.
    const Index outer = n > 1 ? s1 : std::max<Index>(c * std::max<Index>(s2, 1), 1);
    const Index inner = c > 1 ? s2 : 1;
    out.emplace_back(StridedMap<T>(base + h * s0, n, c, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(outer, inner)));
  }
  return out;
}

/// Calls f(Q, K, V) with per-head views of one common float type (float32 only if all three are).
template <class F>
void with_heads(py::array& q, py::array& k, py::array& v, F&& f) {
  if (q.dtype().itemsize() == 4 && k.dtype().itemsize() == 4 && v.dtype().itemsize() == 4) {
    f(head_views<float>(q), head_views<float>(k), head_views<float>(v));
    return;
  }
  for (py::array* x : {&q, &k, &v})
    if (x->dtype().itemsize() == 4) *x = py::array_t<double, py::array::forcecast>::ensure(*x);
  f(head_views<double>(q), head_views<double>(k), head_views<double>(v));
}

}  // namespace

void bind_multi_head(py::module_& m) {
  py::class_<MultiHeadCausalStream> c(m, "MultiHeadCausalStream", R"doc(
Causal streams for the heads of one attention layer with grouped keys/values: `heads` query heads,
`kv_heads` key/value heads, query head h reads kv head h // (heads // kv_heads). Each query head is
a CausalStream (same results, bit for bit, as separate streams); the heads run on C++ threads with
the GIL released.

update(Q, K, V, log_gate=None): Q (heads, n, d), K (kv_heads, n, d), V (kv_heads, n, dv), log_gate
(heads, n) -> (heads, n, dv). step(q, k, v, log_gate=None): q (heads, d), k (kv_heads, d),
v (kv_heads, dv), log_gate (heads,) -> (heads, dv).
)doc");
  c.def(py::init([](py::handle heads, py::handle kv_heads, py::handle d, py::handle dv, py::handle degree,
                    py::handle scale, const std::string& kernel, py::handle eps, bool normalize, py::handle chunk,
                    py::handle threads, py::handle max_bytes, py::handle compute) {
          const Index dd = to_index(d, "d");
          return MultiHeadCausalStream(to_index(heads, "heads"), to_index(kv_heads, "kv_heads"), dd,
                                       dv.is_none() ? dd : to_index(dv, "dv"), to_cint(degree, "degree"),
                                       opt_scale(scale), to_index(chunk, "chunk"), opt_max_bytes(max_bytes),
                                       parse_feature_kernel(kernel), Normalizer{to_float(eps, "eps"), normalize},
                                       to_cint(threads, "threads"), to_compute(compute));
        }),
        py::arg("heads"), py::arg("kv_heads"), py::arg("d"), py::arg("dv") = py::none(), py::arg("degree") = 2,
        py::arg("scale") = py::none(), py::arg("kernel") = "taylor", py::arg("eps") = 0.0, py::arg("normalize") = true,
        py::arg("chunk") = CausalStream::default_chunk, py::arg("threads") = 0, py::arg("max_bytes") = py::none(),
        py::arg("compute") = py::none(),
        "heads, kv_heads (heads must be a multiple of it), per-head d, dv (default d), degree, scale "
        "(default 1/sqrt(d)), kernel 'taylor' | 'power', eps, normalize, chunk, threads (0 = all cores), "
        "compute 'float32' | 'float64' (default None: the inputs' dtype).")
      .def(
          "update",
          [](MultiHeadCausalStream& s, py::handle Q, py::handle K, py::handle V, py::handle log_gate) {
            py::array q = float_array(Q, "Q", 3), k = float_array(K, "K", 3), v = float_array(V, "V", 3);
            std::optional<GateArray> gate;
            if (!log_gate.is_none()) gate = GateArray::ensure(float_array(log_gate, "log_gate", 2));
            const Index n = q.shape(1);
            // Every head writes its rows straight into the numpy array returned.
            py::array_t<double> out(
                {static_cast<py::ssize_t>(s.heads()), static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(s.dv())});
            with_heads(q, k, v, [&](const auto& vq, const auto& vk, const auto& vv) {
              std::optional<MatrixRef<double>> g;
              if (gate) g.emplace(Eigen::Map<const RowMatrix<double>>(gate->data(), gate->shape(0), gate->shape(1)));
              py::gil_scoped_release nogil;
              s.update_into(vq, vk, vv, g ? &*g : nullptr,
                            Eigen::Map<RowMatrix<double>>(out.mutable_data(), s.heads() * n, s.dv()));
            });
            return out;
          },
          py::arg("Q"), py::arg("K"), py::arg("V"), py::arg("log_gate") = py::none(),
          "Q (heads, n, d), K (kv_heads, n, d), V (kv_heads, n, dv), log_gate (heads, n) or None -> "
          "(heads, n, dv) float64. Checked in full before any head changes.")
      .def(
          "step",
          [](MultiHeadCausalStream& s, py::handle q, py::handle k, py::handle v, py::handle log_gate) {
            py::array qa = float_array(q, "q", 2), ka = float_array(k, "k", 2), va = float_array(v, "v", 2);
            const GateVector gate(log_gate);
            RowMatrix<double> out(s.heads(), s.dv());
            with_float3(qa, ka, va, [&](const auto& rq, const auto& rk, const auto& rv) {
              py::gil_scoped_release nogil;
              s.step(rq, rk, rv, out, gate.get());
            });
            return to_numpy(out);
          },
          py::arg("q"), py::arg("k"), py::arg("v"), py::arg("log_gate") = py::none(),
          "One token per head: q (heads, d), k (kv_heads, d), v (kv_heads, dv), log_gate (heads,) -> (heads, dv).")
      .def(
          "head", [](const MultiHeadCausalStream& s, py::handle h) { return s.head(to_index(h, "h")); }, py::arg("h"),
          "Copy of query head h's CausalStream.")
      .def_property_readonly("heads", &MultiHeadCausalStream::heads)
      .def_property_readonly("kv_heads", &MultiHeadCausalStream::kv_heads)
      .def_property_readonly("d", &MultiHeadCausalStream::d)
      .def_property_readonly("dv", &MultiHeadCausalStream::dv)
      .def_property_readonly("degree", &MultiHeadCausalStream::degree)
      .def_property_readonly("scale", &MultiHeadCausalStream::scale)
      .def_property_readonly(
          "kernel", [](const MultiHeadCausalStream& s) { return std::string(feature_kernel_name(s.kernel())); })
      .def_property_readonly("eps", [](const MultiHeadCausalStream& s) { return s.normalizer().eps; })
      .def_property_readonly("normalize", [](const MultiHeadCausalStream& s) { return s.normalizer().normalize; })
      .def_property_readonly("chunk", &MultiHeadCausalStream::chunk)
      .def_property(
          "compute", [](const MultiHeadCausalStream& s) { return compute_to_py(s.compute()); },
          [](MultiHeadCausalStream& s, py::handle c) { s.set_compute(to_compute(c)); },
          "Arithmetic of the products: 'float32', 'float64' or None (the inputs' dtype); not serialized.")
      .def_property_readonly("dim", &MultiHeadCausalStream::dim, "Feature dimension t per head.")
      .def_property_readonly("tokens_seen", &MultiHeadCausalStream::tokens_seen)
      .def_property(
          "threads", &MultiHeadCausalStream::threads,
          [](MultiHeadCausalStream& s, py::handle t) { s.set_threads(to_cint(t, "threads")); },
          "Threads for update() (0 = hardware concurrency).")
      .def_property_readonly("nbytes", &MultiHeadCausalStream::nbytes, "Bytes of every head's state.")
      .def("__repr__", &MultiHeadCausalStream::repr);
  def_bytes(c, "whole multi-head stream (every head; park a conversation and resume it bit for bit)");
}

}  // namespace streamattn::py_bind
