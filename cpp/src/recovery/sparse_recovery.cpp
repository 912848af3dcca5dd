#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "streamattn/core/seeding.hpp"
#include "streamattn/core/validate.hpp"

namespace streamattn {
namespace {

constexpr std::size_t kBlock = 1024;
// Below this many coordinates per thread, starting a thread costs more than it saves.
constexpr std::uint64_t kMinPerThread = std::uint64_t{1} << 16;
// Purpose number of the CountSketch's seed (seeding.hpp); 0..9 belong to other sketches.
constexpr std::uint64_t kPurposeCountSketch = 10;

// Bucket and sign of row r for the keys start .. start+m-1 (forward differences: the same values
// as CountSketch::hash_row, several times faster on the consecutive keys of dense updates and of
// the standard decoder's scan).
void hash_row_range(const CountSketch& cs, Index r, std::uint64_t start, std::size_t m, std::int64_t* bkt,
                    double* sgn) {
  cs.bucket_hash(r).bucket_range(start, m, static_cast<std::uint64_t>(cs.buckets()), bkt);
  cs.sign_hash(r).sign_range(start, m, sgn);
}

inline int lowest_bit(std::uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(v);
#else
  int t = 0;
  while (!(v & 1u)) {
    v >>= 1;
    ++t;
  }
  return t;
#endif
}

int ceil_log2(std::uint64_t n) {
  int L = 0;
  while (L < 64 && (std::uint64_t{1} << L) < n) ++L;
  return std::max(L, 1);
}

// One candidate answer; ranked by magnitude, ties to the smaller index, so every thread
// split and every decoder order gives the same result.
struct Entry {
  double mag;
  std::int64_t index;
  double value;
};
bool better(const Entry& a, const Entry& b) {
  return a.mag > b.mag || (a.mag == b.mag && a.index < b.index);
}

// The k best entries seen so far; front() of the heap is the worst kept one.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }
  // Entries must beat this magnitude strictly to be kept (when offered in increasing index order).
  double threshold() const { return heap_.size() < k_ ? 0.0 : heap_.front().mag; }
  void offer(const Entry& e) {
    if (!(e.mag > 0.0)) return;  // zero estimates are not part of the support
    if (heap_.size() < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  const std::vector<Entry>& entries() const { return heap_; }

 private:
  std::size_t k_;
  std::vector<Entry> heap_;
};

SparseVector to_sparse(std::uint64_t n, std::vector<Entry> entries, std::size_t k) {
  std::sort(entries.begin(), entries.end(), better);
  if (entries.size() > k) entries.resize(k);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.index < b.index; });
  SparseVector out;
  out.n = n;
  out.indices.reserve(entries.size());
  out.values.reserve(entries.size());
  for (const Entry& e : entries) {
    out.indices.push_back(e.index);
    out.values.push_back(e.value);
  }
  return out;
}

// Hashes of one block of keys in every CountSketch row.
struct Workspace {
  explicit Workspace(Index rows)
      : keys(kBlock), bkt(kBlock * static_cast<std::size_t>(rows)), sgn(kBlock * static_cast<std::size_t>(rows)),
        vals(static_cast<std::size_t>(rows)) {}
  std::vector<std::uint64_t> keys;
  std::vector<std::int64_t> bkt;
  std::vector<double> sgn;
  std::vector<double> vals;
};

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

void check_n(std::uint64_t n) {
  require(n >= 1 && n <= SparseRecoveryMatrix::max_n, "n must be in [1, 2^61 - 1], got ", n);
}

}  // namespace

DecodeMethod parse_decode_method(const std::string& name) {
  if (name == "standard") return DecodeMethod::standard;
  if (name == "sublinear") return DecodeMethod::sublinear;
  throw std::invalid_argument(message("method must be \"standard\" or \"sublinear\", got \"", name, "\""));
}

const char* decode_method_name(DecodeMethod m) {
  return m == DecodeMethod::standard ? "standard" : "sublinear";
}

// ---------------------------------------------------------------------------------------------
// Plan

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
  require_state_fits(cells, message("the sparse-recovery sketch (rows=", rows, ", buckets=", buckets, ", bit_rows=",
                                    bit_rows, ", bits=", bits, ", columns=", columns, ") with ", static_cast<double>(cells),
                                    " counters"), "lower k or columns, or raise eps");
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
                 ", count_sketch_bytes=", count_sketch_bytes(), ", bit_bytes=", bit_bytes(), ", nbytes=", nbytes(), ")");
}

// ---------------------------------------------------------------------------------------------
// SparseRecoveryMatrix

