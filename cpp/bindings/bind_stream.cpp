// Python bindings: CausalStream, KVStream, plan().
#include <pybind11/stl.h>

#include <cmath>

#include "convert.hpp"
#include "streamattn/stream/causal_segment.hpp"
#include "streamattn/stream/causal_stream.hpp"
#include "streamattn/stream/kv_stream.hpp"
#include "streamattn/stream/plan.hpp"

namespace streamattn::py_bind {
namespace {

std::optional<double> opt_float(py::handle h, const char* name) {
  if (h.is_none()) return std::nullopt;
  return to_float(h, name);
}

/// A log-gate scalar: any real number (NaN and +-inf pass through, so the C++ check names them).
double to_float_or_nan(py::handle h, const char* name) {
  if (py::isinstance<py::bool_>(h) ||
      !(py::isinstance<py::float_>(h) || py::isinstance<py::int_>(h) || py::hasattr(h, "__float__")))
    throw py::type_error(message(name, " must be a real number, got ", type_name(h)));
  return h.cast<double>();
}

/// output_sketch= (k, eps) with n=, or a SparseRecoveryMatrix.
std::optional<SparseRecoveryMatrix> make_output_sketch(py::handle spec, py::handle n, Index dv, py::handle delta,
                                                       py::handle seed) {
  if (spec.is_none()) return std::nullopt;
  if (py::isinstance<SparseRecoveryMatrix>(spec)) return spec.cast<SparseRecoveryMatrix>();
  if (!py::isinstance<py::tuple>(spec) || py::len(spec) != 2)
    throw py::type_error("output_sketch must be a (k, eps) tuple or a SparseRecoveryMatrix");
  if (n.is_none()) throw py::value_error("output_sketch=(k, eps) needs n= (the number of output rows to sketch)");
  py::tuple t = py::reinterpret_borrow<py::tuple>(spec);
  return SparseRecoveryMatrix::planned(to_count(n, "n"), dv, to_index(t[0], "output_sketch k"),
                                       to_float(t[1], "output_sketch eps"), to_float(delta, "delta"),
                                       to_seed(seed, "seed"));
}

py::dict certificate_dict(const Certificate& c) {
  py::dict d;
  d["max_abs_error"] = c.max_abs_error;
  d["mean_abs_error"] = c.mean_abs_error;
  d["max_rel_error"] = c.max_rel_error;
  d["probes"] = c.probes;
  d["evaluated"] = c.evaluated;
  d["exact"] = to_numpy(c.exact);
  d["approx"] = to_numpy(c.approx);
  d["positions"] = c.positions;
  return d;
}

py::dict plan_as_dict(const StreamPlan& p) {
  py::dict d;
  d["n"] = p.request.n;
  d["d"] = p.request.d;
  d["dv"] = p.request.dv;
  d["degree"] = p.degree;
  d["degree_reason"] = p.degree_reason;
  d["t"] = p.t;
  d["state"] = p.state;
  d["sketch_size"] = p.state == "sketched" ? py::object(py::int_(p.sketch_size)) : py::object(py::none());
  d["sketch_eps2"] = p.state == "sketched" ? py::object(py::float_(p.sketch_eps2)) : py::object(py::none());
  d["state_bytes"] = p.state_bytes;
  if (p.output) {
    py::dict o;
    o["k"] = p.output->k;
    o["eps1"] = p.output->eps;
    o["delta"] = p.output->delta;
    o["rows"] = p.output->rows;
    o["buckets"] = p.output->buckets;
    o["bit_rows"] = p.output->bit_rows;
    o["bits"] = p.output->bits;
    o["nbytes"] = p.output->nbytes();
    d["output_sketch"] = o;
  } else {
    d["output_sketch"] = py::none();
  }
  d["total_bytes"] = p.total_bytes;
  d["update_flops_per_token"] = p.update_flops_per_token;
  d["query_flops"] = p.query_flops;
  d["beta"] = p.request.beta ? py::object(py::float_(*p.request.beta)) : py::object(py::none());
  d["taylor_eps"] = p.taylor_eps ? py::object(py::float_(*p.taylor_eps)) : py::object(py::none());
  d["attention_bound"] = p.attention_bound ? py::object(py::float_(*p.attention_bound)) : py::object(py::none());
  d["column_bound"] = p.column_bound ? py::object(py::float_(*p.column_bound)) : py::object(py::none());
  d["vacuous"] = p.vacuous;
  d["suggested_degree"] = p.suggested_degree ? py::object(py::int_(*p.suggested_degree)) : py::object(py::none());
  d["notes"] = p.notes;
  return d;
}

template <class Stream>
void bind_stream_common(py::class_<Stream>& c) {
  c.def_property_readonly("d", &Stream::d, "Query/key dimension.")
      .def_property_readonly("dv", &Stream::dv, "Value dimension.")
      .def_property_readonly("degree", &Stream::degree, "Taylor degree g.")
      .def_property_readonly(
          "kernel", [](const Stream& s) { return std::string(feature_kernel_name(s.kernel())); },
          "'taylor' (P_g(c q.k)) or 'power' ((c q.k)^g).")
      .def_property_readonly("scale", &Stream::scale, "Score scale c.")
      .def_property_readonly("dim", &Stream::dim, "Feature dimension t = C(d+g, g).")
      .def_property_readonly("tokens_seen", &Stream::tokens_seen, "Key rows streamed so far.")
      .def_property_readonly("nbytes", &Stream::nbytes,
                             "Bytes of the state (+ probes and output sketch); independent of n.")
      .def_property_readonly("has_probes", &Stream::has_probes)
      .def_property_readonly("has_output_sketch", &Stream::has_output_sketch)
      .def_property_readonly(
          "output_sketch", [](const Stream& s) { return s.output_sketch(); },
          "Copy of the SparseRecoveryMatrix of the output rows.")
      .def(
          "certificate", [](const Stream& s) { return s.certificate(); },
          "Measured error on the probe queries: max_abs_error, mean_abs_error, max_rel_error, probes, "
          "evaluated, exact, approx, positions.")
      .def(
          "sparse_columns",
          [](const Stream& s, py::handle method) {
            const DecodeMethod m = parse_decode_method(to_str(method, "method"));
            py::gil_scoped_release nogil;
            return s.sparse_columns(m);
          },
          py::arg("method") = "standard", "Decode every output column as a k-sparse SparseVector (list of dv).")
      .def("__repr__", &Stream::repr);
  def_bytes(c, "whole stream (state, probes, output sketch)");
}

// Certificate and Plan, the typed results of certificate() and plan().
void bind_results(py::module_& m) {
  py::class_<Certificate> cert(m, "Certificate", R"doc(
Measured error of a stream on its probe queries: the exact softmax outputs next to the stream's own,
and the max / mean absolute and max relative errors over the probes evaluated so far.
)doc");
  cert.def_readonly("probes", &Certificate::probes, "Number of probe queries.")
      .def_readonly("evaluated", &Certificate::evaluated, "Probes whose approximation and exact output both exist.")
      .def_readonly("max_abs_error", &Certificate::max_abs_error, "Max over evaluated probes of max |approx - exact|.")
      .def_readonly("mean_abs_error", &Certificate::mean_abs_error, "Mean of |approx - exact| over evaluated probes.")
      .def_readonly("max_rel_error", &Certificate::max_rel_error, "Max over probes of ||approx - exact|| / ||exact||.")
      .def_property_readonly(
          "exact", [](const Certificate& c) { return to_numpy(c.exact); },
          "Exact softmax outputs, probes x dv (NaN rows where not evaluated).")
      .def_property_readonly(
          "approx", [](const Certificate& c) { return to_numpy(c.approx); },
          "The stream's outputs, probes x dv (NaN rows where not evaluated).")
      .def_readonly("positions", &Certificate::positions, "Stream position of each probe (-1: keys-first, all keys).");
  def_result(cert, certificate_dict);

  py::class_<StreamPlan> plan_cls(m, "Plan", R"doc(
The result of plan(): every size, cost and guaranteed error of a streaming run, before reading any data.
Attributes for every field, as_dict() (JSON-ready), and a readable repr.
)doc");
  // clang-format off
  const char* const plan_fields[] = {"n", "d", "dv", "degree", "degree_reason", "t", "state", "sketch_size",
                                     "sketch_eps2", "state_bytes", "total_bytes", "update_flops_per_token",
                                     "query_flops", "beta", "taylor_eps", "attention_bound", "column_bound", "vacuous",
                                     "suggested_degree", "notes"};
  // clang-format on
  for (const char* key : plan_fields) {
    const std::string name = key;
    plan_cls.def_property_readonly(key,
                                   [name](const StreamPlan& p) { return py::object(plan_as_dict(p)[name.c_str()]); });
  }
  plan_cls.def_property_readonly(
      "output_sketch", [](const StreamPlan& p) { return p.output; },
      "The SparseRecoveryPlan of the output sketch (None without k).");
  def_result(plan_cls, plan_as_dict);
}

// CausalStream's row methods: update, prefill, step.
void bind_causal_stream_rows(py::class_<CausalStream>& cs) {
  cs.def(
        "update",
        [](CausalStream& s, py::handle Q, py::handle K, py::handle V, py::handle return_rows_arg, py::handle log_gate) {
          const bool return_rows = to_bool(return_rows_arg, "return_rows");
          py::array q = float_array(Q, "Q", 2), k = float_array(K, "K", 2), v = float_array(V, "V", 2);
          const GateVector gate(log_gate);
          // The rows go straight into the numpy array returned, in the blocks' type (float32 when
          // Q, K, V all are: each chunk's rows rounded once, no n x dv float64 array in between).
          const Index n = q.ndim() == 2 ? static_cast<Index>(q.shape(0)) : 0;
          py::array out = with_float3(q, k, v, [&](const auto& rq, const auto& rk, const auto& rv) -> py::array {
            using T = typename std::decay_t<decltype(rq)>::Scalar;
            py::array_t<T> rows;
            if (return_rows) rows = py::array_t<T>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(s.dv())});
            {
              py::gil_scoped_release nogil;
              if (return_rows)
                s.update_into(rq, rk, rv, gate.get(), Eigen::Map<RowMatrix<T>>(rows.mutable_data(), n, s.dv()));
              else if (gate.get())
                s.update(rq, rk, rv, *gate.get());
              else
                s.update(rq, rk, rv);
            }
            return std::move(rows);
          });
          if (!return_rows) return py::object(py::none());
          return callers_kind(out, Q);
        },
        py::arg("Q"), py::arg("K"), py::arg("V"), py::arg("return_rows") = true, py::arg("log_gate") = py::none(),
        "Stream the next rows (n x d, n x d, n x dv); returns the n x dv output rows (float32 when Q, K, V all "
        "are, else float64; a torch tensor for torch tensors), or None "
        "with return_rows=False. log_gate: n log-decays (each finite, <= 0); key j's weight for query i is "
        "multiplied by exp(log_gate[j+1] + ... + log_gate[i]), across calls too.")
      .def(
          "prefill",
          [](CausalStream& s, py::handle K, py::handle V, py::handle log_gate) {
            py::array k = float_array(K, "K", 2), v = float_array(V, "V", 2);
            const GateVector gate(log_gate);
            with_float2(k, v, [&](const auto& rk, const auto& rv) {
              py::gil_scoped_release nogil;
              if (gate.get())
                s.prefill(rk, rv, *gate.get());
              else
                s.prefill(rk, rv);
            });
          },
          py::arg("K"), py::arg("V"), py::arg("log_gate") = py::none(),
          "Absorb context keys (n x d) and values (n x dv) whose outputs are not wanted (a prompt's prefix); "
          "advances the stream by n. log_gate as in update().")
      .def(
          "step",
          [](CausalStream& s, py::handle q, py::handle k, py::handle v, py::handle log_gate) {
            py::array qa = float_array(q, "q", 1), ka = float_array(k, "k", 1), va = float_array(v, "v", 1);
            const double g = log_gate.is_none() ? 0.0 : to_float_or_nan(log_gate, "log_gate");
            const bool f32 = float32_out({&qa, &ka, &va});
            py::array_t<double> out(static_cast<py::ssize_t>(s.dv()));
            Eigen::Map<Eigen::VectorXd> o(out.mutable_data(), s.dv());
            with_float3(qa, ka, va, [&](const auto& rq, const auto& rk, const auto& rv) {
              using T = typename std::decay_t<decltype(rq)>::Scalar;
              using Vec = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;
              const Vec vq(rq.data(), rq.rows(), Eigen::InnerStride<>(rq.outerStride()));
              const Vec vk(rk.data(), rk.rows(), Eigen::InnerStride<>(rk.outerStride()));
              const Vec vv(rv.data(), rv.rows(), Eigen::InnerStride<>(rv.outerStride()));
              py::gil_scoped_release nogil;
              s.step(VectorRef<T>(vq), VectorRef<T>(vk), VectorRef<T>(vv), o, g);
            });
            if (f32) return callers_kind(to_numpy_as(RowMatrix<double>(o.transpose()), true).attr("reshape")(-1), q);
            return callers_kind(out, q);
          },
          py::arg("q"), py::arg("k"), py::arg("v"), py::arg("log_gate") = py::none(),
          "One token (q, k: d; v: dv) -> its output row (dv; float32 when q, k, v all are, else float64), in O(t dv) "
          "whatever the stream's length; "
          "log_gate: this token's log-decay (<= 0). The same mathematics as update() with one row.");
}

