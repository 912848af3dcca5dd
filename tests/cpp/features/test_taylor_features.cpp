// The feature maps (features/taylor_features.hpp): phi(q).phi(k) = P_g(c q.k), the dimension
// t = C(d+g, g), strided outputs, and the Taylor error / degree choice. Deterministic data
// (fixed seeds); tolerances stated at each check.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "../helpers.hpp"
#include "streamattn/features/taylor_features.hpp"

using namespace streamattn;

namespace {
double max_abs_diff(const RowMatrix<double>& a, const RowMatrix<double>& b) { return (a - b).cwiseAbs().maxCoeff(); }
}  // namespace

TEST_CASE("phi(q).phi(k) = P_g(c q.k) and dim = C(d+g, g)", "[poly]") {
  for (Index d : {1, 2, 5, 9}) {
    for (int g = 0; g <= 6; ++g) {
      const double c = 1.0 / std::sqrt(static_cast<double>(d));
      const TaylorFeatures tf(d, g, c);
      REQUIRE(tf.dim() == taylor_dim(d, g));
      const RowMatrix<double> X = test::normal_matrix(6, d, 100 + static_cast<std::uint64_t>(d * 10 + g));
      const RowMatrix<double> F = tf.transform(X);
      const RowMatrix<double> G = F * F.transpose();
      for (Index i = 0; i < 6; ++i) {
        for (Index j = 0; j < 6; ++j) {
          const double x = c * X.row(i).dot(X.row(j));
          // 1e-12 relative to P_g(|x|), the size of the summed terms.
          REQUIRE(std::abs(G(i, j) - test::taylor_poly(x, g)) <= 1e-12 * test::taylor_poly(std::abs(x), g));
        }
      }
    }
  }
  REQUIRE(taylor_dim(32, 2) == 561);
  REQUIRE(taylor_dim(128, 4) == 12082785);
}

TEST_CASE("transform_into writes into a caller buffer with a leading dimension", "[poly]") {
  const TaylorFeatures tf(4, 3, 0.5);
  const RowMatrix<double> X = test::normal_matrix(5, 4, 7);
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
