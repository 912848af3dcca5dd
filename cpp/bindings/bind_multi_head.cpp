// Python bindings: MultiHeadCausalStream (heads x n x d arrays in, heads x n x dv out).
#include <optional>
#include <vector>

#include "convert.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

namespace streamattn::py_bind {
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
          [](MultiHeadCausalStream& s, py::handle Q, py::handle K, py::handle V, py::handle log_gate,
             py::handle head_first_arg) {
            const bool hf = to_bool(head_first_arg, "head_first");
            py::array q = float_array(Q, "Q", -1);
            const HeadLayout lay = head_layout(hf, q.ndim());
            py::array k = float_array(K, "K", q.ndim()), v = float_array(V, "V", q.ndim());
            std::optional<py::array> g;
            if (!log_gate.is_none()) g = float_array(log_gate, "log_gate", q.ndim() - 1);
            const StridedArray sq = strided_array(q), sk = strided_array(k), sv = strided_array(v);
            std::optional<StridedArray> sg;
            if (g) sg = strided_array(*g);
            const StridedArray* gp = sg ? &*sg : nullptr;
            // Every head writes its rows straight into the array returned, in its layout and dtype.
            py::array out = new_float_array(output_dtype({sq.dtype, sk.dtype, sv.dtype}),
                                            s.layout_output_shape(lay, sq, sk, sv, gp));
            const MutableStridedArray so = strided_out(out);
            {
              py::gil_scoped_release nogil;
              s.update_layout(lay, sq, sk, sv, gp, so);
            }
            return callers_kind(out, Q);
          },
          py::arg("Q"), py::arg("K"), py::arg("V"), py::arg("log_gate") = py::none(), py::arg("head_first") = false,
          "Q (heads, n, d), K (kv_heads, n, d), V (kv_heads, n, dv), log_gate (heads, n) or None -> "
          "(heads, n, dv). Or 4-D: Q (B, n, H, d), K, V (B, n, H_kv, .), log_gate (B, n, H) -> (B, n, H, dv), "
          "with head_first=True (B, H, n, .) and log_gate (B, H, n); batch b's head h is the stream's head "
          "b * H + h (heads = B * H). float32 out when Q, K, V all are float32, else float64; a torch tensor "
          "for torch tensors (shared, not copied, when they are CPU tensors with positive strides). Checked in "
          "full before any head changes.")
      .def(
          "step",
          [](MultiHeadCausalStream& s, py::handle q, py::handle k, py::handle v, py::handle log_gate) {
            py::array qa = float_array(q, "q", 2), ka = float_array(k, "k", 2), va = float_array(v, "v", 2);
            const GateVector gate(log_gate);
            const bool f32 = float32_out({&qa, &ka, &va});
            RowMatrix<double> out(s.heads(), s.dv());
            with_float3(qa, ka, va, [&](const auto& rq, const auto& rk, const auto& rv) {
              py::gil_scoped_release nogil;
              s.step(rq, rk, rv, out, gate.get());
            });
            return callers_kind(to_numpy_as(out, f32), q);
          },
          py::arg("q"), py::arg("k"), py::arg("v"), py::arg("log_gate") = py::none(),
          "One token per head: q (heads, d), k (kv_heads, d), v (kv_heads, dv), log_gate (heads,) -> (heads, dv); "
          "float32 when q, k, v all are, else float64.")
      .def(
          "state",
          [](const MultiHeadCausalStream& s, py::handle dtype) {
            const std::string dt = dtype.is_none() ? "float64" : to_str(py::str(dtype), "dtype");
            if (dt != "float64" && dt != "float32")
              throw py::value_error(message("dtype must be 'float32' or 'float64', got '", dt, "'"));
            const Index H = s.heads(), t = s.dim(), dv = s.dv();
            RowMatrix<double> all(H * t, dv + 1);
            for (Index h = 0; h < H; ++h) {
              const PolyPrefixState& st = s.head(h).state();
              all.block(h * t, 0, t, dv) = st.numerator_state();
              all.block(h * t, dv, t, 1) = st.normalizer_state();
            }
            py::array a = to_numpy_as(all, dt == "float32");
            return a.attr("reshape")(H, t, dv + 1);
          },
          py::arg("dtype") = py::none(),
          "Every query head's state as one (heads, t, dv + 1) array: [M | s], M = sum phi(k) v^T (t x dv) and "
          "s = sum phi(k) (t) with their gate decays (float64, or float32 with dtype='float32').")
      .def(
          "set_state",
          [](MultiHeadCausalStream& s, py::handle state, py::handle tokens) {
            py::array a = float_array(state, "state", -1);
            const Index H = s.heads(), t = s.dim(), dv = s.dv();
            const auto sh = [&](int i) { return static_cast<Index>(a.shape(i)); };
            const Index heads = a.ndim() == 4 ? sh(0) * sh(1) : sh(0);
            const Index rows = sh(a.ndim() - 2), cols = sh(a.ndim() - 1);
            if (heads != H || rows != t || (cols != dv && cols != dv + 1))
              throw py::value_error(message("state must be (heads, t, dv + 1) = (", H, ", ", t, ", ", dv + 1,
                                            ") or (batch, heads / batch, t, dv + 1) ([M | s]), or with dv columns (M "
                                            "alone, s = 0: for normalize=False), got shape ",
                                            std::string(py::str(a.attr("shape")))));
            if (cols == dv && s.normalizer().normalize)
              throw py::value_error(message("a state of dv = ", dv,
                                            " columns has no normalizer s; this stream "
                                            "normalizes (normalize=True): pass (.., t, dv + 1) = [M | s]"));
            auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
            const Eigen::VectorXd zero = Eigen::VectorXd::Zero(t);
            std::vector<MatrixRef<double>> M;
            std::vector<VectorRef<double>> z;
            for (Index h = 0; h < H; ++h) {
              const double* base = c.data() + h * t * cols;
              M.emplace_back(Eigen::Map<const RowMatrix<double>, 0, Eigen::OuterStride<>>(base, t, dv,
                                                                                          Eigen::OuterStride<>(cols)));
              if (cols == dv)
                z.emplace_back(zero);
              else
                z.emplace_back(Eigen::Map<const Eigen::VectorXd, 0, Eigen::InnerStride<>>(base + dv, t,
                                                                                          Eigen::InnerStride<>(cols)));
            }
            s.set_state(M, z,
                        tokens.is_none() ? std::nullopt : std::optional<std::uint64_t>(to_count(tokens, "tokens")));
          },
          py::arg("state"), py::arg("tokens") = py::none(),
          "Replace every query head's state by `state` (as returned by state(), float32 or float64; 4-D "
          "(batch, heads, t, dv [+ 1]) is read as batch * heads heads). tokens: the stream position it stands at "
          "(>= 1; None keeps tokens_seen, at least 1). Checked in full before any head changes.")
      .def(
          "head", [](const MultiHeadCausalStream& s, py::handle h) { return s.head(to_index(h, "h")); }, py::arg("h"),
          "Copy of query head h's CausalStream.")
      .def(
          "kv_head", [](const MultiHeadCausalStream& s, py::handle h) { return s.kv_head(to_index(h, "h")); },
          py::arg("h"), "The kv head query head h reads: h // (heads // kv_heads).")
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
