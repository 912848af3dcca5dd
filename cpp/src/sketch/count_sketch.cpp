#include "streamattn/sketch/count_sketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "streamattn/core/seeding.hpp"
#include "streamattn/core/serialize.hpp"
#include "streamattn/core/validate.hpp"
#include "streamattn/hash/scatter.hpp"

namespace streamattn {
namespace {
constexpr std::size_t kBlock = 1024;

void check_sizes(Index rows, Index buckets, Index columns, std::uint64_t dim) {
  require(rows >= 1 && rows <= 1024, "rows must be in [1, 1024], got ", rows);
  require(buckets >= 1 && static_cast<std::uint64_t>(buckets) <= KWiseHash::max_buckets,
          "buckets must be in [1, 2^32 - 1], got ", buckets);
  require_range(columns, 1, limits::max_sketch_size, "columns");
  require(dim >= 1 && dim <= CountSketch::max_dim, "dim must be in [1, 2^61 - 1], got ", dim);
  const long double cells = static_cast<long double>(rows) * buckets * columns;
  require_state_fits(cells, message("CountSketch(rows=", rows, ", buckets=", buckets, ", columns=", columns,
                                    "): rows*buckets*columns = ", static_cast<double>(cells), " counters"));
}

}  // namespace

double median_inplace(double* v, std::size_t n) {
  const std::size_t mid = n / 2;
  std::nth_element(v, v + mid, v + n);
  const double hi = v[mid];
  if (n % 2 == 1) return hi;
  const double lo = *std::max_element(v, v + mid);
  return 0.5 * (lo + hi);
}

CountSketch::CountSketch(Index rows, Index buckets, std::uint64_t seed, Index columns, std::uint64_t dim)
    : rows_(rows), buckets_(buckets), columns_(columns), dim_(dim), seed_(seed) {
  check_sizes(rows, buckets, columns, dim);
  bucket_hashes_.reserve(static_cast<std::size_t>(rows));
  sign_hashes_.reserve(static_cast<std::size_t>(rows));
  for (Index r = 0; r < rows; ++r) {
    bucket_hashes_.emplace_back(2, derive_seed(seed, 0, static_cast<std::uint64_t>(r)));
    sign_hashes_.emplace_back(4, derive_seed(seed, 1, static_cast<std::uint64_t>(r)));
  }
  table_.assign(static_cast<std::size_t>(rows * buckets * columns), 0.0);
}

void CountSketch::hash_row(Index r, const std::uint64_t* keys, std::size_t n, std::int64_t* bucket_out,
                           double* sign_out) const {
  bucket_hashes_[static_cast<std::size_t>(r)].bucket(keys, n, static_cast<std::uint64_t>(buckets_), bucket_out);
  sign_hashes_[static_cast<std::size_t>(r)].sign(keys, n, sign_out);
}

template <class T>
void CountSketch::update_impl(const std::int64_t* indices, Index n, const MatrixRef<T>& values) {
  require(values.rows() == n, "values must have one row per index: ", n, " indices, ", values.rows(), " value rows");
  require_cols(values, columns_, "values");
  for (Index i = 0; i < n; ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < dim_, "indices[", i, "] = ", indices[i],
            " is outside [0, ", dim_, ")");
  }
  require_finite(values, "values");
  std::vector<std::uint64_t> keys(kBlock);
  std::vector<std::int64_t> bkt(kBlock);
  std::vector<double> sgn(kBlock);
  for (Index b0 = 0; b0 < n; b0 += static_cast<Index>(kBlock)) {
    const std::size_t m = static_cast<std::size_t>(std::min<Index>(kBlock, n - b0));
    for (std::size_t i = 0; i < m; ++i) keys[i] = static_cast<std::uint64_t>(indices[b0 + static_cast<Index>(i)]);
    for (Index r = 0; r < rows_; ++r) {
      hash_row(r, keys.data(), m, bkt.data(), sgn.data());
      add_to_row_impl(r, bkt.data(), sgn.data(), m, values, b0);
    }
  }
}

