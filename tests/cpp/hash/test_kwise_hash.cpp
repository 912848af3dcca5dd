// C++ mirror of tests/test_hash.py: hashing is exact arithmetic, bit-identical on every ISA.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "streamattn/hash/kwise_hash.hpp"
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
