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
inline std::uint64_t add_mod(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t s = a + b;  // < 2^62, no overflow
  return s >= KWiseHash::prime ? s - KWiseHash::prime : s;
}
inline std::uint64_t sub_mod(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : a + KWiseHash::prime - b; }

// Emits h(start), h(start+1), ... by forward differences. kLanes interleaved sequences (keys
// start + l + kLanes*t, each again a polynomial of degree D in t) break the loop-carried
// dependency of one long chain of additions. d[l][j] = Delta^j of lane l at t = 0 on entry.
constexpr int kLanes = 4;

template <int D>
void forward_differences(std::uint64_t (*d)[KWiseHash::max_k], int deg, std::size_t n, std::uint64_t* out) {
  const int dd = D > 0 ? D : deg;
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      out[i + static_cast<std::size_t>(l)] = d[l][0];
      for (int j = 0; j < dd; ++j) d[l][j] = add_mod(d[l][j], d[l][j + 1]);
    }
  }
  for (int l = 0; i < n; ++i, ++l) out[i] = d[l][0];
}
}  // namespace

void KWiseHash::hash_range(std::uint64_t start, std::size_t n, std::uint64_t* out) const {
  const int deg = k() - 1;
  require(start < prime && n <= prime - start, "hash_range: keys start .. start+n-1 must lie below 2^61 - 1");
  if (n <= static_cast<std::size_t>(kLanes * (deg + 1))) {
    for (std::size_t i = 0; i < n; ++i) out[i] = hash(start + i);
    return;
  }
  // Exact in GF(p), and every emitted value is the canonical residue: the bits of hash().
  std::uint64_t d[kLanes][max_k];
  for (int l = 0; l < kLanes; ++l) {
    for (int j = 0; j <= deg; ++j) d[l][j] = hash(start + static_cast<std::uint64_t>(l + kLanes * j));
    for (int lvl = 1; lvl <= deg; ++lvl)
      for (int j = deg; j >= lvl; --j) d[l][j] = sub_mod(d[l][j], d[l][j - 1]);
  }
  switch (deg) {
    case 1: forward_differences<1>(d, deg, n, out); return;
    case 2: forward_differences<2>(d, deg, n, out); return;
    case 3: forward_differences<3>(d, deg, n, out); return;
    default: forward_differences<0>(d, deg, n, out); return;
  }
}

void KWiseHash::bucket_range(std::uint64_t start, std::size_t n, std::uint64_t buckets, std::int64_t* out) const {
  require(buckets >= 1 && buckets <= max_buckets, "buckets must be in [1, 2^32 - 1], got ", buckets);
  static_assert(sizeof(std::int64_t) == sizeof(std::uint64_t), "hash values are written in place");
  auto* h = reinterpret_cast<std::uint64_t*>(out);
  hash_range(start, n, h);
  for (std::size_t i = 0; i < n; ++i) out[i] = bucket_of(h[i], buckets);
}

void KWiseHash::sign_range(std::uint64_t start, std::size_t n, double* out) const {
  // Each chunk restarts the forward differences (k * 4 direct evaluations): large chunks.
  constexpr std::size_t kChunk = 1024;
  std::uint64_t h[kChunk];
  for (std::size_t b0 = 0; b0 < n; b0 += kChunk) {
    const std::size_t m = std::min(kChunk, n - b0);
    hash_range(start + b0, m, h);
    for (std::size_t i = 0; i < m; ++i) out[b0 + i] = sign_of(h[i]);
  }
}

}  // namespace streamattn