template <class T>
void CountSketch::update_rows_impl(std::uint64_t start, const MatrixRef<T>& X) {
  require_cols(X, columns_, "X");
  const std::uint64_t n = static_cast<std::uint64_t>(X.rows());
  require(start <= dim_ && n <= dim_ - start, "rows start .. start+len(X) = ", start, " .. ", start + n,
          " exceed dim = ", dim_);
  require_finite(X, "X");
  std::vector<std::int64_t> bkt(kBlock);
  std::vector<double> sgn(kBlock);
  for (std::uint64_t b0 = 0; b0 < n; b0 += kBlock) {
    const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, n - b0));
    for (Index r = 0; r < rows_; ++r) {
      // Keys start+b0 .. are consecutive and below dim <= p - 1: forward differences, not Horner.
      bucket_hashes_[static_cast<std::size_t>(r)].bucket_range(start + b0, m, static_cast<std::uint64_t>(buckets_),
                                                               bkt.data());
      sign_hashes_[static_cast<std::size_t>(r)].sign_range(start + b0, m, sgn.data());
      add_to_row_impl(r, bkt.data(), sgn.data(), m, X, static_cast<Index>(b0));
    }
  }
}

template <class T>
void CountSketch::add_to_row_impl(Index r, const std::int64_t* bkt, const double* sgn, std::size_t m,
                                  const MatrixRef<T>& values, Index first) {
  double* base = table_.data() + r * buckets_ * columns_;
  if constexpr (std::is_same_v<T, double>) {
    if (values.innerStride() == 1) {
      // The ISA-dispatched loop (streamattn/hash/scatter.hpp): the same additions in the same
      // order as below, so the same bits.
      detail::scatter_rows(base, static_cast<std::size_t>(columns_), bkt, sgn, m,
                           values.data() + first * values.outerStride(),
                           static_cast<std::size_t>(values.outerStride()));
      return;
    }
  }
  if (columns_ == 1) {
    for (std::size_t i = 0; i < m; ++i)
      base[bkt[i]] += sgn[i] * static_cast<double>(values(first + static_cast<Index>(i), 0));
  } else if (values.innerStride() == 1) {
    // Contiguous rows (the common case): a plain pointer loop the compiler vectorizes; the
    // same operations per counter as below, so the same bits.
    for (std::size_t i = 0; i < m; ++i) {
      double* cell = base + bkt[i] * columns_;
      const double s = sgn[i];
      const T* xr = values.data() + (first + static_cast<Index>(i)) * values.outerStride();
      for (Index c = 0; c < columns_; ++c) cell[c] += s * static_cast<double>(xr[c]);
    }
  } else {
    for (std::size_t i = 0; i < m; ++i) {
      double* cell = base + bkt[i] * columns_;
      const double s = sgn[i];
      const Index row = first + static_cast<Index>(i);
      for (Index c = 0; c < columns_; ++c) cell[c] += s * static_cast<double>(values(row, c));
    }
  }
}

void CountSketch::add_to_row(Index r, const std::int64_t* buckets, const double* signs, std::size_t m,
                             const MatrixRef<float>& values, Index first) {
  add_to_row_impl(r, buckets, signs, m, values, first);
}
void CountSketch::add_to_row(Index r, const std::int64_t* buckets, const double* signs, std::size_t m,
                             const MatrixRef<double>& values, Index first) {
  add_to_row_impl(r, buckets, signs, m, values, first);
}

RowMatrix<double> CountSketch::estimate(const std::int64_t* indices, Index n) const {
  for (Index i = 0; i < n; ++i) {
    require(indices[i] >= 0 && static_cast<std::uint64_t>(indices[i]) < dim_, "indices[", i, "] = ", indices[i],
            " is outside [0, ", dim_, ")");
  }
  RowMatrix<double> out(n, columns_);
  std::vector<std::uint64_t> keys(kBlock);
  std::vector<std::int64_t> bkt(kBlock * static_cast<std::size_t>(rows_));
  std::vector<double> sgn(kBlock * static_cast<std::size_t>(rows_));
  std::vector<double> vals(static_cast<std::size_t>(rows_));
  for (Index b0 = 0; b0 < n; b0 += static_cast<Index>(kBlock)) {
    const std::size_t m = static_cast<std::size_t>(std::min<Index>(kBlock, n - b0));
    for (std::size_t i = 0; i < m; ++i) keys[i] = static_cast<std::uint64_t>(indices[b0 + static_cast<Index>(i)]);
    for (Index r = 0; r < rows_; ++r)
      hash_row(r, keys.data(), m, bkt.data() + r * static_cast<Index>(kBlock),
               sgn.data() + r * static_cast<Index>(kBlock));
    for (std::size_t i = 0; i < m; ++i) {
      for (Index c = 0; c < columns_; ++c) {
        for (Index r = 0; r < rows_; ++r) {
          const std::size_t at = static_cast<std::size_t>(r) * kBlock + i;
          vals[static_cast<std::size_t>(r)] =
              sgn[at] * table_[static_cast<std::size_t>((r * buckets_ + bkt[at]) * columns_ + c)];
        }
        out(b0 + static_cast<Index>(i), c) = median_inplace(vals.data(), vals.size());
      }
    }
  }
  return out;
}

