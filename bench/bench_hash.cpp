// Google Benchmark: k-wise hashing (streamattn/hash/kwise_hash.hpp) on every ISA path this CPU runs.
//
// The ISA is a process-wide setting, so each benchmark sets its own path before timing; the
// benchmarks are registered only for the paths available_isas() reports, which keeps the
// binary usable as a CI smoke test on any x86-64 or aarch64 machine.
//
// Names: BM_KWiseHashHash/<isa>/<k>/<n>, BM_KWiseHashBucket/<isa>/<k>/<n>,
// BM_KWiseHashSign/<isa>/<k>/<n>; items = keys hashed.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "streamattn/hash/kwise_hash.hpp"
#include "streamattn/kernels/isa.hpp"

namespace {

using streamattn::Isa;
using streamattn::KWiseHash;

constexpr std::uint64_t kSeed = 0x5eed'0001ULL;
constexpr std::uint64_t kBuckets = 1000;

// Sequential keys starting far from 0: the attention stream hashes token positions, and a
// large offset keeps the polynomial from working on small numbers only.
std::vector<std::uint64_t> make_keys(std::size_t n) {
  std::vector<std::uint64_t> keys(n);
  std::iota(keys.begin(), keys.end(), std::uint64_t{1} << 40);
  return keys;
}

void BM_KWiseHashHash(benchmark::State& state, Isa isa) {
  streamattn::set_isa(isa);
  const KWiseHash h(static_cast<int>(state.range(0)), kSeed);
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto keys = make_keys(n);
  std::vector<std::uint64_t> out(n);
  for (auto _ : state) {
    h.hash(keys.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * 2 * sizeof(std::uint64_t)));
  state.SetLabel(streamattn::isa_name(isa));
}

void BM_KWiseHashBucket(benchmark::State& state, Isa isa) {
  streamattn::set_isa(isa);
  const KWiseHash h(static_cast<int>(state.range(0)), kSeed);
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto keys = make_keys(n);
  std::vector<std::int64_t> out(n);
  for (auto _ : state) {
    h.bucket(keys.data(), n, kBuckets, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * 2 * sizeof(std::uint64_t)));
  state.SetLabel(streamattn::isa_name(isa));
}

void BM_KWiseHashSign(benchmark::State& state, Isa isa) {
  streamattn::set_isa(isa);
  const KWiseHash h(static_cast<int>(state.range(0)), kSeed);
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto keys = make_keys(n);
  std::vector<double> out(n);
  for (auto _ : state) {
    h.sign(keys.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * 2 * sizeof(std::uint64_t)));
  state.SetLabel(streamattn::isa_name(isa));
}

// One registration per available path: k in {2, 4, 8} (x2 multiplier), n from 2^10 (L1) to
// 2^16 (L2-sized) by x64.
const bool registered = [] {
  for (Isa isa : streamattn::available_isas()) {
    const std::string suffix = std::string("/") + streamattn::isa_name(isa);
    benchmark::RegisterBenchmark(("BM_KWiseHashHash" + suffix).c_str(), BM_KWiseHashHash, isa)
        ->ArgNames({"k", "n"})
        ->ArgsProduct(
            {benchmark::CreateRange(2, 8, /*multi=*/2), benchmark::CreateRange(1 << 10, 1 << 16, /*multi=*/64)});
    benchmark::RegisterBenchmark(("BM_KWiseHashBucket" + suffix).c_str(), BM_KWiseHashBucket, isa)
        ->ArgNames({"k", "n"})
        ->Args({2, 1 << 12});
    benchmark::RegisterBenchmark(("BM_KWiseHashSign" + suffix).c_str(), BM_KWiseHashSign, isa)
        ->ArgNames({"k", "n"})
        ->Args({4, 1 << 12});
  }
  return true;
}();

}  // namespace
