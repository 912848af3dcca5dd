// Portable polynomial-hash kernels: the reference every SIMD path must match bit for bit.
#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {
namespace {

constexpr std::uint64_t P = kMersenne61;

// x mod p for any 64-bit x (2^61 = 1 mod p).
std::uint64_t reduce_key(std::uint64_t x) {
  std::uint64_t r = (x & P) + (x >> 61);
  return r >= P ? r - P : r;
}

// a * b mod p for a, b < p.
std::uint64_t mulmod(std::uint64_t a, std::uint64_t b) {
#if defined(__SIZEOF_INT128__)
  const unsigned __int128 prod = static_cast<unsigned __int128>(a) * b;
  const std::uint64_t lo = static_cast<std::uint64_t>(prod) & P;
  const std::uint64_t hi = static_cast<std::uint64_t>(prod >> 61);
  std::uint64_t r = lo + hi;
#else
  // 32-bit limbs, the same arithmetic as the SIMD paths.
  const std::uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
  const std::uint64_t ll = al * bl, mid = al * bh + ah * bl, hh = ah * bh;
  std::uint64_t r = (hh << 3) + (mid >> 29) + ((mid & ((std::uint64_t{1} << 29) - 1)) << 32) + (ll & P) + (ll >> 61);
  r = (r & P) + (r >> 61);
#endif
  return r >= P ? r - P : r;
}

std::uint64_t horner(const std::uint64_t* c, int k, std::uint64_t x) {
  std::uint64_t h = c[k - 1];
  for (int i = k - 2; i >= 0; --i) {
    h = mulmod(h, x) + c[i];
    if (h >= P) h -= P;
  }
  return h;
}

void hash_scalar(const std::uint64_t* c, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = horner(c, k, reduce_key(keys[i]));
}

void bucket_scalar(const std::uint64_t* c, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t b,
                   std::int64_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t h = horner(c, k, reduce_key(keys[i]));
    // floor(h * b / 2^61) with h < 2^61, b < 2^32, exactly, in 64-bit arithmetic.
    const std::uint64_t hi = (h >> 32) * b, lo = ((h & 0xffffffffu) * b) >> 32;
    out[i] = static_cast<std::int64_t>((hi + lo) >> 29);
  }
}

void sign_scalar(const std::uint64_t* c, int k, const std::uint64_t* keys, std::size_t n, double* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = (horner(c, k, reduce_key(keys[i])) & 1u) ? -1.0 : 1.0;
}

}  // namespace

const HashKernels hash_kernels_scalar{hash_scalar, bucket_scalar, sign_scalar};

std::uint64_t poly_hash_one(const std::uint64_t* coeffs, int k, std::uint64_t key) {
  return horner(coeffs, k, reduce_key(key));
}

}  // namespace streamattn::detail
