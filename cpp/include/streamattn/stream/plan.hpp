// streamattn/stream/plan.hpp — every size, cost and guaranteed error of a streaming run, before any
// data is read (docs/design.md §2.4 "Planning").
//
// Sizes: degree g (given, chosen as the smallest even degree meeting a Taylor target eps for a
// given beta, or 2), t = C(d+g, g), the state (exact: t*dv + t float64; sketched: s*(t+dv) + t),
// the sketch size s of the sketched state, and the sparse-recovery sizes of the output sketch
// (sparse_recovery.hpp's rule, for n rows and dv columns).
//
// Errors, for the scores bound beta = c * max|q| * max|k| when given:
//   eps(beta, g) = e^beta beta^{g+1} / (g+1)!                      (Taylor, relative)
//   ||T~ - Attn||_max <= 2 eps / (1 - eps) * ||V||_max              (Alman-Song; vacuous if eps >= 1)
//   ||x - y||_2 <= sqrt(n) * 2 eps / (1 - eps) * ||V_col||_max     (one output column)
//   ||z - y||_2 <= (1 + eps1) OPT_y + (2 + eps1) ||x - y||_2       (its k-sparse decoding)
// Sketched state: (Psi U2)^T (Psi V) has E||error||_F^2 <= (2/s) ||U2||_F^2 ||V||_F^2, so by
// Chebyshev ||error||_F <= eps2 ||U2||_F ||V||_F with probability >= 1 - delta when
// s >= 2 / (delta eps2^2): the plan uses that s (or reports eps2 for a given s).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"
#include "streamattn/recovery/sparse_recovery.hpp"

namespace streamattn {

struct PlanRequest {
  std::uint64_t n = 0;  ///< tokens (rows of the output)
  Index d = 0;
  Index dv = 0;                ///< 0 = d
  std::optional<Index> k;      ///< sparsity of output columns (output sketch), if any
  std::optional<double> eps1;  ///< sparse-recovery epsilon (default 0.25 when k is given)
  std::optional<double> eps2;  ///< sketched-state epsilon
  double delta = 0.01;
  std::optional<double> beta;  ///< c * max|q| * max|k|
  std::optional<int> degree;
  std::optional<double> eps;         ///< Taylor target (chooses the degree when beta is given)
  std::string state = "exact";       ///< "exact" | "sketched"
  std::string sketch = "ams";        ///< Psi of the sketched state: "ams" (holds 4-wise sign hashes) | "gaussian"
  std::optional<Index> sketch_size;  ///< s of the sketched state (overrides eps2)
  Index chunk = 0;                   ///< CausalStream::default_chunk (0: by shape)
};

struct StreamPlan {
  PlanRequest request;
  int degree = 2;
  std::string degree_reason;
  Index t = 0;
  std::string state;
  Index sketch_size = 0;   ///< s (sketched state only)
  double sketch_eps2 = 0;  ///< the eps2 that s guarantees at delta (sketched state)
  std::size_t state_bytes = 0;
  std::optional<SparseRecoveryPlan> output;  ///< output-sketch sizes
  std::size_t total_bytes = 0;               ///< state + output sketch
  double update_flops_per_token = 0;         ///< causal update, approximately
  double query_flops = 0;                    ///< one keys-first query
  // Error terms (NaN/absent without beta).
  std::optional<double> taylor_eps;
  std::optional<double> attention_bound;  ///< times ||V||_max; +inf when vacuous
  std::optional<double> column_bound;     ///< times ||V_col||_max
  bool vacuous = false;
  std::optional<int> suggested_degree;  ///< when vacuous: the smallest even degree whose bound is not
  std::vector<std::string> notes;

  std::string repr() const;
};

/// Computes the plan; throws std::invalid_argument for out-of-range requests.
StreamPlan plan(const PlanRequest& req);

}  // namespace streamattn
