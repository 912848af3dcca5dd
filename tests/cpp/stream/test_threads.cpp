// Threads inside one stream: the split products (kernels/gemm.hpp) and CausalStream(threads=)
// give the same bits for every thread count, float64 and float32 compute paths.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <array>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "streamattn/attention/causal_chunk.hpp"
#include "streamattn/core/thread_pool.hpp"
#include "streamattn/features/taylor_features.hpp"
#include "streamattn/kernels/gemm.hpp"
#include "streamattn/stream/causal_stream.hpp"
#include "streamattn/stream/kv_stream.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

using namespace streamattn;

namespace {
bool same_bits(const RowMatrix<double>& a, const RowMatrix<double>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * static_cast<std::size_t>(a.size())) == 0;
}
bool same_bits(const RowMatrix<float>& a, const RowMatrix<float>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}
}  // namespace

TEST_CASE("gemm split over a pool: the same bits for 1, 2, 3 and 7 threads", "[gemm][threads]") {
  std::mt19937_64 g(5);
  // Row splits (C taller than wide) and column splits, odd sizes, both transposes of A.
  const std::vector<std::array<Index, 3>> shapes = {{700, 65, 300}, {33, 129, 700}, {1000, 17, 97}, {40, 600, 513}};
  for (const auto& [m, n, k] : shapes) {
    const RowMatrix<double> A = test::normal_matrix(m, k, g), At = A.transpose(), B = test::normal_matrix(k, n, g);
    const RowMatrix<double> C0 = test::normal_matrix(m, n, g);
    const RowMatrix<float> Af = A.cast<float>(), Bf = B.cast<float>();
    RowMatrix<double> want, want64;
    RowMatrix<float> wantf, want32;
    for (int threads : {1, 2, 3, 7}) {
      ThreadPool pool(threads);
      RowMatrix<double> c = C0, ct = C0;
      gemm(MatrixRef<double>(A), Trans::no, MatrixRef<double>(B), Trans::no, c, true, &pool);
      gemm(MatrixRef<double>(At), Trans::yes, MatrixRef<double>(B), Trans::no, ct, true, &pool);
      RowMatrix<float> cf(m, n);
      gemm(MatrixRef<float>(Af), Trans::no, MatrixRef<float>(Bf), Trans::no, cf, false, &pool);
      RowMatrix<double> c64 = C0;
      RowMatrix<float> c32(m, n);
      gemm_acc64(MatrixRef<float>(Af), Trans::no, MatrixRef<float>(Bf), Trans::no, c64, c32, &pool);
      REQUIRE(same_bits(c, ct));
      if (threads == 1) {
        RowMatrix<double> serial = C0;
        gemm(MatrixRef<double>(A), Trans::no, MatrixRef<double>(B), Trans::no, serial, true);
        REQUIRE(same_bits(c, serial));
        want = c;
        wantf = cf;
        want64 = c64;
        want32 = c32;
      } else {
        REQUIRE(same_bits(c, want));
        REQUIRE(same_bits(cf, wantf));
        REQUIRE(same_bits(c64, want64));
        REQUIRE(same_bits(c32, want32));
      }
    }
  }
}