SparseRecoveryMatrix SparseRecoveryMatrix::planned(std::uint64_t n, Index columns, Index k, double eps, double delta,
                                                   std::uint64_t seed) {
  return SparseRecoveryMatrix(SparseRecoveryPlan::make(n, k, eps, delta, columns), seed);
}

SparseRecoveryMatrix::SparseRecoveryMatrix(std::uint64_t n, Index columns, Index k, double eps, double delta,
                                           std::uint64_t seed)
    : SparseRecoveryMatrix(SparseRecoveryPlan::make(n, k, eps, delta, columns), seed) {}

SparseRecoveryMatrix::SparseRecoveryMatrix(const SparseRecoveryPlan& plan, std::uint64_t seed)
    : plan_((plan.validate(), plan)),
      seed_(seed),
      base_(plan.rows, plan.buckets, derive_seed(seed, kPurposeCountSketch, 0), plan.columns, plan.n),
      bits_(static_cast<std::size_t>(plan.bit_rows * plan.buckets * plan.columns * plan.bits), 0.0) {}

template <class KeyAt, class T>
void SparseRecoveryMatrix::add_block(KeyAt key_at, Index first, std::size_t m, const MatrixRef<T>& values,
                                     bool consecutive) {
  // One pass per row: hash the block once, feed the CountSketch counters and (on bit rows) the
  // bit counters of the same bucket, so the bit tests cost no extra hashing.
  thread_local std::vector<std::uint64_t> keys;
  thread_local std::vector<std::int64_t> bkt;
  thread_local std::vector<double> sgn;
  keys.resize(kBlock);
  bkt.resize(kBlock);
  sgn.resize(kBlock);
  for (std::size_t i = 0; i < m; ++i) keys[i] = key_at(i);
  const Index B = plan_.buckets, C = plan_.columns, L = plan_.bits;
  double* table = base_.mutable_table().data();
  for (Index r = 0; r < plan_.rows; ++r) {
    if (consecutive) {
      hash_row_range(base_, r, keys[0], m, bkt.data(), sgn.data());
    } else {
      base_.hash_row(r, keys.data(), m, bkt.data(), sgn.data());
    }
    double* row = table + r * B * C;
    for (std::size_t i = 0; i < m; ++i) {
      double* cell = row + bkt[i] * C;
      const Index at = first + static_cast<Index>(i);
      for (Index c = 0; c < C; ++c) cell[c] += sgn[i] * static_cast<double>(values(at, c));
    }
    if (r >= plan_.bit_rows) continue;
    double* brow = bits_.data() + r * B * C * L;
    for (std::size_t i = 0; i < m; ++i) {
      const std::uint64_t key = keys[i];
      const Index at = first + static_cast<Index>(i);
      double* cell = brow + bkt[i] * C * L;
      for (Index c = 0; c < C; ++c, cell += L) {
        const double sv = sgn[i] * static_cast<double>(values(at, c));
        if (sv == 0.0) continue;
        for (std::uint64_t rest = key; rest != 0; rest &= rest - 1) cell[lowest_bit(rest)] += sv;
      }
    }
  }
}

template <class T>
void SparseRecoveryMatrix::update_impl(const std::int64_t* indices, Index m, const MatrixRef<T>& values) {
  require(values.rows() == m, "values must have one row per index: ", m, " indices, ", values.rows(), " value rows");
  require_cols(values, plan_.columns, "values");
  for (Index i = 0; i < m; ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < plan_.n, "indices[", i, "] = ", indices[i],
            " is outside [0, n = ", plan_.n, ")");
  }
  require_finite(values, "values");
  for (Index b0 = 0; b0 < m; b0 += static_cast<Index>(kBlock)) {
    const std::size_t len = static_cast<std::size_t>(std::min<Index>(kBlock, m - b0));
    add_block([&](std::size_t i) { return static_cast<std::uint64_t>(indices[b0 + static_cast<Index>(i)]); }, b0,
              len, values, false);
  }
}

template <class T>
void SparseRecoveryMatrix::update_rows_impl(std::uint64_t start, const MatrixRef<T>& X) {
  require_cols(X, plan_.columns, "X");
  const std::uint64_t m = static_cast<std::uint64_t>(X.rows());
  require(start <= plan_.n && m <= plan_.n - start, "rows start .. start+len(X) = ", start, " .. ", start + m,
          " exceed n = ", plan_.n);
  require_finite(X, "X");
  for (std::uint64_t b0 = 0; b0 < m; b0 += kBlock) {
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, m - b0));
    add_block([&](std::size_t i) { return start + b0 + i; }, static_cast<Index>(b0), len, X, true);
  }
}

