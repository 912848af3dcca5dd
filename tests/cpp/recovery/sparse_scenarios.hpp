// Test vectors for sparse recovery, shared by tests/cpp/test_sparse_recovery.cpp and
// bench/sparse_recovery_sizing.cpp: every scenario of issue 4, generated from a 64-bit seed with
// the library's SplitMix64 (so a failure is reproducible from its seed), and the exact check of
// the (1+ε) ℓ2/ℓ2 guarantee.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "streamattn/core/seeding.hpp"
#include "streamattn/recovery/sparse_recovery.hpp"

namespace sparse_scenarios {

enum class Kind {
  exact_sparse,  // exactly k-sparse, magnitudes log-uniform in [1e-3, 1e6], random signs
  sparse_noise,  // k heavies (log-uniform around the recovery threshold) + Gaussian noise
  zipf08,        // x_(rank) = ±rank^-0.8 at pseudo-random positions
  zipf10,
  zipf15,
  planted,      // k equal heavies at 2·sqrt(ε/k)·‖noise‖ in Gaussian noise
  flat,         // i.i.d. N(0, 1): OPT is large
  turnstile,    // inserts of k survivors and many transients, then exact deletions
  adversarial,  // heavies at 0, n-1, powers of two, a consecutive run; Gaussian noise
};

inline const std::vector<Kind>& all_kinds() {
  static const std::vector<Kind> kinds = {Kind::exact_sparse, Kind::sparse_noise, Kind::zipf08,
                                          Kind::zipf10,       Kind::zipf15,       Kind::planted,
                                          Kind::flat,         Kind::turnstile,    Kind::adversarial};
  return kinds;
}

inline std::string name(Kind k) {
  switch (k) {
    case Kind::exact_sparse: return "exact k-sparse";
    case Kind::sparse_noise: return "k-sparse + noise";
    case Kind::zipf08: return "zipf 0.8";
    case Kind::zipf10: return "zipf 1.0";
    case Kind::zipf15: return "zipf 1.5";
    case Kind::planted: return "planted heavy";
    case Kind::flat: return "flat";
    case Kind::turnstile: return "turnstile";
    case Kind::adversarial: return "adversarial pos";
  }
  return "?";
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  std::uint64_t next() { return g_.next(); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::uint64_t below(std::uint64_t m) { return next() % m; }
  double sign() { return (next() & 1) ? -1.0 : 1.0; }
  double normal() {
    if (have_) {
      have_ = false;
      return spare_;
    }
    double u = 0.0;
    while (u <= 0.0) u = uniform();
    const double v = uniform(), rad = std::sqrt(-2.0 * std::log(u)), th = 6.283185307179586 * v;
    spare_ = rad * std::sin(th);
    have_ = true;
    return rad * std::cos(th);
  }

 private:
  streamattn::SplitMix64 g_;
  bool have_ = false;
  double spare_ = 0.0;
};

/// A test vector: the final x, and the turnstile stream that produces it (empty = stream x densely).
struct Trial {
  Kind kind = Kind::flat;
  std::vector<double> x;
  std::vector<std::int64_t> stream_indices;
  std::vector<double> stream_values;
};

inline std::vector<std::int64_t> distinct_positions(Rng& rng, std::int64_t n, std::int64_t k) {
  std::vector<std::int64_t> pos;
  while (static_cast<std::int64_t>(pos.size()) < k) {
    const auto p = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
    if (std::find(pos.begin(), pos.end(), p) == pos.end()) pos.push_back(p);
  }
  return pos;
}

inline void add_noise(Rng& rng, std::vector<double>& x, double sigma) {
  for (double& v : x) v += sigma * rng.normal();
}

inline Trial make_trial(Kind kind, std::int64_t n, std::int64_t k, double eps, std::uint64_t seed) {
  Rng rng(streamattn::derive_seed(seed, 1000 + static_cast<std::uint64_t>(kind), static_cast<std::uint64_t>(n)));
  Trial t;
  t.kind = kind;
  t.x.assign(static_cast<std::size_t>(n), 0.0);
  auto& x = t.x;
  const double noise_norm = 1.0, sigma = noise_norm / std::sqrt(static_cast<double>(n));
  switch (kind) {
    case Kind::exact_sparse: {
      for (auto p : distinct_positions(rng, n, k))
        x[static_cast<std::size_t>(p)] = rng.sign() * std::pow(10.0, -3.0 + 9.0 * rng.uniform());
      break;
    }
    case Kind::sparse_noise: {
      add_noise(rng, x, sigma);
      // Heavies from 0.1x to 10x the threshold sqrt(eps/k)·OPT: some matter, some do not.
      const double thr = std::sqrt(eps / static_cast<double>(k)) * noise_norm;
      for (auto p : distinct_positions(rng, n, k))
        x[static_cast<std::size_t>(p)] += rng.sign() * thr * std::pow(10.0, -1.0 + 2.0 * rng.uniform());
      break;
    }
    case Kind::zipf08:
    case Kind::zipf10:
    case Kind::zipf15: {
      const double a = kind == Kind::zipf08 ? 0.8 : kind == Kind::zipf10 ? 1.0 : 1.5;
      // rank -> position by a random affine map modulo n with a multiplier coprime to n.
      std::uint64_t mul = 0;
      do {
        mul = 1 + rng.below(static_cast<std::uint64_t>(n - 1 > 0 ? n - 1 : 1));
      } while (std::gcd(mul, static_cast<std::uint64_t>(n)) != 1);
      const std::uint64_t off = rng.below(static_cast<std::uint64_t>(n));
      for (std::int64_t r = 0; r < n; ++r) {
        const auto p =
            static_cast<std::size_t>((static_cast<unsigned __int128>(mul) * static_cast<std::uint64_t>(r) + off) %
                                     static_cast<std::uint64_t>(n));
        x[p] = rng.sign() * std::pow(static_cast<double>(r + 1), -a);
      }
      break;
    }
    case Kind::planted: {
      add_noise(rng, x, sigma);
      const double h = 2.0 * std::sqrt(eps / static_cast<double>(k)) * noise_norm;
      for (auto p : distinct_positions(rng, n, k)) x[static_cast<std::size_t>(p)] = rng.sign() * h;
      break;
    }
    case Kind::flat: {
      add_noise(rng, x, 1.0);
      break;
    }
    case Kind::turnstile: {
      // k survivors and M transients are inserted in pieces, in random order; then every
      // transient is deleted, also in pieces. The final vector is exactly k-sparse.
      const std::int64_t M = std::min<std::int64_t>(n - k, 20 * k + 500);
      const auto pos = distinct_positions(rng, n, k + M);
      std::vector<std::pair<std::int64_t, double>> ins, del;
      for (std::size_t j = 0; j < pos.size(); ++j) {
        const double v = rng.sign() * std::pow(10.0, -1.0 + 4.0 * rng.uniform());
        const double part = v * rng.uniform();
        ins.emplace_back(pos[j], part);
        ins.emplace_back(pos[j], v - part);
        if (static_cast<std::int64_t>(j) < k) {
          x[static_cast<std::size_t>(pos[j])] = part + (v - part);
        } else {
          del.emplace_back(pos[j], -part);
          del.emplace_back(pos[j], -(v - part));
        }
      }
      for (auto* list : {&ins, &del}) {
        for (std::size_t i = list->size(); i > 1; --i) std::swap((*list)[i - 1], (*list)[rng.below(i)]);
        for (auto& [p, v] : *list) {
          t.stream_indices.push_back(p);
          t.stream_values.push_back(v);
        }
      }
      break;
    }
    case Kind::adversarial: {
      add_noise(rng, x, sigma);
      std::vector<std::int64_t> cand = {0, n - 1};
      for (std::int64_t p = 1; p < n; p *= 2) cand.push_back(p);
      for (std::int64_t j = 0; j < k; ++j) cand.push_back(n / 2 + j);  // a consecutive run
      cand.erase(std::unique((std::sort(cand.begin(), cand.end()), cand.begin()), cand.end()), cand.end());
      for (std::size_t i = cand.size(); i > 1; --i) std::swap(cand[i - 1], cand[rng.below(i)]);
      const double thr = std::sqrt(eps / static_cast<double>(k)) * noise_norm;
      for (std::int64_t j = 0; j < std::min<std::int64_t>(k, static_cast<std::int64_t>(cand.size())); ++j)
        x[static_cast<std::size_t>(cand[static_cast<std::size_t>(j)])] = rng.sign() * thr * (1.0 + 9.0 * rng.uniform());
      break;
    }
  }
  return t;
}

/// Squared error ‖x − z‖² and OPT² = min over k-sparse y of ‖x − y‖², each summed directly
/// (no cancellation, so an exact recovery gives exactly 0).
struct Errors {
  double err2 = 0, opt2 = 0;
};

/// OPT² alone (the k largest magnitudes left out).
inline double opt_squared(const std::vector<double>& x, std::int64_t k) {
  std::vector<double> mag(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) mag[i] = std::abs(x[i]);
  const std::size_t kk = std::min(static_cast<std::size_t>(k), x.size());
  std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(kk - 1), mag.end(), std::greater<double>());
  // OPT²: everything but the k largest magnitudes (mag[kk..] after the partition).
  long double opt = 0;
  for (std::size_t i = kk; i < mag.size(); ++i) opt += static_cast<long double>(mag[i]) * mag[i];
  return static_cast<double>(opt);
}
/// ‖x − z‖², with OPT² given (computed once per test vector by opt_squared).
inline Errors errors_given_opt(const std::vector<double>& x, const streamattn::SparseVector& z, double opt2) {
  Errors e;
  long double err = 0;
  std::size_t j = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    double d = x[i];
    if (j < z.indices.size() && z.indices[j] == static_cast<std::int64_t>(i)) d -= z.values[j++];
    err += static_cast<long double>(d) * d;
  }
  e.err2 = static_cast<double>(err);
  e.opt2 = opt2;
  return e;
}
inline Errors errors(const std::vector<double>& x, const streamattn::SparseVector& z, std::int64_t k) {
  return errors_given_opt(x, z, opt_squared(x, k));
}
/// The (1+ε) guarantee, up to float rounding of the counters: 1e-12 of `scale`, the norm of
/// everything that was streamed (a deleted value leaves a rounding residue in its counters).
inline bool within(const Errors& e, double eps, double scale) {
  return std::sqrt(e.err2) <= (1.0 + eps) * std::sqrt(e.opt2) + 1e-12 * scale;
}

