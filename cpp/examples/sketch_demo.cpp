// Streams a sparse vector through a CountSketch in blocks, checkpoints the sketch to bytes,
// resumes it, and recovers the heavy coordinates — using only the C++ API.
#include <cstdio>
#include <vector>

#include "streamattn/streamattn.hpp"

int main() {
  using namespace streamattn;
  const std::uint64_t n = 1 << 20;
  CountSketch cs(7, 256, /*seed=*/42, /*columns=*/1, n);
  std::vector<double> block(4096, 0.0);
  const std::uint64_t heavy[] = {17, 300000, 1048575};
  for (std::uint64_t start = 0; start < n; start += block.size()) {
    for (std::size_t i = 0; i < block.size(); ++i) {
      const std::uint64_t j = start + i;
      block[i] = 1e-3 * static_cast<double>((j * 2654435761u) % 7) - 3e-3;
      for (auto h : heavy)
        if (j == h) block[i] = 100.0;
    }
    const Eigen::Map<const RowMatrix<double>> X(block.data(), static_cast<Index>(block.size()), 1);
    cs.update_rows(start, X);
    if (start == n / 2) {  // checkpoint and resume
      const auto bytes = cs.to_bytes();
      cs = CountSketch::from_bytes(bytes.data(), bytes.size());
      std::printf("checkpoint: %zu bytes\n", bytes.size());
    }
  }
  std::vector<std::int64_t> idx(heavy, heavy + 3);
  const auto est = cs.estimate(idx.data(), 3);
  int ok = 0;
  for (int i = 0; i < 3; ++i) {
    std::printf("x[%lld] ~ %.4f\n", static_cast<long long>(idx[static_cast<std::size_t>(i)]), est(i, 0));
    ok += (est(i, 0) > 99.0 && est(i, 0) < 101.0);
  }
  std::printf("isa: %s, sketch bytes: %zu\n", isa_name(current_isa()), cs.nbytes());
  return ok == 3 ? 0 : 1;
}
