// Per-ISA polynomial-hash kernels over GF(2^61 - 1), and the loops that follow a hash. Internal to
// the library.
//
// This header is included by translation units compiled with different target flags, so it
// declares only plain functions and constants: no inline function bodies (they would be
// merged across ISAs by the linker) and no Eigen.
#pragma once

#include <cstddef>
#include <cstdint>

namespace streamattn::detail {

constexpr std::uint64_t kMersenne61 = (std::uint64_t{1} << 61) - 1;

// coeffs[0..k-1] are a_0..a_{k-1} (a_0 the constant term), all < p.
// hash:   out[i] = a_{k-1} x^{k-1} + ... + a_0 mod p, with x = keys[i] mod p.
// bucket: out[i] = floor(hash * b / 2^61), b in [1, 2^32).
// sign:   out[i] = +1.0 if hash is even, -1.0 if odd.
using HashFn = void (*)(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n,
                        std::uint64_t* out);
using BucketFn = void (*)(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, std::uint64_t b,
                          std::int64_t* out);
using SignFn = void (*)(const std::uint64_t* coeffs, int k, const std::uint64_t* keys, std::size_t n, double* out);

// The loops that follow the hash in the hashed sketches (streamattn/hash/scatter.hpp): the
// CountSketch's and the sparse-recovery bit tests' signed scatter, and the standard sparse
// decoder's count of counters beyond a threshold. x holds m rows of C doubles, row i at
// x + i*ld. Every counter receives its terms in the order i = 0, 1, ..., each by one addition of
// sgn[i] * x[..] (sgn[i] = ±1: the product is exact, so a fused multiply-add rounds the same), so
// every path gives the same bits.
// add_rows:     table[bkt[i]*C + c] += sgn[i] * x_i[c], c < C.
// add_bits:     for every bit t set in keys[i]: cells[(bkt[i]*L + t)*C + c] += sgn[i] * x_i[c];
//               a row of zeros adds nothing.
// count_beyond: for key i < m and column c < cols, n = #{r < R : |cnt(r, i)[c]| > tau[c]} with
//               cnt(r, i) = table + (r*B + bkt[r*ld_bkt + i]) * stride; writes i*cols + c for
//               every pair with n >= need to out (increasing), returns how many. (It may stop
//               counting a column once n can no longer reach need.)
using AddRowsFn = void (*)(double* table, std::size_t C, const std::int64_t* bkt, const double* sgn, std::size_t m,
                           const double* x, std::size_t ld);
using AddBitsFn = void (*)(double* cells, int L, std::size_t C, const std::uint64_t* keys, const std::int64_t* bkt,
                           const double* sgn, std::size_t m, const double* x, std::size_t ld);
using CountBeyondFn = std::size_t (*)(const double* table, std::size_t B, std::size_t stride, std::size_t cols,
                                      const std::int64_t* bkt, std::size_t ld_bkt, std::size_t R, std::size_t m,
                                      const double* tau, std::size_t need, std::uint64_t* out);

// range: the hashes of the consecutive keys start, start+1, ... by forward differences, in
// kRangeLanes interleaved lanes (keys start + l + kRangeLanes*t, each a polynomial of degree deg
// in t): on entry d[j*kRangeLanes + l] = Delta^j of lane l at t = 0 (j <= deg); d is updated in
// place. Emits for i < n the hash h of key start+i (kind kRangeHash: out is uint64), floor(h*b /
// 2^61) (kRangeBucket: int64) or the sign, +1.0 for even h (kRangeSign: double).
constexpr int kRangeLanes = 8;
enum RangeKind { kRangeHash = 0, kRangeBucket = 1, kRangeSign = 2 };
using RangeFn = void (*)(std::uint64_t* d, int deg, std::size_t n, int kind, std::uint64_t b, void* out);

struct HashKernels {
  HashFn hash;
  BucketFn bucket;
  SignFn sign;
  RangeFn range;
  AddRowsFn add_rows;
  AddBitsFn add_bits;
  CountBeyondFn count_beyond;
};

extern const HashKernels hash_kernels_scalar;
#if defined(STREAMATTN_HAVE_AVX2)
extern const HashKernels hash_kernels_avx2;
#endif
#if defined(STREAMATTN_HAVE_AVX512)
extern const HashKernels hash_kernels_avx512;
#endif

/// The kernels of the ISA selected now (see streamattn/kernels/isa.hpp).
const HashKernels& hash_kernels();

/// One key, portable code (used by the scalar methods of KWiseHash).
std::uint64_t poly_hash_one(const std::uint64_t* coeffs, int k, std::uint64_t key);

}  // namespace streamattn::detail
