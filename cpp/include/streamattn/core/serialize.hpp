// streamattn/core/serialize.hpp — the versioned, checksummed byte format of every serialized object.
//
// Layout (all integers little-endian, floats IEEE-754 binary64 little-endian):
//
//   offset  size  field
//   0       4     magic "SATN"
//   4       2     format version (kFormatVersion)
//   6       2     kind (ObjectKind)
//   8       8     payload length L in bytes
//   16      L     payload (kind-specific; documented next to each class's to_bytes)
//   16+L    8     checksum of bytes [0, 16+L)
//
// Checksum: h = 0x243F6A8885A308D3 ^ (number of bytes); the bytes are read as 64-bit
// little-endian words (the last one zero-padded); for each word w:
//     h = rotl64(h ^ (w * 0x9E3779B97F4A7C15), 29) * 0xBF58476D1CE4E5B9
// and the result is mix64(h) (streamattn/core/seeding.hpp). Every step is a bijection of h for a
// fixed word, and w -> w * odd is a bijection, so any change confined to one word (in
// particular any single flipped bit) always changes the checksum.
//
// Naming: to_bytes() / from_bytes() write and read a whole framed object; a part written inside
// another object's payload has `void write_payload(ByteWriter&) const` and
// `static T read_payload(ByteReader&)`, which append / read its fields only (no frame).
//
// Readers never trust a length: the payload length must equal the buffer's size minus 24,
// and every array length inside a payload is checked against the bytes that remain before
// anything is allocated. Every failure is a std::invalid_argument saying what is wrong.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"

namespace streamattn {

// The kind is part of the byte format: a value is never reused or renumbered. 1 is reserved
// (KWiseHash, which pickles as its (k, seed) and has no framed form).
enum class ObjectKind : std::uint16_t {
  count_sketch = 2,
  ams_sketch = 3,
  gaussian_sketch = 4,
  sparse_recovery = 5,
  sparse_recovery_matrix = 6,
  causal_stream = 7,
  kv_stream = 8,
  multi_head_causal_stream = 9,
  causal_segment = 10,
};

constexpr std::uint16_t kFormatVersion = 1;
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kTrailerBytes = 8;

/// The checksum described above.
std::uint64_t checksum64(const std::uint8_t* data, std::size_t n);

/// Human-readable name of a kind ("CountSketch", ...), or "unknown kind N".
std::string kind_name(std::uint16_t kind);

/// Appends little-endian fields to a payload, then frames it with header and checksum.
class ByteWriter {
 public:
  explicit ByteWriter(ObjectKind kind);

  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u64(std::uint64_t v) { put(v, 8); }
  void i64(std::int64_t v) { put(static_cast<std::uint64_t>(v), 8); }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put(bits, 8);
  }
  void f64_array(const double* v, std::size_t n);
  void i64_array(const std::int64_t* v, std::size_t n);
  /// Nested serialized object (its full framed bytes), prefixed by its length.
  void blob(const std::vector<std::uint8_t>& bytes);

  /// Header + payload + checksum.
  std::vector<std::uint8_t> finish();

 private:
  void put(std::uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> buf_;
};

/// Validates the frame of a serialized object of the expected kind, then reads its payload.
class ByteReader {
 public:
  /// Throws std::invalid_argument if the bytes are not a complete, intact object of `kind`.
  ByteReader(const std::uint8_t* data, std::size_t n, ObjectKind kind);

  std::uint8_t u8() { return static_cast<std::uint8_t>(get(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(get(2)); }
  std::uint64_t u64() { return get(8); }
  std::int64_t i64() { return static_cast<std::int64_t>(get(8)); }
  double f64() {
    const std::uint64_t bits = get(8);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  /// Reads n doubles into out (resized); checks the bytes exist first.
  void f64_array(std::vector<double>& out, std::uint64_t n);
  void f64_array(double* out, std::uint64_t n);
  void i64_array(std::vector<std::int64_t>& out, std::uint64_t n);
  std::vector<std::uint8_t> blob();

  std::size_t remaining() const { return end_ - pos_; }
  /// Throws unless the whole payload was consumed.
  void finish() const;
  /// Throws std::invalid_argument("corrupted <kind> bytes: " + what) unless ok.
  void check(bool ok, const std::string& what) const;

 private:
  std::uint64_t get(int nbytes);
  const std::uint8_t* data_;
  std::size_t pos_, end_;
  ObjectKind kind_;
};

}  // namespace streamattn