// CausalStream.
void bind_causal_stream(py::module_& m) {
  py::class_<CausalStream> cs(m, "CausalStream", R"doc(
Causal one-pass streaming attention: blocks of rows (q_j, k_j, v_j) in, output rows out, final at once.

The state (M = U2^T V, s = U2^T 1, float64) does not grow with the stream. Optional probes give an
a-posteriori error certificate; an optional output sketch collects the output columns for k-sparse
decoding without storing them.
)doc");
  cs.attr("default_chunk") = CausalStream::default_chunk;
  cs.attr("max_chunk") = CausalStream::max_chunk;
  cs.def(py::init([](py::handle d, py::handle dv, py::handle degree, py::handle scale, py::handle chunk,
                     py::handle probes, py::handle probe_positions, py::handle output_sketch, py::handle n,
                     py::handle seed, py::handle delta, py::handle max_bytes, const std::string& kernel, py::handle eps,
                     bool normalize, py::handle compute, py::handle threads) {
           const Index dd = to_index(d, "d");
           const Index dvv = dv.is_none() ? dd : to_index(dv, "dv");
           CausalStream s(dd, dvv, to_cint(degree, "degree"), opt_scale(scale), to_index(chunk, "chunk"),
                          opt_max_bytes(max_bytes), parse_feature_kernel(kernel),
                          Normalizer{to_float(eps, "eps"), normalize}, to_compute(compute),
                          to_cint(threads, "threads"));
           if (!probes.is_none()) {
             if (probe_positions.is_none())
               throw py::value_error("probes need probe_positions: the stream position each probe query stands at");
             py::array q = float_array(probes, "probes", 2);
             auto pos = int64_indices(probe_positions, "probe_positions");
             std::vector<std::int64_t> p(pos.data(), pos.data() + pos.size());
             with_float(q, [&](const auto& ref) { s.set_probes(MatrixRef<double>(ref.template cast<double>()), p); });
           } else if (!probe_positions.is_none()) {
             throw py::value_error("probe_positions given without probes");
           }
           if (auto o = make_output_sketch(output_sketch, n, dvv, delta, seed)) s.set_output_sketch(std::move(*o));
           return s;
         }),
         py::arg("d"), py::arg("dv") = py::none(), py::arg("degree") = 2, py::arg("scale") = py::none(),
         py::arg("chunk") = CausalStream::default_chunk, py::arg("probes") = py::none(),
         py::arg("probe_positions") = py::none(), py::arg("output_sketch") = py::none(), py::arg("n") = py::none(),
         py::arg("seed") = 0, py::arg("delta") = 0.01, py::arg("max_bytes") = py::none(), py::arg("kernel") = "taylor",
         py::arg("eps") = 0.0, py::arg("normalize") = true, py::arg("compute") = py::none(),
         py::arg("threads") = CausalStream::default_threads,
         "d, dv (default d), degree, scale (default 1/sqrt(d)), chunk rows; probes (p x d) with "
         "probe_positions (p); output_sketch=(k, eps) with n rows (seed, delta) or a SparseRecoveryMatrix; "
         "kernel 'taylor' (P_g(c q.k)) or 'power' ((c q.k)^g, g even); eps >= 0 added to every denominator "
         "(Based uses 1e-6); normalize=False returns the numerator alone; compute 'float32' | 'float64' "
         "(default None: the inputs' dtype) is the arithmetic of the products, the state is float64 either way; "
         "threads (default 1, 0 = all cores) splits the chunk products over a pool, bit-identical results.");
  bind_causal_stream_rows(cs);
  cs.def_property_readonly(
        "eps", [](const CausalStream& s) { return s.normalizer().eps; }, "Added to every denominator.")
      .def_property_readonly(
          "normalize", [](const CausalStream& s) { return s.normalizer().normalize; },
          "False: outputs are the numerators alone.")
      .def_property_readonly("chunk", &CausalStream::chunk, "Rows per intra-chunk block.")
      .def_property(
          "compute", [](const CausalStream& s) { return compute_to_py(s.compute()); },
          [](CausalStream& s, py::handle c) { s.set_compute(to_compute(c)); },
          "Arithmetic of the products: 'float32', 'float64' or None (the inputs' dtype); not serialized.")
      .def_property(
          "threads", &CausalStream::threads,
          [](CausalStream& s, py::handle t) { s.set_threads(to_cint(t, "threads")); },
          "Threads the chunk products are split over (bit-identical results for any value; 0 sets all "
          "cores); not serialized.")
      .def_property_readonly(
          "numerator_state", [](const CausalStream& s) { return to_numpy(s.state().numerator_state()); },
          "Copy of M = U2^T V (t x dv).")
      .def_property_readonly(
          "normalizer_state", [](const CausalStream& s) { return to_numpy_1d(s.state().normalizer_state()); },
          "Copy of s = U2^T 1 (t).");
  cs.def(
      "start_from", [](CausalStream& s, const CausalSegment& prefix) { s.start_from(prefix); }, py::arg("prefix"),
      "Continue the stream a CausalSegment starting at token 0 describes: its state, and the position "
      "prefix.end_token. Only before the first update, without probes; the parameters must agree.");
  bind_stream_common(cs);
}

