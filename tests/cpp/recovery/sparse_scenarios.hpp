// Test vectors for sparse recovery, shared by tests/cpp/test_sparse_recovery.cpp and
// bench/sparse_recovery_sizing.cpp: every scenario of issue 4, generated from a 64-bit seed with
// the library's SplitMix64 (so a failure is reproducible from its seed), and the exact check of
// the (1+ε) ℓ2/ℓ2 guarantee.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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
  /// The entries of x that finish() wrote, with their values in the base (distinct positions).
  std::vector<std::pair<std::int64_t, double>> changed;
};

/// The part of a test vector that does not depend on (k, eps): the Gaussian noise or the Zipf
/// vector (zero for exact k-sparse and turnstile), and the generator's state after it. finish()
/// draws the rest, so finish(make_base(kind, n, seed), k, eps) == make_trial(kind, n, k, eps, seed)
/// bit for bit, and one base serves every (k, eps) of a sweep.
struct TrialBase {
  Kind kind = Kind::flat;
  std::vector<double> x;
  Rng rng{0};
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

/// (r+1)^-a for r < n: the same for every seed, so computed once per (a, n) and shared.
inline const std::vector<double>& zipf_magnitudes(double a, std::int64_t n) {
  static std::mutex mu;
  static std::map<std::pair<double, std::int64_t>, std::unique_ptr<std::vector<double>>> cache;
  const std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<std::vector<double>>& slot = cache[{a, n}];
  if (!slot) {
    slot = std::make_unique<std::vector<double>>(static_cast<std::size_t>(n));
    for (std::int64_t r = 0; r < n; ++r)
      (*slot)[static_cast<std::size_t>(r)] = std::pow(static_cast<double>(r + 1), -a);
  }
  return *slot;
}

inline constexpr double kNoiseNorm = 1.0;  // ‖noise‖ of the noisy scenarios

/// make_base into `b`, reusing the memory of b.x.
inline void make_base(TrialBase& b, Kind kind, std::int64_t n, std::uint64_t seed) {
  b.kind = kind;
  b.rng = Rng(streamattn::derive_seed(seed, 1000 + static_cast<std::uint64_t>(kind), static_cast<std::uint64_t>(n)));
  b.x.assign(static_cast<std::size_t>(n), 0.0);
  Rng& rng = b.rng;
  auto& x = b.x;
  const double sigma = kNoiseNorm / std::sqrt(static_cast<double>(n));
  switch (kind) {
    case Kind::sparse_noise:
    case Kind::planted:
    case Kind::adversarial: add_noise(rng, x, sigma); break;
    case Kind::flat: add_noise(rng, x, 1.0); break;
    case Kind::zipf08:
    case Kind::zipf10:
    case Kind::zipf15: {
      const double a = kind == Kind::zipf08 ? 0.8 : kind == Kind::zipf10 ? 1.0 : 1.5;
      const std::vector<double>& mag = zipf_magnitudes(a, n);
      // rank -> position by a random affine map modulo n with a multiplier coprime to n,
      // p(r) = (mul·r + off) mod n, stepped by adding mul.
      std::uint64_t mul = 0;
      do {
        mul = 1 + rng.below(static_cast<std::uint64_t>(n - 1 > 0 ? n - 1 : 1));
      } while (std::gcd(mul, static_cast<std::uint64_t>(n)) != 1);
      const std::uint64_t off = rng.below(static_cast<std::uint64_t>(n)), un = static_cast<std::uint64_t>(n);
      const std::uint64_t step = mul % un;
      std::uint64_t p = off;
      for (std::int64_t r = 0; r < n; ++r) {
        x[static_cast<std::size_t>(p)] = rng.sign() * mag[static_cast<std::size_t>(r)];
        p += step;
        if (p >= un) p -= un;
      }
      break;
    }
    case Kind::exact_sparse:
    case Kind::turnstile: break;
  }
}

inline TrialBase make_base(Kind kind, std::int64_t n, std::uint64_t seed) {
  TrialBase b;
  make_base(b, kind, n, seed);
  return b;
}

/// The (k, eps)-dependent rest of a test vector, drawn after its base.
inline Trial finish(TrialBase b, std::int64_t k, double eps) {
  Trial t;
  t.kind = b.kind;
  t.x = std::move(b.x);
  const std::int64_t n = static_cast<std::int64_t>(t.x.size());
  Rng& rng = b.rng;
  auto& x = t.x;
  auto remember = [&](std::int64_t p) { t.changed.emplace_back(p, x[static_cast<std::size_t>(p)]); };
  switch (b.kind) {
    case Kind::exact_sparse: {
      for (auto p : distinct_positions(rng, n, k)) {
        remember(p);
        x[static_cast<std::size_t>(p)] = rng.sign() * std::pow(10.0, -3.0 + 9.0 * rng.uniform());
      }
      break;
    }
    case Kind::sparse_noise: {
      // Heavies from 0.1x to 10x the threshold sqrt(eps/k)·OPT: some matter, some do not.
      const double thr = std::sqrt(eps / static_cast<double>(k)) * kNoiseNorm;
      for (auto p : distinct_positions(rng, n, k)) {
        remember(p);
        x[static_cast<std::size_t>(p)] += rng.sign() * thr * std::pow(10.0, -1.0 + 2.0 * rng.uniform());
      }
      break;
    }
    case Kind::zipf08:
    case Kind::zipf10:
    case Kind::zipf15:
    case Kind::flat: break;
    case Kind::planted: {
      const double h = 2.0 * std::sqrt(eps / static_cast<double>(k)) * kNoiseNorm;
      for (auto p : distinct_positions(rng, n, k)) {
        remember(p);
        x[static_cast<std::size_t>(p)] = rng.sign() * h;
      }
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
          remember(pos[j]);
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
      std::vector<std::int64_t> cand = {0, n - 1};
      for (std::int64_t p = 1; p < n; p *= 2) cand.push_back(p);
      for (std::int64_t j = 0; j < k; ++j) cand.push_back(n / 2 + j);  // a consecutive run
      cand.erase(std::unique((std::sort(cand.begin(), cand.end()), cand.begin()), cand.end()), cand.end());
      for (std::size_t i = cand.size(); i > 1; --i) std::swap(cand[i - 1], cand[rng.below(i)]);
      const double thr = std::sqrt(eps / static_cast<double>(k)) * kNoiseNorm;
      for (std::int64_t j = 0; j < std::min<std::int64_t>(k, static_cast<std::int64_t>(cand.size())); ++j) {
        remember(cand[static_cast<std::size_t>(j)]);
        x[static_cast<std::size_t>(cand[static_cast<std::size_t>(j)])] = rng.sign() * thr * (1.0 + 9.0 * rng.uniform());
      }
      break;
    }
  }
  return t;
}

/// finish() on the base's own vector (no copy of x); give_back() returns it, restored, to the base.
inline Trial finish_in_place(TrialBase& b, std::int64_t k, double eps) {
  TrialBase lent;
  lent.kind = b.kind;
  lent.rng = b.rng;
  lent.x = std::move(b.x);
  return finish(std::move(lent), k, eps);
}
inline void give_back(Trial&& t, TrialBase& b) {
  b.x = std::move(t.x);
  for (const auto& [p, v] : t.changed) b.x[static_cast<std::size_t>(p)] = v;
}

inline Trial make_trial(Kind kind, std::int64_t n, std::int64_t k, double eps, std::uint64_t seed) {
  return finish(make_base(kind, n, seed), k, eps);
}

/// Squared error ‖x − z‖² and OPT² = min over k-sparse y of ‖x − y‖², each a sum of squares
/// (no cancellation, so an exact recovery gives exactly 0).
struct Errors {
  double err2 = 0, opt2 = 0;
};

/// Sums of squares of x, kept per block of `block` entries (long double), so that the sum over
/// x with a few entries changed (‖x − z‖² for a k-sparse z; OPT², x without its k largest
/// entries) costs O(n / block + changed · block) instead of O(n). Every term is a square of the
/// changed vector, as in a direct sum: no cancellation, an exact recovery gives exactly 0.
/// Holds a pointer to x's entries (a moved std::vector keeps its buffer): x must outlive it.
class SquareSums {
 public:
  static constexpr std::size_t block = 512;
  explicit SquareSums(const std::vector<double>& x) : x_(x.data()), n_(x.size()), blocks_((n_ + block - 1) / block) {
    for (std::size_t b = 0; b < blocks_.size(); ++b) blocks_[b] = block_sum(b);
  }
  /// The sums of x after the entries at `positions` changed (x the same buffer, or a copy).
  SquareSums changed(const std::vector<double>& x, const std::vector<std::int64_t>& positions) const {
    SquareSums out = *this;
    out.x_ = x.data();
    for (std::int64_t p : positions) {
      const std::size_t b = static_cast<std::size_t>(p) / block;
      out.blocks_[b] = out.block_sum(b);
    }
    return out;
  }
  /// Σ x_i².
  long double total() const {
    long double s = 0;
    for (long double b : blocks_) s += b;
    return s;
  }
  /// Σ d_i² with d = x except d[at[j]] = x[at[j]] − sub[j]; `at` increasing.
  long double with(const std::vector<std::int64_t>& at, const std::vector<double>& sub) const {
    long double s = 0;
    std::size_t j = 0;
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const std::size_t lo = b * block, hi = std::min(n_, lo + block);
      if (j == at.size() || static_cast<std::size_t>(at[j]) >= hi) {
        s += blocks_[b];
        continue;
      }
      long double part = 0;
      for (std::size_t i = lo; i < hi; ++i) {
        double d = x_[i];
        if (j < at.size() && static_cast<std::size_t>(at[j]) == i) d -= sub[j++];
        part += static_cast<long double>(d) * d;
      }
      s += part;
    }
    return s;
  }

