// SparseRecoveryPlan: the sizing rule of sparse_recovery.hpp and its validation.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>

#include "streamattn/core/validate.hpp"

namespace streamattn {
namespace {

int ceil_log2(std::uint64_t n) {
  int L = 0;
  while (L < 64 && (std::uint64_t{1} << L) < n) ++L;
  return std::max(L, 1);
}

void check_n(std::uint64_t n) {
  require(n >= 1 && n <= SparseRecoveryMatrix::max_n, "n must be in [1, 2^61 - 1], got ", n);
}

}  // namespace

SparseRecoveryPlan SparseRecoveryPlan::make(std::uint64_t n, Index k, double eps, double delta, Index columns) {
  check_n(n);
  require(k >= 1 && static_cast<std::uint64_t>(k) <= n, "k must be in [1, n = ", n, "], got ", k);
  require(eps > 0.0 && eps <= 1.0, "eps must be in (0, 1], got ", eps);
  require(delta > 0.0 && delta < 1.0, "delta must be in (0, 1), got ", delta);
  require(columns >= 1, "columns must be >= 1, got ", columns);
  SparseRecoveryPlan p;
  p.n = n;
  p.columns = columns;
  p.k = k;
  p.eps = eps;
  p.delta = delta;
  const double b = std::ceil(8.0 * static_cast<double>(k) / eps);
  require(b <= static_cast<double>(KWiseHash::max_buckets), "k/eps = ", static_cast<double>(k) / eps,
          " needs more than 2^32 - 1 buckets; lower k or raise eps");
  p.buckets = static_cast<Index>(b);
  // A coordinate outside the support gets a nonzero median only if more than half of its r
  // buckets hold a heavy coordinate: probability <= C(r, m)·(k/b)^m with m = (r+1)/2, which the
  // union bound over n coordinates must push below δ; m = ln(n/δ)/ln(b/2k) does so with the
  // binomial coefficient absorbed empirically (tests: exact k-sparse recovery, 200 seeds).
  const double m = std::ceil(std::log(static_cast<double>(n) / delta) / std::log(b / (2.0 * static_cast<double>(k))));
  p.rows = std::max<Index>(7, 2 * static_cast<Index>(m) - 1);
  p.bits = ceil_log2(n);
  const Index extra = static_cast<Index>(std::ceil(std::log2(static_cast<double>(k)) / 2.0));
  p.bit_rows = std::min<Index>(p.rows, 3 + extra);
  p.validate();
  return p;
}

SparseRecoveryPlan SparseRecoveryPlan::with_sizes(Index rows_, Index buckets_, Index bit_rows_) const {
  SparseRecoveryPlan p = *this;
  if (rows_ != 0) p.rows = rows_;
  if (buckets_ != 0) p.buckets = buckets_;
  if (bit_rows_ != 0) p.bit_rows = bit_rows_;
  if (rows_ != 0 && bit_rows_ == 0) p.bit_rows = std::min(p.bit_rows, p.rows);
  p.validate();
  return p;
}

void SparseRecoveryPlan::validate() const {
  check_n(n);
  require(columns >= 1, "columns must be >= 1, got ", columns);
  require(k >= 1 && static_cast<std::uint64_t>(k) <= n, "k must be in [1, n = ", n, "], got ", k);
  require(eps > 0.0 && eps <= 1.0, "eps must be in (0, 1], got ", eps);
  require(delta > 0.0 && delta < 1.0, "delta must be in (0, 1), got ", delta);
  require(rows >= 1 && rows <= 1024, "rows must be in [1, 1024], got ", rows);
  require(buckets >= 1 && static_cast<std::uint64_t>(buckets) <= KWiseHash::max_buckets,
          "buckets must be in [1, 2^32 - 1], got ", buckets);
  require(bit_rows >= 0 && bit_rows <= rows, "bit_rows must be in [0, rows = ", rows, "], got ", bit_rows);
  require(bits == ceil_log2(n), "bits must be ceil(log2 n) = ", ceil_log2(n), ", got ", bits);
  const long double cells = static_cast<long double>(rows + bit_rows * bits) * buckets * columns;
  require_state_fits(
      cells,
      message("the sparse-recovery sketch (rows=", rows, ", buckets=", buckets, ", bit_rows=", bit_rows,
              ", bits=", bits, ", columns=", columns, ") with ", static_cast<double>(cells), " counters"),
      "lower k or columns, or raise eps");
}

std::size_t SparseRecoveryPlan::count_sketch_bytes() const {
  return static_cast<std::size_t>(rows * buckets * columns) * sizeof(double) +
         static_cast<std::size_t>(rows) * (2 + 4) * sizeof(std::uint64_t);
}

std::size_t SparseRecoveryPlan::bit_bytes() const {
  return static_cast<std::size_t>(bit_rows * buckets * columns * bits) * sizeof(double);
}

std::string SparseRecoveryPlan::repr() const {
  return message("SparseRecoveryPlan(n=", n, ", columns=", columns, ", k=", k, ", eps=", eps, ", delta=", delta,
                 ", rows=", rows, ", buckets=", buckets, ", bit_rows=", bit_rows, ", bits=", bits,
                 ", count_sketch_bytes=", count_sketch_bytes(), ", bit_bytes=", bit_bytes(), ", nbytes=", nbytes(),
                 ")");
}

}  // namespace streamattn