// CausalSegment: the effect of a block of tokens on a causal state, composable (parallel prefix).
void bind_causal_segment(py::module_& m) {
  py::class_<CausalSegment> seg(m, "CausalSegment", R"doc(
What a contiguous block of tokens [first_token, end_token) does to a causal stream's state:
S_out = exp(log_decay) S_in + S_block. Segments of adjacent blocks compose associatively
(a.then(b)), so the prefix states of many blocks are a scan; CausalStream.start_from(prefix)
continues a stream after a prefix segment starting at token 0.
)doc");
  seg.def(py::init([](py::handle d, py::handle dv, py::handle degree, py::handle scale, py::handle first_token,
                      py::handle chunk, py::handle max_bytes, const std::string& kernel) {
            const Index dd = to_index(d, "d");
            const Index dvv = dv.is_none() ? dd : to_index(dv, "dv");
            return CausalSegment(dd, dvv, to_cint(degree, "degree"), opt_scale(scale),
                                 to_count(first_token, "first_token"), to_index(chunk, "chunk"),
                                 opt_max_bytes(max_bytes), parse_feature_kernel(kernel));
          }),
          py::arg("d"), py::arg("dv") = py::none(), py::arg("degree") = 2, py::arg("scale") = py::none(),
          py::arg("first_token") = 0, py::arg("chunk") = CausalStream::default_chunk, py::arg("max_bytes") = py::none(),
          py::arg("kernel") = "taylor",
          "An empty segment at first_token of a stream with these d, dv (default d), degree, scale, kernel; "
          "chunk: rows absorbed at once under gating.")
      .def(
          "absorb",
          [](CausalSegment& s, py::handle K, py::handle V, py::handle log_gate) {
            py::array k = float_array(K, "K", 2), v = float_array(V, "V", 2);
            const GateVector gate(log_gate);
            with_float2(k, v, [&](const auto& rk, const auto& rv) {
              py::gil_scoped_release nogil;
              if (gate.get())
                s.absorb(rk, rv, *gate.get());
              else
                s.absorb(rk, rv);
            });
          },
          py::arg("K"), py::arg("V"), py::arg("log_gate") = py::none(),
          "Append keys (n x d) and values (n x dv) at the segment's end; log_gate: n log-decays (<= 0).")
      .def("then", &CausalSegment::then, py::arg("next"),
           "This segment followed by the adjacent segment `next`, as a new segment (both unchanged).")
      .def("append", &CausalSegment::append, py::arg("next"), "In place: this segment followed by `next`.")
      .def_property_readonly("d", &CausalSegment::d, "Query/key dimension.")
      .def_property_readonly("dv", &CausalSegment::dv, "Value dimension.")
      .def_property_readonly("degree", &CausalSegment::degree, "Degree g.")
      .def_property_readonly(
          "kernel", [](const CausalSegment& s) { return std::string(feature_kernel_name(s.kernel())); },
          "'taylor' or 'power'.")
      .def_property_readonly("scale", &CausalSegment::scale, "Score scale c.")
      .def_property_readonly("dim", &CausalSegment::dim, "Feature dimension t.")
      .def_property_readonly("chunk", &CausalSegment::chunk, "Rows absorbed at once under gating.")
      .def_property_readonly("first_token", &CausalSegment::first_token, "Position of the first token.")
      .def_property_readonly("tokens", &CausalSegment::tokens, "Tokens in the segment.")
      .def_property_readonly("end_token", &CausalSegment::end_token, "first_token + tokens.")
      .def_property_readonly("log_decay", &CausalSegment::log_decay, "Sum of the segment's log-gates (<= 0).")
      .def_property_readonly(
          "numerator_state", [](const CausalSegment& s) { return to_numpy(s.state().numerator_state()); },
          "Copy of the block's M (t x dv), keys decayed to the segment's end.")
      .def_property_readonly(
          "normalizer_state", [](const CausalSegment& s) { return to_numpy_1d(s.state().normalizer_state()); },
          "Copy of the block's s (t).")
      .def_property_readonly("nbytes", &CausalSegment::nbytes, "Bytes of the state.")
      .def("__repr__", &CausalSegment::repr);
  def_bytes(seg, "segment");
}

