// streamattn/core/seeding.hpp — the platform-independent generator that expands 64-bit seeds.
//
// Everything random in streamattn (hash coefficients, sub-seeds of the hash functions inside a
// sketch, Gaussian sketch entries) is a pure function of 64-bit seeds through these three
// functions, written with unsigned 64-bit arithmetic only (wrap-around mod 2^64), so any
// platform and any language can reproduce them:
//
//   mix64(z):            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//                        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//                        return z ^ (z >> 31)
//   SplitMix64(seed):    state = seed; next() { state += 0x9E3779B97F4A7C15; return mix64(state); }
//   derive_seed(seed, purpose, index) =
//                        mix64(mix64(seed + 0x9E3779B97F4A7C15 * (purpose + 1))
//                              + 0xD1B54A32D192ED03 * (index + 1))
//
// `purpose` separates the roles of the hash functions in one object (e.g. bucket hash vs sign
// hash of a CountSketch row) and `index` numbers them (e.g. the row), so no two functions in an
// object share a seed.
#pragma once

#include <cstdint>

namespace streamattn {

constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The SplitMix64 generator (Steele, Lea, Flood 2014), defined above.
class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) : state_(seed) {}
  constexpr std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix64(state_);
  }

 private:
  std::uint64_t state_;
};

constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t purpose, std::uint64_t index) {
  return mix64(mix64(seed + 0x9E3779B97F4A7C15ULL * (purpose + 1)) + 0xD1B54A32D192ED03ULL * (index + 1));
}

}  // namespace streamattn
