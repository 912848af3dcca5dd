// Portable polynomial-hash kernels and the loops that follow a hash: the reference every SIMD
// path must match bit for bit.
#include "streamattn/kernels/hash_kernels.hpp"

#include "streamattn/core/bits.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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

std::uint64_t add_mod(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t s = a + b;  // < 2^62, no overflow
  return s >= P ? s - P : s;
}

template <int D>
void range_lanes(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  constexpr std::size_t W = kRangeLanes;
  const int dd = D > 0 ? D : deg;
  for (std::size_t i0 = 0; i0 < n; i0 += W) {
    for (std::size_t l = 0; l < W && i0 + l < n; ++l) {
      const std::uint64_t h = d[l];
      if (kind == kRangeHash) {
        static_cast<std::uint64_t*>(out)[i0 + l] = h;
      } else if (kind == kRangeBucket) {
        const std::uint64_t hi = (h >> 32) * b, lo = ((h & 0xffffffffu) * b) >> 32;
        static_cast<std::int64_t*>(out)[i0 + l] = static_cast<std::int64_t>((hi + lo) >> 29);
      } else {
        static_cast<double*>(out)[i0 + l] = (h & 1u) ? -1.0 : 1.0;
      }
    }
    for (std::size_t l = 0; l < W; ++l)
      for (int j = 0; j < dd; ++j) d[j * W + l] = add_mod(d[j * W + l], d[(j + 1) * W + l]);
  }
}

void range_scalar(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out) {
  switch (deg) {
    case 1: range_lanes<1>(d, deg, n, kind, b, out); return;
    case 3: range_lanes<3>(d, deg, n, kind, b, out); return;
    default: range_lanes<0>(d, deg, n, kind, b, out); return;
  }
}

void add_rows_scalar(double* table, std::size_t C, const std::int64_t* bkt, const double* sgn, std::size_t m,
                     const double* x, std::size_t ld) {
  for (std::size_t i = 0; i < m; ++i) {
    double* cell = table + static_cast<std::size_t>(bkt[i]) * C;
    const double s = sgn[i], *xr = x + i * ld;
    for (std::size_t c = 0; c < C; ++c) cell[c] += s * xr[c];
  }
}

void add_bits_scalar(double* cells, int L, std::size_t C, const std::uint64_t* keys, const std::int64_t* bkt,
                     const double* sgn, std::size_t m, const double* x, std::size_t ld) {
  const std::size_t stride = static_cast<std::size_t>(L) * C;
  for (std::size_t i = 0; i < m; ++i) {
    const double s = sgn[i], *xr = x + i * ld;
    bool any = false;
    for (std::size_t c = 0; c < C; ++c) any |= xr[c] != 0.0;
    if (!any) continue;
    double* cell = cells + static_cast<std::size_t>(bkt[i]) * stride;
    for (std::uint64_t rest = keys[i]; rest != 0; rest &= rest - 1) {
      double* p = cell + static_cast<std::size_t>(lowest_bit(rest)) * C;
      for (std::size_t c = 0; c < C; ++c) p[c] += s * xr[c];
    }
  }
}

std::size_t count_beyond_scalar(const double* table, std::size_t B, std::size_t stride, std::size_t cols,
                                const std::int64_t* bkt, std::size_t ld_bkt, std::size_t R, std::size_t m,
                                const double* tau, std::size_t need, std::uint64_t* out) {
  std::size_t found = 0;
  std::vector<double> beyond(cols);
  for (std::size_t i = 0; i < m; ++i) {
    std::fill(beyond.begin(), beyond.end(), 0.0);
    bool hopeless = false;
    for (std::size_t r = 0; r < R; ++r) {
      const double* cell = table + (r * B + static_cast<std::size_t>(bkt[r * ld_bkt + i])) * stride;
      for (std::size_t c = 0; c < cols; ++c) beyond[c] += std::abs(cell[c]) > tau[c] ? 1.0 : 0.0;
      // After row r, R-1-r rows remain: a column below need-(R-1-r) cannot reach need.
      if (r + need >= R && r + 1 < R) {
        const double most = *std::max_element(beyond.begin(), beyond.end());
        if (most + static_cast<double>(R - 1 - r) < static_cast<double>(need)) {
          hopeless = true;
          break;
        }
      }
    }
    if (hopeless) continue;
    for (std::size_t c = 0; c < cols; ++c)
      if (beyond[c] >= static_cast<double>(need)) out[found++] = i * cols + c;
  }
  return found;
}

}  // namespace

const HashKernels hash_kernels_scalar{hash_scalar,     bucket_scalar,   sign_scalar,        range_scalar,
                                      add_rows_scalar, add_bits_scalar, count_beyond_scalar};

std::uint64_t poly_hash_one(const std::uint64_t* coeffs, int k, std::uint64_t key) {
  return horner(coeffs, k, reduce_key(key));
}

}  // namespace streamattn::detail
