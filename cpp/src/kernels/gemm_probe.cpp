#include "streamattn/kernels/gemm_probe.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "streamattn/kernels/gemm.hpp"

namespace streamattn {

GemmImpl parse_gemm_impl(const std::string& name) {
  if (name == "eigen") return GemmImpl::eigen;
  if (name == "streamattn") return GemmImpl::streamattn;
  throw std::invalid_argument(message("impl must be 'eigen' or 'streamattn', got '", name, "'"));
}

double gemm_seconds(Index m, Index k, Index n, int repeats, GemmImpl impl) {
  const Index lim = Index{1} << 16;
  require(m >= 1 && m <= lim && k >= 1 && k <= lim && n >= 1 && n <= lim,
          "gemm_seconds: m, k, n must be in [1, 65536], got ", m, ", ", k, ", ", n);
  require(repeats >= 1 && repeats <= 1000, "repeats must be in [1, 1000], got ", repeats);
  // Deterministic, non-trivial entries (the rate does not depend on the values).
  RowMatrix<double> a =
      RowMatrix<double>::NullaryExpr(m, k, [](Index i, Index j) { return 1e-3 * ((i * 7 + j * 3) % 17); });
  RowMatrix<double> b =
      RowMatrix<double>::NullaryExpr(k, n, [](Index i, Index j) { return 1e-3 * ((i * 5 + j * 11) % 13); });
  RowMatrix<double> c = RowMatrix<double>::Zero(m, n);
  std::vector<double> times;
  for (int r = -1; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (impl == GemmImpl::eigen)
      c.noalias() += a * b;
    else
      gemm(a, Trans::no, b, Trans::no, c, true);
    const auto t1 = std::chrono::steady_clock::now();
    if (r >= 0) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  // Keep c observable so the products cannot be optimized away.
  volatile double sink = c(0, 0);
  (void)sink;
  return times[times.size() / 2];
}

}  // namespace streamattn
