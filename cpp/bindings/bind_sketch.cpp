// Python bindings: CountSketch, AMSSketch, GaussianSketch.
#include "convert.hpp"
#include "streamattn/sketch/ams_sketch.hpp"
#include "streamattn/sketch/count_sketch.hpp"
#include "streamattn/sketch/gaussian_sketch.hpp"

namespace streamattn::py_bind {
namespace {

py::object shaped(py::array_t<double> a, bool vector) {
  if (vector) return a.attr("reshape")(-1);
  return std::move(a);
}

template <class Sketch>
void bind_dense(py::module_& m, const char* name, const char* doc) {
  py::class_<Sketch> c(m, name, doc);
  c.def(py::init([](py::handle s, py::handle seed, py::handle columns) {
          return Sketch(to_index(s, "s"), to_seed(seed, "seed"),
                        columns.is_none() ? 0 : to_positive(columns, "columns"));
        }),
        py::arg("s"), py::arg("seed") = 0, py::arg("columns") = py::none(),
        "Sketch of size s; columns is fixed by the first update_rows unless given.")
      .def_property_readonly("s", &Sketch::s, "Sketch size (rows of Psi).")
      .def_property_readonly("seed", &Sketch::seed, "The 64-bit seed.")
      .def_property_readonly(
          "columns",
          [](const Sketch& s) -> py::object {
            if (s.columns() == 0) return py::none();
            return py::int_(s.columns());
          },
          "Columns of the streamed matrix (None before the first update).")
      .def_property_readonly("tokens", &Sketch::tokens, "Rows streamed so far.")
      .def(
          "update_rows",
          [](Sketch& sk, py::handle start, py::handle X) {
            const auto st = to_count(start, "start");
            py::array a = float_array(X, "X", 0);
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              sk.update_rows(st, v);
            });
          },
          py::arg("start"), py::arg("X"), "value += Psi[:, start:start+len(X)] @ X (X is n x c, or a length-n vector).")
      .def(
          "matrix",
          [](const Sketch& sk, py::handle start, py::handle count) {
            const auto st = to_count(start, "start");
            const Index n = to_index(count, "count");
            RowMatrix<double> out;
            {
              py::gil_scoped_release nogil;
              out = sk.matrix(st, n);
            }
            return to_numpy(out);
          },
          py::arg("start"), py::arg("count"), "The explicit block Psi[:, start:start+count] (s x count), for checking.")
      .def_property_readonly(
          "value", [](const Sketch& sk) { return to_numpy(sk.value()); }, "Copy of the s x columns state Psi @ X.")
      .def(
          "merge", [](Sketch& a, const Sketch& b) { a.merge(b); }, py::arg("other"),
          "Add another sketch of the same kind, s and seed (the sketch of the concatenated streams).")
      .def_property_readonly("nbytes", &Sketch::nbytes, "Bytes held by the state and hashes.")
      .def("__repr__", &Sketch::repr);
  def_bytes(c, "sketch");
}

}  // namespace

void bind_sketch(py::module_& m) {
  py::class_<CountSketch> cs(m, "CountSketch", R"doc(
CountSketch with `rows` x `buckets` counters per column; bucket hashes 2-wise, sign hashes 4-wise.

Implicit: hashes are evaluated on the fly, nothing of size dim is stored. Linear, mergeable
(same shape and seed), serializable (to_bytes/from_bytes, pickle). Counters are float64.
)doc");
  cs.def(py::init([](py::handle rows, py::handle buckets, py::handle seed, py::handle columns, py::handle dim) {
           return CountSketch(to_index(rows, "rows"), to_index(buckets, "buckets"), to_seed(seed, "seed"),
                              to_index(columns, "columns"),
                              dim.is_none() ? CountSketch::max_dim : to_count(dim, "dim"));
         }),
         py::arg("rows"), py::arg("buckets"), py::arg("seed") = 0, py::arg("columns") = 1, py::arg("dim") = py::none(),
         "rows x buckets counters per column; indices must lie in [0, dim) (default 2**61 - 1).")
      .def_property_readonly("rows", &CountSketch::rows)
      .def_property_readonly("buckets", &CountSketch::buckets)
      .def_property_readonly("columns", &CountSketch::columns)
      .def_property_readonly("dim", &CountSketch::dim)
      .def_property_readonly("seed", &CountSketch::seed)
      .def(
          "update",
          [](CountSketch& cs, py::handle indices, py::handle values) {
            auto idx = int64_indices(indices, "indices");
            py::array a = float_array(values, "values", 0);
            if (a.ndim() == 1 && cs.columns() != 1)
              throw py::value_error(
                  message("values must be 2-D (n, ", cs.columns(), ") for a sketch with ", cs.columns(), " columns"));
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              cs.update(idx.data(), static_cast<Index>(idx.size()), v);
            });
          },
          py::arg("indices"), py::arg("values"),
          "Turnstile update x[indices[i]] += values[i] (repeats and negative values allowed).")
      .def(
          "update_rows",
          [](CountSketch& cs, py::handle start, py::handle X) {
            const auto st = to_count(start, "start");
            py::array a = float_array(X, "X", 0);
            if (a.ndim() == 1 && cs.columns() != 1)
              throw py::value_error(
                  message("X must be 2-D (n, ", cs.columns(), ") for a sketch with ", cs.columns(), " columns"));
            with_float(a, [&](auto v) {
              py::gil_scoped_release nogil;
              cs.update_rows(st, v);
            });
          },
          py::arg("start"), py::arg("X"), "Add rows start .. start+len(X)-1 of the sketched matrix.")
      .def(
          "estimate",
          [](const CountSketch& cs, py::handle indices) {
            auto idx = int64_indices(indices, "indices");
            RowMatrix<double> out;
            {
              py::gil_scoped_release nogil;
              out = cs.estimate(idx.data(), static_cast<Index>(idx.size()));
            }
            return shaped(to_numpy(out), cs.columns() == 1);
          },
          py::arg("indices"), "Median-over-rows estimate of x[indices] (shape (n,) or (n, columns)).")
      .def_property_readonly(
          "table",
          [](const CountSketch& cs) {
            std::vector<py::ssize_t> shape{cs.rows(), cs.buckets()};
            if (cs.columns() != 1) shape.push_back(cs.columns());
            py::array_t<double> out(shape);
            std::memcpy(out.mutable_data(), cs.table().data(), cs.table().size() * sizeof(double));
            return out;
          },
          "Copy of the counters: (rows, buckets) or (rows, buckets, columns).")
      .def(
          "bucket_hash", [](const CountSketch& cs, py::handle r) { return cs.bucket_hash(to_index(r, "row")); },
          py::arg("row"), "The 2-wise bucket hash of a row.")
      .def(
          "sign_hash", [](const CountSketch& cs, py::handle r) { return cs.sign_hash(to_index(r, "row")); },
          py::arg("row"), "The 4-wise sign hash of a row.")
      .def("merge", &CountSketch::merge, py::arg("other"),
           "Add the counters of a sketch with the same shape, dim and seed.")
      .def_property_readonly("nbytes", &CountSketch::nbytes, "Bytes held by counters and hashes.")
      .def("__repr__", &CountSketch::repr);
  def_bytes(cs, "sketch");

  bind_dense<AMSSketch>(m, "AMSSketch",
                        "AMS sketch: Psi[r, j] = +-1/sqrt(s) from 4-wise independent sign hashes (implicit).");
  bind_dense<GaussianSketch>(m, "GaussianSketch",
                             "Gaussian JL sketch: Psi[r, j] ~ N(0, 1/s) from a counter-based generator (implicit).");
}

}  // namespace streamattn::py_bind