void SparseRecoveryMatrix::update(const std::int64_t* indices, Index m, const MatrixRef<float>& values) {
  update_impl(indices, m, values);
}
void SparseRecoveryMatrix::update(const std::int64_t* indices, Index m, const MatrixRef<double>& values) {
  update_impl(indices, m, values);
}
void SparseRecoveryMatrix::update_rows(std::uint64_t start, const MatrixRef<float>& X) { update_rows_impl(start, X); }
void SparseRecoveryMatrix::update_rows(std::uint64_t start, const MatrixRef<double>& X) { update_rows_impl(start, X); }

void SparseRecoveryMatrix::require_compatible(const SparseRecoveryMatrix& o) const {
  const SparseRecoveryPlan &a = plan_, &b = o.plan_;
  require(a.n == b.n && a.columns == b.columns, "cannot merge a sparse-recovery sketch of shape (n=", b.n,
          ", columns=", b.columns, ") into one of shape (n=", a.n, ", columns=", a.columns, ")");
  require(a.rows == b.rows && a.buckets == b.buckets && a.bit_rows == b.bit_rows,
          "cannot merge a sparse-recovery sketch with (rows=", b.rows, ", buckets=", b.buckets, ", bit_rows=",
          b.bit_rows, ") into one with (rows=", a.rows, ", buckets=", a.buckets, ", bit_rows=", a.bit_rows, ")");
  require(a.k == b.k && a.eps == b.eps && a.delta == b.delta, "cannot merge a sparse-recovery sketch planned for (k=",
          b.k, ", eps=", b.eps, ", delta=", b.delta, ") into one planned for (k=", a.k, ", eps=", a.eps,
          ", delta=", a.delta, ")");
  require(seed_ == o.seed_, "cannot merge a sparse-recovery sketch with seed=", o.seed_, " into one with seed=", seed_,
          ": sketches are mergeable only when built with the same seed");
}

void SparseRecoveryMatrix::merge(const SparseRecoveryMatrix& o) {
  require_compatible(o);
  base_.merge(o.base_);
  for (std::size_t i = 0; i < bits_.size(); ++i) bits_[i] += o.bits_[i];
}

RowMatrix<double> SparseRecoveryMatrix::estimate(const std::int64_t* indices, Index m) const {
  for (Index i = 0; i < m; ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < plan_.n, "indices[", i, "] = ", indices[i],
            " is outside [0, n = ", plan_.n, ")");
  }
  return base_.estimate(indices, m);
}

// ---------------------------------------------------------------------------------------------
// Decoders

