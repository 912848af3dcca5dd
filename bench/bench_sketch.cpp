// Google Benchmark: the matrix-stream updates of the implicit sketches, on the ISA selected
// at start-up (STREAMATTN_ISA or the best available).
//
// Names: BM_CountSketchUpdateRows/<rows>/<columns>, BM_AMSSketchUpdateRows/<s>/<columns>,
// BM_GaussianSketchUpdateRows/<s>/<columns>. Each iteration streams the next block of tokens
// (start advances), as the attention stream does. items = matrix entries streamed (tokens x
// columns); bytes = the same entries as float64.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench_data.hpp"
#include "streamattn/sketch/ams_sketch.hpp"
#include "streamattn/sketch/count_sketch.hpp"
#include "streamattn/sketch/gaussian_sketch.hpp"

namespace {

using streamattn::Index;
using streamattn::RowMatrix;

constexpr std::uint64_t kSeed = 0x5eed'0002ULL;

void set_counters(benchmark::State& state, Index tokens, Index columns) {
  const auto entries = state.iterations() * tokens * columns;
  state.SetItemsProcessed(entries);
  state.SetBytesProcessed(entries * static_cast<std::int64_t>(sizeof(double)));
}

void BM_CountSketchUpdateRows(benchmark::State& state) {
  const Index rows = state.range(0), columns = state.range(1);
  constexpr Index kBuckets = 1024, kTokens = 4096;
  streamattn::CountSketch cs(rows, kBuckets, kSeed, columns);
  const RowMatrix<double> x = streamattn::bench::fixed_rows<double>(kTokens, columns);
  std::uint64_t start = 0;
  for (auto _ : state) {
    cs.update_rows(start, x);
    start += kTokens;
    benchmark::DoNotOptimize(cs.table().data());
    benchmark::ClobberMemory();
  }
  set_counters(state, kTokens, columns);
}
// rows 1..16 and columns 1..64, by x4.
BENCHMARK(BM_CountSketchUpdateRows)->ArgNames({"rows", "columns"})->RangeMultiplier(4)->Ranges({{1, 16}, {1, 64}});

template <class Sketch>
void dense_update_rows(benchmark::State& state) {
  const Index s = state.range(0), columns = state.range(1);
  constexpr Index kTokens = 1024;
  Sketch sk(s, kSeed, columns);
  const RowMatrix<double> x = streamattn::bench::fixed_rows<double>(kTokens, columns);
  std::uint64_t start = 0;
  for (auto _ : state) {
    sk.update_rows(start, x);
    start += kTokens;
    benchmark::DoNotOptimize(sk.value().data());
    benchmark::ClobberMemory();
  }
  set_counters(state, kTokens, columns);
}

void BM_AMSSketchUpdateRows(benchmark::State& state) { dense_update_rows<streamattn::AMSSketch>(state); }
void BM_GaussianSketchUpdateRows(benchmark::State& state) { dense_update_rows<streamattn::GaussianSketch>(state); }
// s 16..256 by x4, columns 16..64 by x4.
BENCHMARK(BM_AMSSketchUpdateRows)->ArgNames({"s", "columns"})->RangeMultiplier(4)->Ranges({{16, 256}, {16, 64}});
BENCHMARK(BM_GaussianSketchUpdateRows)->ArgNames({"s", "columns"})->RangeMultiplier(4)->Ranges({{16, 256}, {16, 64}});

}  // namespace