TEST_CASE("CausalStream(threads=1, 2, 3, 7): bit-identical rows and state, float64 and float32 compute",
          "[stream][threads]") {
  // t = 153 features, dv = 96, chunk 64: the chunk products are above kGemmSplitWork. d = 12,
  // dv = 768: t dv = 69 888, the inter-chunk part in feature blocks (3 threads: parts of 1, 1 and
  // 2 blocks; 7 threads: one block each).
  const auto shape = GENERATE(std::make_pair(Index{16}, Index{96}), std::make_pair(Index{12}, Index{768}));
  const Index d = shape.first, dv = shape.second;
  INFO("d " << d << " dv " << dv << " feature blocks " << feature_blocks(feature_dim(d, 2, FeatureKernel::taylor), dv));
  const Index n = 700;
  std::mt19937_64 g(17);
  const RowMatrix<double> Q = test::normal_matrix(n, d, g, 0.3), K = test::normal_matrix(n, d, g, 0.3),
                          V = test::normal_matrix(n, dv, g);
  const RowMatrix<float> Qf = Q.cast<float>(), Kf = K.cast<float>(), Vf = V.cast<float>();
  const Eigen::VectorXd gate = Eigen::VectorXd::Constant(n, -1e-3);
  for (ComputeDtype compute : {ComputeDtype::float64, ComputeDtype::float32}) {
    RowMatrix<double> want_rows, want_gated, want_M;
    for (int threads : {1, 2, 3, 7}) {
      CausalStream cs(d, dv, 2, std::nullopt, 64, 0, FeatureKernel::taylor, {}, compute, threads);
      REQUIRE(cs.threads() == threads);
      RowMatrix<double> rows(n, dv), out;
      for (Index a = 0; a < n; a += 250) {
        const Index r = std::min<Index>(250, n - a);
        cs.update(MatrixRef<float>(Qf.middleRows(a, r)), MatrixRef<float>(Kf.middleRows(a, r)),
                  MatrixRef<float>(Vf.middleRows(a, r)), &out);
        rows.middleRows(a, r) = out;
      }
      cs.prefill(MatrixRef<float>(Kf), MatrixRef<float>(Vf));
      CausalStream gated(d, dv, 2, std::nullopt, 64, 0, FeatureKernel::taylor, {}, compute, threads);
      RowMatrix<double> grows;
      gated.update(MatrixRef<double>(Q), MatrixRef<double>(K), MatrixRef<double>(V), VectorRef<double>(gate), &grows);
      if (threads == 1) {
        want_rows = rows;
        want_gated = grows;
        want_M = cs.state().numerator_state();
      } else {
        REQUIRE(same_bits(rows, want_rows));
        REQUIRE(same_bits(grows, want_gated));
        REQUIRE(same_bits(cs.state().numerator_state(), want_M));
      }
    }
  }
}

TEST_CASE("CausalStream threads: validation, set_threads, not serialized", "[stream][threads]") {
  REQUIRE_THROWS_WITH(CausalStream(4, 4, 2, std::nullopt, 32, 0, FeatureKernel::taylor, {}, ComputeDtype::input, -1),
                      "threads must be in [0, 1024] (0 = hardware concurrency), got -1");
  REQUIRE_THROWS_AS(CausalStream(4, 4, 2, std::nullopt, 32, 0, FeatureKernel::taylor, {}, ComputeDtype::input, 1025),
                    std::invalid_argument);
  CausalStream cs(4, 4, 2, std::nullopt);
  REQUIRE(cs.threads() == CausalStream::default_threads);
  cs.set_threads(3);
  REQUIRE(cs.threads() == 3);
  cs.set_threads(0);
  REQUIRE(cs.threads() >= 1);
  cs.set_threads(2);
  const auto bytes = cs.to_bytes();
  REQUIRE(CausalStream::from_bytes(bytes.data(), bytes.size()).threads() == CausalStream::default_threads);
  CausalStream copy = cs;  // copies share the pool; both keep working
  const RowMatrix<double> X = RowMatrix<double>::Constant(3, 4, 0.1);
  copy.update(MatrixRef<double>(X), MatrixRef<double>(X), MatrixRef<double>(X));
  cs.update(MatrixRef<double>(X), MatrixRef<double>(X), MatrixRef<double>(X));
  REQUIRE(copy.tokens_seen() == 3);
}

