// streamattn/stream/certificate.hpp — the a-posteriori error certificate of a stream (docs/design.md §2.4).
//
// Probe queries are given in advance. During the same single pass the stream accumulates their
// exact softmax outputs (OnlineSoftmax) and evaluates its own approximation for each probe when
// the stream reaches the probe's position (causal) or when asked (keys first). The certificate
// compares the two: it is the measured error of this run on these probes, not a bound.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"

namespace streamattn {

struct Certificate {
  Index probes = 0;                     ///< number of probe queries
  Index evaluated = 0;                  ///< probes whose approximation and exact output both exist
  double max_abs_error = 0;             ///< max over evaluated probes of max_i |approx - exact|
  double mean_abs_error = 0;            ///< mean over evaluated probes and columns of |approx - exact|
  double max_rel_error = 0;             ///< max over probes of ||approx - exact||_2 / ||exact||_2
  RowMatrix<double> exact;              ///< probes x dv (NaN rows where not evaluated)
  RowMatrix<double> approx;             ///< probes x dv (NaN rows where not evaluated)
  std::vector<std::int64_t> positions;  ///< stream position of each probe (-1: keys-first, all keys)

  std::string repr() const;
};

/// Builds the certificate from exact and approximate rows; rows with any NaN are "not evaluated"
/// and excluded from the error statistics (which are NaN when nothing was evaluated).
Certificate make_certificate(RowMatrix<double> exact, RowMatrix<double> approx, std::vector<std::int64_t> positions);

}  // namespace streamattn
