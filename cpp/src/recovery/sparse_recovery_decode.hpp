// Internal to the library: the ranking shared by the two sparse-recovery decoders
// (sparse_recovery_standard.cpp and sparse_recovery_sublinear.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "streamattn/recovery/sparse_recovery.hpp"

namespace streamattn::sparse_decode {

// Coordinates hashed and estimated per block.
constexpr std::size_t kBlock = 1024;

// One candidate answer; ranked by magnitude, ties to the smaller index, so every thread
// split and every decoder order gives the same result.
struct Entry {
  double mag;
  std::int64_t index;
  double value;
};
inline bool better(const Entry& a, const Entry& b) { return a.mag > b.mag || (a.mag == b.mag && a.index < b.index); }

// The k best entries seen so far; front() of the heap is the worst kept one.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { heap_.reserve(k); }
  // Entries must beat this magnitude strictly to be kept (when offered in increasing index order).
  double threshold() const { return heap_.size() < k_ ? 0.0 : heap_.front().mag; }
  void offer(const Entry& e) {
    if (!(e.mag > 0.0)) return;  // zero estimates are not part of the support
    if (heap_.size() < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  const std::vector<Entry>& entries() const { return heap_; }

 private:
  std::size_t k_;
  std::vector<Entry> heap_;
};

inline SparseVector to_sparse(std::uint64_t n, std::vector<Entry> entries, std::size_t k) {
  std::sort(entries.begin(), entries.end(), better);
  if (entries.size() > k) entries.resize(k);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.index < b.index; });
  SparseVector out;
  out.n = n;
  out.indices.reserve(entries.size());
  out.values.reserve(entries.size());
  for (const Entry& e : entries) {
    out.indices.push_back(e.index);
    out.values.push_back(e.value);
  }
  return out;
}

// Hashes of one block of keys in every CountSketch row.
struct Workspace {
  explicit Workspace(Index rows)
      : keys(kBlock), bkt(kBlock * static_cast<std::size_t>(rows)), sgn(kBlock * static_cast<std::size_t>(rows)),
        vals(static_cast<std::size_t>(rows)) {}
  std::vector<std::uint64_t> keys;
  std::vector<std::int64_t> bkt;
  std::vector<double> sgn;
  std::vector<double> vals;
};

}  // namespace streamattn::sparse_decode
