#include "streamattn/kwise_hash.hpp"

#include "simd/hash_kernels.hpp"
#include "streamattn/common.hpp"
#include "streamattn/seeding.hpp"

namespace streamattn {

KWiseHash::KWiseHash(int k, std::uint64_t seed) : seed_(seed) {
  require(k >= min_k && k <= max_k, "k (independence) must be in [", min_k, ", ", max_k, "], got ", k);
  SplitMix64 gen(seed);
  coeffs_.reserve(static_cast<std::size_t>(k));
  while (static_cast<int>(coeffs_.size()) < k) {
    const std::uint64_t c = gen.next() >> 3;
    if (c < prime) coeffs_.push_back(c);
  }
}

std::uint64_t KWiseHash::hash(std::uint64_t key) const {
  return detail::poly_hash_one(coeffs_.data(), k(), key);
}

std::int64_t KWiseHash::bucket(std::uint64_t key, std::uint64_t buckets) const {
  require(buckets >= 1 && buckets <= max_buckets, "buckets must be in [1, 2^32 - 1], got ", buckets);
  const std::uint64_t h = hash(key);
  const std::uint64_t hi = (h >> 32) * buckets, lo = ((h & 0xffffffffu) * buckets) >> 32;
  return static_cast<std::int64_t>((hi + lo) >> 29);
}

int KWiseHash::sign(std::uint64_t key) const { return (hash(key) & 1u) ? -1 : 1; }

void KWiseHash::hash(const std::uint64_t* keys, std::size_t n, std::uint64_t* out) const {
  detail::hash_kernels().hash(coeffs_.data(), k(), keys, n, out);
}

void KWiseHash::bucket(const std::uint64_t* keys, std::size_t n, std::uint64_t buckets,
                       std::int64_t* out) const {
  require(buckets >= 1 && buckets <= max_buckets, "buckets must be in [1, 2^32 - 1], got ", buckets);
  detail::hash_kernels().bucket(coeffs_.data(), k(), keys, n, buckets, out);
}

void KWiseHash::sign(const std::uint64_t* keys, std::size_t n, double* out) const {
  detail::hash_kernels().sign(coeffs_.data(), k(), keys, n, out);
}

}  // namespace streamattn