// KVStream.
void bind_kv_stream(py::module_& m) {
  py::class_<KVStream> kv(m, "KVStream", R"doc(
Keys-first streaming attention: add(K, V) streams keys into a constant-size state, query(Q) answers
queries from it at any time in O(t dv) each — a constant-memory KV cache.

state="exact" keeps M = U2^T V and s = U2^T 1; state="sketched" is the paper's layout: an implicit
AMS or Gaussian sketch Psi applied to [U2 | V] (U2^T V ~ (Psi U2)^T (Psi V)), with s kept exact.
)doc");
  kv.def(py::init([](py::handle d, py::handle dv, py::handle degree, py::handle scale, py::handle state_arg,
                     py::handle sketch_arg, py::handle sketch_size, py::handle seed, py::handle first_token,
                     py::handle probes, py::handle output_sketch, py::handle n, py::handle delta, py::handle max_bytes,
                     const std::string& kernel, py::handle threads) {
           const Index dd = to_index(d, "d");
           const Index dvv = dv.is_none() ? dd : to_index(dv, "dv");
           KVStream::SketchOptions opt;
           opt.distribution = DenseSketch::parse_distribution(to_str(sketch_arg, "sketch"));
           opt.size = to_index(sketch_size, "sketch_size");
           opt.seed = to_seed(seed, "seed");
           KVStream s(dd, dvv, to_cint(degree, "degree"), opt_scale(scale),
                      parse_state_kind(to_str(state_arg, "state")), opt, to_count(first_token, "first_token"),
                      opt_max_bytes(max_bytes), parse_feature_kernel(kernel), to_cint(threads, "threads"));
           if (!probes.is_none()) {
             py::array q = float_array(probes, "probes", 2);
             with_float(q, [&](const auto& ref) { s.set_probes(MatrixRef<double>(ref.template cast<double>())); });
           }
           if (auto o = make_output_sketch(output_sketch, n, dvv, delta, seed)) s.set_output_sketch(std::move(*o));
           return s;
         }),
         py::arg("d"), py::arg("dv") = py::none(), py::arg("degree") = 2, py::arg("scale") = py::none(),
         py::arg("state") = "exact", py::arg("sketch") = "ams", py::arg("sketch_size") = 256, py::arg("seed") = 0,
         py::arg("first_token") = 0, py::arg("probes") = py::none(), py::arg("output_sketch") = py::none(),
         py::arg("n") = py::none(), py::arg("delta") = 0.01, py::arg("max_bytes") = py::none(),
         py::arg("kernel") = "taylor", py::arg("threads") = CausalStream::default_threads,
         "d, dv, degree, scale; state 'exact' | 'sketched' (sketch 'ams' | 'gaussian' of sketch_size rows, seed); "
         "first_token: global position of this shard's first key; probes (p x d); output_sketch=(k, eps) with n "
         "query rows; kernel 'taylor' or 'power'; threads (default 1, 0 = all cores) splits the exact state's "
         "products over a pool, bit-identical results.");
  kv.def(
        "add",
        [](KVStream& s, py::handle K, py::handle V) {
          py::array k = float_array(K, "K", 2), v = float_array(V, "V", 2);
          with_float2(k, v, [&](const auto& rk, const auto& rv) {
            py::gil_scoped_release nogil;
            s.add(rk, rv);
          });
        },
        py::arg("K"), py::arg("V"), "Stream keys (n x d) and values (n x dv) into the state.")
      .def(
          "query",
          [](KVStream& s, py::handle Q) {
            py::array q = float_array(Q, "Q", 2);
            RowMatrix<double> out;
            with_float(q, [&](const auto& rq) {
              py::gil_scoped_release nogil;
              out = s.query(rq);
            });
            return callers_kind(to_numpy_as(out, float32_out({&q})), Q);
          },
          py::arg("Q"),
          "Attention outputs (n x dv; float32 for float32 Q, else float64; a torch tensor for a torch Q) of "
          "queries over every key added so far.")
      .def("merge", &KVStream::merge, py::arg("other"),
           "Add the keys of another stream with the same parameters (shards of one key set).")
      .def_property_readonly("state", [](const KVStream& s) { return std::string(state_kind_name(s.state_kind())); })
      .def_property(
          "threads", &KVStream::threads, [](KVStream& s, py::handle t) { s.set_threads(to_cint(t, "threads")); },
          "Threads the exact state's products are split over (bit-identical results for any value; 0 sets all "
          "cores); not serialized.")
      .def_property_readonly("first_token", &KVStream::first_token)
      .def_property_readonly("queries_answered", &KVStream::queries_answered)
      .def_property_readonly(
          "normalizer_state", [](const KVStream& s) { return to_numpy_1d(s.normalizer_state()); },
          "Copy of s = U2^T 1 (t), exact in both states.")
      .def_property_readonly(
          "numerator_state", [](const KVStream& s) { return to_numpy(s.numerator_state()); },
          "Copy of U2^T V (exact) or its estimate (Psi U2)^T (Psi V) (sketched), t x dv.");
  bind_stream_common(kv);
}

