// C++ mirror of tests/test_poly.py: the polynomial method's identities, usable without Python.
// Deterministic data (fixed-seed std::mt19937_64); tolerances stated at each check.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <stdexcept>

#include "streamattn/exact_attention.hpp"
#include "streamattn/poly_attention.hpp"
#include "streamattn/taylor_features.hpp"

using namespace streamattn;

namespace {

RowMatrix<double> normal(Index rows, Index cols, std::uint64_t seed, double sd = 1.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, sd);
  RowMatrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = dist(gen);
  return m;
}

double taylor_poly(double x, int g) {
  double term = 1.0, sum = 1.0;
  for (int p = 1; p <= g; ++p) {
    term *= x / p;
    sum += term;
  }
  return sum;
}

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
      const double w = degree < 0 ? std::exp(S(i, j) - mx) : taylor_poly(S(i, j), degree);
      den += w;
      out.row(i) += w * V.row(j);
    }
    out.row(i) /= den;
  }
  return out;
}

double max_abs_diff(const RowMatrix<double>& a, const RowMatrix<double>& b) { return (a - b).cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("phi(q).phi(k) = P_g(c q.k) and dim = C(d+g, g)", "[poly]") {
  for (Index d : {1, 2, 5, 9}) {
    for (int g = 0; g <= 6; ++g) {
      const double c = 1.0 / std::sqrt(static_cast<double>(d));
      const TaylorFeatures tf(d, g, c);
      REQUIRE(tf.dim() == taylor_dim(d, g));
      const RowMatrix<double> X = normal(6, d, 100 + static_cast<std::uint64_t>(d * 10 + g));
      const RowMatrix<double> F = tf.transform(X);
      const RowMatrix<double> G = F * F.transpose();
      for (Index i = 0; i < 6; ++i) {
        for (Index j = 0; j < 6; ++j) {
          const double x = c * X.row(i).dot(X.row(j));
          // 1e-12 relative to P_g(|x|), the size of the summed terms.
          REQUIRE(std::abs(G(i, j) - taylor_poly(x, g)) <= 1e-12 * taylor_poly(std::abs(x), g));
        }
      }
    }
  }
  REQUIRE(taylor_dim(32, 2) == 561);
  REQUIRE(taylor_dim(128, 4) == 12082785);
}

TEST_CASE("transform_into writes into a caller buffer with a leading dimension", "[poly]") {
  const TaylorFeatures tf(4, 3, 0.5);
  const RowMatrix<double> X = normal(5, 4, 7);
  const Index ld = tf.dim() + 3;
  std::vector<double> buf(static_cast<std::size_t>(5 * ld), -1.0);
  tf.transform_into(X, buf.data(), ld);
  const RowMatrix<double> F = tf.transform(X);
  for (Index i = 0; i < 5; ++i) {
    for (Index f = 0; f < tf.dim(); ++f) REQUIRE(buf[static_cast<std::size_t>(i * ld + f)] == F(i, f));
    REQUIRE(buf[static_cast<std::size_t>(i * ld + tf.dim())] == -1.0);  // padding untouched
  }
  // float input is widened, not computed in float
  const RowMatrix<float> Xf = X.cast<float>();
  REQUIRE(max_abs_diff(tf.transform(Xf), tf.transform(RowMatrix<double>(Xf.cast<double>()))) == 0.0);
}

TEST_CASE("taylor_error and choose_degree", "[poly]") {
  REQUIRE(taylor_error(0.5, 2) == Approx(std::exp(0.5) * 0.125 / 6).epsilon(1e-14));
  REQUIRE(choose_degree(1e-3, 0.5) == 4);
  REQUIRE(choose_degree(10.0, 0.0) == 0);
  REQUIRE_THROWS_AS(choose_degree(1e-6, 3.0), std::invalid_argument);
  REQUIRE_THROWS_AS(taylor_error(-1.0, 2), std::invalid_argument);
  REQUIRE_THROWS_AS(taylor_error(1.0, 9), std::invalid_argument);
}

TEST_CASE("exact_attention equals the dense softmax, causal and cross", "[poly]") {
  for (auto [nq, nk] : {std::pair<Index, Index>{70, 70}, {30, 600}, {600, 90}}) {
    const RowMatrix<double> Q = normal(nq, 8, 1), K = normal(nk, 8, 2), V = normal(nk, 3, 3);
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
  RowMatrix<double> Q = normal(50, 4, 4), K = normal(300, 4, 5);
  Q.rowwise().normalize();
  K.rowwise().normalize();
  const RowMatrix<double> V = normal(300, 2, 6);
  const RowMatrix<double> out = exact_attention(Q, K, V, 1000.0, true);
  REQUIRE(out.allFinite());
  REQUIRE(max_abs_diff(out, dense_reference(Q, K, V, 1000.0, true, -1)) < 1e-12);
}

TEST_CASE("poly_attention: chunked causal equals the non-chunked computation", "[poly]") {
  const Index chunk = 32;
  for (Index n : {Index{5}, chunk, chunk + 1, 3 * chunk + 7}) {
    const RowMatrix<double> Q = normal(n, 6, 10, 0.4), K = normal(n, 6, 11, 0.4), V = normal(n, 2, 12);
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
  const RowMatrix<double> Q = normal(200, 8, 20, 0.25), K = normal(200, 8, 21, 0.25), V = normal(200, 3, 22);
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
  const RowMatrix<double> K = normal(120, 5, 30, 0.5), V = normal(120, 2, 31), Q = normal(10, 5, 32, 0.5);
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

TEST_CASE("bad arguments are clear errors", "[poly]") {
  const RowMatrix<double> Q = normal(4, 3, 40), K = normal(5, 3, 41), V = normal(5, 2, 42);
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