 private:
  long double block_sum(std::size_t b) const {
    long double s = 0;
    for (std::size_t i = b * block, e = std::min(n_, i + block); i < e; ++i)
      s += static_cast<long double>(x_[i]) * x_[i];
    return s;
  }
  const double* x_;
  std::size_t n_;
  std::vector<long double> blocks_;
};

/// Ranking of entries: larger |x_i| first, ties to the smaller index.
inline bool ranks_before(const std::vector<double>& x, std::int64_t a, std::int64_t b) {
  const double ma = std::abs(x[static_cast<std::size_t>(a)]), mb = std::abs(x[static_cast<std::size_t>(b)]);
  return ma > mb || (ma == mb && a < b);
}

/// Indices of the min(m, n) largest |x_i| (ties to the smaller index), best first.
inline std::vector<std::int64_t> top_entries(const std::vector<double>& x, std::size_t m) {
  const std::size_t kk = std::min(m, x.size());
  // Heap whose front() is the worst kept entry. Scanning in index order, a later entry
  // replaces it only with a strictly larger magnitude.
  auto before = [&x](std::int64_t a, std::int64_t b) { return ranks_before(x, a, b); };
  std::vector<std::int64_t> heap;
  heap.reserve(kk);
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (heap.size() < kk) {
      heap.push_back(static_cast<std::int64_t>(i));
      std::push_heap(heap.begin(), heap.end(), before);
      if (heap.size() == kk) worst = std::abs(x[static_cast<std::size_t>(heap.front())]);
    } else if (kk > 0 && std::abs(x[i]) > worst) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.back() = static_cast<std::int64_t>(i);
      std::push_heap(heap.begin(), heap.end(), before);
      worst = std::abs(x[static_cast<std::size_t>(heap.front())]);
    }
  }
  std::sort(heap.begin(), heap.end(), before);
  return heap;
}

