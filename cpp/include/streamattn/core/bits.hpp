// streamattn/core/bits.hpp — bit tricks shared by the hashing kernels and the sparse-recovery
// encoder/decoders.
#pragma once

#include <cstdint>

namespace streamattn::detail {

/// Index of the lowest set bit of v (v != 0).
inline int lowest_bit(std::uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(v);
#else
  int t = 0;
  while (!(v & 1u)) {
    v >>= 1;
    ++t;
  }
  return t;
#endif
}

}  // namespace streamattn::detail
