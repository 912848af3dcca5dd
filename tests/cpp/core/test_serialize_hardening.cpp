// Deserialization hardening in C++ (issue 7): every from_bytes fed truncated bytes, re-framed
// byte mutations (a VALID checksum around a corrupted payload, so the payload readers see them)
// and seeded random mutations. Each must throw std::invalid_argument or return an object whose
// bytes read back; nothing else (no std::bad_alloc, no std::length_error). Built with
// STREAMATTN_SANITIZE=ON (.ci/run does), AddressSanitizer and UBSan check every read on the way.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "streamattn/core/serialize.hpp"
#include "streamattn/recovery/sparse_recovery.hpp"
#include "streamattn/sketch/ams_sketch.hpp"
#include "streamattn/sketch/count_sketch.hpp"
#include "streamattn/sketch/gaussian_sketch.hpp"
#include "streamattn/stream/causal_stream.hpp"
#include "streamattn/stream/kv_stream.hpp"

using namespace streamattn;
using Bytes = std::vector<std::uint8_t>;

namespace {

template <class T>
std::function<Bytes(const Bytes&)> reader() {
  return [](const Bytes& b) { return T::from_bytes(b.data(), b.size()).to_bytes(); };
}

struct Target {
  std::string name;
  Bytes bytes;
  std::function<Bytes(const Bytes&)> read;  // from_bytes(...).to_bytes()
};

std::vector<Target> targets() {
  std::vector<Target> t;
  const RowMatrix<double> Q = test::normal_matrix(6, 3, 1, 0.5), K = test::normal_matrix(6, 3, 2, 0.5),
                          V = test::normal_matrix(6, 2, 3, 1.0);
  CountSketch cs(2, 3, 1, 2, 50);
  const std::int64_t idx[2] = {1, 7};
  cs.update(idx, 2, MatrixRef<double>(test::normal_matrix(2, 2, 4, 0.5)));
  t.push_back({"CountSketch", cs.to_bytes(), reader<CountSketch>()});
  AMSSketch ams(3, 2);
  ams.update_rows(0, MatrixRef<double>(test::normal_matrix(4, 2, 5, 0.5)));
  t.push_back({"AMSSketch", ams.to_bytes(), reader<AMSSketch>()});
  t.push_back({"AMSSketch empty", AMSSketch(3, 2).to_bytes(), reader<AMSSketch>()});
  GaussianSketch gs(3, 2);
  gs.update_rows(5, MatrixRef<double>(test::normal_matrix(4, 1, 6, 0.5)));
  t.push_back({"GaussianSketch", gs.to_bytes(), reader<GaussianSketch>()});
  SparseRecoveryPlan p = SparseRecoveryPlan::make(8, 1, 1.0, 0.5, 2).with_sizes(3, 4, 1);
  SparseRecoveryMatrix srm(p, 3);
  srm.update_rows(0, MatrixRef<double>(test::normal_matrix(3, 2, 7, 0.5)));
  t.push_back({"SparseRecoveryMatrix", srm.to_bytes(), reader<SparseRecoveryMatrix>()});
  SparseRecovery sr(SparseRecoveryPlan::make(8, 1, 1.0, 0.5, 1).with_sizes(3, 4, 1), 3);
  const std::int64_t i2[2] = {2, 5};
  const Eigen::VectorXd v2 = Eigen::VectorXd::LinSpaced(2, 1.0, -2.0);
  sr.update(i2, 2, VectorRef<double>(v2));
  t.push_back({"SparseRecovery", sr.to_bytes(), reader<SparseRecovery>()});
  const SparseRecoveryPlan out = SparseRecoveryPlan::make(16, 1, 1.0, 0.5, 2).with_sizes(3, 4, 1);
  CausalStream c(3, 2, 2, 0.5, 4);
  c.set_probes(MatrixRef<double>(Q.topRows(2)), {1, 9});
  c.set_output_sketch(SparseRecoveryMatrix(out, 4));
  c.update(MatrixRef<double>(Q), MatrixRef<double>(K), MatrixRef<double>(V));
  t.push_back({"CausalStream", c.to_bytes(), reader<CausalStream>()});
  KVStream kv(3, 2, 2, 0.5);
  kv.set_probes(MatrixRef<double>(Q.topRows(1)));
  kv.set_output_sketch(SparseRecoveryMatrix(out, 4));
  kv.add(MatrixRef<double>(K), MatrixRef<double>(V));
  kv.query(MatrixRef<double>(Q.topRows(2)));
  t.push_back({"KVStream exact", kv.to_bytes(), reader<KVStream>()});
  for (auto dist : {DenseSketch::Distribution::ams, DenseSketch::Distribution::gaussian}) {
    KVStream ks(3, 2, 1, 0.5, StateKind::sketched, KVStream::SketchOptions{dist, 3, 5});
    ks.add(MatrixRef<double>(K), MatrixRef<double>(V));
    t.push_back({"KVStream sketched", ks.to_bytes(), reader<KVStream>()});
  }
  return t;
}

// Re-frames a payload: correct length and a valid checksum.
Bytes reframe(Bytes b) {
  const std::uint64_t payload = b.size() - kHeaderBytes - kTrailerBytes;
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(payload >> (8 * i));
  const std::uint64_t sum = checksum64(b.data(), b.size() - kTrailerBytes);
  for (int i = 0; i < 8; ++i) b[b.size() - 8 + i] = static_cast<std::uint8_t>(sum >> (8 * i));
  return b;
}

// 0 = refused with std::invalid_argument, 1 = accepted and reads back. Anything else fails.
int outcome(const Target& t, const Bytes& b) {
  Bytes again;
  try {
    again = t.read(b);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  REQUIRE(t.read(again) == again);
  return 1;
}

}  // namespace

TEST_CASE("from_bytes: truncation at every offset and every single-bit flip", "[bytes]") {
  for (const Target& t : targets()) {
    INFO(t.name);
    REQUIRE(t.read(t.bytes) == t.bytes);
    for (std::size_t cut = 0; cut < t.bytes.size(); ++cut)
      REQUIRE(outcome(t, Bytes(t.bytes.begin(), t.bytes.begin() + static_cast<std::ptrdiff_t>(cut))) == 0);
    Bytes b = t.bytes;
    for (std::size_t i = 0; i < b.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        b[i] ^= static_cast<std::uint8_t>(1u << bit);
        REQUIRE(outcome(t, b) == 0);  // the checksum catches every single-bit change
        b[i] ^= static_cast<std::uint8_t>(1u << bit);
      }
    }
  }
}