/// What judging a trial needs of x: its sums of squares and its `depth` largest entries.
struct Summary {
  SquareSums squares;
  std::vector<std::int64_t> top;  // best first

  Summary(const std::vector<double>& x, std::size_t depth) : squares(x), top(top_entries(x, depth)) {}
  Summary(SquareSums sq, std::vector<std::int64_t> t) : squares(std::move(sq)), top(std::move(t)) {}

  /// The summary (k deep) of a trial finished from the base this summarizes (t.x the base's
  /// buffer or a copy; t.changed the entries finish() wrote). An unchanged entry among t.x's k
  /// largest is among the base's k + |changed| largest, so those and the changed entries are
  /// the only candidates.
  Summary after(const Trial& t, std::size_t k) const {
    std::vector<std::int64_t> pos;
    for (const auto& pv : t.changed) pos.push_back(pv.first);
    if (k + pos.size() > top.size()) return Summary(t.x, k);
    std::vector<std::int64_t> cand(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(k + pos.size()));
    cand.insert(cand.end(), pos.begin(), pos.end());
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    std::sort(cand.begin(), cand.end(), [&t](std::int64_t a, std::int64_t b) { return ranks_before(t.x, a, b); });
    cand.resize(std::min(cand.size(), k));
    return Summary(squares.changed(t.x, pos), std::move(cand));
  }
};

