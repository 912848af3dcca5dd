// C++ mirror of tests/test_stream.py: streams through the C++ API alone.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cmath>
#include <random>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/features/taylor_features.hpp"
#include "streamattn/stream/causal_stream.hpp"
#include "streamattn/stream/kv_stream.hpp"
#include "streamattn/stream/plan.hpp"

using namespace streamattn;

namespace {
// The O(n^2) reference: row j = sum_{l<=j} P_2(c q_j.k_l) v_l / sum_{l<=j} P_2(c q_j.k_l).
RowMatrix<double> direct_causal(const RowMatrix<double>& Q, const RowMatrix<double>& K, const RowMatrix<double>& V,
                                double c) {
  RowMatrix<double> want(Q.rows(), V.cols());
  for (Index j = 0; j < Q.rows(); ++j) {
    Eigen::RowVectorXd num = Eigen::RowVectorXd::Zero(V.cols());
    double den = 0;
    for (Index l = 0; l <= j; ++l) {
      const double w = test::taylor_poly(c * Q.row(j).dot(K.row(l)), 2);
      num += w * V.row(l);
      den += w;
    }
    want.row(j) = num / den;
  }
  return want;
}
}  // namespace

TEST_CASE("CausalStream equals the direct O(n^2) formula for any block split", "[stream]") {
  std::mt19937_64 g(11);
  const Index n = 300, d = 5, dv = 3;
  const RowMatrix<double> Q = test::normal_matrix(n, d, g, 0.4), K = test::normal_matrix(n, d, g, 0.4),
                          V = test::normal_matrix(n, dv, g, 1.0);
  const double c = 1.0 / std::sqrt(5.0);
  const RowMatrix<double> want = direct_causal(Q, K, V, c);
  for (Index block : {Index{1}, Index{7}, Index{64}, Index{300}}) {
    CausalStream cs(d, dv, 2, c, 32);
    RowMatrix<double> got(n, dv), out;
    for (Index a = 0; a < n; a += block) {
      const Index r = std::min(block, n - a);
      cs.update(MatrixRef<double>(Q.middleRows(a, r)), MatrixRef<double>(K.middleRows(a, r)),
                MatrixRef<double>(V.middleRows(a, r)), &out);
      got.middleRows(a, r) = out;
    }
    CHECK((got - want).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK(cs.tokens_seen() == static_cast<std::uint64_t>(n));
  }
}

TEST_CASE("CausalStream with the inter-chunk part in feature blocks equals the direct formula", "[stream]") {
  // d = 12, degree 2: t = 91 features; dv = 768 makes t dv = 69 888 >= kBlockedStateEntries, so
  // chunks of 64 rows take the feature-block path; float64 and float32 compute, 1 and 3 threads.
  std::mt19937_64 g(23);
  const Index n = 200, d = 12, dv = 768;
  REQUIRE(feature_blocks(feature_dim(d, 2, FeatureKernel::taylor), dv) == kFeatureBlocks);
  const RowMatrix<double> Q = test::normal_matrix(n, d, g, 0.4), K = test::normal_matrix(n, d, g, 0.4),
                          V = test::normal_matrix(n, dv, g, 1.0);
  const double c = 1.0 / std::sqrt(static_cast<double>(d));
  const RowMatrix<double> want = direct_causal(Q, K, V, c);
  for (ComputeDtype compute : {ComputeDtype::float64, ComputeDtype::float32}) {
    for (int threads : {1, 3}) {
      CausalStream cs(d, dv, 2, c, 64, 0, FeatureKernel::taylor, {}, compute, threads);
      RowMatrix<double> got(n, dv), out;
      for (Index a = 0; a < n; a += 90) {  // blocks of 90 rows: chunks of 64 and 26
        const Index r = std::min<Index>(90, n - a);
        cs.update(MatrixRef<double>(Q.middleRows(a, r)), MatrixRef<double>(K.middleRows(a, r)),
                  MatrixRef<double>(V.middleRows(a, r)), &out);
        got.middleRows(a, r) = out;
      }
      INFO("compute " << (compute == ComputeDtype::float32 ? "float32" : "float64") << " threads " << threads);
      // float32: scores, features and values rounded to float32 (relative 6e-8 each), sums of
      // up to 200 terms; float64: rounding only.
      CHECK((got - want).cwiseAbs().maxCoeff() <= (compute == ComputeDtype::float32 ? 1e-5 : 1e-12));
    }
  }
}

TEST_CASE("CausalStream with feature blocks: a rejected update leaves the stream as it was", "[stream]") {
  // Power kernel, d = 12, degree 2: t = 78 features; dv = 1024 puts t dv >= kBlockedStateEntries
  // (the feature-block hand-offs). A zero query at row 150 of the second call (its third chunk,
  // after two chunks absorbed) makes a normalizer 0 with eps = 0: the call is refused, and the
  // stream is as before it, then goes on as one that never saw the bad call.
  std::mt19937_64 g(41);
  const Index d = 12, dv = 1024, n1 = 100, n2 = 200;
  const RowMatrix<double> Q = test::normal_matrix(n1 + n2, d, g, 0.4), K = test::normal_matrix(n1 + n2, d, g, 0.4),
                          V = test::normal_matrix(n1 + n2, dv, g, 1.0);
  RowMatrix<double> bad = Q.bottomRows(n2);
  bad.row(150).setZero();
  for (int threads : {1, 3}) {
    CausalStream a(d, dv, 2, std::nullopt, 64, 0, FeatureKernel::power, {}, ComputeDtype::input, threads);
    CausalStream b = a;
    REQUIRE(feature_blocks(a.state().dim(), dv) > 1);
    RowMatrix<double> out_a, out_b;
    for (CausalStream* s : {&a, &b})
      s->update(MatrixRef<double>(Q.topRows(n1)), MatrixRef<double>(K.topRows(n1)), MatrixRef<double>(V.topRows(n1)));
    const auto before = a.to_bytes();
    CHECK_THROWS_AS(a.update(MatrixRef<double>(bad), MatrixRef<double>(K.bottomRows(n2)),
                             MatrixRef<double>(V.bottomRows(n2)), &out_a),
                    std::invalid_argument);
    CHECK(a.to_bytes() == before);
    CHECK(a.tokens_seen() == static_cast<std::uint64_t>(n1));
    for (CausalStream* s : {&a, &b})
      s->update(MatrixRef<double>(Q.bottomRows(n2)), MatrixRef<double>(K.bottomRows(n2)),
                MatrixRef<double>(V.bottomRows(n2)), s == &a ? &out_a : &out_b);
    INFO("threads " << threads);
    CHECK(out_a == out_b);
    CHECK(a.to_bytes() == b.to_bytes());
  }
}

TEST_CASE("CausalStream::update_into writes float32 rows: the float64 rows rounded once", "[stream]") {
  std::mt19937_64 g(31);
  const Index n = 150, d = 6, dv = 5;
  const RowMatrix<float> Q = test::normal_matrix(n, d, g, 0.4).cast<float>(),
                         K = test::normal_matrix(n, d, g, 0.4).cast<float>(),
                         V = test::normal_matrix(n, dv, g, 1.0).cast<float>();
  Eigen::VectorXd gate = -0.05 * Eigen::VectorXd::Ones(n);
  for (bool gated : {false, true}) {
    CausalStream a(d, dv, 2, std::nullopt, 32), b(d, dv, 2, std::nullopt, 32);
    RowMatrix<double> want;
    const VectorRef<double> gv(gate);
    if (gated)
      a.update(MatrixRef<float>(Q), MatrixRef<float>(K), MatrixRef<float>(V), gv, &want);
    else
      a.update(MatrixRef<float>(Q), MatrixRef<float>(K), MatrixRef<float>(V), &want);
    // Into a strided float32 view (every other row of a larger array): 64 rows (two chunks, so the
    // chunks and bits are those of one call), then the rest.
    RowMatrix<float> big = RowMatrix<float>::Constant(2 * n, dv, -7.0f);
    Eigen::Map<RowMatrix<float>, 0, Eigen::OuterStride<>> rows(big.data(), n, dv, Eigen::OuterStride<>(2 * dv));
    for (Index s0 : {Index{0}, Index{64}}) {
      const Index r = s0 == 0 ? 64 : n - 64;
      const VectorRef<double> gs(gate.segment(s0, r));
      b.update_into(MatrixRef<float>(Q.middleRows(s0, r)), MatrixRef<float>(K.middleRows(s0, r)),
                    MatrixRef<float>(V.middleRows(s0, r)), gated ? &gs : nullptr, rows.middleRows(s0, r));
    }
    INFO("gated " << gated);
    CHECK(RowMatrix<float>(rows) == want.cast<float>());
    for (Index i = 0; i < n; ++i) CHECK(big.row(2 * i + 1).isConstant(-7.0f));  // rows between untouched
    CHECK(b.to_bytes() == a.to_bytes());
    // A view of the wrong shape is refused before the stream changes.
    RowMatrix<float> small(n - 1, dv);
    const auto before = b.to_bytes();
    CHECK_THROWS_AS(b.update_into(MatrixRef<float>(Q), MatrixRef<float>(K), MatrixRef<float>(V), nullptr, small),
                    std::invalid_argument);
    CHECK(b.to_bytes() == before);
  }
}

TEST_CASE("CausalStream checkpoint resumes bit for bit and rejects corrupted bytes", "[stream]") {
  std::mt19937_64 g(5);
  const Index n = 200, d = 3, dv = 2;
  const RowMatrix<double> Q = test::normal_matrix(n, d, g, 0.5), K = test::normal_matrix(n, d, g, 0.5),
                          V = test::normal_matrix(n, dv, g, 1.0);
  CausalStream a(d, dv, 2, 0.5, 16), b(d, dv, 2, 0.5, 16);
  a.update(MatrixRef<double>(Q.topRows(80)), MatrixRef<double>(K.topRows(80)), MatrixRef<double>(V.topRows(80)));
  b.update(MatrixRef<double>(Q.topRows(80)), MatrixRef<double>(K.topRows(80)), MatrixRef<double>(V.topRows(80)));
  auto bytes = b.to_bytes();
  CausalStream c = CausalStream::from_bytes(bytes.data(), bytes.size());
  RowMatrix<double> oa, oc;
  a.update(MatrixRef<double>(Q.bottomRows(120)), MatrixRef<double>(K.bottomRows(120)),
           MatrixRef<double>(V.bottomRows(120)), &oa);
  c.update(MatrixRef<double>(Q.bottomRows(120)), MatrixRef<double>(K.bottomRows(120)),
           MatrixRef<double>(V.bottomRows(120)), &oc);
  CHECK(oa == oc);
  bytes[bytes.size() / 2] ^= 0x10;
  CHECK_THROWS_AS(CausalStream::from_bytes(bytes.data(), bytes.size()), std::invalid_argument);
  CHECK_THROWS_AS(CausalStream::from_bytes(bytes.data(), 10), std::invalid_argument);
}

TEST_CASE("KVStream shards merge and a rejected add leaves the state unchanged", "[stream]") {
  std::mt19937_64 g(9);
  const Index d = 4, dv = 3;
  const RowMatrix<double> K = test::normal_matrix(100, d, g, 0.5), V = test::normal_matrix(100, dv, g, 1.0),
                          Q = test::normal_matrix(5, d, g, 0.5);
  KVStream whole(d, dv, 2, 0.5), a(d, dv, 2, 0.5), b(d, dv, 2, 0.5);
  whole.add(MatrixRef<double>(K), MatrixRef<double>(V));
  a.add(MatrixRef<double>(K.topRows(40)), MatrixRef<double>(V.topRows(40)));
  b.add(MatrixRef<double>(K.bottomRows(60)), MatrixRef<double>(V.bottomRows(60)));
  a.merge(b);
  CHECK((a.query(MatrixRef<double>(Q)) - whole.query(MatrixRef<double>(Q))).cwiseAbs().maxCoeff() <= 1e-13);
  const auto before = whole.to_bytes();
  RowMatrix<double> bad = K.topRows(2);
  bad(1, 1) = std::nan("");
  CHECK_THROWS_AS(whole.add(MatrixRef<double>(bad), MatrixRef<double>(V.topRows(2))), std::invalid_argument);
  CHECK_THROWS_AS(whole.add(MatrixRef<double>(K.topRows(2)), MatrixRef<double>(V.topRows(3))), std::invalid_argument);
  CHECK(whole.to_bytes() == before);
}

TEST_CASE("plan flags vacuous bounds", "[plan]") {
  PlanRequest r;
  r.n = 1000;
  r.d = 8;
  r.beta = 2.0;
  r.degree = 2;
  const StreamPlan p = plan(r);
  CHECK(p.vacuous);
  CHECK(p.suggested_degree.value() == 6);
  CHECK(std::isinf(*p.attention_bound));
  r.beta = 0.25;
  CHECK_FALSE(plan(r).vacuous);
}
