// The sublinear sparse-recovery decoder: candidates read bit by bit from the bit counters, then
// estimated with the whole CountSketch; polylog in n.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>

#include "sparse_recovery_decode.hpp"

namespace streamattn {

using namespace sparse_decode;  // the decoders' shared ranking (sparse_recovery_decode.hpp)

namespace {

void hash_block(const CountSketch& cs, Workspace& ws, std::size_t m) {
  for (Index r = 0; r < cs.rows(); ++r) {
    const std::size_t off = static_cast<std::size_t>(r) * kBlock;
    cs.hash_row(r, ws.keys.data(), m, ws.bkt.data() + off, ws.sgn.data() + off);
  }
}

// Median over rows of s_r(key_i) * table[r, h_r(key_i), column], for the block hashed in ws.
double median_estimate(const CountSketch& cs, Workspace& ws, std::size_t i, Index column) {
  const Index R = cs.rows(), B = cs.buckets(), C = cs.columns();
  const double* table = cs.table().data();
  for (Index r = 0; r < R; ++r) {
    const std::size_t at = static_cast<std::size_t>(r) * kBlock + i;
    ws.vals[static_cast<std::size_t>(r)] = ws.sgn[at] * table[(r * B + ws.bkt[at]) * C + column];
  }
  return median_inplace(ws.vals.data(), ws.vals.size());
}

}  // namespace

SparseVector SparseRecoveryMatrix::decode_sublinear(Index column) const {
  const Index B = plan_.buckets, C = plan_.columns, L = plan_.bits;
  const double* table = count_sketch_.table().data();
  std::vector<std::uint64_t> cand, row_keys;
  std::vector<std::int64_t> row_buckets, check;
  for (Index r = 0; r < plan_.bit_rows; ++r) {
    row_keys.clear();
    row_buckets.clear();
    const double* brow = bit_counters_.data() + r * B * L * C;  // (bucket, bit, column) within the row
    for (Index h = 0; h < B; ++h) {
      const double total = table[(r * B + h) * C + column];
      if (total == 0.0) continue;
      const double* cell = brow + h * L * C + column;  // bit t at cell[t * C]
      // If one coordinate dominates the bucket, every bit counter is (mostly) its value when
      // its bit is 1 and (mostly) zero when it is 0: compare the two halves of the bucket.
      std::uint64_t idx = 0;
      for (Index t = 0; t < L; ++t) {
        const double bit = cell[t * C];
        if (std::abs(bit) > std::abs(total - bit)) idx |= std::uint64_t{1} << t;
      }
      if (idx >= plan_.n) continue;
      row_keys.push_back(idx);
      row_buckets.push_back(h);
    }
    // A decoded index must hash to the bucket it was read from; this drops most of the
    // garbage read from buckets that no single coordinate dominates.
    check.resize(row_keys.size());
    if (!row_keys.empty())
      count_sketch_.bucket_hash(r).bucket(row_keys.data(), row_keys.size(), static_cast<std::uint64_t>(B),
                                          check.data());
    for (std::size_t i = 0; i < row_keys.size(); ++i)
      if (check[i] == row_buckets[i]) cand.push_back(row_keys[i]);
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  TopK top(static_cast<std::size_t>(plan_.k));
  Workspace ws(plan_.rows);
  for (std::size_t b0 = 0; b0 < cand.size(); b0 += kBlock) {
    const std::size_t m = std::min(kBlock, cand.size() - b0);
    std::copy(cand.begin() + static_cast<std::ptrdiff_t>(b0), cand.begin() + static_cast<std::ptrdiff_t>(b0 + m),
              ws.keys.begin());
    hash_block(count_sketch_, ws, m);
    for (std::size_t i = 0; i < m; ++i) {
      const double v = median_estimate(count_sketch_, ws, i, column);
      top.offer(Entry{std::abs(v), static_cast<std::int64_t>(ws.keys[i]), v});
    }
  }
  return to_sparse(plan_.n, top.entries(), static_cast<std::size_t>(plan_.k));
}

}  // namespace streamattn
