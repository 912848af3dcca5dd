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
  d["rule"] = "buckets = ceil(8 k / eps); rows = max(7, 2 ceil(ln(n/delta) / ln(buckets/(2k))) - 1); "
              "bit_rows = min(rows, 3 + ceil(log2(k)/2)); bits = ceil(log2 n)";
  return d;
}

SparseRecoveryPlan make_plan(py::handle n, py::handle k, py::handle eps, py::handle delta, Index columns,
                             py::handle rows, py::handle buckets, py::handle bit_rows) {
  const auto nn = static_cast<std::uint64_t>(to_int(n, "n", 1, static_cast<std::int64_t>(SparseRecoveryMatrix::max_n)));
  SparseRecoveryPlan p = SparseRecoveryPlan::make(nn, to_int(k, "k", 1, static_cast<std::int64_t>(nn)),
                                                  to_float(eps, "eps"), to_float(delta, "delta"), columns);
  return p.with_sizes(rows.is_none() ? 0 : to_int(rows, "rows", 1, 1024),
                      buckets.is_none() ? 0 : to_int(buckets, "buckets", 1, static_cast<std::int64_t>(KWiseHash::max_buckets)),
                      bit_rows.is_none() ? 0 : to_int(bit_rows, "bit_rows", 1, 1024));
}

/// The checks of the SparseVector constructor, shared with unpickling.
void check_sparse_vector(const SparseVector& v) {
  require(v.indices.size() == v.values.size(), "indices and values must have the same length, got ", v.indices.size(),
          " and ", v.values.size());
  require(v.n <= SparseRecoveryMatrix::max_n, "n must be in [0, 2^61 - 1], got ", v.n);
  for (std::size_t i = 0; i < v.indices.size(); ++i) {
    require(v.indices[i] >= 0 && static_cast<std::uint64_t>(v.indices[i]) < v.n, "indices[", i, "] = ", v.indices[i],
            " is outside [0, n = ", v.n, ")");
    require(i == 0 || v.indices[i] > v.indices[i - 1], "indices must be strictly increasing");
    require(std::isfinite(v.values[i]), "values[", i, "] is not finite (", v.values[i], ")");
  }
}

int to_threads(py::handle h) { return h.is_none() ? 0 : static_cast<int>(to_int(h, "threads", 0, 1024)); }

template <class Sketch>
void bind_common(py::class_<Sketch>& c) {
  c.def_property_readonly("n", &Sketch::n, "Length of the sketched vector(s).")
      .def_property_readonly("k", &Sketch::k, "Sparsity of the decoded answer.")
      .def_property_readonly("eps", [](const Sketch& s) { return s.plan().eps; }, "Approximation ε.")
      .def_property_readonly("delta", [](const Sketch& s) { return s.plan().delta; }, "Failure probability δ.")
      .def_property_readonly("seed", &Sketch::seed, "The 64-bit seed.")
      .def_property_readonly("rows", [](const Sketch& s) { return s.plan().rows; }, "CountSketch rows r.")
      .def_property_readonly("buckets", [](const Sketch& s) { return s.plan().buckets; }, "Buckets per row b.")
      .def_property_readonly("bit_rows", [](const Sketch& s) { return s.plan().bit_rows; },
                             "Rows carrying bit-testing counters (sublinear decoder).")
      .def_property_readonly("bits", [](const Sketch& s) { return s.plan().bits; }, "ceil(log2 n) bit counters per bucket.")
      .def("plan", [](const Sketch& s) { return plan_dict(s.plan()); }, "The sizes of this sketch and the rule behind them.")
      .def_property_readonly("count_sketch", [](const Sketch& s) { return s.count_sketch(); },
                             "Copy of the CountSketch whose median estimates both decoders rank.")
      .def("merge", &Sketch::merge, py::arg("other"),
           "Add a sketch with the same plan and seed (the sketch of both streams).")
      .def_property_readonly("nbytes", &Sketch::nbytes, "Bytes held by counters, bit counters and hashes.")
      .def("__repr__", &Sketch::repr);
  def_bytes(c, "sketch");
}

}  // namespace

