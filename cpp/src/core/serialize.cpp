#include "streamattn/core/serialize.hpp"

#include "streamattn/core/seeding.hpp"

namespace streamattn {
namespace {
constexpr std::uint8_t kMagic[4] = {'S', 'A', 'T', 'N'};

std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

std::uint64_t read_le(const std::uint8_t* p, int nbytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < nbytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}
}  // namespace

std::uint64_t checksum64(const std::uint8_t* data, std::size_t n) {
  std::uint64_t h = 0x243F6A8885A308D3ULL ^ static_cast<std::uint64_t>(n);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) h = rotl(h ^ (read_le(data + i, 8) * 0x9E3779B97F4A7C15ULL), 29) * 0xBF58476D1CE4E5B9ULL;
  if (i < n) {
    const std::uint64_t w = read_le(data + i, static_cast<int>(n - i));
    h = rotl(h ^ (w * 0x9E3779B97F4A7C15ULL), 29) * 0xBF58476D1CE4E5B9ULL;
  }
  return mix64(h);
}

std::string kind_name(std::uint16_t kind) {
  switch (static_cast<ObjectKind>(kind)) {
    case ObjectKind::count_sketch: return "CountSketch";
    case ObjectKind::ams_sketch: return "AMSSketch";
    case ObjectKind::gaussian_sketch: return "GaussianSketch";
    case ObjectKind::sparse_recovery: return "SparseRecovery";
    case ObjectKind::sparse_recovery_matrix: return "SparseRecoveryMatrix";
    case ObjectKind::causal_stream: return "CausalStream";
    case ObjectKind::kv_stream: return "KVStream";
    case ObjectKind::multi_head_causal_stream: return "MultiHeadCausalStream";
    case ObjectKind::causal_segment: return "CausalSegment";
  }
  return message("unknown kind ", kind);
}

ByteWriter::ByteWriter(ObjectKind kind) {
  buf_.reserve(256);
  for (std::uint8_t m : kMagic) buf_.push_back(m);
  u16(kFormatVersion);
  u16(static_cast<std::uint16_t>(kind));
  u64(0);  // payload length, patched by finish()
}

void ByteWriter::f64_array(const double* v, std::size_t n) {
  const std::size_t off = buf_.size();
  buf_.resize(off + 8 * n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t bits;
    std::memcpy(&bits, v + i, 8);
    for (int b = 0; b < 8; ++b) buf_[off + 8 * i + b] = static_cast<std::uint8_t>(bits >> (8 * b));
  }
}

void ByteWriter::i64_array(const std::int64_t* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) i64(v[i]);
}

void ByteWriter::blob(const std::vector<std::uint8_t>& bytes) {
  u64(bytes.size());
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::vector<std::uint8_t> ByteWriter::finish() {
  const std::uint64_t payload = buf_.size() - kHeaderBytes;
  for (int i = 0; i < 8; ++i) buf_[8 + i] = static_cast<std::uint8_t>(payload >> (8 * i));
  const std::uint64_t sum = checksum64(buf_.data(), buf_.size());
  u64(sum);
  return std::move(buf_);
}

ByteReader::ByteReader(const std::uint8_t* data, std::size_t n, ObjectKind kind)
    : data_(data), pos_(kHeaderBytes), end_(0), kind_(kind) {
  const std::string want = kind_name(static_cast<std::uint16_t>(kind));
  require(n >= kHeaderBytes + kTrailerBytes, "corrupted ", want, " bytes: ", n,
          " bytes is shorter than the 24-byte frame");
  require(std::memcmp(data, kMagic, 4) == 0, "corrupted ", want, " bytes: bad magic (these are not streamattn bytes)");
  const std::uint16_t version = static_cast<std::uint16_t>(read_le(data + 4, 2));
  require(version == kFormatVersion, "unsupported ", want, " bytes: format version ", version,
          ", this build reads version ", kFormatVersion);
  const std::uint16_t got_kind = static_cast<std::uint16_t>(read_le(data + 6, 2));
  require(got_kind == static_cast<std::uint16_t>(kind), "wrong kind: these bytes hold a ", kind_name(got_kind),
          ", not a ", want);
  const std::uint64_t payload = read_le(data + 8, 8);
  require(payload == n - kHeaderBytes - kTrailerBytes, "corrupted ", want, " bytes: header says ", payload,
          " payload bytes but ", n - kHeaderBytes - kTrailerBytes, " are present (truncated?)");
  end_ = kHeaderBytes + static_cast<std::size_t>(payload);
  const std::uint64_t stored = read_le(data + end_, 8);
  require(stored == checksum64(data, end_), "corrupted ", want, " bytes: checksum mismatch");
}

std::uint64_t ByteReader::get(int nbytes) {
  check(remaining() >= static_cast<std::size_t>(nbytes), "payload ends early");
  const std::uint64_t v = read_le(data_ + pos_, nbytes);
  pos_ += static_cast<std::size_t>(nbytes);
  return v;
}

void ByteReader::f64_array(std::vector<double>& out, std::uint64_t n) {
  check(n <= remaining() / 8, "array length exceeds the payload");
  out.resize(static_cast<std::size_t>(n));
  f64_array(out.data(), n);
}

void ByteReader::f64_array(double* out, std::uint64_t n) {
  check(n <= remaining() / 8, "array length exceeds the payload");
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t bits = read_le(data_ + pos_ + 8 * i, 8);
    std::memcpy(out + i, &bits, 8);
  }
  pos_ += static_cast<std::size_t>(8 * n);
}

void ByteReader::i64_array(std::vector<std::int64_t>& out, std::uint64_t n) {
  check(n <= remaining() / 8, "array length exceeds the payload");
  out.resize(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) out[i] = i64();
}

std::vector<std::uint8_t> ByteReader::blob() {
  const std::uint64_t n = u64();
  check(n <= remaining(), "nested object length exceeds the payload");
  std::vector<std::uint8_t> out(data_ + pos_, data_ + pos_ + n);
  pos_ += static_cast<std::size_t>(n);
  return out;
}

void ByteReader::finish() const { check(remaining() == 0, "trailing bytes after the payload"); }

void ByteReader::check(bool ok, const std::string& what) const {
  if (!ok) throw std::invalid_argument("corrupted " + kind_name(static_cast<std::uint16_t>(kind_)) + " bytes: " + what);
}

}  // namespace streamattn
