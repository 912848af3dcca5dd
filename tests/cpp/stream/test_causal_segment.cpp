// CausalSegment: block states with their decay, composed associatively, and CausalStream::start_from.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "streamattn/stream/causal_segment.hpp"
#include "streamattn/stream/causal_stream.hpp"

using namespace streamattn;

namespace {
template <class M>
MatrixRef<double> rows(const M& X, Index a, Index r) {
  return MatrixRef<double>(X.middleRows(a, r));
}
}  // namespace

TEST_CASE("CausalSegment scan + start_from equals one stream, gated or not", "[stream]") {
  std::mt19937_64 g(31);
  const Index n = 257, d = 4, dv = 3;
  const RowMatrix<double> Q = test::normal_matrix(n, d, g, 0.4), K = test::normal_matrix(n, d, g, 0.4),
                          V = test::normal_matrix(n, dv, g, 1.0);
  Eigen::VectorXd gate(n);
  std::uniform_real_distribution<double> u(-0.2, 0.0);
  for (Index i = 0; i < n; ++i) gate[i] = u(g);
  const std::vector<Index> bounds{0, 10, 11, 100, 190, n};
  for (bool gated : {false, true}) {
    CausalStream whole(d, dv, 2, 0.5, 16);
    RowMatrix<double> want;
    if (gated)
      whole.update(rows(Q, 0, n), rows(K, 0, n), rows(V, 0, n), VectorRef<double>(gate), &want);
    else
      whole.update(rows(Q, 0, n), rows(K, 0, n), rows(V, 0, n), &want);
    CausalSegment prefix(d, dv, 2, 0.5, 0, 16);
    RowMatrix<double> got(n, dv);
    for (std::size_t b = 0; b + 1 < bounds.size(); ++b) {
      const Index a = bounds[b], r = bounds[b + 1] - bounds[b];
      const VectorRef<double> gb(gate.segment(a, r));
      CausalStream s(d, dv, 2, 0.5, 16);
      s.start_from(prefix);
      CHECK(s.tokens_seen() == static_cast<std::uint64_t>(a));
      RowMatrix<double> out;
      CausalSegment seg(d, dv, 2, 0.5, static_cast<std::uint64_t>(a), 16);
      if (gated) {
        s.update(rows(Q, a, r), rows(K, a, r), rows(V, a, r), gb, &out);
        seg.absorb(rows(K, a, r), rows(V, a, r), gb);
        CHECK(seg.log_decay() == Approx(gate.segment(a, r).sum()).epsilon(1e-14));
      } else {
        s.update(rows(Q, a, r), rows(K, a, r), rows(V, a, r), &out);
        seg.absorb(rows(K, a, r), rows(V, a, r));
        CHECK(seg.log_decay() == 0.0);
      }
      got.middleRows(a, r) = out;
      prefix = prefix.then(seg);
      CHECK(prefix.end_token() == static_cast<std::uint64_t>(bounds[b + 1]));
    }
    CHECK(test::max_rel_diff(got, want) <= 1e-12);
    CHECK(test::max_rel_diff(prefix.state().numerator_state(), whole.state().numerator_state()) <= 1e-12);
  }
}

TEST_CASE("CausalSegment composition is associative and refuses gaps and other parameters", "[stream]") {
  std::mt19937_64 g(7);
  const Index d = 3, dv = 2;
  const RowMatrix<double> K = test::normal_matrix(30, d, g, 0.5), V = test::normal_matrix(30, dv, g, 1.0);
  Eigen::VectorXd gate = Eigen::VectorXd::Constant(30, -0.05);
  std::vector<CausalSegment> s;
  for (Index a : {0, 10, 20}) {
    s.emplace_back(d, dv, 2, 0.5, static_cast<std::uint64_t>(a));
    s.back().absorb(rows(K, a, 10), rows(V, a, 10), VectorRef<double>(gate.segment(a, 10)));
  }
  const CausalSegment left = s[0].then(s[1]).then(s[2]), right = s[0].then(s[1].then(s[2]));
  CHECK(test::max_rel_diff(left.state().numerator_state(), right.state().numerator_state()) <= 1e-14);
  CHECK(left.log_decay() == Approx(-1.5).epsilon(1e-14));
  CHECK_THROWS_WITH(s[0].then(s[2]), Catch::Contains("adjacent"));
  CausalSegment other(d, dv, 4, 0.5, 10);
  CHECK_THROWS_WITH(s[0].then(other), Catch::Contains("degree"));
  auto bytes = left.to_bytes();
  const CausalSegment back = CausalSegment::from_bytes(bytes.data(), bytes.size());
  CHECK(back.state().numerator_state() == left.state().numerator_state());
  CHECK(back.state().normalizer_state() == left.state().normalizer_state());
  CHECK(back.log_decay() == left.log_decay());
  CHECK(back.first_token() == 0);
  CHECK(back.end_token() == 30);
  bytes[bytes.size() / 2] ^= 1;
  CHECK_THROWS_AS(CausalSegment::from_bytes(bytes.data(), bytes.size()), std::invalid_argument);
  CausalStream cs(d, dv, 2, 0.5);
  CHECK_THROWS_WITH(cs.start_from(s[1]), Catch::Contains("starting at token 0"));
  CausalStream wrong(d, dv, 2, 0.25);
  CHECK_THROWS_WITH(wrong.start_from(s[0]), Catch::Contains("same d, dv, degree, scale and kernel"));
}
