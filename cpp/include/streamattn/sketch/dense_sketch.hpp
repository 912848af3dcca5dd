// streamattn/sketch/dense_sketch.hpp — implicit dense sketching matrices Psi (s x n) applied to a
// streamed n x c matrix: the state is Psi @ X (s x c), accumulated block by block.
//
// Two distributions (paper's Definitions 3.3 and 3.4), both implicit — an entry Psi[r, j] is
// computed from (seed, r, j) when needed, nothing of size n is stored:
//
//  * AMS:      Psi[r, j] = sign_r(j) / sqrt(s), sign_r = KWiseHash(4, derive_seed(seed, 2, r)).sign
//  * Gaussian: Psi[r, j] = N_r(j) / sqrt(s), N(0, 1) values from a counter-based Box-Muller
//              transform. Rows 2m and 2m+1 share one pair of uniforms: with
//                  sm = derive_seed(seed, 3, m), G = 0x9E3779B97F4A7C15,
//                  a = mix64(sm + G*(2j+1)), b = mix64(sm + G*(2j+2))   (mod 2^64),
//                  u1 = ((a >> 11) + 1) * 2^-53 in (0, 1],  u2 = (b >> 11) * 2^-53 in [0, 1),
//                  N_{2m}(j) = sqrt(-2 ln u1) cos(2 pi u2),  N_{2m+1}(j) = sqrt(-2 ln u1) sin(2 pi u2).
//              (ln, cos and sin come from the C library, so machines with different libm
//              builds may differ in the last bit of an entry.)
//
// Approximate matrix product (Lemma 3.5 use): (Psi A)^T (Psi B) ~ A^T B with Frobenius error
// O(||A||_F ||B||_F / sqrt(s)).
//
// Serialized payload: distribution u8, s u64, columns u64 (0 before the first update),
// seed u64, tokens u64 (rows streamed so far, informational), then s*columns f64 (row-major).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"
#include "streamattn/hash/kwise_hash.hpp"

namespace streamattn {

class DenseSketch {
 public:
  enum class Distribution : std::uint8_t { ams = 0, gaussian = 1 };
  static constexpr std::uint64_t max_index = (std::uint64_t{1} << 61) - 1;

  /// @param s        sketch size (rows of Psi), 1 .. 2^24
  /// @param seed     64-bit seed
  /// @param columns  c (columns of the streamed matrix); 0 = fixed by the first update_rows
  DenseSketch(Distribution dist, Index s, std::uint64_t seed, Index columns = 0);

  /// "ams" or "gaussian"; std::invalid_argument for anything else.
  static Distribution parse_distribution(const std::string& name);
  virtual ~DenseSketch() = default;

  Distribution distribution() const { return dist_; }
  /// s, the sketch size (rows of Psi).
  Index s() const { return size_; }
  Index columns() const { return columns_; }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t tokens() const { return tokens_; }

  /// value += Psi[:, start : start + X.rows()] @ X.
  void update_rows(std::uint64_t start, const MatrixRef<float>& X);
  void update_rows(std::uint64_t start, const MatrixRef<double>& X);

  /// Psi[:, start : start + count] as an s x count row-major block into out (kernel, no checks).
  void fill_block(std::uint64_t start, Index count, double* out) const;

  /// Psi[:, start : start + count] (checked).
  RowMatrix<double> matrix(std::uint64_t start, Index count) const;

  /// The accumulated s x columns state.
  const RowMatrix<double>& value() const { return value_; }

  void merge(const DenseSketch& other);
  void require_compatible(const DenseSketch& other) const;

  std::size_t nbytes() const;
  std::string name() const { return dist_ == Distribution::ams ? "AMSSketch" : "GaussianSketch"; }
  std::string repr() const;
  std::vector<std::uint8_t> to_bytes() const;

 protected:
  /// from_bytes of AMSSketch / GaussianSketch: reads framed bytes of out's distribution into out.
  static void from_bytes_into(DenseSketch& out, const std::uint8_t* data, std::size_t n);

 private:
  template <class T>
  void update_rows_impl(std::uint64_t start, const MatrixRef<T>& X);

  Distribution dist_;
  Index size_, columns_;
  std::uint64_t seed_, tokens_ = 0;
  std::vector<KWiseHash> sign_hashes_;  // AMS only
  RowMatrix<double> value_;
};

}  // namespace streamattn