void bind_sparse(py::module_& m) {
  py::class_<SparseVector>(m, "SparseVector", "A k-sparse vector of length n: sorted int64 indices and float64 values.")
      .def(py::init([](py::handle n, py::handle indices, py::handle values) {
             SparseVector v;
             v.n = static_cast<std::uint64_t>(to_int(n, "n", 0, static_cast<std::int64_t>(SparseRecoveryMatrix::max_n)));
             auto idx = int64_indices(indices, "indices");
             py::array a = float_array(values, "values", 1);
             auto vals = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
             require(vals.size() == idx.size(), "indices and values must have the same length, got ", idx.size(),
                     " and ", vals.size());
             v.indices.assign(idx.data(), idx.data() + idx.size());
             v.values.assign(vals.data(), vals.data() + vals.size());
             check_sparse_vector(v);
             return v;
           }),
           py::arg("n"), py::arg("indices"), py::arg("values"), "From a length and sorted, distinct indices with values.")
      .def_readonly("n", &SparseVector::n, "Length of the vector.")
      .def_property_readonly("indices", [](const SparseVector& v) { return int64_numpy(v.indices); },
                             "Sorted coordinates of the stored entries (int64 array).")
      .def_property_readonly("values", [](const SparseVector& v) { return to_numpy_1d(v.values); },
                             "Values at `indices` (float64 array).")
      .def("to_dense", [](const SparseVector& v) { return to_numpy_1d(v.to_dense()); },
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
      .def("__eq__", [](const SparseVector& a, const SparseVector& b) { return a == b; }, py::arg("other"),
           "Same n, indices and values.")
      .def(py::pickle(
          [](const SparseVector& v) { return py::make_tuple(v.n, int64_numpy(v.indices), to_numpy_1d(v.values)); },
          [](py::tuple t) {
            if (t.size() != 3) throw py::value_error("invalid SparseVector pickle state: expected (n, indices, values)");
            SparseVector v;
            v.n = static_cast<std::uint64_t>(to_int(t[0], "n", 0, static_cast<std::int64_t>(SparseRecoveryMatrix::max_n)));
            auto idx = int64_indices(t[1], "indices");
            auto vals = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(float_array(t[2], "values", 1));
            v.indices.assign(idx.data(), idx.data() + idx.size());
            v.values.assign(vals.data(), vals.data() + vals.size());
            check_sparse_vector(v);
            return v;
          }));

  m.def(
      "sparse_recovery_plan",
      [](py::handle n, py::handle k, py::handle eps, py::handle delta, py::handle columns, py::handle rows,
         py::handle buckets, py::handle bit_rows) {
        return plan_dict(make_plan(n, k, eps, delta, to_int(columns, "columns", 1, Index{1} << 24), rows, buckets, bit_rows));
      },
      py::arg("n"), py::arg("k"), py::arg("eps"), py::arg("delta") = 0.01, py::arg("columns") = 1,
      py::arg("rows") = py::none(), py::arg("buckets") = py::none(), py::arg("bit_rows") = py::none(),
      "Sizes of a sparse-recovery sketch for (n, k, eps, delta) before building it: rows, buckets, bit_rows, "
      "bits, bytes, and the rule.");

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
        py::arg("indices"), py::arg("values"), "Turnstile update x[indices[i]] += values[i] (repeats, negatives allowed).")
      .def(
          "update_dense",
          [](SparseRecovery& s, py::handle start, py::handle x) {
            const auto st = static_cast<std::uint64_t>(to_int(start, "start", 0, static_cast<std::int64_t>(s.n())));
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

  py::class_<SparseRecoveryMatrix> srm(m, "SparseRecoveryMatrix", R"doc(
Sparse recovery of every column of an n x columns matrix streamed by rows, one shared hash
across columns (the attention output in the streaming algorithm). decode() returns one
SparseVector per column.
)doc");
  srm.def(py::init([](py::handle n, py::handle columns, py::handle k, py::handle eps, py::handle delta, py::handle seed,
                      py::handle rows, py::handle buckets, py::handle bit_rows) {
            const Index c = to_int(columns, "columns", 1, Index{1} << 24);
            return SparseRecoveryMatrix(make_plan(n, k, eps, delta, c, rows, buckets, bit_rows), to_seed(seed, "seed"));
          }),
          py::arg("n"), py::arg("columns"), py::arg("k"), py::arg("eps"), py::arg("delta") = 0.01, py::arg("seed") = 0,
          py::kw_only(), py::arg("rows") = py::none(), py::arg("buckets") = py::none(), py::arg("bit_rows") = py::none(),
          "Sketch of an n x columns matrix sized for (n, k, eps, delta) per column.");
  bind_common(srm);
  srm.def_property_readonly("columns", &SparseRecoveryMatrix::columns, "Columns of the sketched matrix.")
      .def(
          "update_rows",
          [](SparseRecoveryMatrix& s, py::handle start, py::handle X) {
            const auto st = static_cast<std::uint64_t>(to_int(start, "start", 0, static_cast<std::int64_t>(s.n())));
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
            const Index c = to_int(column, "column", 0, s.columns() - 1);
            const DecodeMethod dm = parse_decode_method(to_str(method, "method"));
            const int t = to_threads(threads);
            py::gil_scoped_release nogil;
            return s.decode_column(c, dm, t);
          },
          py::arg("column"), py::arg("method") = "standard", py::arg("threads") = py::none(),
          "The SparseVector of one column.");
}

}  // namespace streamattn::py_bind