namespace {

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
      cs.bucket_hash(r).bucket_range(b0, m, static_cast<std::uint64_t>(B), ws.bkt.data() + static_cast<std::size_t>(r) * kBlock);
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

std::vector<SparseVector> SparseRecoveryMatrix::decode(DecodeMethod method, int threads) const {
  require(threads >= 0 && threads <= limits::max_threads, "threads must be in [0, ", limits::max_threads,
          "] (0 = hardware concurrency), got ", threads);
  if (method == DecodeMethod::standard) return decode_standard(0, plan_.columns, threads);
  require(plan_.bit_rows >= 1, "the sublinear decoder needs bit_rows >= 1 (this sketch was built with 0)");
  std::vector<SparseVector> out;
  for (Index c = 0; c < plan_.columns; ++c) out.push_back(decode_sublinear(c));
  return out;
}

std::vector<SparseVector> SparseRecoveryMatrix::decode_standard(Index c0, Index c1, int threads) const {
  std::vector<SparseVector> out;
  const Index C = c1 - c0;
  unsigned T = threads > 0 ? static_cast<unsigned>(threads) : std::max(1u, std::thread::hardware_concurrency());
  T = static_cast<unsigned>(std::min<std::uint64_t>(T, std::max<std::uint64_t>(1, plan_.n / kMinPerThread)));
  std::vector<std::vector<TopK>> tops(T, std::vector<TopK>(static_cast<std::size_t>(C), TopK(static_cast<std::size_t>(plan_.k))));
  // Ranges are multiples of the block so that every thread hashes whole blocks.
  const std::uint64_t per = ((plan_.n + T - 1) / T + kBlock - 1) / kBlock * kBlock;
  auto run = [&](unsigned t) {
    const std::uint64_t lo = std::min<std::uint64_t>(plan_.n, per * t), hi = std::min<std::uint64_t>(plan_.n, lo + per);
    standard_range(base_, lo, hi, c0, c1, tops[t]);
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

SparseVector SparseRecoveryMatrix::decode_sublinear(Index column) const {
  const Index B = plan_.buckets, C = plan_.columns, L = plan_.bits;
  const double* table = base_.table().data();
  std::vector<std::uint64_t> cand, row_keys;
  std::vector<std::int64_t> row_buckets, check;
  for (Index r = 0; r < plan_.bit_rows; ++r) {
    row_keys.clear();
    row_buckets.clear();
    const double* brow = bits_.data() + r * B * C * L;
    for (Index h = 0; h < B; ++h) {
      const double total = table[(r * B + h) * C + column];
      if (total == 0.0) continue;
      const double* cell = brow + (h * C + column) * L;
      // If one coordinate dominates the bucket, every bit counter is (mostly) its value when
      // its bit is 1 and (mostly) zero when it is 0: compare the two halves of the bucket.
      std::uint64_t idx = 0;
      for (Index t = 0; t < L; ++t) {
        if (std::abs(cell[t]) > std::abs(total - cell[t])) idx |= std::uint64_t{1} << t;
      }
      if (idx >= plan_.n) continue;
      row_keys.push_back(idx);
      row_buckets.push_back(h);
    }
    // A decoded index must hash to the bucket it was read from; this drops most of the
    // garbage read from buckets that no single coordinate dominates.
    check.resize(row_keys.size());
    if (!row_keys.empty())
      base_.bucket_hash(r).bucket(row_keys.data(), row_keys.size(), static_cast<std::uint64_t>(B), check.data());
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
    hash_block(base_, ws, m);
    for (std::size_t i = 0; i < m; ++i) {
      const double v = median_estimate(base_, ws, i, column);
      top.offer(Entry{std::abs(v), static_cast<std::int64_t>(ws.keys[i]), v});
    }
  }
  return to_sparse(plan_.n, top.entries(), static_cast<std::size_t>(plan_.k));
}

SparseVector SparseRecoveryMatrix::decode_column(Index column, DecodeMethod method, int threads) const {
  require(column >= 0 && column < plan_.columns, "column must be in [0, ", plan_.columns, "), got ", column);
  require(threads >= 0 && threads <= limits::max_threads, "threads must be in [0, ", limits::max_threads,
          "] (0 = hardware concurrency), got ", threads);
  if (method == DecodeMethod::sublinear) {
    require(plan_.bit_rows >= 1, "the sublinear decoder needs bit_rows >= 1 (this sketch was built with 0)");
    return decode_sublinear(column);
  }
  return decode_standard(column, column + 1, threads).front();
}

// ---------------------------------------------------------------------------------------------
// Size, repr, bytes

std::size_t SparseRecoveryMatrix::nbytes() const { return base_.nbytes() + bits_.size() * sizeof(double); }

std::string SparseRecoveryMatrix::repr() const {
  return message("SparseRecoveryMatrix(n=", plan_.n, ", columns=", plan_.columns, ", k=", plan_.k, ", eps=", plan_.eps,
                 ", delta=", plan_.delta, ", rows=", plan_.rows, ", buckets=", plan_.buckets, ", bit_rows=",
                 plan_.bit_rows, ", bits=", plan_.bits, ", seed=", seed_, ", nbytes=", nbytes(), ")");
}

void SparseRecoveryMatrix::write_payload(ByteWriter& w) const {
  w.u64(plan_.n);
  w.u64(static_cast<std::uint64_t>(plan_.columns));
  w.u64(static_cast<std::uint64_t>(plan_.k));
  w.f64(plan_.eps);
  w.f64(plan_.delta);
  w.u64(static_cast<std::uint64_t>(plan_.rows));
  w.u64(static_cast<std::uint64_t>(plan_.buckets));
  w.u64(static_cast<std::uint64_t>(plan_.bit_rows));
  w.u64(static_cast<std::uint64_t>(plan_.bits));
  w.u64(seed_);
  w.blob(base_.to_bytes());
  w.f64_array(bits_.data(), bits_.size());
}

SparseRecoveryMatrix SparseRecoveryMatrix::read_payload(ByteReader& r) {
  SparseRecoveryPlan p;
  p.n = r.u64();
  const std::uint64_t columns = r.u64(), k = r.u64();
  p.eps = r.f64();
  p.delta = r.f64();
  const std::uint64_t rows = r.u64(), buckets = r.u64(), bit_rows = r.u64(), bits = r.u64();
  const std::uint64_t seed = r.u64();
  r.check(columns >= 1 && columns <= (std::uint64_t{1} << 40) && k >= 1 && k <= p.n && rows >= 1 && rows <= 1024 &&
              buckets >= 1 && buckets <= KWiseHash::max_buckets && bit_rows <= rows && bits <= 64,
          "sizes out of range");
  p.columns = static_cast<Index>(columns);
  p.k = static_cast<Index>(k);
  p.rows = static_cast<Index>(rows);
  p.buckets = static_cast<Index>(buckets);
  p.bit_rows = static_cast<Index>(bit_rows);
  p.bits = static_cast<int>(bits);
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    r.check(false, e.what());
  }
  const std::vector<std::uint8_t> blob = r.blob();
  CountSketch cs = CountSketch::from_bytes(blob.data(), blob.size());
  r.check(cs.rows() == p.rows && cs.buckets() == p.buckets && cs.columns() == p.columns && cs.dim() == p.n &&
              cs.seed() == derive_seed(seed, kPurposeCountSketch, 0),
          "the nested CountSketch does not match the plan or the seed");
  const long double cells = static_cast<long double>(p.bit_rows) * p.buckets * p.columns * p.bits;
  r.check(cells * 8 == static_cast<long double>(r.remaining()), "bit counter count does not match the payload");
  SparseRecoveryMatrix out(p, seed);
  out.base_ = std::move(cs);
  r.f64_array(out.bits_.data(), out.bits_.size());
  for (double v : out.bits_) r.check(std::isfinite(v), "a bit counter is not finite");
  return out;
}

std::vector<std::uint8_t> SparseRecoveryMatrix::to_bytes() const {
  ByteWriter w(ObjectKind::sparse_recovery_matrix);
  write_payload(w);
  return w.finish();
}

SparseRecoveryMatrix SparseRecoveryMatrix::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::sparse_recovery_matrix);
  SparseRecoveryMatrix out = read_payload(r);
  r.finish();
  return out;
}