inline double streamed_norm(const Trial& t) {
  long double s = 0;
  for (double v : t.x) s += static_cast<long double>(v) * v;
  for (double v : t.stream_values) s += static_cast<long double>(v) * v;
  return std::sqrt(static_cast<double>(s));
}

inline double norm(const std::vector<double>& x) {
  long double s = 0;
  for (double v : x) s += static_cast<long double>(v) * v;
  return std::sqrt(static_cast<double>(s));
}

/// Streams a trial into a sketch (turnstile list or dense rows).
inline void feed(streamattn::SparseRecovery& sk, const Trial& t) {
  if (t.stream_indices.empty() && (t.kind == Kind::exact_sparse)) {
    // A sparse vector arrives as the stream of its nonzero entries.
    std::vector<std::int64_t> idx;
    std::vector<double> val;
    for (std::size_t i = 0; i < t.x.size(); ++i)
      if (t.x[i] != 0.0) {
        idx.push_back(static_cast<std::int64_t>(i));
        val.push_back(t.x[i]);
      }
    sk.update(idx.data(), static_cast<streamattn::Index>(idx.size()),
              Eigen::Map<const Eigen::VectorXd>(val.data(), static_cast<Eigen::Index>(val.size())));
  } else if (!t.stream_indices.empty()) {
    sk.update(
        t.stream_indices.data(), static_cast<streamattn::Index>(t.stream_indices.size()),
        Eigen::Map<const Eigen::VectorXd>(t.stream_values.data(), static_cast<Eigen::Index>(t.stream_values.size())));
  } else {
    sk.update_dense(0, Eigen::Map<const Eigen::VectorXd>(t.x.data(), static_cast<Eigen::Index>(t.x.size())));
  }
}

/// Result of one trial for both decoders.
struct Outcome {
  bool standard_ok = false, sublinear_ok = false, same_support = false;
};

inline Outcome run_trial(const streamattn::SparseRecoveryPlan& plan, Kind kind, std::uint64_t seed,
                         bool run_standard = true) {
  const Trial t = make_trial(kind, static_cast<std::int64_t>(plan.n), plan.k, plan.eps, seed);
  streamattn::SparseRecovery sk(plan, streamattn::mix64(seed ^ 0x5A5A5A5AULL));
  feed(sk, t);
  const double xn = streamed_norm(t);
  Outcome o;
  const double opt2 = opt_squared(t.x, plan.k);
  const streamattn::SparseVector zs = sk.decode(streamattn::DecodeMethod::sublinear);
  o.sublinear_ok = within(errors_given_opt(t.x, zs, opt2), plan.eps, xn);
  if (run_standard) {
    const streamattn::SparseVector z = sk.decode(streamattn::DecodeMethod::standard, 1);
    o.standard_ok = within(errors_given_opt(t.x, z, opt2), plan.eps, xn);
    o.same_support = z.indices == zs.indices;
  }
  return o;
}

}  // namespace sparse_scenarios