/// OPT² = Σ of x_i² over all but the k largest |x_i| (given by the summary, at least k deep).
inline double opt_squared(const Summary& s, const std::vector<double>& x, std::int64_t k) {
  const std::size_t kk = std::min(s.top.size(), static_cast<std::size_t>(k));
  std::vector<std::int64_t> top(s.top.begin(), s.top.begin() + static_cast<std::ptrdiff_t>(kk));
  std::sort(top.begin(), top.end());
  std::vector<double> sub;
  for (std::int64_t i : top) sub.push_back(x[static_cast<std::size_t>(i)]);  // x_i − x_i = 0
  return static_cast<double>(s.squares.with(top, sub));
}
inline double opt_squared(const std::vector<double>& x, std::int64_t k) {
  return opt_squared(Summary(x, static_cast<std::size_t>(k)), x, k);
}

/// ‖x − z‖², with OPT² given (computed once per test vector by opt_squared).
inline Errors errors_given_opt(const SquareSums& sq, const streamattn::SparseVector& z, double opt2) {
  Errors e;
  e.err2 = static_cast<double>(sq.with(z.indices, z.values));
  e.opt2 = opt2;
  return e;
}
inline Errors errors(const std::vector<double>& x, const streamattn::SparseVector& z, std::int64_t k) {
  const Summary s(x, static_cast<std::size_t>(k));
  return errors_given_opt(s.squares, z, opt_squared(s, x, k));
}
/// The (1+ε) guarantee, up to float rounding of the counters: 1e-12 of `scale`, the norm of
/// everything that was streamed (a deleted value leaves a rounding residue in its counters).
inline bool within(const Errors& e, double eps, double scale) {
  return std::sqrt(e.err2) <= (1.0 + eps) * std::sqrt(e.opt2) + 1e-12 * scale;
}

/// Norm of everything streamed: x, plus every value of the turnstile stream.
inline double streamed_norm(const SquareSums& sq, const Trial& t) {
  long double s = sq.total();
  for (double v : t.stream_values) s += static_cast<long double>(v) * v;
  return std::sqrt(static_cast<double>(s));
}

inline double norm(const std::vector<double>& x) { return std::sqrt(static_cast<double>(SquareSums(x).total())); }

/// An exact k-sparse vector arrives as the stream of its nonzero entries, a turnstile trial as
/// its list; every other trial is streamed densely.
inline bool streamed_sparsely(const Trial& t) { return !t.stream_indices.empty() || t.kind == Kind::exact_sparse; }

/// The (index, value) stream of a sparsely streamed trial.
inline void sparse_stream(const Trial& t, std::vector<std::int64_t>& idx, std::vector<double>& val) {
  if (!t.stream_indices.empty()) {
    idx = t.stream_indices;
    val = t.stream_values;
    return;
  }
  idx.clear();
  val.clear();
  for (std::size_t i = 0; i < t.x.size(); ++i)
    if (t.x[i] != 0.0) {
      idx.push_back(static_cast<std::int64_t>(i));
      val.push_back(t.x[i]);
    }
}

/// Streams a trial into a sketch (turnstile list or dense rows).
inline void feed(streamattn::SparseRecovery& sk, const Trial& t) {
  if (streamed_sparsely(t)) {
    std::vector<std::int64_t> idx;
    std::vector<double> val;
    sparse_stream(t, idx, val);
    sk.update(idx.data(), static_cast<streamattn::Index>(idx.size()),
              Eigen::Map<const Eigen::VectorXd>(val.data(), static_cast<Eigen::Index>(val.size())));
  } else {
    sk.update_dense(0, Eigen::Map<const Eigen::VectorXd>(t.x.data(), static_cast<Eigen::Index>(t.x.size())));
  }
}

/// Streams trials[c] into column c of one sketch: the sparse ones through update() (their
/// value rows zero in every other column), the dense ones together through update_rows(), in
/// chunks of rows (zero in the sparse columns). Adding zero leaves every counter as it is, so
/// column c's counters are bit for bit those of a SparseRecovery with the same plan and seed fed
/// trials[c] alone by feed() above.
inline void feed(streamattn::SparseRecoveryMatrix& sk, const std::vector<Trial>& trials) {
  using streamattn::Index;
  using streamattn::RowMatrix;
  const Index C = static_cast<Index>(trials.size());
  std::vector<Index> dense;
  std::vector<std::int64_t> idx;
  std::vector<double> val;
  for (Index c = 0; c < C; ++c) {
    const Trial& t = trials[static_cast<std::size_t>(c)];
    if (!streamed_sparsely(t)) {
      dense.push_back(c);
      continue;
    }
    sparse_stream(t, idx, val);
    RowMatrix<double> rows = RowMatrix<double>::Zero(static_cast<Index>(idx.size()), C);
    for (std::size_t i = 0; i < val.size(); ++i) rows(static_cast<Index>(i), c) = val[i];
    sk.update(idx.data(), static_cast<Index>(idx.size()), rows);
  }
  if (dense.empty()) return;
  constexpr Index kChunk = 16384;
  const Index n = static_cast<Index>(sk.n());
  RowMatrix<double> chunk = RowMatrix<double>::Zero(kChunk, C);
  for (Index i0 = 0; i0 < n; i0 += kChunk) {
    const Index m = std::min(kChunk, n - i0);
    for (Index c : dense) {
      const double* x = trials[static_cast<std::size_t>(c)].x.data() + i0;
      for (Index i = 0; i < m; ++i) chunk(i, c) = x[i];
    }
    sk.update_rows(static_cast<std::uint64_t>(i0), chunk.topRows(m));
  }
}

