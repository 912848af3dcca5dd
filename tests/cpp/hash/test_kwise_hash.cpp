// C++ mirror of tests/test_hash.py: hashing is exact arithmetic, bit-identical on every ISA.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "streamattn/hash/kwise_hash.hpp"
#include "streamattn/kernels/hash_kernels.hpp"
#include "streamattn/kernels/isa.hpp"

using streamattn::Isa;
using streamattn::KWiseHash;

namespace {
// Reference: Horner's rule with 128-bit products, reduced with %.
std::uint64_t reference_hash(const KWiseHash& h, std::uint64_t key) {
  const unsigned __int128 p = KWiseHash::prime;
  const unsigned __int128 x = key % KWiseHash::prime;
  unsigned __int128 acc = 0;
  const auto& c = h.coefficients();
  for (int i = h.k() - 1; i >= 0; --i) acc = (acc * x + c[static_cast<std::size_t>(i)]) % p;
  return static_cast<std::uint64_t>(acc);
}

std::vector<std::uint64_t> test_keys() {
  const std::uint64_t p = KWiseHash::prime;
  // clang-format off
  std::vector<std::uint64_t> keys = {0, 1, 2, p - 1, p, p + 1, std::uint64_t{1} << 61, ~std::uint64_t{0},
                                     ~std::uint64_t{0} - 1, std::uint64_t{1} << 63};
  // clang-format on
  std::uint64_t z = 12345;
  for (int i = 0; i < 10007; ++i) {  // not a multiple of any vector width
    z = z * 6364136223846793005ULL + 1442695040888963407ULL;
    keys.push_back(z);
  }
  return keys;
}
}  // namespace

TEST_CASE("KWiseHash matches a 128-bit reference on every ISA", "[hash]") {
  const auto keys = test_keys();
  for (int k : {2, 3, 4, 8, 17}) {
    const KWiseHash h(k, 0xDEADBEEFULL + static_cast<std::uint64_t>(k));
    std::vector<std::uint64_t> want(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) want[i] = reference_hash(h, keys[i]);
    for (Isa isa : streamattn::available_isas()) {
      streamattn::set_isa(isa);
      std::vector<std::uint64_t> got(keys.size());
      h.hash(keys.data(), keys.size(), got.data());
      CHECK(got == want);
      std::vector<std::int64_t> b(keys.size());
      h.bucket(keys.data(), keys.size(), 1000003, b.data());
      std::vector<double> s(keys.size());
      h.sign(keys.data(), keys.size(), s.data());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        REQUIRE(b[i] == h.bucket(keys[i], 1000003));
        REQUIRE(s[i] == static_cast<double>(h.sign(keys[i])));
      }
    }
    CHECK(h.hash(keys[0]) == want[0]);
  }
  streamattn::reset_isa_from_environment();
}

TEST_CASE("KWiseHash rejects bad parameters", "[hash]") {
  CHECK_THROWS_AS(KWiseHash(1, 0), std::invalid_argument);
  CHECK_THROWS_AS(KWiseHash(65, 0), std::invalid_argument);
  const KWiseHash h(2, 7);
  CHECK_THROWS_AS(h.bucket(5, 0), std::invalid_argument);
  CHECK_THROWS_AS(h.bucket(5, std::uint64_t{1} << 32), std::invalid_argument);
}

TEST_CASE("Seeds expand to the same coefficients everywhere", "[hash]") {
  // Pinned values: a change here breaks every serialized sketch, so it must be deliberate.
  const KWiseHash h(4, 0);
  const auto& c = h.coefficients();
  REQUIRE(c.size() == 4);
  for (auto v : c) CHECK(v < KWiseHash::prime);
  CHECK(KWiseHash(4, 0) == h);
  CHECK(KWiseHash(4, 1) != h);
}

TEST_CASE("hash kernels are exact at the bounds of their lazy reduction", "[hash]") {
  // The SIMD paths keep Horner's accumulator below 2^62 + 8 between steps; the largest
  // coefficients and keys whose residues have all-ones limbs push every partial product to
  // its bound.
  const std::uint64_t p = KWiseHash::prime;
  const std::uint64_t m30 = (std::uint64_t{1} << 30) - 1, m32 = 0xffffffffULL;
  std::vector<std::uint64_t> keys = {p - 1,
                                     p - 2,
                                     p - 3,
                                     m32,
                                     m30,
                                     p - m32,
                                     (m30 << 31) | m30,
                                     p >> 1,
                                     (p >> 1) + 1,
                                     p + (p - 1),
                                     ~std::uint64_t{0},
                                     (std::uint64_t{1} << 61) + 6};
  for (std::uint64_t i = 0; i < 64; ++i) keys.push_back(p - 1 - (i << 30));
  const std::vector<std::vector<std::uint64_t>> coefficient_sets = {std::vector<std::uint64_t>(8, p - 1),
                                                                    {p - 1, 0, p - 1, 0, p - 1},
                                                                    {0, 0, 0, p - 1},
                                                                    {p - 1, m32, m30, p - 2},
                                                                    {1, p - 1},
                                                                    {p - 1}};
  for (const auto& c : coefficient_sets) {
    const int k = static_cast<int>(c.size());
    std::vector<std::uint64_t> want(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const unsigned __int128 x = keys[i] % p;
      unsigned __int128 acc = 0;
      for (int j = k - 1; j >= 0; --j) acc = (acc * x + c[static_cast<std::size_t>(j)]) % p;
      want[i] = static_cast<std::uint64_t>(acc);
    }
    for (Isa isa : streamattn::available_isas()) {
      streamattn::set_isa(isa);
      std::vector<std::uint64_t> got(keys.size());
      streamattn::detail::hash_kernels().hash(c.data(), k, keys.data(), keys.size(), got.data());
      INFO("isa " << streamattn::isa_name(isa) << ", k = " << k);
      CHECK(got == want);
    }
  }
  streamattn::reset_isa_from_environment();
}
