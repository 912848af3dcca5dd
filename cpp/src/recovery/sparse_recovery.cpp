// SparseRecoveryMatrix and SparseRecovery: construction, the fused CountSketch + bit-counter
// encoder, merge, estimates, decoder dispatch and bytes. The plan and the two decoders live in
// sparse_recovery_plan.cpp, sparse_recovery_standard.cpp and sparse_recovery_sublinear.cpp.
#include "streamattn/recovery/sparse_recovery.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "streamattn/core/bits.hpp"
#include "streamattn/core/seeding.hpp"
#include "streamattn/core/validate.hpp"
#include "streamattn/hash/scatter.hpp"

namespace streamattn {
namespace {

// Keys per window of the encoder: every row of the sketch is applied to a whole window before
// the next row, so that one row's counters stay in cache while the window streams through.
constexpr std::size_t kWindow = 16384;
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

// Bit rows larger than this many bytes (buckets x bits x columns doubles) are fed bucket by bucket
// (add_bits_grouped): a key's bit counters are spread over `bits` rows of its bucket's block, and
// once the row no longer fits in a core's cache every key misses on most of them. Up to
// kGroupedMaxColumns columns, so the window's reordered values stay within 4 MiB of scratch.
constexpr std::size_t kGroupedBitRowBytes = std::size_t{512} << 10;
constexpr std::size_t kGroupedMaxColumns = 32;

// The encoder's scratch space for one window (per thread); the grouped bit path also uses the
// window's keys, buckets, signs and value rows in bucket order.
struct EncoderBuffers {
  std::vector<std::uint64_t> keys;
  std::vector<std::int64_t> bkt;
  std::vector<double> sgn;
  std::vector<std::uint32_t> count;  // keys per bucket, then where each bucket's keys start
  std::vector<std::uint64_t> g_keys;
  std::vector<std::int64_t> g_bkt;
  std::vector<double> g_sgn, g_x;
};

// Internal order of the bit counters, (bit row, bucket, bit, column): the columns of one bit
// test are contiguous, as in the CountSketch table, so a key adds one row of values per set bit.
// The payload (and bit_counters()) uses the documented (bit row, bucket, column, bit) order.
std::size_t payload_at(std::size_t cell, Index column, int bit, Index C, int L) {
  return (cell * static_cast<std::size_t>(C) + static_cast<std::size_t>(column)) * static_cast<std::size_t>(L) +
         static_cast<std::size_t>(bit);
}
std::size_t internal_at(std::size_t cell, Index column, int bit, Index C, int L) {
  return (cell * static_cast<std::size_t>(L) + static_cast<std::size_t>(bit)) * static_cast<std::size_t>(C) +
         static_cast<std::size_t>(column);
}
// Converts between the two orders (to_payload: internal -> payload); one column needs no work.
std::vector<double> reorder_bits(const std::vector<double>& in, Index C, int L, bool to_payload) {
  if (C == 1 || in.empty()) return in;
  std::vector<double> out(in.size());
  const std::size_t cells = in.size() / (static_cast<std::size_t>(C) * static_cast<std::size_t>(L));
  for (std::size_t cell = 0; cell < cells; ++cell)
    for (Index c = 0; c < C; ++c)
      for (int t = 0; t < L; ++t) {
        const std::size_t i = internal_at(cell, c, t, C, L), p = payload_at(cell, c, t, C, L);
        if (to_payload) {
          out[p] = in[i];
        } else {
          out[i] = in[p];
        }
      }
  return out;
}

// Adds s·X[row, :] to the bit counters of one bucket (`cell`, L x C) for every bit set in key;
// a row of zeros is skipped. A zero value adds s·0 = ±0, which leaves every counter as it is
// except a -0.0 one (-0.0 + +0.0 = +0.0), where the scalar encoder before this one skipped the
// zero. Additions never make a -0.0 counter (x + y is -0.0 only if x and y are), only bytes can
// hold one, so Exact (which adds -0.0 for a zero value: x + -0.0 == x bit for bit, for every x)
// is used only for a sketch read with one.
template <bool Exact, class T>
void add_key_bits(double* cell, std::uint64_t key, double s, const MatrixRef<T>& X, Index row, Index C) {
  auto term = [s](T v) { return Exact && v == T(0) ? -0.0 : s * static_cast<double>(v); };
  if (X.innerStride() == 1) {
    const T* xr = X.data() + row * X.outerStride();
    bool any = false;
    for (Index c = 0; c < C; ++c) any |= xr[c] != T(0);
    if (!any) return;
    for (std::uint64_t rest = key; rest != 0; rest &= rest - 1) {
      double* p = cell + static_cast<Index>(detail::lowest_bit(rest)) * C;
      for (Index c = 0; c < C; ++c) p[c] += term(xr[c]);
    }
  } else {
    bool any = false;
    for (Index c = 0; c < C; ++c) any |= X(row, c) != T(0);
    if (!any) return;
    for (std::uint64_t rest = key; rest != 0; rest &= rest - 1) {
      double* p = cell + static_cast<Index>(detail::lowest_bit(rest)) * C;
      for (Index c = 0; c < C; ++c) p[c] += term(X(row, c));
    }
  }
}

// The ISA-dispatched loop on the window's keys sorted by bucket, stably (a counting sort): every
// counter belongs to one bucket and still receives its terms in key order, so the sums are the
// same bit for bit, while the keys of one bucket now reach its block one after another.
void add_bits_grouped(double* brow, Index B, Index C, int L, EncoderBuffers& buf, std::size_t m, const double* x,
                      std::size_t ld) {
  const std::size_t nb = static_cast<std::size_t>(B), cols = static_cast<std::size_t>(C);
  buf.count.assign(nb + 1, 0);
  for (std::size_t i = 0; i < m; ++i) ++buf.count[static_cast<std::size_t>(buf.bkt[i]) + 1];
  for (std::size_t b = 0; b < nb; ++b) buf.count[b + 1] += buf.count[b];
  buf.g_keys.resize(m);
  buf.g_bkt.resize(m);
  buf.g_sgn.resize(m);
  buf.g_x.resize(m * cols);
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t j = buf.count[static_cast<std::size_t>(buf.bkt[i])]++;
    buf.g_keys[j] = buf.keys[i];
    buf.g_bkt[j] = buf.bkt[i];
    buf.g_sgn[j] = buf.sgn[i];
    std::copy_n(x + i * ld, cols, buf.g_x.data() + j * cols);
  }
  detail::scatter_bits(brow, L, cols, buf.g_keys.data(), buf.g_bkt.data(), buf.g_sgn.data(), m, buf.g_x.data(), cols);
}

// The bit counters of one bit row (`brow`, buckets x L x C) for the window's m keys, each counter
// receiving its terms in key order.
template <bool Exact, class T>
void add_bits(double* brow, Index B, Index C, int L, EncoderBuffers& buf, std::size_t m, const MatrixRef<T>& X,
              Index first) {
  if constexpr (!Exact && std::is_same_v<T, double>) {
    if (X.innerStride() == 1) {  // the ISA-dispatched loop, same additions (streamattn/hash/scatter.hpp)
      const double* x = X.data() + first * X.outerStride();
      const std::size_t ld = static_cast<std::size_t>(X.outerStride());
      const std::size_t row_bytes =
          static_cast<std::size_t>(B) * static_cast<std::size_t>(L) * static_cast<std::size_t>(C) * sizeof(double);
      if (row_bytes > kGroupedBitRowBytes && static_cast<std::size_t>(C) <= kGroupedMaxColumns) {
        add_bits_grouped(brow, B, C, L, buf, m, x, ld);
      } else {
        detail::scatter_bits(brow, L, static_cast<std::size_t>(C), buf.keys.data(), buf.bkt.data(), buf.sgn.data(), m,
                             x, ld);
      }
      return;
    }
  }
  const Index stride = static_cast<Index>(L) * C;
  for (std::size_t i = 0; i < m; ++i)
    add_key_bits<Exact>(brow + buf.bkt[i] * stride, buf.keys[i], buf.sgn[i], X, first + static_cast<Index>(i), C);
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
void SparseRecoveryMatrix::add_window(KeyAt key_at, Index first, std::size_t m, const MatrixRef<T>& values,
                                      bool consecutive) {
  // Row by row over the window: hash the window's keys once, feed the CountSketch counters and
  // (on bit rows) the bit counters of the same buckets, so the bit tests cost no extra hashing.
  thread_local EncoderBuffers buf;
  buf.keys.resize(kWindow);
  buf.bkt.resize(kWindow);
  buf.sgn.resize(kWindow);
  for (std::size_t i = 0; i < m; ++i) buf.keys[i] = key_at(i);
  const Index B = plan_.buckets, C = plan_.columns;
  const int L = plan_.bits;
  for (Index r = 0; r < plan_.rows; ++r) {
    if (consecutive) {
      hash_row_range(count_sketch_, r, buf.keys[0], m, buf.bkt.data(), buf.sgn.data());
    } else {
      count_sketch_.hash_row(r, buf.keys.data(), m, buf.bkt.data(), buf.sgn.data());
    }
    count_sketch_.add_to_row(r, buf.bkt.data(), buf.sgn.data(), m, values, first);
    if (r >= plan_.bit_rows) continue;
    double* brow = bit_counters_.data() + r * B * L * C;
    if (negative_zero_bits_) {
      add_bits<true>(brow, B, C, L, buf, m, values, first);
    } else {
      add_bits<false>(brow, B, C, L, buf, m, values, first);
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
  for (Index b0 = 0; b0 < m; b0 += static_cast<Index>(kWindow)) {
    const std::size_t len = static_cast<std::size_t>(std::min<Index>(kWindow, m - b0));
    add_window([&](std::size_t i) { return static_cast<std::uint64_t>(indices[b0 + static_cast<Index>(i)]); }, b0, len,
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
  for (std::uint64_t b0 = 0; b0 < m; b0 += kWindow) {
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(kWindow, m - b0));
    add_window([&](std::size_t i) { return start + b0 + i; }, static_cast<Index>(b0), len, X, true);
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

std::vector<double> SparseRecoveryMatrix::bit_counters() const {
  return reorder_bits(bit_counters_, plan_.columns, plan_.bits, true);
}

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
  const std::vector<double> counters = bit_counters();
  w.f64_array(counters.data(), counters.size());
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
  std::vector<double> counters(out.bit_counters_.size());
  r.f64_array(counters.data(), counters.size());
  for (double v : counters) {
    r.check(std::isfinite(v), "a bit counter is not finite");
    out.negative_zero_bits_ = out.negative_zero_bits_ || (v == 0.0 && std::signbit(v));
  }
  out.bit_counters_ = reorder_bits(counters, p.columns, p.bits, false);
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