void CountSketch::require_compatible(const CountSketch& o) const {
  require(rows_ == o.rows_ && buckets_ == o.buckets_ && columns_ == o.columns_,
          "cannot merge CountSketch of shape (rows=", o.rows_, ", buckets=", o.buckets_, ", columns=", o.columns_,
          ") into one of shape (rows=", rows_, ", buckets=", buckets_, ", columns=", columns_, ")");
  require(dim_ == o.dim_, "cannot merge CountSketch with dim=", o.dim_, " into one with dim=", dim_);
  require(seed_ == o.seed_, "cannot merge CountSketch with seed=", o.seed_, " into one with seed=", seed_,
          ": sketches are mergeable only when built with the same seed");
}

void CountSketch::merge(const CountSketch& o) {
  require_compatible(o);
  for (std::size_t i = 0; i < table_.size(); ++i) table_[i] += o.table_[i];
}

std::size_t CountSketch::nbytes() const {
  return table_.size() * sizeof(double) + static_cast<std::size_t>(rows_) * (2 + 4) * sizeof(std::uint64_t);
}

std::string CountSketch::repr() const {
  return message("CountSketch(rows=", rows_, ", buckets=", buckets_, ", columns=", columns_,
                 dim_ == max_dim ? std::string() : message(", dim=", dim_), ", seed=", seed_, ", nbytes=", nbytes(),
                 ")");
}

std::vector<std::uint8_t> CountSketch::to_bytes() const {
  ByteWriter w(ObjectKind::count_sketch);
  w.u64(static_cast<std::uint64_t>(rows_));
  w.u64(static_cast<std::uint64_t>(buckets_));
  w.u64(static_cast<std::uint64_t>(columns_));
  w.u64(dim_);
  w.u64(seed_);
  w.f64_array(table_.data(), table_.size());
  return w.finish();
}

CountSketch CountSketch::from_bytes(const std::uint8_t* data, std::size_t n) {
  ByteReader r(data, n, ObjectKind::count_sketch);
  const std::uint64_t rows = r.u64(), buckets = r.u64(), columns = r.u64(), dim = r.u64(), seed = r.u64();
  r.check(rows >= 1 && rows <= 1024 && buckets >= 1 && buckets <= KWiseHash::max_buckets && columns >= 1 &&
              columns <= (std::uint64_t{1} << 40) && dim >= 1 && dim <= max_dim,
          "sizes out of range");
  const long double cells = static_cast<long double>(rows) * buckets * columns;
  r.check(cells * 8 == static_cast<long double>(r.remaining()), "counter count does not match the payload");
  CountSketch cs(static_cast<Index>(rows), static_cast<Index>(buckets), seed, static_cast<Index>(columns), dim);
  r.f64_array(cs.table_.data(), cs.table_.size());
  r.finish();
  for (double v : cs.table_) r.check(std::isfinite(v), "a counter is not finite");
  return cs;
}

void CountSketch::update(const std::int64_t* indices, Index n, const MatrixRef<float>& values) {
  update_impl(indices, n, values);
}
void CountSketch::update(const std::int64_t* indices, Index n, const MatrixRef<double>& values) {
  update_impl(indices, n, values);
}
void CountSketch::update_rows(std::uint64_t start, const MatrixRef<float>& X) { update_rows_impl(start, X); }
void CountSketch::update_rows(std::uint64_t start, const MatrixRef<double>& X) { update_rows_impl(start, X); }

const KWiseHash& CountSketch::bucket_hash(Index row) const {
  require_range(row, 0, rows_ - 1, "row");
  return bucket_hashes_[static_cast<std::size_t>(row)];
}

const KWiseHash& CountSketch::sign_hash(Index row) const {
  require_range(row, 0, rows_ - 1, "row");
  return sign_hashes_[static_cast<std::size_t>(row)];
}

}  // namespace streamattn
