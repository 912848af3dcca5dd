// SparseRecoveryMatrix and SparseRecovery: construction, the fused CountSketch + bit-counter
// encoder, merge, estimates, decoder dispatch and bytes. The plan and the two decoders live in
// sparse_recovery_plan.cpp, sparse_recovery_standard.cpp and sparse_recovery_sublinear.cpp.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>

#include "streamattn/core/seeding.hpp"
#include "streamattn/core/validate.hpp"

namespace streamattn {
namespace {

// Keys hashed per pass of the encoder.
constexpr std::size_t kBlock = 1024;
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

// Threads, then (sublinear) the bit rows the decoder reads.
void require_decode_args(const SparseRecoveryPlan& plan, DecodeMethod method, int threads) {
  require(threads >= 0 && threads <= limits::max_threads, "threads must be in [0, ", limits::max_threads,
          "] (0 = hardware concurrency), got ", threads);
  if (method == DecodeMethod::sublinear)
    require(plan.bit_rows >= 1, "the sublinear decoder needs bit_rows >= 1 (this sketch was built with 0)");
}

}  // namespace

DecodeMethod parse_decode_method(const std::string& name) {
  if (name == "standard") return DecodeMethod::standard;
  if (name == "sublinear") return DecodeMethod::sublinear;
  throw std::invalid_argument(message("method must be \"standard\" or \"sublinear\", got \"", name, "\""));
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
    : plan_((plan.validate(), plan)), seed_(seed),
      count_sketch_(plan.rows, plan.buckets, derive_seed(seed, kPurposeCountSketch, 0), plan.columns, plan.n),
      bit_counters_(static_cast<std::size_t>(plan.bit_rows * plan.buckets * plan.columns * plan.bits), 0.0) {}

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
  for (Index r = 0; r < plan_.rows; ++r) {
    if (consecutive) {
      hash_row_range(count_sketch_, r, keys[0], m, bkt.data(), sgn.data());
    } else {
      count_sketch_.hash_row(r, keys.data(), m, bkt.data(), sgn.data());
    }
    count_sketch_.add_to_row(r, bkt.data(), sgn.data(), m, values, first);
    if (r >= plan_.bit_rows) continue;
    double* brow = bit_counters_.data() + r * B * C * L;
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
    add_block([&](std::size_t i) { return static_cast<std::uint64_t>(indices[b0 + static_cast<Index>(i)]); }, b0, len,
              values, false);
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
          "cannot merge a sparse-recovery sketch with (rows=", b.rows, ", buckets=", b.buckets,
          ", bit_rows=", b.bit_rows, ") into one with (rows=", a.rows, ", buckets=", a.buckets,
          ", bit_rows=", a.bit_rows, ")");
  require(a.k == b.k && a.eps == b.eps && a.delta == b.delta,
          "cannot merge a sparse-recovery sketch planned for (k=", b.k, ", eps=", b.eps, ", delta=", b.delta,
          ") into one planned for (k=", a.k, ", eps=", a.eps, ", delta=", a.delta, ")");
  require(seed_ == o.seed_, "cannot merge a sparse-recovery sketch with seed=", o.seed_, " into one with seed=", seed_,
          ": sketches are mergeable only when built with the same seed");
}

void SparseRecoveryMatrix::merge(const SparseRecoveryMatrix& o) {
  require_compatible(o);
  count_sketch_.merge(o.count_sketch_);
  for (std::size_t i = 0; i < bit_counters_.size(); ++i) bit_counters_[i] += o.bit_counters_[i];
}

RowMatrix<double> SparseRecoveryMatrix::estimate(const std::int64_t* indices, Index m) const {
  for (Index i = 0; i < m; ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < plan_.n, "indices[", i, "] = ", indices[i],
            " is outside [0, n = ", plan_.n, ")");
  }
  return count_sketch_.estimate(indices, m);
}

// ---------------------------------------------------------------------------------------------
// Decoders (sparse_recovery_standard.cpp, sparse_recovery_sublinear.cpp)

