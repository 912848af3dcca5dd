#include "streamattn/sketch/dense_sketch.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "streamattn/core/seeding.hpp"
#include "streamattn/core/serialize.hpp"
#include "streamattn/core/validate.hpp"
#include "streamattn/sketch/ams_sketch.hpp"
#include "streamattn/sketch/gaussian_sketch.hpp"

namespace streamattn {
namespace {
constexpr Index kBlock = 256;
constexpr Index kMaxS = limits::max_sketch_size;
constexpr double kTwoPi = 6.283185307179586476925286766559;

ObjectKind kind_of(DenseSketch::Distribution d) {
  return d == DenseSketch::Distribution::ams ? ObjectKind::ams_sketch : ObjectKind::gaussian_sketch;
}
}  // namespace

DenseSketch::Distribution DenseSketch::parse_distribution(const std::string& name) {
  if (name == "ams") return Distribution::ams;
  if (name == "gaussian") return Distribution::gaussian;
  throw std::invalid_argument(message("sketch must be 'ams' or 'gaussian', got '", name, "'"));
}

DenseSketch::DenseSketch(Distribution dist, Index s, std::uint64_t seed, Index columns)
    : dist_(dist), size_(s), columns_(columns), seed_(seed) {
  require(s >= 1 && s <= kMaxS, "s (sketch size) must be in [1, 2^24], got ", s);
  require_range(columns, 0, limits::max_sketch_size, "columns");
  require_state_fits(static_cast<long double>(s) * columns,
                     message("a sketch of s = ", s, " rows and ", columns, " columns"));
  if (dist == Distribution::ams) {
    sign_hashes_.reserve(static_cast<std::size_t>(s));
    for (Index r = 0; r < s; ++r) sign_hashes_.emplace_back(4, derive_seed(seed, 2, static_cast<std::uint64_t>(r)));
  }
  value_ = RowMatrix<double>::Zero(s, columns);
}

void DenseSketch::fill_block(std::uint64_t start, Index count, double* out) const {
  const double scale = 1.0 / std::sqrt(static_cast<double>(size_));
  if (dist_ == Distribution::ams) {
    std::vector<std::uint64_t> keys(static_cast<std::size_t>(count));
    std::iota(keys.begin(), keys.end(), start);
    for (Index r = 0; r < size_; ++r) {
      double* row = out + r * count;
      sign_hashes_[static_cast<std::size_t>(r)].sign(keys.data(), static_cast<std::size_t>(count), row);
      for (Index j = 0; j < count; ++j) row[j] *= scale;
    }
    return;
  }
  constexpr std::uint64_t G = 0x9E3779B97F4A7C15ULL;
  for (Index m = 0; 2 * m < size_; ++m) {
    const std::uint64_t sm = derive_seed(seed_, 3, static_cast<std::uint64_t>(m));
    double* row0 = out + (2 * m) * count;
    double* row1 = (2 * m + 1 < size_) ? out + (2 * m + 1) * count : nullptr;
    for (Index j = 0; j < count; ++j) {
      const std::uint64_t col = start + static_cast<std::uint64_t>(j);
      const std::uint64_t a = mix64(sm + G * (2 * col + 1)), b = mix64(sm + G * (2 * col + 2));
      const double u1 = static_cast<double>((a >> 11) + 1) * 0x1.0p-53;
      const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
      const double rad = std::sqrt(-2.0 * std::log(u1)) * scale;
      row0[j] = rad * std::cos(kTwoPi * u2);
      if (row1) row1[j] = rad * std::sin(kTwoPi * u2);
    }
  }
}

RowMatrix<double> DenseSketch::matrix(std::uint64_t start, Index count) const {
  require_range(count, 0, limits::max_sketch_size, "count");
  require(start <= max_index && static_cast<std::uint64_t>(count) <= max_index - start,
          "columns start .. start+count exceed 2^61 - 1");
  RowMatrix<double> out(size_, count);
  if (count > 0) fill_block(start, count, out.data());
  return out;
}

template <class T>
void DenseSketch::update_rows_impl(std::uint64_t start, const MatrixRef<T>& X) {
  if (columns_ != 0) require_cols(X, columns_, "X");
  require(X.cols() >= 1, "X must have at least one column");
  const std::uint64_t n = static_cast<std::uint64_t>(X.rows());
  require(start <= max_index && n <= max_index - start, "rows start .. start+len(X) exceed 2^61 - 1");
  require_finite(X, "X");
  if (columns_ == 0) {
    columns_ = X.cols();
    value_ = RowMatrix<double>::Zero(size_, columns_);
  }
  RowMatrix<double> block(size_, kBlock);
  RowMatrix<double> xb;
  for (Index b0 = 0; b0 < X.rows(); b0 += kBlock) {
    const Index m = std::min<Index>(kBlock, X.rows() - b0);
    fill_block(start + static_cast<std::uint64_t>(b0), m, block.data());
    xb = X.middleRows(b0, m).template cast<double>();
    // block is s x kBlock row-major; only the first m columns were written with stride m.
    Eigen::Map<const RowMatrix<double>> psi(block.data(), size_, m);
    value_.noalias() += psi * xb;
  }
  tokens_ += n;
}

void DenseSketch::require_compatible(const DenseSketch& o) const {
  require(dist_ == o.dist_, "cannot merge a ", o.name(), " into a ", name());
  require(size_ == o.size_, "cannot merge ", name(), " with s=", o.size_, " into one with s=", size_);
  require(seed_ == o.seed_, "cannot merge ", name(), " with seed=", o.seed_, " into one with seed=", seed_,
          ": sketches are mergeable only when built with the same seed");
  require(columns_ == o.columns_ || columns_ == 0 || o.columns_ == 0, "cannot merge ", name(), " with ", o.columns_,
          " columns into one with ", columns_, " columns");
}

void DenseSketch::merge(const DenseSketch& o) {
  require_compatible(o);
  if (o.columns_ == 0) return;
  if (columns_ == 0) {
    columns_ = o.columns_;
    value_ = o.value_;
  } else {
    value_ += o.value_;
  }
  tokens_ += o.tokens_;
}

std::size_t DenseSketch::nbytes() const {
  return static_cast<std::size_t>(value_.size()) * sizeof(double) + sign_hashes_.size() * 4 * sizeof(std::uint64_t);
}

std::string DenseSketch::repr() const {
  return message(name(), "(s=", size_, ", columns=", columns_, ", seed=", seed_, ", tokens=", tokens_,
                 ", nbytes=", nbytes(), ")");
}

std::vector<std::uint8_t> DenseSketch::to_bytes() const {
  ByteWriter w(kind_of(dist_));
  w.u8(static_cast<std::uint8_t>(dist_));
  w.u64(static_cast<std::uint64_t>(size_));
  w.u64(static_cast<std::uint64_t>(columns_));
  w.u64(seed_);
  w.u64(tokens_);
  w.f64_array(value_.data(), static_cast<std::size_t>(value_.size()));
  return w.finish();
}

void DenseSketch::from_bytes_into(DenseSketch& out, const std::uint8_t* data, std::size_t n) {
  ByteReader r(data, n, kind_of(out.dist_));
  const std::uint8_t dist = r.u8();
  r.check(dist == static_cast<std::uint8_t>(out.dist_), "distribution tag does not match the kind");
  const std::uint64_t s = r.u64(), columns = r.u64(), seed = r.u64(), tokens = r.u64();
  r.check(s >= 1 && s <= static_cast<std::uint64_t>(kMaxS) && columns <= (std::uint64_t{1} << 24),
          "sizes out of range");
  // The AMS sign hashes (~150 bytes per row) are not part of the payload: an empty sketch (no
  // columns yet) may not ask for more than 2^18 rows, so that a few bytes can never make the
  // reader build gigabytes of hashes. A sketch with columns carries 8*s bytes per column.
  r.check(out.dist_ != Distribution::ams || columns > 0 || s <= (std::uint64_t{1} << 18),
          "an empty AMSSketch with s > 2^18 rows is not read back (its hashes would be built from a few bytes)");
  r.check(static_cast<long double>(s) * columns * 8 == static_cast<long double>(r.remaining()),
          "state size does not match the payload");
  DenseSketch tmp(out.dist_, static_cast<Index>(s), seed, static_cast<Index>(columns));
  r.f64_array(tmp.value_.data(), static_cast<std::uint64_t>(tmp.value_.size()));
  r.finish();
  r.check(tmp.value_.allFinite(), "a state value is not finite");
  tmp.tokens_ = tokens;
  out = std::move(tmp);
}

AMSSketch AMSSketch::from_bytes(const std::uint8_t* data, std::size_t n) {
  AMSSketch out(1, 0);
  from_bytes_into(out, data, n);
  return out;
}

GaussianSketch GaussianSketch::from_bytes(const std::uint8_t* data, std::size_t n) {
  GaussianSketch out(1, 0);
  from_bytes_into(out, data, n);
  return out;
}

void DenseSketch::update_rows(std::uint64_t start, const MatrixRef<float>& X) { update_rows_impl(start, X); }
void DenseSketch::update_rows(std::uint64_t start, const MatrixRef<double>& X) { update_rows_impl(start, X); }

}  // namespace streamattn