// ---------------------------------------------------------------------------------------------
// SparseRecovery

namespace {
template <class T>
MatrixRef<T> as_column(const VectorRef<T>& v) {
  using Map = Eigen::Map<const RowMatrix<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;
  return MatrixRef<T>(Map(v.data(), v.size(), 1, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(v.innerStride(), 1)));
}
}  // namespace

SparseRecovery::SparseRecovery(std::uint64_t n, Index k, double eps, double delta, std::uint64_t seed)
    : m_(n, 1, k, eps, delta, seed) {}

SparseRecovery::SparseRecovery(const SparseRecoveryPlan& plan, std::uint64_t seed) : m_(plan, seed) {
  require(plan.columns == 1, "SparseRecovery sketches one vector: plan.columns must be 1, got ", plan.columns,
          " (use SparseRecoveryMatrix)");
}

void SparseRecovery::update(const std::int64_t* indices, Index m, const VectorRef<float>& values) {
  m_.update(indices, m, as_column(values));
}
void SparseRecovery::update(const std::int64_t* indices, Index m, const VectorRef<double>& values) {
  m_.update(indices, m, as_column(values));
}
void SparseRecovery::update_dense(std::uint64_t start, const VectorRef<float>& values) {
  require_finite(values, "x");  // the argument's own name (update_rows would call it X)
  m_.update_rows(start, as_column(values));
}
void SparseRecovery::update_dense(std::uint64_t start, const VectorRef<double>& values) {
  require_finite(values, "x");
  m_.update_rows(start, as_column(values));
}

std::vector<double> SparseRecovery::estimate(const std::int64_t* indices, Index m) const {
  const RowMatrix<double> e = m_.estimate(indices, m);
  return std::vector<double>(e.data(), e.data() + e.size());
}

std::string SparseRecovery::repr() const {
  const SparseRecoveryPlan& p = m_.plan();
  return message("SparseRecovery(n=", p.n, ", k=", p.k, ", eps=", p.eps, ", delta=", p.delta, ", rows=", p.rows,
                 ", buckets=", p.buckets, ", bit_rows=", p.bit_rows, ", bits=", p.bits, ", seed=", m_.seed(),
                 ", nbytes=", m_.nbytes(), ")");
}

std::vector<std::uint8_t> SparseRecovery::to_bytes() const {
  ByteWriter w(ObjectKind::sparse_recovery);
  m_.write_payload(w);
  return w.finish();
}

SparseRecovery SparseRecovery::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::sparse_recovery);
  SparseRecoveryMatrix m = SparseRecoveryMatrix::read_payload(r);
  r.finish();
  r.check(m.columns() == 1, "a SparseRecovery must have one column");
  return SparseRecovery(std::move(m));
}

}  // namespace streamattn
