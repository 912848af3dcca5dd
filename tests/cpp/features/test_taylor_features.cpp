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

TEST_CASE("transform_cols_into gives transform_into's columns, bit for bit", "[poly]") {
  // Every kernel and degree (power: even degrees and 1), column blocks that start and end inside
  // and at the edges of each degree's block, float and double rows; the rest of the buffer stays
  // untouched.
  for (FeatureKernel kernel : {FeatureKernel::taylor, FeatureKernel::power}) {
    for (int g : {0, 1, 2, 3, 4}) {
      if (kernel == FeatureKernel::power && g % 2 == 1 && g != 1) continue;
      for (Index d : {1, 3, 7}) {
        const TaylorFeatures tf(d, g, 0.7, 0, kernel);
        const Index t = tf.dim();
        const RowMatrix<double> X = test::normal_matrix(4, d, 300 + static_cast<std::uint64_t>(10 * d + g));
        const RowMatrix<float> Xf = X.cast<float>();
        const RowMatrix<double> F = tf.transform(X), Ff = tf.transform(Xf);
        std::vector<std::pair<Index, Index>> blocks = {{0, t}, {0, 1}, {t - 1, 1}, {t / 2, t - t / 2}, {t / 3, t / 3}};
        for (Index c0 = 0; c0 < t; c0 += std::max<Index>(1, t / 7)) blocks.emplace_back(c0, std::min<Index>(5, t - c0));
        for (auto [c0, n] : blocks) {
          if (n <= 0) continue;
          INFO("kernel " << static_cast<int>(kernel) << " g " << g << " d " << d << " columns " << c0 << " + " << n);
          const Index ld = n + 2;
          std::vector<double> buf(static_cast<std::size_t>(4 * ld), -7.0), buf_f(buf);
          tf.transform_cols_into(X, c0, n, buf.data(), ld);
          tf.transform_cols_into(Xf, c0, n, buf_f.data(), ld);
          bool same = true, untouched = true;
          for (Index i = 0; i < 4; ++i) {
            for (Index j = 0; j < n; ++j) {
              const auto at = static_cast<std::size_t>(i * ld + j);
              same = same && buf[at] == F(i, c0 + j) && buf_f[at] == Ff(i, c0 + j);
            }
            for (Index j = n; j < ld; ++j) untouched = untouched && buf[static_cast<std::size_t>(i * ld + j)] == -7.0;
          }
          CHECK(same);
          CHECK(untouched);
        }
      }
    }
  }
}

TEST_CASE("column_blocks: contiguous blocks covering every column, of about equal cost", "[poly]") {
  for (FeatureKernel kernel : {FeatureKernel::taylor, FeatureKernel::power}) {
    for (int g : {1, 2, 4}) {
      for (Index d : {3, 16, 64}) {
        if (d == 64 && g == 4) continue;
        const TaylorFeatures tf(d, g, std::nullopt, 0, kernel);
        const Index t = tf.dim();
        // The top-degree runs' first columns, from the layout itself: a feature starts a run when
        // its smallest variable differs from the previous column's, or it is the first of degree g.
        std::vector<Index> starts;
        for (Index c = 0; c < t; ++c) {
          const auto e = tf.exponents(c);
          int deg = 0, low = -1;
          for (Index i = 0; i < d; ++i) {
            deg += e[static_cast<std::size_t>(i)];
            if (low < 0 && e[static_cast<std::size_t>(i)] > 0) low = static_cast<int>(i);
          }
          if (deg != g) continue;
          bool start = c == 0;
          if (!start) {
            const auto p = tf.exponents(c - 1);
            int pdeg = 0, plow = -1;
            for (Index i = 0; i < d; ++i) {
              pdeg += p[static_cast<std::size_t>(i)];
              if (plow < 0 && p[static_cast<std::size_t>(i)] > 0) plow = static_cast<int>(i);
            }
            start = pdeg != g || plow != low;
          }
          if (start) starts.push_back(c);
        }
        const double run = TaylorFeatures::kRunCost;
        const double total = static_cast<double>(t) + run * static_cast<double>(starts.size());
        for (Index blocks : {Index{1}, Index{2}, Index{4}, Index{7}}) {
          INFO("kernel " << static_cast<int>(kernel) << " g " << g << " d " << d << " blocks " << blocks);
          const auto at = tf.column_blocks(blocks);
          REQUIRE(at.size() == static_cast<std::size_t>(blocks) + 1);
          CHECK(at.front() == 0);
          CHECK(at.back() == t);
          for (Index b = 0; b < blocks; ++b) {
            const Index c0 = at[static_cast<std::size_t>(b)], c1 = at[static_cast<std::size_t>(b) + 1];
            CHECK(c0 <= c1);
            double cost = static_cast<double>(c1 - c0);
            for (Index s : starts) cost += (s >= c0 && s < c1) ? run : 0.0;
            // Each block within one column and one run of its share (the split is by columns).
            if (t >= 4 * blocks) CHECK(std::abs(cost - total / static_cast<double>(blocks)) <= run + 1.0);
          }
        }
      }
    }
  }
  const TaylorFeatures tf(4, 2, std::nullopt);
  CHECK_THROWS_AS(tf.column_blocks(0), std::invalid_argument);
}

TEST_CASE("taylor_error and choose_degree", "[poly]") {
  REQUIRE(taylor_error(0.5, 2) == Approx(std::exp(0.5) * 0.125 / 6).epsilon(1e-14));
  REQUIRE(choose_degree(1e-3, 0.5) == 4);
  REQUIRE(choose_degree(10.0, 0.0) == 0);
  REQUIRE_THROWS_AS(choose_degree(1e-6, 3.0), std::invalid_argument);
  REQUIRE_THROWS_AS(taylor_error(-1.0, 2), std::invalid_argument);
  REQUIRE_THROWS_AS(taylor_error(1.0, 9), std::invalid_argument);
}
