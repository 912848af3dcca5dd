// Python bindings: MultiHeadCausalStream (heads x n x d arrays in, heads x n x dv out).
#include <cmath>
#include <optional>
#include <vector>

#include "convert.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

namespace streamattn::py_bind {
namespace {

/// Axis order of a 4-D argument: (batch, tokens, heads, features), fla's, or with head_first
/// (batch, heads, tokens, features). 3-D arguments are (heads, tokens, features).
struct Layout {
  bool four_d = false;
  bool head_first = false;
  /// Axis of the batch, heads, tokens and features (batch = -1 for 3-D).
  int b() const { return four_d ? 0 : -1; }
  int h() const { return four_d ? (head_first ? 1 : 2) : 0; }
  int t() const { return four_d ? (head_first ? 2 : 1) : 1; }
  int f() const { return four_d ? 3 : 2; }
};

/// One strided 2-D view (tokens x features) per head of a float array of dtype T laid out as
/// `lay` says; for 4-D, head b * H + h is batch b's head h. No copy unless a stride is negative,
/// not a multiple of the item size, or zero on an axis longer than 1 (a broadcast view).
template <class T>
std::vector<MatrixRef<T>> head_views(py::array& a, const Layout& lay) {
  const auto it = static_cast<py::ssize_t>(sizeof(T));
  bool ok = a.size() > 0;
  for (int i = 0; i < a.ndim(); ++i)
    ok = ok && a.strides(i) >= 0 && a.strides(i) % it == 0 && (a.shape(i) <= 1 || a.strides(i) > 0);
  if (!ok) a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  const Index B = lay.four_d ? a.shape(lay.b()) : 1, H = a.shape(lay.h()), n = a.shape(lay.t()), c = a.shape(lay.f());
  const Index sb = lay.four_d ? a.strides(lay.b()) / it : 0, sh = a.strides(lay.h()) / it, st = a.strides(lay.t()) / it,
              sf = a.strides(lay.f()) / it;
  std::vector<MatrixRef<T>> out;
  out.reserve(static_cast<std::size_t>(B * H));
  const T* base = static_cast<const T*>(a.data());
  // Eigen wants positive strides even for empty or length-1 axes.
  const Index inner = c > 1 ? sf : 1;
  const Index outer = n > 1 ? st : std::max<Index>(c * inner, 1);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      out.emplace_back(
          StridedMap<T>(base + b * sb + h * sh, n, c, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(outer, inner)));
  return out;
}

/// Calls f(Q, K, V) with per-head views of one common float type (float32 only if all three are).
template <class F>
void with_heads(py::array& q, py::array& k, py::array& v, const Layout& lay, F&& f) {
  if (q.dtype().itemsize() == 4 && k.dtype().itemsize() == 4 && v.dtype().itemsize() == 4) {
    f(head_views<float>(q, lay), head_views<float>(k, lay), head_views<float>(v, lay));
    return;
  }
  for (py::array* x : {&q, &k, &v})
    if (x->dtype().itemsize() == 4) *x = py::array_t<double, py::array::forcecast>::ensure(*x);
  f(head_views<double>(q, lay), head_views<double>(k, lay), head_views<double>(v, lay));
}

/// The shape of an update's output: Q's with the features axis replaced by dv.
std::vector<py::ssize_t> out_shape(const py::array& q, const Layout& lay, Index dv) {
  std::vector<py::ssize_t> shape(q.shape(), q.shape() + q.ndim());
  shape[static_cast<std::size_t>(lay.f())] = static_cast<py::ssize_t>(dv);
  return shape;
}

/// log_gate as a heads x n float64 matrix: (heads, n) for 3-D arguments; (B, n, H) or, with
/// head_first, (B, H, n) for 4-D ones (fla's g). Values are the C++ API's to check.
RowMatrix<double> gate_matrix(py::handle log_gate, const Layout& lay) {
  py::array g = float_array(log_gate, "log_gate", lay.four_d ? 3 : 2);
  auto a = py::array_t<double, py::array::forcecast>::ensure(g);
  if (!lay.four_d)
    return Eigen::Map<const RowMatrix<double>>(
        py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a).data(), a.shape(0), a.shape(1));
  const Index B = a.shape(0), H = lay.head_first ? a.shape(1) : a.shape(2),
              n = lay.head_first ? a.shape(2) : a.shape(1);
  RowMatrix<double> m(B * H, n);
  auto r = a.unchecked<3>();
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index j = 0; j < n; ++j) m(b * H + h, j) = lay.head_first ? r(b, h, j) : r(b, j, h);
  return m;
}

