// The standard sparse-recovery decoder: the median estimate of every coordinate, top k kept;
// O(n·r), coordinate ranges split over threads.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include "sparse_recovery_decode.hpp"
#include "streamattn/hash/scatter.hpp"

namespace streamattn {

using namespace sparse_decode;  // the decoders' shared ranking (sparse_recovery_decode.hpp)

namespace {

// Columns screened per call of detail::count_beyond (bounds its output buffer).
constexpr Index kScreenColumns = 64;
// Below this many coordinates per thread, starting a thread costs more than it saves.
constexpr std::uint64_t kMinPerThread = std::uint64_t{1} << 16;

// Standard decoder over columns [c0, c1) of coordinates [lo, hi): median estimates of every
// coordinate, kept in one TopK per column.
void standard_range(const CountSketch& cs, std::uint64_t lo, std::uint64_t hi, Index c0, Index c1,
                    std::vector<TopK>& tops) {
  Workspace ws(cs.rows());
  const Index R = cs.rows(), B = cs.buckets(), C = cs.columns(), Cn = c1 - c0;
  const double* table = cs.table().data();
  // |median| > tau needs at least ceil(R/2) values beyond tau in magnitude (for odd or even R),
  // and a counter's magnitude does not depend on the sign: so the buckets of every coordinate are
  // hashed, the counters beyond each column's tau counted (all columns of a bucket at once, they
  // are contiguous; detail::count_beyond), and only the few (coordinate, column) pairs that pass
  // (once the column's TopK is full) get their signs hashed and their median taken. tau only
  // grows: a pair that fails with the block's first tau fails with any later one, and a pair
  // that passes it is counted again with the current tau.
  const Index need = (R + 1) / 2;
  std::vector<double> tau(static_cast<std::size_t>(Cn));
  std::vector<std::uint64_t> pass(kBlock * static_cast<std::size_t>(std::min<Index>(Cn, kScreenColumns)));
  auto beyond = [&](std::size_t i, Index c) {
    Index n = 0;
    for (Index r = 0; r < R; ++r)
      n += std::abs(table[(r * B + ws.bkt[static_cast<std::size_t>(r) * kBlock + i]) * C + c0 + c]) >
           tau[static_cast<std::size_t>(c)];
    return n;
  };
  for (std::uint64_t b0 = lo; b0 < hi; b0 += kBlock) {
    const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, hi - b0));
    for (Index r = 0; r < R; ++r)
      cs.bucket_hash(r).bucket_range(b0, m, static_cast<std::uint64_t>(B),
                                     ws.bkt.data() + static_cast<std::size_t>(r) * kBlock);
    for (Index c = 0; c < Cn; ++c) tau[static_cast<std::size_t>(c)] = tops[static_cast<std::size_t>(c)].threshold();
    for (Index g0 = 0; g0 < Cn; g0 += kScreenColumns) {
      const Index G = std::min<Index>(kScreenColumns, Cn - g0);
      const std::size_t found =
          detail::count_beyond(table + c0 + g0, static_cast<std::size_t>(B), static_cast<std::size_t>(C),
                               static_cast<std::size_t>(G), ws.bkt.data(), kBlock, static_cast<std::size_t>(R), m,
                               tau.data() + g0, static_cast<std::size_t>(need), pass.data());
      for (std::size_t j = 0; j < found; ++j) {
        const std::size_t i = static_cast<std::size_t>(pass[j] / static_cast<std::uint64_t>(G));
        const Index c = g0 + static_cast<Index>(pass[j] % static_cast<std::uint64_t>(G));
        if (beyond(i, c) < need) continue;
        const std::uint64_t key = b0 + i;
        for (Index r = 0; r < R; ++r) {
          const std::size_t at = static_cast<std::size_t>(r) * kBlock + i;
          ws.vals[static_cast<std::size_t>(r)] = cs.sign_hash(r).sign(key) * table[(r * B + ws.bkt[at]) * C + c0 + c];
        }
        const double v = median_inplace(ws.vals.data(), ws.vals.size());
        TopK& top = tops[static_cast<std::size_t>(c)];
        top.offer(Entry{std::abs(v), static_cast<Index>(key), v});
        tau[static_cast<std::size_t>(c)] = top.threshold();
      }
    }
  }
}

}  // namespace

std::vector<SparseVector> SparseRecoveryMatrix::decode_standard(Index c0, Index c1, int threads) const {
  std::vector<SparseVector> out;
  const Index C = c1 - c0;
  unsigned T = threads > 0 ? static_cast<unsigned>(threads) : std::max(1u, std::thread::hardware_concurrency());
  T = static_cast<unsigned>(std::min<std::uint64_t>(T, std::max<std::uint64_t>(1, plan_.n / kMinPerThread)));
  std::vector<std::vector<TopK>> tops(
      T, std::vector<TopK>(static_cast<std::size_t>(C), TopK(static_cast<std::size_t>(plan_.k))));
  // Ranges are multiples of the block so that every thread hashes whole blocks.
  const std::uint64_t per = ((plan_.n + T - 1) / T + kBlock - 1) / kBlock * kBlock;
  auto run = [&](unsigned t) {
    const std::uint64_t lo = std::min<std::uint64_t>(plan_.n, per * t), hi = std::min<std::uint64_t>(plan_.n, lo + per);
    standard_range(count_sketch_, lo, hi, c0, c1, tops[t]);
  };
  if (T == 1) {
    run(0);
  } else {
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < T; ++t) pool.emplace_back(run, t);
    run(0);
    for (auto& th : pool) th.join();
  }
  for (Index c = 0; c < C; ++c) {
    std::vector<Entry> all;
    for (unsigned t = 0; t < T; ++t) {
      const auto& e = tops[t][static_cast<std::size_t>(c)].entries();
      all.insert(all.end(), e.begin(), e.end());
    }
    out.push_back(to_sparse(plan_.n, std::move(all), static_cast<std::size_t>(plan_.k)));
  }
  return out;
}

}  // namespace streamattn
