// streamattn/hash/kwise_hash.hpp — k-wise independent hashing over GF(p), p = 2^61 - 1.
//
// KWiseHash(k, seed) is a uniformly random polynomial of degree k-1 over GF(p),
//     h(x) = a_0 + a_1 x + ... + a_{k-1} x^{k-1}  (mod p),
// the classic k-wise independent family (Wegman and Carter 1981): for distinct keys
// x_1..x_k in GF(p) the values h(x_1)..h(x_k) are independent and uniform on [0, p).
//
// Coefficients: a SplitMix64 generator seeded with `seed` (streamattn/core/seeding.hpp) is drawn in
// the order a_0, a_1, ..., a_{k-1}; each draw z gives the candidate z >> 3 (61 bits), accepted
// if it is < p (the single value 2^61 - 1 is rejected and the next draw is taken).
//
// Keys are 64-bit unsigned integers and are hashed as key mod p: keys >= p alias keys below
// p (key p hashes like 0, 2^64 - 1 like 7). Independence holds among keys distinct mod p;
// every sketch in streamattn limits its indices to [0, 2^61 - 1), so they never alias.
//
// Derived values:
//   bucket(x, b) = floor(h(x) * b / 2^61), in [0, b) for 1 <= b < 2^32. Each bucket receives
//                  floor(p/b) or floor(p/b)+1 of the p hash values, so every bucket's
//                  probability is within b/p <= 2^-29 (relative) of 1/b.
//   sign(x)      = +1 if h(x) is even, -1 if odd; P(+1) = (p+1)/(2p) = 1/2 + 2^-62.
//
// The batched methods run on the ISA selected in streamattn/kernels/isa.hpp; every path returns the
// same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace streamattn {

class KWiseHash {
 public:
  static constexpr std::uint64_t prime = (std::uint64_t{1} << 61) - 1;
  static constexpr int min_k = 2;
  static constexpr int max_k = 64;
  static constexpr std::uint64_t max_buckets = (std::uint64_t{1} << 32) - 1;

  /// @param k     independence (2..64): the polynomial has degree k-1.
  /// @param seed  any 64-bit value; the coefficients are a documented function of it.
  KWiseHash(int k, std::uint64_t seed);

  int k() const { return static_cast<int>(coeffs_.size()); }
  std::uint64_t seed() const { return seed_; }
  /// a_0 .. a_{k-1}.
  const std::vector<std::uint64_t>& coefficients() const { return coeffs_; }

  std::uint64_t hash(std::uint64_t key) const;
  std::int64_t bucket(std::uint64_t key, std::uint64_t buckets) const;
  int sign(std::uint64_t key) const;

  /// Batched forms: n keys in, n values out (SIMD-dispatched).
  void hash(const std::uint64_t* keys, std::size_t n, std::uint64_t* out) const;
  void bucket(const std::uint64_t* keys, std::size_t n, std::uint64_t buckets, std::int64_t* out) const;
  void sign(const std::uint64_t* keys, std::size_t n, double* out) const;

  /// Consecutive keys start, start+1, ..., start+n-1 (all < p): the same values as the batched
  /// forms, computed by forward differences (k-1 additions mod p per key instead of k-1
  /// multiplications; 8 interleaved lanes, SIMD-dispatched), exact field arithmetic, so
  /// bit-identical to hash() on every ISA.
  void hash_range(std::uint64_t start, std::size_t n, std::uint64_t* out) const;
  void bucket_range(std::uint64_t start, std::size_t n, std::uint64_t buckets, std::int64_t* out) const;
  void sign_range(std::uint64_t start, std::size_t n, double* out) const;

  /// bucket() and sign() of a hash value h (the definitions above).
  static std::int64_t bucket_of(std::uint64_t h, std::uint64_t buckets) {
    const std::uint64_t hi = (h >> 32) * buckets, lo = ((h & 0xffffffffu) * buckets) >> 32;
    return static_cast<std::int64_t>((hi + lo) >> 29);
  }
  static double sign_of(std::uint64_t h) { return 1.0 - 2.0 * static_cast<double>(h & 1u); }

  bool operator==(const KWiseHash& o) const { return seed_ == o.seed_ && coeffs_ == o.coeffs_; }
  bool operator!=(const KWiseHash& o) const { return !(*this == o); }

 private:
  std::uint64_t seed_;
  std::vector<std::uint64_t> coeffs_;
};

}  // namespace streamattn