/// One writable n x dv view per head of a new C-contiguous output array laid out as `lay` says.
template <class O>
std::vector<HeadRows<O>> out_views(py::array& out, const Layout& lay) {
  const auto it = static_cast<py::ssize_t>(sizeof(O));
  const Index B = lay.four_d ? out.shape(lay.b()) : 1, H = out.shape(lay.h()), n = out.shape(lay.t()),
              dv = out.shape(lay.f());
  const Index sb = lay.four_d ? out.strides(lay.b()) / it : 0, sh = out.strides(lay.h()) / it,
              st = out.strides(lay.t()) / it;
  std::vector<HeadRows<O>> views;
  views.reserve(static_cast<std::size_t>(B * H));
  O* base = static_cast<O*>(out.mutable_data());
  const Index outer = n > 1 ? st : std::max<Index>(dv, 1);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      views.emplace_back(base + b * sb + h * sh, n, dv, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(outer, 1));
  return views;
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
          [](MultiHeadCausalStream& s, py::handle Q, py::handle K, py::handle V, py::handle log_gate,
             py::handle head_first_arg) {
            Layout lay;
            lay.head_first = to_bool(head_first_arg, "head_first");
            py::array q = float_array(Q, "Q", -1);
            lay.four_d = q.ndim() == 4;
            if (lay.head_first && !lay.four_d)
              throw py::value_error("head_first=True needs 4-D (batch, heads, tokens, d) arguments");
            const int nd = lay.four_d ? 4 : 3;
            py::array k = float_array(K, "K", nd), v = float_array(V, "V", nd);
            if (lay.four_d) {
              const char* names[] = {"Q", "K", "V"};
              const py::array* arrays[] = {&q, &k, &v};
              const Index B = q.shape(0), n = q.shape(lay.t());
              for (int i = 0; i < 3; ++i)
                if (arrays[i]->shape(0) != B || arrays[i]->shape(lay.t()) != n)
                  throw py::value_error(
                      message(names[i], " must have Q's batch (", B, ") and tokens (", n, ") in the layout ",
                              lay.head_first ? "(batch, heads, tokens, d)" : "(batch, tokens, heads, d)",
                              ", got shape ", std::string(py::str(arrays[i]->attr("shape"))),
                              lay.head_first ? "" : " (pass head_first=True for (batch, heads, tokens, d))"));
              if (B * q.shape(lay.h()) != s.heads() || B * k.shape(lay.h()) != s.kv_heads())
                throw py::value_error(message("batch x heads must match the stream: Q has ", B, " x ", q.shape(lay.h()),
                                              ", K ", B, " x ", k.shape(lay.h()),
                                              " heads, the stream heads=", s.heads(), ", kv_heads=", s.kv_heads()));
            }
            std::optional<RowMatrix<double>> gate;
            if (!log_gate.is_none()) gate = gate_matrix(log_gate, lay);
            const bool f32 = all_float32({&q, &k, &v});
            // Every head writes its rows straight into the array returned, in its layout and dtype
            // (float32 rows converted from the float64 ones by the thread that computed them).
            py::array out = f32 ? py::array(py::array_t<float>(out_shape(q, lay, s.dv())))
                                : py::array(py::array_t<double>(out_shape(q, lay, s.dv())));
            with_heads(q, k, v, lay, [&](const auto& vq, const auto& vk, const auto& vv) {
              std::optional<MatrixRef<double>> g;
              if (gate) g.emplace(*gate);
              if (f32) {
                const auto views = out_views<float>(out, lay);
                py::gil_scoped_release nogil;
                s.update_heads_into(vq, vk, vv, g ? &*g : nullptr, views);
              } else {
                const auto views = out_views<double>(out, lay);
                py::gil_scoped_release nogil;
                s.update_heads_into(vq, vk, vv, g ? &*g : nullptr, views);
              }
            });
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
            const bool f32 = all_float32({&qa, &ka, &va});
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
