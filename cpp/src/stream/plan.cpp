#include "streamattn/stream/plan.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "streamattn/core/validate.hpp"
#include "streamattn/features/taylor_features.hpp"
#include "streamattn/sketch/dense_sketch.hpp"
#include "streamattn/stream/causal_stream.hpp"

namespace streamattn {

namespace {
// Short numbers for the human-readable plan (the dict keeps full precision).
std::string num(double v) {
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

void require_valid_request(const PlanRequest& req) {
  require(req.n >= 1 && req.n <= limits::max_position, "n must be in [1, 2^61 - 1), got ", req.n);
  require_range(req.d, 1, limits::max_stream_dim, "d");
  require(req.dv >= 0 && req.dv <= limits::max_stream_dim, "dv must be in [1, ", limits::max_stream_dim,
          "] (0 = d), got ", req.dv);
  if (req.sketch_size) require_range(*req.sketch_size, 1, limits::max_sketch_size, "sketch_size");
  require(req.delta > 0 && req.delta < 1, "delta must be in (0, 1), got ", req.delta);
  require(req.state == "exact" || req.state == "sketched", "state must be 'exact' or 'sketched', got '", req.state,
          "'");
  resolve_chunk(req.chunk, 1);  // 0 (by shape) or 1 .. kMaxChunk
  if (req.beta) require(*req.beta >= 0 && std::isfinite(*req.beta), "beta must be finite and >= 0, got ", *req.beta);
  if (req.eps) require(*req.eps > 0 && std::isfinite(*req.eps), "eps must be > 0, got ", *req.eps);
  if (req.eps1) require(*req.eps1 > 0 && *req.eps1 <= 1, "eps1 must be in (0, 1], got ", *req.eps1);
  if (req.eps2) require(*req.eps2 > 0 && *req.eps2 <= 1, "eps2 must be in (0, 1], got ", *req.eps2);
  if (req.degree)
    require(*req.degree >= 0 && *req.degree <= TaylorFeatures::max_degree, "degree must be in [0, 8], got ",
            *req.degree);
}

// The degree: given, the smallest even one meeting eps at beta, or 2.
void plan_degree(const PlanRequest& req, StreamPlan& p) {
  if (req.degree) {
    p.degree = *req.degree;
    p.degree_reason = "given";
  } else if (req.eps && req.beta) {
    try {
      p.degree = choose_degree(*req.eps, *req.beta);
      p.degree_reason = message("smallest even degree with eps(beta=", *req.beta, ", g) <= ", *req.eps);
    } catch (const std::invalid_argument&) {
      p.degree = TaylorFeatures::max_degree;
      p.degree_reason =
          message("no degree <= 8 reaches eps = ", *req.eps, " at beta = ", *req.beta, "; using the largest, 8");
    }
  } else {
    p.degree = 2;
    p.degree_reason = "default (give beta and eps to choose it)";
  }
}

// The state: exact (t*dv + t float64), or sketched (s*(t+dv) + t, with the sketch size s).
void plan_state(const PlanRequest& req, Index dv, StreamPlan& p) {
  p.state = req.state;
  const double tt = static_cast<double>(p.t), dvv = static_cast<double>(dv);
  if (req.state == "exact") {
    p.state_bytes = static_cast<std::size_t>(8.0 * (tt * dvv + tt));
  } else {
    if (req.sketch_size) {
      p.sketch_size = *req.sketch_size;
    } else if (req.eps2) {
      const double s = std::ceil(2.0 / (req.delta * *req.eps2 * *req.eps2));
      require(s <= static_cast<double>(limits::max_sketch_size), "eps2 = ", *req.eps2, " at delta = ", req.delta,
              " needs s = ", s, " > 2^24 sketch rows; loosen eps2 or delta");
      p.sketch_size = static_cast<Index>(s);
    } else {
      p.sketch_size = 256;
    }
    p.sketch_eps2 = std::sqrt(2.0 / (req.delta * static_cast<double>(p.sketch_size)));
    // The sketch's table and s, plus the AMS sign hashes (4 coefficients of 8 bytes per row).
    const double hashes = DenseSketch::parse_distribution(req.sketch) == DenseSketch::Distribution::ams ? 32.0 : 0.0;
    p.state_bytes = static_cast<std::size_t>(8.0 * (static_cast<double>(p.sketch_size) * (tt + dvv) + tt) +
                                             hashes * static_cast<double>(p.sketch_size));
    p.notes.push_back(
        message("sketched state: s = ", p.sketch_size, " rows; Frobenius error of U2^T V <= ", num(p.sketch_eps2),
                " ||U2||_F ||V||_F with probability >= ", num(1 - req.delta),
                " (typical: ", num(std::sqrt(2.0 / static_cast<double>(p.sketch_size))), "); the exact state is ",
                static_cast<std::size_t>(8.0 * (tt * dvv + tt)), " bytes with no sketching error"));
  }
}

// Flops of the causal update per token and of one keys-first query, approximately.
void plan_costs(const PlanRequest& req, Index dv, StreamPlan& p) {
  const double tt = static_cast<double>(p.t), dvv = static_cast<double>(dv), dd = static_cast<double>(req.d);
  const double ch = static_cast<double>(resolve_chunk(req.chunk, p.t));
  // features (t), inter-chunk phi(q)^T [M s] and absorb phi(k) [v 1]: 2 t (dv+1) each; intra-chunk
  // scores, polynomial and P V: about chunk (2 d + 2 dv + 2 g) / 2 per token (half the square).
  p.update_flops_per_token = 2.0 * tt + 4.0 * tt * (dvv + 1) + ch * (dd + dvv + p.degree);
  p.query_flops = tt + 2.0 * tt * (dvv + 1);
}

// The guaranteed error terms for the scores bound beta, and the notes that explain them.
void plan_error_bounds(const PlanRequest& req, StreamPlan& p) {
  if (req.beta) {
    const double eps = taylor_error(*req.beta, p.degree);
    p.taylor_eps = eps;
    p.vacuous = !(eps < 1.0);
    const double inf = std::numeric_limits<double>::infinity();
    p.attention_bound = p.vacuous ? inf : 2.0 * eps / (1.0 - eps);
    p.column_bound = p.vacuous ? inf : std::sqrt(static_cast<double>(req.n)) * *p.attention_bound;
    for (int g = 0; p.vacuous && g <= TaylorFeatures::max_degree; g += 2) {
      if (taylor_error(*req.beta, g) < 1.0) {
        p.suggested_degree = g;
        break;
      }
    }
    if (p.vacuous) {
      if (p.suggested_degree)
        p.notes.push_back(message("VACUOUS: eps(beta=", num(*req.beta), ", g=", p.degree, ") = ", num(eps),
                                  " >= 1, so no error guarantee holds; degree ", *p.suggested_degree,
                                  " makes the bound non-vacuous (t = ", taylor_dim(req.d, *p.suggested_degree), ")"));
      else
        p.notes.push_back(message("VACUOUS: eps(beta=", num(*req.beta), ", g=", p.degree, ") = ", num(eps),
                                  " >= 1 and no degree <= 8 brings it below 1: the scores are too large for the "
                                  "polynomial method's guarantee (normalize q and k, or lower the scale); the probe "
                                  "certificate measures the real error"));
    }
    if (req.k && !p.vacuous) {
      const double eps1 = req.eps1.value_or(0.25);
      p.notes.push_back(message("decoded column error <= (1 + ", num(eps1), ") OPT + ", num(2 + eps1), " * ",
                                num(*p.column_bound), " * ||V_col||_max"));
    }
  } else {
    p.notes.push_back("no beta given: pass beta = scale * max|q| * max|k| for the guaranteed error terms");
  }
}

}  // namespace

StreamPlan plan(const PlanRequest& req) {
  require_valid_request(req);
  StreamPlan p;
  p.request = req;
  const Index dv = req.dv == 0 ? req.d : req.dv;
  p.request.dv = dv;
  plan_degree(req, p);
  const std::int64_t t = taylor_dim(req.d, p.degree);
  require(t < (std::int64_t{1} << 31), "t = C(d+g, g) = ", t, " features is unreasonable; lower d or the degree");
  p.t = t;
  plan_state(req, dv, p);
  p.total_bytes = p.state_bytes;
  if (req.k) {
    const double eps1 = req.eps1.value_or(0.25);
    p.output = SparseRecoveryPlan::make(req.n, *req.k, eps1, req.delta, dv);
    p.total_bytes += p.output->nbytes();
  }
  plan_costs(req, dv, p);
  plan_error_bounds(req, p);
  return p;
}

std::string StreamPlan::repr() const {
  std::string s = message("Plan(n=", request.n, ", d=", request.d, ", dv=", request.dv, ")\n");
  s += message("  degree g         ", degree, "  (", degree_reason, ")\n");
  s += message("  features t       ", t, "\n");
  s += message("  state            ", state, ", ", state_bytes, " bytes",
               state == "sketched" ? message(" (s = ", sketch_size, ")") : "", "\n");
  if (output)
    s += message("  output sketch    k=", output->k, ", eps1=", output->eps, ": rows=", output->rows,
                 ", buckets=", output->buckets, ", bit_rows=", output->bit_rows, ", ", output->nbytes(), " bytes\n");
  s += message("  total bytes      ", total_bytes, "\n");
  s += message("  flops per token  ", num(update_flops_per_token), " (causal update); one keys-first query ",
               num(query_flops), "\n");
  if (taylor_eps) {
    s += message("  eps(beta, g)     ", num(*taylor_eps), vacuous ? "  VACUOUS" : "", "\n");
    s += message("  |T~ - Attn|_max  <= ", num(*attention_bound), " * |V|_max\n");
  }
  for (const auto& n : notes) s += "  note: " + n + "\n";
  return s;
}

}  // namespace streamattn