TEST_CASE("KVStream(threads=1, 2, 3): bit-identical state and answers; validation, not serialized",
          "[stream][threads]") {
  // t = 153 features, dv = 96: featurizing and both products of a 1000-row block are split.
  const Index n = 2500, d = 16, dv = 96;
  std::mt19937_64 g(23);
  const RowMatrix<double> Q = test::normal_matrix(600, d, g, 0.3), K = test::normal_matrix(n, d, g, 0.3),
                          V = test::normal_matrix(n, dv, g);
  const RowMatrix<float> Qf = Q.cast<float>(), Kf = K.cast<float>(), Vf = V.cast<float>();
  RowMatrix<double> want_M, want_q, want_qf;
  Eigen::VectorXd want_s;
  for (int threads : {1, 2, 3}) {
    KVStream kv(d, dv, 2, std::nullopt, StateKind::exact, {}, 0, 0, FeatureKernel::taylor, threads);
    REQUIRE(kv.threads() == threads);
    kv.add(MatrixRef<double>(K.topRows(1000)), MatrixRef<double>(V.topRows(1000)));
    kv.add(MatrixRef<float>(Kf.bottomRows(n - 1000)), MatrixRef<float>(Vf.bottomRows(n - 1000)));
    const RowMatrix<double> q = kv.query(MatrixRef<double>(Q)), qf = kv.query(MatrixRef<float>(Qf));
    if (threads == 1) {
      want_M = kv.numerator_state();
      want_s = kv.normalizer_state();
      want_q = q;
      want_qf = qf;
    } else {
      REQUIRE(same_bits(kv.numerator_state(), want_M));
      REQUIRE(std::memcmp(kv.normalizer_state().data(), want_s.data(), sizeof(double) * want_s.size()) == 0);
      REQUIRE(same_bits(q, want_q));
      REQUIRE(same_bits(qf, want_qf));
    }
  }
  REQUIRE_THROWS_WITH(KVStream(4, 4, 2, std::nullopt, StateKind::exact, {}, 0, 0, FeatureKernel::taylor, -1),
                      "threads must be in [0, 1024] (0 = hardware concurrency), got -1");
  KVStream kv(4, 4, 2, std::nullopt);
  REQUIRE(kv.threads() == 1);
  kv.set_threads(2);
  REQUIRE(kv.threads() == 2);
  REQUIRE(kv.repr().find("threads=2") != std::string::npos);
  const RowMatrix<double> X = RowMatrix<double>::Constant(3, 4, 0.1);
  kv.add(MatrixRef<double>(X), MatrixRef<double>(X));
  const auto bytes = kv.to_bytes();
  REQUIRE(KVStream::from_bytes(bytes.data(), bytes.size()).threads() == 1);
}

TEST_CASE("KVStream::certificate from several threads at once: every call gives the one-thread answer",
          "[stream][threads]") {
  // const methods may run concurrently: certificate() evaluates the probes with its own scratch
  // and only reads the stream (exact and sketched states; before and after a query).
  const Index n = 3000, d = 8, dv = 6;
  std::mt19937_64 g(31);
  const RowMatrix<double> P = test::normal_matrix(40, d, g, 0.3), K = test::normal_matrix(n, d, g, 0.3),
                          V = test::normal_matrix(n, dv, g);
  for (StateKind kind : {StateKind::exact, StateKind::sketched}) {
    for (bool queried : {false, true}) {
      KVStream kv(d, dv, 2, std::nullopt, kind, {}, 0, 0, FeatureKernel::taylor, 2);
      kv.set_probes(MatrixRef<double>(P));
      kv.add(MatrixRef<double>(K), MatrixRef<double>(V));
      if (queried) kv.query(MatrixRef<double>(P.topRows(3)));
      const RowMatrix<double> want = kv.certificate().approx;
      std::vector<RowMatrix<double>> got(4);
      std::vector<std::thread> pool;
      for (std::size_t i = 0; i < got.size(); ++i)
        pool.emplace_back([&, i] {
          for (int rep = 0; rep < 20; ++rep) got[i] = kv.certificate().approx;
        });
      for (auto& th : pool) th.join();
      for (const auto& a : got) REQUIRE(same_bits(a, want));
    }
  }
}
