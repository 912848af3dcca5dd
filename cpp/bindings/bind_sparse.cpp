// Python bindings: SparseVector, SparseRecovery, SparseRecoveryMatrix, sparse_recovery_plan.
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>

#include "convert.hpp"
#include "streamattn/recovery/sparse_recovery.hpp"

namespace streamattn::py_bind {
namespace {

py::array_t<std::int64_t> int64_numpy(const std::vector<std::int64_t>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(std::int64_t));
  return out;
}

py::dict plan_dict(const SparseRecoveryPlan& p) {
  py::dict d;
  d["n"] = p.n;
  d["columns"] = p.columns;
  d["k"] = p.k;
  d["eps"] = p.eps;
  d["delta"] = p.delta;
  d["rows"] = p.rows;
  d["buckets"] = p.buckets;
  d["bit_rows"] = p.bit_rows;
  d["bits"] = p.bits;
  d["count_sketch_bytes"] = p.count_sketch_bytes();
  d["bit_bytes"] = p.bit_bytes();
  d["nbytes"] = p.nbytes();
  d["rule"] = SparseRecoveryPlan::rule;
  return d;
}

SparseRecoveryPlan make_plan(py::handle n, py::handle k, py::handle eps, py::handle delta, Index columns,
                             py::handle rows, py::handle buckets, py::handle bit_rows) {
  SparseRecoveryPlan p = SparseRecoveryPlan::make(to_count(n, "n"), to_index(k, "k"), to_float(eps, "eps"),
                                                  to_float(delta, "delta"), columns);
  return p.with_sizes(rows.is_none() ? 0 : to_positive(rows, "rows"),
                      buckets.is_none() ? 0 : to_positive(buckets, "buckets"),
                      bit_rows.is_none() ? 0 : to_positive(bit_rows, "bit_rows"));
}

/// A SparseVector from Python parts (the invariants are SparseVector::make's).
SparseVector sparse_vector(py::handle n, py::handle indices, py::handle values) {
  const std::uint64_t nn = to_count(n, "n");
  auto idx = int64_indices(indices, "indices");
  auto vals = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(float_array(values, "values", 1));
  return SparseVector::make(nn, std::vector<std::int64_t>(idx.data(), idx.data() + idx.size()),
                            std::vector<double>(vals.data(), vals.data() + vals.size()));
}

int to_threads(py::handle h) { return h.is_none() ? 0 : to_cint(h, "threads"); }

template <class Sketch>
void bind_common(py::class_<Sketch>& c) {
  c.def_property_readonly("n", &Sketch::n, "Length of the sketched vector(s).")
      .def_property_readonly("k", &Sketch::k, "Sparsity of the decoded answer.")
      .def_property_readonly(
          "eps", [](const Sketch& s) { return s.plan().eps; }, "Approximation ε.")
      .def_property_readonly(
          "delta", [](const Sketch& s) { return s.plan().delta; }, "Failure probability δ.")
      .def_property_readonly("seed", &Sketch::seed, "The 64-bit seed.")
      .def_property_readonly(
          "rows", [](const Sketch& s) { return s.plan().rows; }, "CountSketch rows r.")
      .def_property_readonly(
          "buckets", [](const Sketch& s) { return s.plan().buckets; }, "Buckets per row b.")
      .def_property_readonly(
          "bit_rows", [](const Sketch& s) { return s.plan().bit_rows; },
          "Rows carrying bit-testing counters (sublinear decoder).")
      .def_property_readonly(
          "bits", [](const Sketch& s) { return s.plan().bits; }, "ceil(log2 n) bit counters per bucket.")
      .def("plan", &Sketch::plan, "The sizes of this sketch and the rule behind them (a SparseRecoveryPlan).")
      .def_property_readonly(
          "count_sketch", [](const Sketch& s) { return s.count_sketch(); },
          "Copy of the CountSketch whose median estimates both decoders rank.")
      .def("merge", &Sketch::merge, py::arg("other"),
           "Add a sketch with the same plan and seed (the sketch of both streams).")
      .def_property_readonly("nbytes", &Sketch::nbytes, "Bytes held by counters, bit counters and hashes.")
      .def("__repr__", &Sketch::repr);
  def_bytes(c, "sketch");
}

// SparseRecoveryPlan.
void bind_sparse_recovery_plan(py::module_& m) {
  py::class_<SparseRecoveryPlan> plan(m, "SparseRecoveryPlan", R"doc(
The sizes of a sparse-recovery sketch for (n, k, eps, delta) and the rule behind them: rows,
buckets, bit_rows, bits and the bytes of each part. Attributes, as_dict(), a readable repr.
)doc");
  plan.def_readonly("n", &SparseRecoveryPlan::n, "Length of the sketched vector(s).")
      .def_readonly("columns", &SparseRecoveryPlan::columns, "Columns sketched with shared hashes.")
      .def_readonly("k", &SparseRecoveryPlan::k, "Sparsity of the answer.")
      .def_readonly("eps", &SparseRecoveryPlan::eps, "Approximation epsilon.")
      .def_readonly("delta", &SparseRecoveryPlan::delta, "Failure probability.")
      .def_readonly("rows", &SparseRecoveryPlan::rows, "CountSketch rows r.")
      .def_readonly("buckets", &SparseRecoveryPlan::buckets, "Buckets per row b.")
      .def_readonly("bit_rows", &SparseRecoveryPlan::bit_rows, "Rows carrying bit-testing counters.")
      .def_readonly("bits", &SparseRecoveryPlan::bits, "Bit counters per bucket, ceil(log2 n).")
      .def_property_readonly("count_sketch_bytes", &SparseRecoveryPlan::count_sketch_bytes,
                             "CountSketch counters + hashes.")
      .def_property_readonly("bit_bytes", &SparseRecoveryPlan::bit_bytes, "Bit-testing counters.")
      .def_property_readonly("nbytes", &SparseRecoveryPlan::nbytes, "All bytes of the sketch.")
      .def_property_readonly(
          "rule", [](const SparseRecoveryPlan&) { return std::string(SparseRecoveryPlan::rule); },
          "The sizing rule, in words.");
  def_result(plan, plan_dict);
}

// SparseVector.
void bind_sparse_vector(py::module_& m) {
  py::class_<SparseVector>(m, "SparseVector", "A k-sparse vector of length n: sorted int64 indices and float64 values.")
      .def(py::init(&sparse_vector), py::arg("n"), py::arg("indices"), py::arg("values"),
           "From a length and sorted, distinct indices with values.")
      .def_readonly("n", &SparseVector::n, "Length of the vector.")
      .def_property_readonly(
          "indices", [](const SparseVector& v) { return int64_numpy(v.indices); },
          "Sorted coordinates of the stored entries (int64 array).")
      .def_property_readonly(
          "values", [](const SparseVector& v) { return to_numpy_1d(v.values); }, "Values at `indices` (float64 array).")
      .def(
          "to_dense", [](const SparseVector& v) { return to_numpy_1d(v.to_dense()); },
          "Dense float64 array of length n (refused above 2^31 entries).")
      .def(
          "to_scipy",
          [](const SparseVector& v) {
            py::module_ sp = py::module_::import("scipy.sparse");
            py::array_t<std::int64_t> indptr(2);
            indptr.mutable_at(0) = 0;
            indptr.mutable_at(1) = static_cast<std::int64_t>(v.size());
            return sp.attr("csc_array")(py::make_tuple(to_numpy_1d(v.values), int64_numpy(v.indices), indptr),
                                        py::arg("shape") = py::make_tuple(v.n, 1));
          },
          "A scipy.sparse.csc_array column of shape (n, 1) (needs scipy).")
      .def("__len__", &SparseVector::size, "Number of stored entries.")
      .def("__repr__", &SparseVector::repr)
      .def(
          "__eq__", [](const SparseVector& a, const SparseVector& b) { return a == b; }, py::arg("other"),
          "Same n, indices and values.")
      .def(py::pickle(
          [](const SparseVector& v) { return py::make_tuple(v.n, int64_numpy(v.indices), to_numpy_1d(v.values)); },
          [](py::tuple t) {
            if (t.size() != 3)
              throw py::value_error("invalid SparseVector pickle state: expected (n, indices, values)");
            return sparse_vector(t[0], t[1], t[2]);
          }));
}

// sparse_recovery_plan().
void bind_sparse_recovery_plan_function(py::module_& m) {
  m.def(
      "sparse_recovery_plan",
      [](py::handle n, py::handle k, py::handle eps, py::handle delta, py::handle columns, py::handle rows,
         py::handle buckets, py::handle bit_rows) {
        return make_plan(n, k, eps, delta, to_index(columns, "columns"), rows, buckets, bit_rows);
      },
      py::arg("n"), py::arg("k"), py::arg("eps"), py::arg("delta") = 0.01, py::arg("columns") = 1,
      py::arg("rows") = py::none(), py::arg("buckets") = py::none(), py::arg("bit_rows") = py::none(),
      "Sizes of a sparse-recovery sketch for (n, k, eps, delta) before building it: rows, buckets, bit_rows, "
      "bits, bytes, and the rule.");
}

// SparseRecovery.
void bind_sparse_recovery(py::module_& m) {
  py::class_<SparseRecovery> sr(m, "SparseRecovery", R"doc(
Linear sketch of x in R^n (n up to 2**61 - 1) from which a k-sparse z with
||x - z||_2 <= (1 + eps) * min_{k-sparse y} ||x - y||_2 is decoded with probability >= 1 - delta.

A CountSketch (rows x buckets) plus bit-testing counters on its first bit_rows rows; sizes from
sparse_recovery_plan() (or override rows / buckets / bit_rows). decode("standard") ranks the
median estimate of every coordinate (O(n rows) time); decode("sublinear") reads the dominant
index of each bucket from its bit counters (polylog n time). Linear, mergeable, serializable.
)doc");
  sr.def(py::init([](py::handle n, py::handle k, py::handle eps, py::handle delta, py::handle seed, py::handle rows,
                     py::handle buckets, py::handle bit_rows) {
           return SparseRecovery(make_plan(n, k, eps, delta, 1, rows, buckets, bit_rows), to_seed(seed, "seed"));
         }),
         py::arg("n"), py::arg("k"), py::arg("eps"), py::arg("delta") = 0.01, py::arg("seed") = 0, py::kw_only(),
         py::arg("rows") = py::none(), py::arg("buckets") = py::none(), py::arg("bit_rows") = py::none(),
         "Sketch sized for (n, k, eps, delta); rows / buckets / bit_rows override the rule.");
  bind_common(sr);
  sr.def(
        "update",
        [](SparseRecovery& s, py::handle indices, py::handle values) {
          auto idx = int64_indices(indices, "indices");
          py::array a = float_array(values, "values", 1);
          with_float(a, [&](auto v) {
            py::gil_scoped_release nogil;
            s.update(idx.data(), static_cast<Index>(idx.size()), v.col(0));
          });
        },
        py::arg("indices"), py::arg("values"),
        "Turnstile update x[indices[i]] += values[i] (repeats, negatives allowed).")
      .def(
          "update_dense",
          [](SparseRecovery& s, py::handle start, py::handle x) {
            const auto st = to_count(start, "start");
            py::array a = float_array(x, "x", 1);
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              s.update_dense(st, v.col(0));
            });
          },
          py::arg("start"), py::arg("x"), "x[start : start + len(x)] += x (a dense slice of the stream).")
      .def(
          "estimate",
          [](const SparseRecovery& s, py::handle indices) {
            auto idx = int64_indices(indices, "indices");
            std::vector<double> out;
            {
              py::gil_scoped_release nogil;
              out = s.estimate(idx.data(), static_cast<Index>(idx.size()));
            }
            return to_numpy_1d(out);
          },
          py::arg("indices"), "Median-over-rows estimates of x[indices].")
      .def(
          "decode",
          [](const SparseRecovery& s, py::handle method, py::handle threads) {
            const DecodeMethod dm = parse_decode_method(to_str(method, "method"));
            const int t = to_threads(threads);
            py::gil_scoped_release nogil;
            return s.decode(dm, t);
          },
          py::arg("method") = "standard", py::arg("threads") = py::none(),
          "The k-sparse answer as a SparseVector; method \"standard\" (O(n rows)) or \"sublinear\" (polylog n). "
          "threads: workers of the standard decoder (None = all cores).");
}

