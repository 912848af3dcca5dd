// Per-ISA polynomial-hash kernels over GF(2^61 - 1). Internal to the library.
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

struct HashKernels {
  HashFn hash;
  BucketFn bucket;
  SignFn sign;
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
