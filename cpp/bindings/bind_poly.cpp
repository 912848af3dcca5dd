// Python bindings: the polynomial method (TaylorFeatures, taylor_error, choose_degree,
// exact_attention, poly_attention, PolyPrefixState) and the Eigen GEMM probe for benchmarks.
#include <cstring>
#include <limits>
#include <optional>

#include "convert.hpp"
#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/exact_attention.hpp"
#include "streamattn/attention/poly_attention.hpp"
#include "streamattn/features/taylor_features.hpp"
#include "streamattn/kernels/gemm_probe.hpp"

namespace streamattn::py_bind {
namespace {

int to_degree(py::handle h) { return to_cint(h, "degree"); }

py::dict stats_dict(const PolyStats& s) {
  py::dict d;
  d["beta"] = s.beta;
  d["eps"] = s.eps;
  d["bound"] = s.bound;
  d["degree"] = s.degree;
  d["dim"] = s.dim;
  return d;
}

// PolyStats, the result type of poly_attention(return_stats=True).
void bind_poly_stats(py::module_& m) {
  py::class_<PolyStats> stats(m, "PolyStats", R"doc(
What poly_attention guarantees for its inputs (return_stats=True): beta = scale max||q|| max||k||,
eps = taylor_error(beta, degree), bound = 2 eps / (1 - eps) max|V| on the max-norm error against
exact_attention (inf where eps >= 1: the guarantee is vacuous), degree, dim = t.
)doc");
  stats.def_readonly("beta", &PolyStats::beta, "scale * max||q|| * max||k||.")
      .def_readonly("eps", &PolyStats::eps, "taylor_error(beta, degree).")
      .def_readonly("bound", &PolyStats::bound, "Guaranteed max-norm error (inf when vacuous).")
      .def_readonly("degree", &PolyStats::degree, "Taylor degree g.")
      .def_readonly("dim", &PolyStats::dim, "Feature dimension t.");
  def_result(stats, stats_dict);
}

// TaylorFeatures.
void bind_taylor_features(py::module_& m) {
  py::class_<TaylorFeatures>(m, "TaylorFeatures", R"doc(
Taylor feature map of the polynomial method: phi(x)_alpha = c^{|alpha|/2} x^alpha / sqrt(alpha!)
over all multi-indices |alpha| <= degree, so that phi(q) . phi(k) = P_g(c q.k), the degree-g
Taylor polynomial of exp. dim = C(d + g, g).

Column order: by degree (constant first); within a degree, the monomials x_i1 x_i2 ... x_ip with
i1 <= ... <= ip in lexicographic order of (i1, ..., ip) (see .exponents()).

A map whose t x d float64 state would exceed max_bytes (default 1 GiB) is refused with a
ValueError naming t and the bytes; pass a larger max_bytes to go beyond.
)doc")
      .def(py::init(
               [](py::handle d, py::handle degree, py::handle scale, py::handle max_bytes, const std::string& kernel) {
                 return TaylorFeatures(to_index(d, "d"), to_degree(degree), opt_scale(scale), opt_max_bytes(max_bytes),
                                       parse_feature_kernel(kernel));
               }),
           py::arg("d"), py::arg("degree"), py::arg("scale") = py::none(), py::arg("max_bytes") = py::none(),
           py::arg("kernel") = "taylor",
           "Features of degree <= degree (0..8) for d-dimensional rows; scale c > 0 (default 1/sqrt(d)). "
           "kernel='power' keeps only the degree-p monomials with weights sqrt(p!/alpha!) c^(p/2), so that "
           "phi(q).phi(k) = (c q.k)^p (p even; dim = C(d+p-1, p)).")
      .def_property_readonly("d", &TaylorFeatures::d, "Input dimension.")
      .def_property_readonly("degree", &TaylorFeatures::degree, "Degree g of the Taylor polynomial.")
      .def_property_readonly("scale", &TaylorFeatures::scale, "The scale c inside exp(c q.k).")
      .def_property_readonly(
          "kernel", [](const TaylorFeatures& tf) { return std::string(feature_kernel_name(tf.kernel())); },
          "'taylor' (P_g(c q.k)) or 'power' ((c q.k)^g).")
      .def_property_readonly("dim", &TaylorFeatures::dim,
                             "Feature dimension t = C(d + g, g) (taylor) or C(d + g - 1, g) (power).")
      .def_property_readonly("max_bytes", &TaylorFeatures::max_bytes, "The memory limit this map was checked against.")
      .def(
          "transform",
          [](const TaylorFeatures& tf, py::handle X) {
            py::array a = float_array(X, "X", 2);
            RowMatrix<double> out = with_float(a, [&](const auto& x) {
              py::gil_scoped_release nogil;
              return tf.transform(x);
            });
            return to_numpy(out);
          },
          py::arg("X"), "phi(X) for the rows of X (n x d, float32/float64) as an n x dim float64 array.")
      .def(
          "exponents",
          [](const TaylorFeatures& tf) {
            py::array_t<std::int32_t> out({static_cast<py::ssize_t>(tf.dim()), static_cast<py::ssize_t>(tf.d())});
            auto* p = out.mutable_data();
            for (Index f = 0; f < tf.dim(); ++f) {
              const auto e = tf.exponents(f);
              for (Index j = 0; j < tf.d(); ++j) p[f * tf.d() + j] = e[static_cast<std::size_t>(j)];
            }
            return out;
          },
          "The multi-index alpha of every feature column, as a dim x d int32 array.")
      .def("__repr__", [](const TaylorFeatures& tf) {
        return message("TaylorFeatures(d=", tf.d(), ", degree=", tf.degree(), ", kernel='",
                       feature_kernel_name(tf.kernel()), "', scale=", tf.scale(), ", dim=", tf.dim(), ")");
      });
}

// taylor_error, choose_degree, exact_attention, poly_attention.
void bind_attention_functions(py::module_& m) {
  m.def(
      "taylor_error",
      [](py::handle beta, py::handle degree) { return taylor_error(to_float(beta, "beta"), to_degree(degree)); },
      py::arg("beta"), py::arg("degree"),
      "eps(beta, g) = e^beta beta^(g+1) / (g+1)!: relative error of the degree-g Taylor polynomial of exp on [-beta, "
      "beta].");
  m.def(
      "choose_degree",
      [](py::handle eps, py::handle beta) { return choose_degree(to_float(eps, "eps"), to_float(beta, "beta")); },
      py::arg("eps"), py::arg("beta"),
      "Smallest even degree g <= 8 with taylor_error(beta, g) <= eps; ValueError (saying what degree 8 "
      "reaches) when there is none.");

  m.def(
      "exact_attention",
      [](py::handle Q, py::handle K, py::handle V, py::handle scale, py::handle causal_arg) {
        const bool causal = to_bool(causal_arg, "causal");
        py::array q = float_array(Q, "Q", 2), k = float_array(K, "K", 2), v = float_array(V, "V", 2);
        const bool f32 = float32_out({&q, &k, &v});
        const auto sc = opt_scale(scale);
        RowMatrix<double> out = with_float3(q, k, v, [&](const auto& rq, const auto& rk, const auto& rv) {
          py::gil_scoped_release nogil;
          return exact_attention(rq, rk, rv, sc, causal);
        });
        return callers_kind(to_numpy_as(out, f32), Q);
      },
      py::arg("Q"), py::arg("K"), py::arg("V"), py::arg("scale") = py::none(), py::arg("causal") = false,
      R"doc(Softmax attention softmax(scale Q K^T) V (n_q x dv; float32 when Q, K, V all are, else float64;
a torch tensor for torch tensors), computed in blocks with a
running max (memory O(block * n_k), stable for scores of +-1000).

scale defaults to 1/sqrt(d) (torch's scaled_dot_product_attention; the polynomial-method paper uses 1/d).
causal: query i attends keys j <= i + n_k - n_q (bottom-right alignment; the usual mask when n_q == n_k,
whereas torch's is_causal aligns top-left); needs n_q <= n_k.)doc");

  m.def(
      "poly_attention",
      [](py::handle Q, py::handle K, py::handle V, py::handle degree, py::handle scale, py::handle causal_arg,
         py::handle chunk, py::handle return_stats_arg, py::handle max_bytes, const std::string& kernel, py::handle eps,
         bool normalize, py::handle log_gate) -> py::object {
        const bool causal = to_bool(causal_arg, "causal"), return_stats = to_bool(return_stats_arg, "return_stats");
        const int g = to_degree(degree);
        const Index ch = to_index(chunk, "chunk");
        const auto sc = opt_scale(scale);
        const auto mb = opt_max_bytes(max_bytes);
        PolyOptions opt;
        opt.kernel = parse_feature_kernel(kernel);
        opt.norm.eps = to_float(eps, "eps");
        opt.norm.normalize = normalize;
        py::array q = float_array(Q, "Q", 2), k = float_array(K, "K", 2), v = float_array(V, "V", 2);
        const bool f32 = float32_out({&q, &k, &v});
        const GateVector gate(log_gate);
        opt.log_gate = gate.get();
        if (return_stats) require_stats_options(opt);
        PolyStats st{};
        RowMatrix<double> out = with_float3(q, k, v, [&](const auto& rq, const auto& rk, const auto& rv) {
          py::gil_scoped_release nogil;
          RowMatrix<double> o = poly_attention(rq, rk, rv, g, sc, causal, ch, mb, opt);
          if (return_stats) st = poly_attention_stats(rq, rk, rv, g, sc);
          return o;
        });
        py::object o = callers_kind(to_numpy_as(out, f32), Q);
        if (!return_stats) return o;
        return py::make_tuple(o, st);
      },
      py::arg("Q"), py::arg("K"), py::arg("V"), py::arg("degree"), py::arg("scale") = py::none(),
      py::arg("causal") = false, py::arg("chunk") = kDefaultChunk, py::arg("return_stats") = false,
      py::arg("max_bytes") = py::none(), py::arg("kernel") = "taylor", py::arg("eps") = 0.0,
      py::arg("normalize") = true, py::arg("log_gate") = py::none(),
      R"doc(Attention by the polynomial method, D~^-1 U1 (U2^T V) with U1 = phi(Q), U2 = phi(K) (n_q x dv,
float32 when Q, K, V all are, else float64, computed in float64; a torch tensor for torch tensors), without any n x n matrix: O(n t d) with t = C(d + degree, degree).

causal uses the chunked scheme (prefix state of earlier chunks in float64 + the masked intra-chunk
P_g(scale Q_c K_c^T)), with exact_attention's alignment. Even degrees keep the normalizer positive;
odd degrees are computed as asked and raise ValueError if a row's normalizer is <= 0.
return_stats=True returns (out, stats) with stats = {beta, eps, bound, degree, dim}: beta =
scale max||q|| max||k||, eps = taylor_error(beta, degree), bound = 2 eps/(1 - eps) max|V| on the
max-norm error against exact_attention (inf where eps >= 1). max_bytes as in TaylorFeatures.

kernel='power' uses (scale q.k)^degree (even degree) instead of P_g. eps (>= 0) is added to every
denominator; normalize=False returns the numerator alone (plain linear attention). log_gate (causal
only, one log-decay <= 0 per key): key j's weight for query i is multiplied by
exp(log_gate[j+1] + ... + log_gate[i]).)doc");
}

// PolyPrefixState.
void bind_prefix_state(py::module_& m) {
  py::class_<PolyPrefixState>(m, "PolyPrefixState", R"doc(
The polynomial method's state over a set of keys: M = phi(K)^T V (dim x dv) and s = phi(K)^T 1,
accumulated in float64. absorb(K, V) adds keys; apply(Q) answers queries against all absorbed keys
(row j = phi(q_j) M / phi(q_j) s). Linear in the keys: merge adds two states.
)doc")
      .def(py::init([](py::handle d, py::handle dv, py::handle degree, py::handle scale, py::handle max_bytes,
                       const std::string& kernel) {
             return PolyPrefixState(to_index(d, "d"), to_index(dv, "dv"), to_degree(degree), opt_scale(scale),
                                    opt_max_bytes(max_bytes), parse_feature_kernel(kernel));
           }),
           py::arg("d"), py::arg("dv"), py::arg("degree"), py::arg("scale") = py::none(),
           py::arg("max_bytes") = py::none(), py::arg("kernel") = "taylor",
           "Empty state for d-dimensional keys and dv-dimensional values (kernel 'taylor' or 'power').")
      .def_property_readonly("d", &PolyPrefixState::d, "Key/query dimension.")
      .def_property_readonly("dv", &PolyPrefixState::dv, "Value dimension.")
      .def_property_readonly("degree", &PolyPrefixState::degree, "Taylor degree g.")
      .def_property_readonly(
          "kernel", [](const PolyPrefixState& s) { return std::string(feature_kernel_name(s.kernel())); },
          "'taylor' or 'power'.")
      .def_property_readonly("scale", &PolyPrefixState::scale, "The scale c.")
      .def_property_readonly("dim", &PolyPrefixState::dim, "Feature dimension t.")
      .def_property_readonly("tokens", &PolyPrefixState::tokens, "Key/value rows absorbed so far.")
      .def_property_readonly("nbytes", &PolyPrefixState::nbytes, "Bytes of M and s.")
      .def_property_readonly(
          "numerator_state", [](const PolyPrefixState& s) { return to_numpy(s.numerator_state()); },
          "Copy of M = phi(K)^T V (dim x dv).")
      .def_property_readonly(
          "normalizer_state", [](const PolyPrefixState& s) { return to_numpy_1d(s.normalizer_state()); },
          "Copy of s = phi(K)^T 1 (dim).")
      .def(
          "absorb",
          [](PolyPrefixState& st, py::handle K, py::handle V) {
            py::array k = float_array(K, "K", 2), v = float_array(V, "V", 2);
            with_float2(k, v, [&](const auto& rk, const auto& rv) {
              py::gil_scoped_release nogil;
              st.absorb(rk, rv);
            });
          },
          py::arg("K"), py::arg("V"), "Add key rows K (n x d) with their values V (n x dv).")
      .def(
          "apply",
          [](const PolyPrefixState& st, py::handle Q) {
            py::array q = float_array(Q, "Q", 2);
            RowMatrix<double> out = with_float(q, [&](const auto& rq) {
              py::gil_scoped_release nogil;
              return st.apply(rq);
            });
            return to_numpy(out);
          },
          py::arg("Q"), "Attention of the rows of Q (n x d) over every absorbed key (n x dv float64).")
      .def("merge", &PolyPrefixState::merge, py::arg("other"), "Add another state of the same d, dv, degree and scale.")
      .def("reset", &PolyPrefixState::reset, "Back to the empty state.")
      .def("__repr__", &PolyPrefixState::repr);
}

// _gemm_seconds (benchmarks).
void bind_gemm_seconds(py::module_& m) {
  m.def(
      "_gemm_seconds",
      [](py::handle mm, py::handle k, py::handle n, py::handle repeats, const std::string& impl) {
        const Index a = to_index(mm, "m"), b = to_index(k, "k"), c = to_index(n, "n");
        const int r = to_cint(repeats, "repeats");
        const GemmImpl which = parse_gemm_impl(impl);
        py::gil_scoped_release nogil;
        return gemm_seconds(a, b, c, r, which);
      },
      py::arg("m"), py::arg("k"), py::arg("n"), py::arg("repeats") = 5, py::arg("impl") = "eigen",
      "Median seconds of one float64 GEMM (m x k)(k x n) in this build, on Eigen or on the streams' "
      "per-ISA kernel (impl='streamattn'); for benchmarks.");
}

}  // namespace

void bind_poly(py::module_& m) {
  bind_poly_stats(m);
  bind_taylor_features(m);
  bind_attention_functions(m);
  bind_prefix_state(m);
  bind_gemm_seconds(m);
}

}  // namespace streamattn::py_bind
