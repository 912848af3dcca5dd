// Google Benchmark: one causal chunk (attention/causal_chunk.hpp), its two hand-offs timed apart,
// on 1 and 2 threads: outputs() (split by the chunk's rows: query features, phi(q) M, the
// intra-chunk block) and absorb() (split by the state's rows: key features, M and s updated).
// Which part gains from a second thread, measured side by side in one binary.
//
// Names: BM_CausalChunk/<d>/<threads>/<f32> with dv = 64, Taylor degree 2 (t = C(d+2, 2): 153
// for d = 16, Based's feature map; 2 145 for d = 64), the default chunk for t (chunk_for_features),
// f32 = 1 the float32 compute path. The state holds 16 chunks of keys before timing starts, and
// each iteration streams the next chunk. Counters (per chunk, mean over the iterations):
// outputs_us and absorb_us; items = tokens. Compare threads:1 with threads:2 at the same d, f32:
//   streamattn_bench --benchmark_filter=CausalChunk --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <optional>

#include "bench_data.hpp"
#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/core/thread_pool.hpp"

namespace {

using streamattn::Index;
using streamattn::MatrixRef;
using streamattn::RowMatrix;

template <class T>
void run_chunks(benchmark::State& state, Index d, int threads) {
  constexpr Index dv = 64, kChunks = 16;
  const bool f32 = std::is_same_v<T, float>;
  streamattn::PolyPrefixState prefix(d, dv, 2, std::nullopt);
  const Index chunk = streamattn::chunk_for_features(prefix.dim()), n = kChunks * chunk;
  const RowMatrix<T> Q = streamattn::bench::fixed_rows<T>(n, d, 1), K = streamattn::bench::fixed_rows<T>(n, d, 2),
                     V = streamattn::bench::fixed_rows<T>(n, dv, 3);
  streamattn::ThreadPool pool(threads);
  streamattn::PolyWorkspace ws;
  ws.pool = threads > 1 ? &pool : nullptr;
  streamattn::CausalChunker chunker;
  chunker.reserve(chunk, d, dv, false, chunk);
  const streamattn::Normalizer norm;
  auto rows = [&](const RowMatrix<T>& x, Index c) { return MatrixRef<T>(x.middleRows((c % kChunks) * chunk, chunk)); };
  for (Index c = 0; c < kChunks; ++c) chunker.absorb(prefix, rows(K, c), rows(V, c), false, ws, f32);
  double t_out = 0.0, t_abs = 0.0;
  std::uint64_t c = 0, row = static_cast<std::uint64_t>(n);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = chunker.outputs(prefix, rows(Q, c), rows(K, c), rows(V, c), false, row, norm, ws, f32);
    benchmark::DoNotOptimize(out.data());
    const auto t1 = std::chrono::steady_clock::now();
    chunker.absorb(prefix, rows(K, c), rows(V, c), false, ws, f32);
    const auto t2 = std::chrono::steady_clock::now();
    t_out += std::chrono::duration<double>(t1 - t0).count();
    t_abs += std::chrono::duration<double>(t2 - t1).count();
    ++c;
    row += static_cast<std::uint64_t>(chunk);
  }
  state.counters["outputs_us"] = benchmark::Counter(t_out * 1e6, benchmark::Counter::kAvgIterations);
  state.counters["absorb_us"] = benchmark::Counter(t_abs * 1e6, benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations() * chunk);
}

void BM_CausalChunk(benchmark::State& state) {
  const Index d = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  if (state.range(2) != 0)
    run_chunks<float>(state, d, threads);
  else
    run_chunks<double>(state, d, threads);
}

}  // namespace

BENCHMARK(BM_CausalChunk)
    ->ArgNames({"d", "threads", "f32"})
    ->ArgsProduct({{16, 64}, {1, 2}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
