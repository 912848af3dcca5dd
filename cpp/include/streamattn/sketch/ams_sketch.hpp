// streamattn/sketch/ams_sketch.hpp — the AMS sketch (Alon, Matias, Szegedy 1996; paper Definition 3.4):
// Psi[r, j] = +-1/sqrt(s) from 4-wise independent sign hashes, implicit (see dense_sketch.hpp).
#pragma once

#include "streamattn/sketch/dense_sketch.hpp"

namespace streamattn {

class AMSSketch : public DenseSketch {
 public:
  AMSSketch(Index s, std::uint64_t seed, Index columns = 0) : DenseSketch(Distribution::ams, s, seed, columns) {}
  static AMSSketch from_bytes(const std::uint8_t* data, std::size_t n);
};

}  // namespace streamattn