TEST_CASE("from_bytes: payload mutations behind a valid checksum", "[bytes]") {
  const std::uint8_t values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
  for (const Target& t : targets()) {
    INFO(t.name);
    int refused = 0, accepted = 0;
    Bytes b = t.bytes;
    for (std::size_t i = kHeaderBytes; i + kTrailerBytes < b.size(); ++i) {
      const std::uint8_t keep = b[i];
      for (std::uint8_t v : values) {
        b[i] = v;
        (outcome(t, reframe(b)) ? accepted : refused)++;
        b[i] = static_cast<std::uint8_t>(keep ^ 0x10);
        (outcome(t, reframe(b)) ? accepted : refused)++;
      }
      b[i] = keep;
    }
    // Payload cut short or extended, frame fixed up.
    for (std::size_t cut = kHeaderBytes; cut + kTrailerBytes < t.bytes.size(); ++cut) {
      Bytes s(t.bytes.begin(), t.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
      s.resize(s.size() + kTrailerBytes);
      REQUIRE(outcome(t, reframe(s)) == 0);
    }
    CHECK(refused > 0);
  }
}

TEST_CASE("from_bytes: seeded random multi-byte mutations behind a valid checksum", "[bytes]") {
  std::mt19937_64 g(20240607);
  // clang-format off
  const std::uint64_t big[] = {0, 1, 255, 1u << 16, 1u << 24, std::uint64_t{1} << 31, std::uint64_t{1} << 32,
                               std::uint64_t{1} << 40, (std::uint64_t{1} << 61) - 1, std::uint64_t{1} << 63, ~std::uint64_t{0}};
  // clang-format on
  for (const Target& t : targets()) {
    INFO(t.name);
    for (int it = 0; it < 3000; ++it) {
      Bytes b = t.bytes;
      const std::size_t payload = b.size() - kHeaderBytes - kTrailerBytes;
      const int edits = 1 + static_cast<int>(g() % 4);
      for (int e = 0; e < edits; ++e) {
        const std::size_t at = kHeaderBytes + g() % payload;
        if (g() % 2 && at + 8 <= kHeaderBytes + payload) {
          const std::uint64_t v = big[g() % (sizeof(big) / sizeof(big[0]))];
          for (int k = 0; k < 8; ++k) b[at + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(v >> (8 * k));
        } else {
          b[at] = static_cast<std::uint8_t>(g());
        }
      }
      outcome(t, reframe(b));
    }
  }
}