// _plan (streamattn.plan).
void bind_plan(py::module_& m) {
  m.def(
      "_plan",
      [](py::handle n, py::handle d, py::handle dv, py::handle k, py::handle eps1, py::handle eps2, py::handle delta,
         py::handle beta, py::handle degree, py::handle eps, py::handle state, py::handle sketch,
         py::handle sketch_size, py::handle chunk) {
        PlanRequest r;
        r.n = to_count(n, "n");
        r.d = to_index(d, "d");
        r.dv = dv.is_none() ? 0 : to_index(dv, "dv");
        if (!k.is_none()) r.k = to_index(k, "k");
        r.eps1 = opt_float(eps1, "eps1");
        r.eps2 = opt_float(eps2, "eps2");
        r.delta = to_float(delta, "delta");
        r.beta = opt_float(beta, "beta");
        if (!degree.is_none()) r.degree = to_cint(degree, "degree");
        r.eps = opt_float(eps, "eps");
        r.state = to_str(state, "state");
        r.sketch = to_str(sketch, "sketch");
        if (!sketch_size.is_none()) r.sketch_size = to_index(sketch_size, "sketch_size");
        r.chunk = to_index(chunk, "chunk");
        return plan(r);
      },
      py::arg("n"), py::arg("d"), py::arg("dv"), py::arg("k"), py::arg("eps1"), py::arg("eps2"), py::arg("delta"),
      py::arg("beta"), py::arg("degree"), py::arg("eps"), py::arg("state"), py::arg("sketch"), py::arg("sketch_size"),
      py::arg("chunk"), "The Plan of a stream: see streamattn.plan.");
}

}  // namespace

void bind_stream(py::module_& m) {
  bind_results(m);
  bind_causal_segment(m);
  bind_causal_stream(m);
  bind_kv_stream(m);
  bind_plan(m);
}

}  // namespace streamattn::py_bind
