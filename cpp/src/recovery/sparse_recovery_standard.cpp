// The standard sparse-recovery decoder: the median estimate of every coordinate, top k kept;
// O(n·r), coordinate ranges split over threads.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include "sparse_recovery_decode.hpp"

namespace streamattn {

using namespace sparse_decode;  // the decoders' shared ranking (sparse_recovery_decode.hpp)

namespace {

// Below this many coordinates per thread, starting a thread costs more than it saves.
constexpr std::uint64_t kMinPerThread = std::uint64_t{1} << 16;

// Standard decoder over columns [c0, c1) of coordinates [lo, hi): median estimates of every
// coordinate, kept in one TopK per column.
void standard_range(const CountSketch& cs, std::uint64_t lo, std::uint64_t hi, Index c0, Index c1,
                    std::vector<TopK>& tops) {
  Workspace ws(cs.rows());
  const Index R = cs.rows(), B = cs.buckets(), C = cs.columns();
  const double* table = cs.table().data();
  // |median| > tau needs at least ceil(R/2) values beyond tau in magnitude (for odd or even R),
  // and a counter's magnitude does not depend on the sign: so the buckets of every coordinate are
  // hashed, the counters beyond tau counted, and only the few coordinates that pass (once the
  // TopK is full) get their signs hashed and their median taken.
  const Index need = (R + 1) / 2;
  for (std::uint64_t b0 = lo; b0 < hi; b0 += kBlock) {
    const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, hi - b0));
    for (Index r = 0; r < R; ++r)
      cs.bucket_hash(r).bucket_range(b0, m, static_cast<std::uint64_t>(B),
                                     ws.bkt.data() + static_cast<std::size_t>(r) * kBlock);
    for (Index c = c0; c < c1; ++c) {
      TopK& top = tops[static_cast<std::size_t>(c - c0)];
      double tau = top.threshold();
      for (std::size_t i = 0; i < m; ++i) {
        Index beyond = 0;
        for (Index r = 0; r < R; ++r) {
          const std::size_t at = static_cast<std::size_t>(r) * kBlock + i;
          beyond += std::abs(table[(r * B + ws.bkt[at]) * C + c]) > tau;
        }
        if (beyond < need) continue;
        const std::uint64_t key = b0 + i;
        for (Index r = 0; r < R; ++r) {
          const std::size_t at = static_cast<std::size_t>(r) * kBlock + i;
          ws.vals[static_cast<std::size_t>(r)] = cs.sign_hash(r).sign(key) * table[(r * B + ws.bkt[at]) * C + c];
        }
        const double v = median_inplace(ws.vals.data(), ws.vals.size());
        top.offer(Entry{std::abs(v), static_cast<Index>(key), v});
        tau = top.threshold();
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
