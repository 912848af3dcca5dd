// Python bindings: KWiseHash and the ISA controls.
#include <pybind11/stl.h>

#include "convert.hpp"
#include "streamattn/core/build_info.hpp"
#include "streamattn/hash/kwise_hash.hpp"
#include "streamattn/kernels/gemm.hpp"
#include "streamattn/kernels/isa.hpp"

namespace streamattn::py_bind {

namespace {

// KWiseHash.
void bind_kwise_hash(py::module_& m) {
  py::class_<KWiseHash>(m, "KWiseHash", R"doc(
k-wise independent hash: a uniformly random polynomial of degree k-1 over GF(p), p = 2**61 - 1.

Coefficients come from the 64-bit seed through SplitMix64 (documented in
streamattn/hash/kwise_hash.hpp). Keys are unsigned 64-bit integers hashed as key mod p.
bucket(x, b) = floor(h(x) * b / 2**61) (bias <= b/p per bucket); sign(x) = +1 for even h(x), -1 for odd.
)doc")
      .def(py::init([](py::handle k, py::handle seed) { return KWiseHash(to_cint(k, "k"), to_seed(seed, "seed")); }),
           py::arg("k"), py::arg("seed") = 0, "Create a k-wise independent hash (2 <= k <= 64) from a 64-bit seed.")
      .def_property_readonly("k", &KWiseHash::k, "Independence (the polynomial has degree k-1).")
      .def_property_readonly("seed", &KWiseHash::seed, "The 64-bit seed.")
      .def_property_readonly("coefficients", &KWiseHash::coefficients, "a_0 .. a_{k-1}, each in [0, p).")
      .def_property_readonly_static(
          "prime", [](py::handle) { return KWiseHash::prime; }, "p = 2**61 - 1.")
      .def(
          "hash",
          [](const KWiseHash& h, py::handle keys) -> py::object {
            if (PyIndex_Check(keys.ptr()) && !py::isinstance<py::array>(keys))
              return py::int_(h.hash(to_seed(keys, "keys")));
            auto k = uint64_keys(keys, "keys");
            py::array_t<std::uint64_t> out(k.size());
            {
              py::gil_scoped_release nogil;
              h.hash(k.data(), static_cast<std::size_t>(k.size()), out.mutable_data());
            }
            return std::move(out);
          },
          py::arg("keys"), "h(keys) in [0, p): a uint64 array for an array of keys, an int for one key.")
      .def(
          "bucket",
          [](const KWiseHash& h, py::handle keys, py::handle b) -> py::object {
            const std::uint64_t nb = to_count(b, "b");
            if (PyIndex_Check(keys.ptr()) && !py::isinstance<py::array>(keys))
              return py::int_(h.bucket(to_seed(keys, "keys"), nb));
            auto k = uint64_keys(keys, "keys");
            py::array_t<std::int64_t> out(k.size());
            {
              py::gil_scoped_release nogil;
              h.bucket(k.data(), static_cast<std::size_t>(k.size()), nb, out.mutable_data());
            }
            return std::move(out);
          },
          py::arg("keys"), py::arg("b"), "floor(h(keys) * b / 2**61): int64 in [0, b), 1 <= b < 2**32.")
      .def(
          "sign",
          [](const KWiseHash& h, py::handle keys) -> py::object {
            if (PyIndex_Check(keys.ptr()) && !py::isinstance<py::array>(keys))
              return py::int_(h.sign(to_seed(keys, "keys")));
            auto k = uint64_keys(keys, "keys");
            const auto n = static_cast<std::size_t>(k.size());
            py::array_t<std::int8_t> out(k.size());
            {
              py::gil_scoped_release nogil;
              std::vector<double> s(n);
              h.sign(k.data(), n, s.data());
              std::int8_t* o = out.mutable_data();
              for (std::size_t i = 0; i < n; ++i) o[i] = s[i] > 0 ? 1 : -1;
            }
            return std::move(out);
          },
          py::arg("keys"), "+1 where h(key) is even, -1 where odd: an int8 array, or an int for one key.")
      .def("__eq__", [](const KWiseHash& a, const KWiseHash& b) { return a == b; })
      .def("__hash__", [](const KWiseHash& a) { return py::hash(py::make_tuple(a.k(), a.seed())); })
      .def("__repr__", [](const KWiseHash& h) { return message("KWiseHash(k=", h.k(), ", seed=", h.seed(), ")"); })
      .def(py::pickle([](const KWiseHash& h) { return py::make_tuple(h.k(), h.seed()); },
                      [](py::tuple t) {
                        if (t.size() != 2) throw py::value_error("invalid KWiseHash pickle state");
                        return KWiseHash(to_cint(t[0], "k"), to_seed(t[1], "seed"));
                      }));
}

// Kernel paths (available_isas, set_isa, get_isa, _reset_isa_from_environment) and _build_info.
void bind_isa(py::module_& m) {
  m.def(
      "available_isas",
      [] {
        std::vector<std::string> out;
        for (Isa i : available_isas()) out.emplace_back(isa_name(i));
        return out;
      },
      "Kernel paths this CPU can run, slowest first (always includes 'scalar').");
  m.def(
      "set_isa", [](py::handle name) { set_isa(parse_isa(to_str(name, "name"))); }, py::arg("name"),
      "Force a kernel path ('scalar', 'avx2', 'avx512'); ValueError if this CPU lacks it.");
  m.def(
      "get_isa", [] { return std::string(isa_name(current_isa())); }, "The kernel path in use.");
  m.def("_reset_isa_from_environment", &reset_isa_from_environment);
  m.def(
      "_build_info",
      [] {
        py::dict d;
        d["version"] = version();
        d["compiler"] = compiler();
        d["eigen"] = eigen_version();
        std::vector<std::string> compiled, avail;
        for (Isa i : compiled_isas()) compiled.emplace_back(isa_name(i));
        for (Isa i : available_isas()) avail.emplace_back(isa_name(i));
        d["isas_compiled"] = compiled;
        d["isas_available"] = avail;
        d["isa_selected"] = std::string(isa_name(current_isa()));
        d["gemm_kernel"] = std::string(gemm_kernel_name());
        d["cpu_features"] = cpu_features();
        return d;
      },
      "Build facts as a dict.");
}

}  // namespace

void bind_hash(py::module_& m) {
  bind_kwise_hash(m);
  bind_isa(m);
}

}  // namespace streamattn::py_bind