// SparseRecoveryMatrix.
void bind_sparse_recovery_matrix(py::module_& m) {
  py::class_<SparseRecoveryMatrix> srm(m, "SparseRecoveryMatrix", R"doc(
Sparse recovery of every column of an n x columns matrix streamed by rows, one shared hash
across columns (the attention output in the streaming algorithm). decode() returns one
SparseVector per column.
)doc");
  srm.def(py::init([](py::handle n, py::handle columns, py::handle k, py::handle eps, py::handle delta, py::handle seed,
                      py::handle rows, py::handle buckets, py::handle bit_rows) {
            const Index c = to_index(columns, "columns");
            return SparseRecoveryMatrix(make_plan(n, k, eps, delta, c, rows, buckets, bit_rows), to_seed(seed, "seed"));
          }),
          py::arg("n"), py::arg("columns"), py::arg("k"), py::arg("eps"), py::arg("delta") = 0.01, py::arg("seed") = 0,
          py::kw_only(), py::arg("rows") = py::none(), py::arg("buckets") = py::none(),
          py::arg("bit_rows") = py::none(), "Sketch of an n x columns matrix sized for (n, k, eps, delta) per column.");
  bind_common(srm);
  srm.def_property_readonly("columns", &SparseRecoveryMatrix::columns, "Columns of the sketched matrix.")
      .def(
          "update_rows",
          [](SparseRecoveryMatrix& s, py::handle start, py::handle X) {
            const auto st = to_count(start, "start");
            py::array a = float_array(X, "X", 0);
            if (a.ndim() == 1 && s.columns() != 1)
              throw py::value_error(message("X must be 2-D (rows, ", s.columns(), ")"));
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              s.update_rows(st, v);
            });
          },
          py::arg("start"), py::arg("X"), "Add rows start .. start+len(X)-1 of the sketched matrix.")
      .def(
          "update",
          [](SparseRecoveryMatrix& s, py::handle indices, py::handle values) {
            auto idx = int64_indices(indices, "indices");
            py::array a = float_array(values, "values", 0);
            if (a.ndim() == 1 && s.columns() != 1)
              throw py::value_error(message("values must be 2-D (len(indices), ", s.columns(), ")"));
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              s.update(idx.data(), static_cast<Index>(idx.size()), v);
            });
          },
          py::arg("indices"), py::arg("values"), "Turnstile update X[indices[i], :] += values[i, :].")
      .def(
          "estimate",
          [](const SparseRecoveryMatrix& s, py::handle indices) {
            auto idx = int64_indices(indices, "indices");
            RowMatrix<double> out;
            {
              py::gil_scoped_release nogil;
              out = s.estimate(idx.data(), static_cast<Index>(idx.size()));
            }
            return to_numpy(out);
          },
          py::arg("indices"), "Median estimates of X[indices, :] (len(indices) x columns).")
      .def(
          "decode",
          [](const SparseRecoveryMatrix& s, py::handle method, py::handle threads) {
            const DecodeMethod dm = parse_decode_method(to_str(method, "method"));
            const int t = to_threads(threads);
            py::gil_scoped_release nogil;
            return s.decode(dm, t);
          },
          py::arg("method") = "standard", py::arg("threads") = py::none(),
          "One SparseVector per column; method \"standard\" or \"sublinear\".")
      .def(
          "decode_column",
          [](const SparseRecoveryMatrix& s, py::handle column, py::handle method, py::handle threads) {
            const Index c = to_index(column, "column");
            const DecodeMethod dm = parse_decode_method(to_str(method, "method"));
            const int t = to_threads(threads);
            py::gil_scoped_release nogil;
            return s.decode_column(c, dm, t);
          },
          py::arg("column"), py::arg("method") = "standard", py::arg("threads") = py::none(),
          "The SparseVector of one column.");
}

}  // namespace

void bind_sparse(py::module_& m) {
  bind_sparse_recovery_plan(m);
  bind_sparse_vector(m);
  bind_sparse_recovery_plan_function(m);
  bind_sparse_recovery(m);
  bind_sparse_recovery_matrix(m);
}

}  // namespace streamattn::py_bind
