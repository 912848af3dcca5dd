// C++ mirror of tests/test_poly.py: the polynomial method's identities, usable without Python.
// Deterministic data (fixed-seed std::mt19937_64); tolerances stated at each check.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/attention/exact_attention.hpp"
#include "streamattn/attention/poly_attention.hpp"
#include "streamattn/features/taylor_features.hpp"
#include "streamattn/stream/causal_segment.hpp"
#include "streamattn/stream/causal_stream.hpp"

using namespace streamattn;

namespace {

// Dense references: softmax (exp) or polynomial (P_g) weights, bottom-right causal mask.
RowMatrix<double> dense_reference(const RowMatrix<double>& Q, const RowMatrix<double>& K, const RowMatrix<double>& V,
                                  double c, bool causal, int degree /* -1 = softmax */) {
  const Index nq = Q.rows(), nk = K.rows(), off = nk - nq;
  RowMatrix<double> S = c * Q * K.transpose();
  RowMatrix<double> out = RowMatrix<double>::Zero(nq, V.cols());
  for (Index i = 0; i < nq; ++i) {
    const Index end = causal ? i + off + 1 : nk;
    const double mx = S.row(i).head(end).maxCoeff();
    double den = 0.0;
    for (Index j = 0; j < end; ++j) {
      const double w = degree < 0 ? std::exp(S(i, j) - mx) : test::taylor_poly(S(i, j), degree);
      den += w;
      out.row(i) += w * V.row(j);
    }
    out.row(i) /= den;
  }
  return out;
}

double max_abs_diff(const RowMatrix<double>& a, const RowMatrix<double>& b) { return (a - b).cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("exact_attention equals the dense softmax, causal and cross", "[poly]") {
  for (auto [nq, nk] : {std::pair<Index, Index>{70, 70}, {30, 600}, {600, 90}}) {
    const RowMatrix<double> Q = test::normal_matrix(nq, 8, 1), K = test::normal_matrix(nk, 8, 2),
                            V = test::normal_matrix(nk, 3, 3);
    for (bool causal : {false, true}) {
      if (causal && nq > nk) {
        REQUIRE_THROWS_AS(exact_attention(Q, K, V, std::nullopt, causal), std::invalid_argument);
        continue;
      }
      const double c = 1.0 / std::sqrt(8.0);
      REQUIRE(max_abs_diff(exact_attention(Q, K, V, std::nullopt, causal), dense_reference(Q, K, V, c, causal, -1)) <
              1e-12);
    }
  }
  // scores of +-1000
  RowMatrix<double> Q = test::normal_matrix(50, 4, 4), K = test::normal_matrix(300, 4, 5);
  Q.rowwise().normalize();
  K.rowwise().normalize();
  const RowMatrix<double> V = test::normal_matrix(300, 2, 6);
  const RowMatrix<double> out = exact_attention(Q, K, V, 1000.0, true);
  REQUIRE(out.allFinite());
  REQUIRE(max_abs_diff(out, dense_reference(Q, K, V, 1000.0, true, -1)) < 1e-12);
}

TEST_CASE("poly_attention: chunked causal equals the non-chunked computation", "[poly]") {
  const Index chunk = 32;
  for (Index n : {Index{5}, chunk, chunk + 1, 3 * chunk + 7}) {
    const RowMatrix<double> Q = test::normal_matrix(n, 6, 10, 0.4), K = test::normal_matrix(n, 6, 11, 0.4),
                            V = test::normal_matrix(n, 2, 12);
    const double c = 1.0 / std::sqrt(6.0);
    for (int g : {1, 2, 4}) {
      for (bool causal : {false, true}) {
        const RowMatrix<double> out = poly_attention(Q, K, V, g, std::nullopt, causal, chunk);
        REQUIRE(max_abs_diff(out, dense_reference(Q, K, V, c, causal, g)) < 1e-11);
      }
    }
  }
}

TEST_CASE("poly_attention error is within the returned bound", "[poly]") {
  const RowMatrix<double> Q = test::normal_matrix(200, 8, 20, 0.25), K = test::normal_matrix(200, 8, 21, 0.25),
                          V = test::normal_matrix(200, 3, 22);
  for (int g : {2, 4, 6}) {
    const PolyStats st = poly_attention_stats(Q, K, V, g);
    REQUIRE(st.eps < 1.0);
    for (bool causal : {false, true}) {
      const double err = max_abs_diff(poly_attention(Q, K, V, g, std::nullopt, causal, 64),
                                      exact_attention(Q, K, V, std::nullopt, causal));
      REQUIRE(err <= st.bound);
    }
  }
}

TEST_CASE("PolyPrefixState: absorb in pieces, merge, apply", "[poly]") {
  const RowMatrix<double> K = test::normal_matrix(120, 5, 30, 0.5), V = test::normal_matrix(120, 2, 31),
                          Q = test::normal_matrix(10, 5, 32, 0.5);
  PolyPrefixState whole(5, 2, 4, 0.4), a(5, 2, 4, 0.4), b(5, 2, 4, 0.4);
  whole.absorb(K, V);
  a.absorb(K.topRows(50), V.topRows(50));
  b.absorb(K.bottomRows(70), V.bottomRows(70));
  a.merge(b);
  REQUIRE(a.tokens() == 120);
  REQUIRE(max_abs_diff(a.apply(Q), whole.apply(Q)) < 1e-12);
  REQUIRE(max_abs_diff(whole.apply(Q), poly_attention(Q, K, V, 4, 0.4)) < 1e-12);
  // a rejected absorb changes nothing
  RowMatrix<double> Kbad = K;
  Kbad(7, 1) = std::nan("");
  const RowMatrix<double> M = whole.numerator_state();
  REQUIRE_THROWS_AS(whole.absorb(Kbad, V), std::invalid_argument);
  REQUIRE_THROWS_AS(whole.absorb(K, V.topRows(5)), std::invalid_argument);
  REQUIRE(whole.tokens() == 120);
  REQUIRE(max_abs_diff(whole.numerator_state(), M) == 0.0);
  REQUIRE_THROWS_AS(a.merge(PolyPrefixState(5, 2, 2, 0.4)), std::invalid_argument);
  PolyPrefixState empty(5, 2, 4, 0.4);
  REQUIRE_THROWS_AS(empty.apply(Q), std::invalid_argument);
}

TEST_CASE("chunk 0 is chosen by the feature count, the same for every causal path", "[poly]") {
  CHECK(chunk_for_features(45) == 32);
  CHECK(chunk_for_features(255) == 32);
  CHECK(chunk_for_features(256) == 64);
  CHECK(chunk_for_features(2145) == 64);
  CHECK(resolve_chunk(0, 153) == 32);
  CHECK(resolve_chunk(7, 2145) == 7);  // an explicit chunk is kept
  CHECK_THROWS_AS(resolve_chunk(-1, 153), std::invalid_argument);
  CHECK_THROWS_AS(resolve_chunk(kMaxChunk + 1, 153), std::invalid_argument);
  // t = 153 (d = 16) and t = 561 (d = 32): the stream, a segment and poly_attention agree.
  for (Index d : {16, 32}) {
    const CausalStream s(d, d, 2, std::nullopt);
    const Index want = chunk_for_features(s.dim());
    CHECK(s.chunk() == want);
    CHECK(CausalSegment(d, d, 2, std::nullopt, 0).chunk() == want);
    const RowMatrix<double> X = test::normal_matrix(150, d, 3) * 0.2;
    CHECK(poly_attention(X, X, X, 2, std::nullopt, true) == poly_attention(X, X, X, 2, std::nullopt, true, want));
  }
}

TEST_CASE("bad arguments are clear errors", "[poly]") {
  const RowMatrix<double> Q = test::normal_matrix(4, 3, 40), K = test::normal_matrix(5, 3, 41),
                          V = test::normal_matrix(5, 2, 42);
  REQUIRE_THROWS_AS(poly_attention(Q, K, V, 9), std::invalid_argument);
  REQUIRE_THROWS_AS(poly_attention(Q, K, V, -1), std::invalid_argument);
  REQUIRE_THROWS_AS(poly_attention(Q, K, V, 2, 0.0), std::invalid_argument);
  REQUIRE_THROWS_AS(poly_attention(Q, K.leftCols(2), V, 2), std::invalid_argument);
  REQUIRE_THROWS_AS(exact_attention(Q, K, V.topRows(4)), std::invalid_argument);
  REQUIRE_THROWS_WITH(TaylorFeatures(128, 4, 1.0), Catch::Contains("12082785") && Catch::Contains("bytes"));
  RowMatrix<double> Qn = Q;
  Qn(2, 0) = INFINITY;
  REQUIRE_THROWS_WITH(exact_attention(Qn, K, V), Catch::Contains("row 2"));
  // odd degree, negative normalizer
  const RowMatrix<double> Qp = RowMatrix<double>::Constant(3, 2, 2.0), Kn = RowMatrix<double>::Constant(4, 2, -2.0);
  const RowMatrix<double> V1 = RowMatrix<double>::Ones(4, 1);
  REQUIRE_THROWS_WITH(poly_attention(Qp, Kn, V1, 1), Catch::Contains("odd degree"));
}