/// Result of one trial for both decoders.
struct Outcome {
  bool standard_ok = false, sublinear_ok = false, same_support = false;
};

/// Judges the decoders' answers for one trial (zs sublinear; z standard, if run), given the
/// summary of t.x (at least plan.k deep).
inline Outcome judge(const streamattn::SparseRecoveryPlan& plan, const Trial& t, const Summary& sum,
                     const streamattn::SparseVector& zs, const streamattn::SparseVector* z) {
  const double xn = streamed_norm(sum.squares, t), opt2 = opt_squared(sum, t.x, plan.k);
  Outcome o;
  o.sublinear_ok = within(errors_given_opt(sum.squares, zs, opt2), plan.eps, xn);
  if (z) {
    o.standard_ok = within(errors_given_opt(sum.squares, *z, opt2), plan.eps, xn);
    o.same_support = z->indices == zs.indices;
  }
  return o;
}
inline Outcome judge(const streamattn::SparseRecoveryPlan& plan, const Trial& t, const streamattn::SparseVector& zs,
                     const streamattn::SparseVector* z) {
  return judge(plan, t, Summary(t.x, static_cast<std::size_t>(plan.k)), zs, z);
}

/// The sketch seed of every trial of `seed` (one per seed, shared by the scenarios).
inline std::uint64_t sketch_seed(std::uint64_t seed) { return streamattn::mix64(seed ^ 0x5A5A5A5AULL); }

inline Outcome run_trial(const streamattn::SparseRecoveryPlan& plan, Kind kind, std::uint64_t seed,
                         bool run_standard = true) {
  const Trial t = make_trial(kind, static_cast<std::int64_t>(plan.n), plan.k, plan.eps, seed);
  streamattn::SparseRecovery sk(plan, sketch_seed(seed));
  feed(sk, t);
  const streamattn::SparseVector zs = sk.decode(streamattn::DecodeMethod::sublinear);
  if (!run_standard) return judge(plan, t, zs, nullptr);
  const streamattn::SparseVector z = sk.decode(streamattn::DecodeMethod::standard, 1);
  return judge(plan, t, zs, &z);
}

/// run_trial for several trials of one seed at once: trials[c] is column c of one
/// SparseRecoveryMatrix (plan with columns = trials.size(), sketch seed sketch_seed(seed)), whose
/// hashes every column shares. Column c's counters, and so outcome c, are those of run_trial on
/// trials[c] with the same seed (see feed above); the hashing of a dense update and of the
/// standard decoder's scan is paid once for all columns. summaries[c], if given, is the summary
/// of trials[c].x (at least plan.k deep).
inline std::vector<Outcome> run_trials(streamattn::SparseRecoveryPlan plan, const std::vector<Trial>& trials,
                                       std::uint64_t seed, bool run_standard = true,
                                       const std::vector<Summary>* summaries = nullptr) {
  plan.columns = static_cast<streamattn::Index>(trials.size());
  streamattn::SparseRecoveryMatrix sk(plan, sketch_seed(seed));
  feed(sk, trials);
  const std::vector<streamattn::SparseVector> zs = sk.decode(streamattn::DecodeMethod::sublinear);
  std::vector<streamattn::SparseVector> z;
  if (run_standard) z = sk.decode(streamattn::DecodeMethod::standard, 1);
  std::vector<Outcome> out;
  for (std::size_t c = 0; c < trials.size(); ++c) {
    const streamattn::SparseVector* zc = run_standard ? &z[c] : nullptr;
    out.push_back(summaries ? judge(plan, trials[c], (*summaries)[c], zs[c], zc) : judge(plan, trials[c], zs[c], zc));
  }
  return out;
}

}  // namespace sparse_scenarios
