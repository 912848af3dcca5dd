// streamattn/sketch/gaussian_sketch.hpp — Gaussian Johnson-Lindenstrauss sketch (paper Definition 3.3):
// Psi[r, j] ~ N(0, 1/s) from a counter-based generator keyed by (seed, r, j), implicit
// (the generator is specified in dense_sketch.hpp).
#pragma once

#include "streamattn/sketch/dense_sketch.hpp"

namespace streamattn {

class GaussianSketch : public DenseSketch {
 public:
  GaussianSketch(Index s, std::uint64_t seed, Index columns = 0)
      : DenseSketch(Distribution::gaussian, s, seed, columns) {}
  static GaussianSketch from_bytes(const std::uint8_t* data, std::size_t n);
};

}  // namespace streamattn
