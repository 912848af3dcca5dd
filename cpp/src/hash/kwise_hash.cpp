#include "streamattn/hash/kwise_hash.hpp"

#include <algorithm>

#include "streamattn/core/common.hpp"
#include "streamattn/core/seeding.hpp"
#include "streamattn/kernels/hash_kernels.hpp"

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

std::uint64_t KWiseHash::hash(std::uint64_t key) const { return detail::poly_hash_one(coeffs_.data(), k(), key); }

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

void KWiseHash::bucket(const std::uint64_t* keys, std::size_t n, std::uint64_t buckets, std::int64_t* out) const {
  require(buckets >= 1 && buckets <= max_buckets, "buckets must be in [1, 2^32 - 1], got ", buckets);
  detail::hash_kernels().bucket(coeffs_.data(), k(), keys, n, buckets, out);
}

void KWiseHash::sign(const std::uint64_t* keys, std::size_t n, double* out) const {
  detail::hash_kernels().sign(coeffs_.data(), k(), keys, n, out);
}

namespace {
inline std::uint64_t sub_mod(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : a + KWiseHash::prime - b; }

// Hashes, buckets or signs (detail::RangeKind) of the keys start .. start+n-1 by forward
// differences: kRangeLanes interleaved sequences (keys start + l + kRangeLanes*t, each again a
// polynomial of degree k-1 in t) run on the selected ISA (detail::HashKernels::range). Exact in
// GF(p), and every value is the canonical residue: the bits of hash().
void range(const KWiseHash& h, std::uint64_t start, std::size_t n, int kind, std::uint64_t b, void* out) {
  constexpr int W = detail::kRangeLanes;
  const int deg = h.k() - 1;
  require(start < KWiseHash::prime && n <= KWiseHash::prime - start,
          "hash_range: keys start .. start+n-1 must lie below 2^61 - 1");
  if (n <= static_cast<std::size_t>(W * (deg + 1))) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t v = h.hash(start + i);
      if (kind == detail::kRangeHash) {
        static_cast<std::uint64_t*>(out)[i] = v;
      } else if (kind == detail::kRangeBucket) {
        static_cast<std::int64_t*>(out)[i] = KWiseHash::bucket_of(v, b);
      } else {
        static_cast<double*>(out)[i] = KWiseHash::sign_of(v);
      }
    }
    return;
  }
  std::uint64_t d[KWiseHash::max_k * W];  // d[j*W + l] = Delta^j of lane l
  for (int l = 0; l < W; ++l) {
    for (int j = 0; j <= deg; ++j) d[j * W + l] = h.hash(start + static_cast<std::uint64_t>(l + W * j));
    for (int lvl = 1; lvl <= deg; ++lvl)
      for (int j = deg; j >= lvl; --j) d[j * W + l] = sub_mod(d[j * W + l], d[(j - 1) * W + l]);
  }
  detail::hash_kernels().range(d, deg, n, kind, b, out);
}
}  // namespace

void KWiseHash::hash_range(std::uint64_t start, std::size_t n, std::uint64_t* out) const {
  range(*this, start, n, detail::kRangeHash, 0, out);
}

void KWiseHash::bucket_range(std::uint64_t start, std::size_t n, std::uint64_t buckets, std::int64_t* out) const {
  require(buckets >= 1 && buckets <= max_buckets, "buckets must be in [1, 2^32 - 1], got ", buckets);
  range(*this, start, n, detail::kRangeBucket, buckets, out);
}

void KWiseHash::sign_range(std::uint64_t start, std::size_t n, double* out) const {
  range(*this, start, n, detail::kRangeSign, 0, out);
}

}  // namespace streamattn