std::vector<SparseVector> SparseRecoveryMatrix::decode(DecodeMethod method, int threads) const {
  require_decode_args(plan_, method, threads);
  if (method == DecodeMethod::standard) return decode_standard(0, plan_.columns, threads);
  std::vector<SparseVector> out;
  for (Index c = 0; c < plan_.columns; ++c) out.push_back(decode_sublinear(c));
  return out;
}

SparseVector SparseRecoveryMatrix::decode_column(Index column, DecodeMethod method, int threads) const {
  require(column >= 0 && column < plan_.columns, "column must be in [0, ", plan_.columns, "), got ", column);
  require_decode_args(plan_, method, threads);
  if (method == DecodeMethod::sublinear) return decode_sublinear(column);
  return decode_standard(column, column + 1, threads).front();
}

// ---------------------------------------------------------------------------------------------
// Size, repr, bytes

std::size_t SparseRecoveryMatrix::nbytes() const {
  return count_sketch_.nbytes() + bit_counters_.size() * sizeof(double);
}

std::string SparseRecoveryMatrix::repr() const {
  return message("SparseRecoveryMatrix(n=", plan_.n, ", columns=", plan_.columns, ", k=", plan_.k, ", eps=", plan_.eps,
                 ", delta=", plan_.delta, ", rows=", plan_.rows, ", buckets=", plan_.buckets,
                 ", bit_rows=", plan_.bit_rows, ", bits=", plan_.bits, ", seed=", seed_, ", nbytes=", nbytes(), ")");
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
  w.blob(count_sketch_.to_bytes());
  w.f64_array(bit_counters_.data(), bit_counters_.size());
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
  out.count_sketch_ = std::move(cs);
  r.f64_array(out.bit_counters_.data(), out.bit_counters_.size());
  for (double v : out.bit_counters_) r.check(std::isfinite(v), "a bit counter is not finite");
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
    : matrix_(n, 1, k, eps, delta, seed) {}

SparseRecovery::SparseRecovery(const SparseRecoveryPlan& plan, std::uint64_t seed) : matrix_(plan, seed) {
  require(plan.columns == 1, "SparseRecovery sketches one vector: plan.columns must be 1, got ", plan.columns,
          " (use SparseRecoveryMatrix)");
}

void SparseRecovery::update(const std::int64_t* indices, Index m, const VectorRef<float>& values) {
  matrix_.update(indices, m, as_column(values));
}
void SparseRecovery::update(const std::int64_t* indices, Index m, const VectorRef<double>& values) {
  matrix_.update(indices, m, as_column(values));
}
void SparseRecovery::update_dense(std::uint64_t start, const VectorRef<float>& values) {
  require_finite(values, "x");  // the argument's own name (update_rows would call it X)
  matrix_.update_rows(start, as_column(values));
}
void SparseRecovery::update_dense(std::uint64_t start, const VectorRef<double>& values) {
  require_finite(values, "x");
  matrix_.update_rows(start, as_column(values));
}

std::vector<double> SparseRecovery::estimate(const std::int64_t* indices, Index m) const {
  const RowMatrix<double> e = matrix_.estimate(indices, m);
  return std::vector<double>(e.data(), e.data() + e.size());
}

std::string SparseRecovery::repr() const {
  const SparseRecoveryPlan& p = matrix_.plan();
  return message("SparseRecovery(n=", p.n, ", k=", p.k, ", eps=", p.eps, ", delta=", p.delta, ", rows=", p.rows,
                 ", buckets=", p.buckets, ", bit_rows=", p.bit_rows, ", bits=", p.bits, ", seed=", matrix_.seed(),
                 ", nbytes=", matrix_.nbytes(), ")");
}

std::vector<std::uint8_t> SparseRecovery::to_bytes() const {
  ByteWriter w(ObjectKind::sparse_recovery);
  matrix_.write_payload(w);
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
