// C++ mirror of tests/test_models.py: power kernel, gating, decode steps (without allocation),
// multi-head streams with grouped KV. Fixed-seed std::mt19937_64 data; tolerances at each check.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>

#include "streamattn/features/taylor_features.hpp"
#include "streamattn/stream/causal_stream.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

// Counts heap allocations of this test binary, to prove that a decode step allocates nothing.
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// Every other form too: with only some of them replaced, memory from the library's nothrow/array
// new would reach this free()-based delete (AddressSanitizer: alloc-dealloc-mismatch).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace streamattn;

namespace {

// Row i = sum_{j<=i} w_ij v_j / sum_{j<=i} w_ij, w_ij = (c q_i.k_j)^p exp(sum_{j<l<=i} gate_l).
RowMatrix<double> power_reference(const RowMatrix<double>& Q, const RowMatrix<double>& K, const RowMatrix<double>& V,
                                  double c, int p, const Eigen::VectorXd& gate) {
  const Index n = Q.rows();
  RowMatrix<double> out = RowMatrix<double>::Zero(n, V.cols());
  for (Index i = 0; i < n; ++i) {
    double den = 0.0, decay = 0.0;
    for (Index j = i; j >= 0; --j) {
      if (j < i) decay += gate[j + 1];
      const double w = std::pow(c * Q.row(i).dot(K.row(j)), p) * std::exp(decay);
      den += w;
      out.row(i) += w * V.row(j);
    }
    out.row(i) /= den;
  }
  return out;
}

}  // namespace

TEST_CASE("power features: phi(q).phi(k) = (c q.k)^p, t = C(d+p-1, p); odd p > 1 refused", "[models]") {
  for (int p : {1, 2, 4, 6}) {
    const Index d = 4;
    TaylorFeatures tf(d, p, 0.8, 0, FeatureKernel::power);
    REQUIRE(tf.dim() == feature_dim(d, p, FeatureKernel::power));
    REQUIRE(tf.dim() == (p == 1 ? 4 : p == 2 ? 10 : p == 4 ? 35 : 84));
    const RowMatrix<double> X = test::normal_matrix(7, d, 1), Y = test::normal_matrix(9, d, 2);
    const RowMatrix<double> G = tf.transform(X) * tf.transform(Y).transpose();
    RowMatrix<double> S = 0.8 * X * Y.transpose();
    kernel_inplace(S, p, FeatureKernel::power);
    REQUIRE((G - S).cwiseAbs().maxCoeff() <= 1e-12 * S.cwiseAbs().maxCoeff());
  }
  REQUIRE_THROWS_WITH(TaylorFeatures(4, 3, 1.0, 0, FeatureKernel::power), Catch::Contains("even degree"));
  REQUIRE_THROWS_WITH(parse_feature_kernel("softmax"), Catch::Contains("kernel must be"));
}

TEST_CASE("gated power attention: update, blocks and step equal the O(n^2) formula", "[models]") {
  const Index n = 200, d = 5, dv = 3;
  const double c = 1.0 / std::sqrt(5.0);
  const RowMatrix<double> Q = test::normal_matrix(n, d, 3), K = test::normal_matrix(n, d, 4),
                          V = test::normal_matrix(n, dv, 5);
  Eigen::VectorXd gate = -test::normal_matrix(n, 1, 6, 0.05).cwiseAbs();
  for (int p : {2, 4}) {
    const RowMatrix<double> ref = power_reference(Q, K, V, c, p, gate);
    CausalStream one(d, dv, p, c, 32, 0, FeatureKernel::power);
    RowMatrix<double> out;
    one.update(Q, K, V, VectorRef<double>(gate), &out);
    REQUIRE(test::max_rel_diff(out, ref) < 1e-10);

    CausalStream st(d, dv, p, c, 32, 0, FeatureKernel::power);
    RowMatrix<double> steps(n, dv);
    Eigen::VectorXd o(dv);
    for (Index i = 0; i < n; ++i) {
      st.step(VectorRef<double>(Q.row(i).transpose()), VectorRef<double>(K.row(i).transpose()),
              VectorRef<double>(V.row(i).transpose()), o, gate[i]);
      steps.row(i) = o.transpose();
    }
    REQUIRE(test::max_rel_diff(steps, ref) < 1e-10);
  }
}

TEST_CASE("a decode step allocates nothing after the first", "[models]") {
  const Index d = 16, dv = 64;
  CausalStream cs(d, dv, 2, 0.25, 256, 0, FeatureKernel::taylor, Normalizer{1e-6, true});
  CausalStream pw(d, dv, 2, 0.25, 256, 0, FeatureKernel::power);
  const RowMatrix<float> X = test::normal_matrix(40, d, 7).cast<float>();
  const RowMatrix<float> Vs = test::normal_matrix(40, dv, 8).cast<float>();
  Eigen::VectorXd o(dv);
  const Eigen::VectorXf q = X.row(0).transpose(), k = X.row(1).transpose(), v = Vs.row(0).transpose();
  for (CausalStream* s : {&cs, &pw}) {
    s->step(VectorRef<float>(q), VectorRef<float>(k), VectorRef<float>(v), o, -0.01);  // sizes the workspace
    const long before = g_allocations.load();
    for (int i = 0; i < 20; ++i) s->step(VectorRef<float>(q), VectorRef<float>(k), VectorRef<float>(v), o, -0.01);
    REQUIRE(g_allocations.load() == before);
  }
}

TEST_CASE("a refused update or step leaves the stream's bytes unchanged", "[models]") {
  CausalStream cs(3, 2, 2, 0.5, 8, 0, FeatureKernel::power);
  const RowMatrix<double> K = test::normal_matrix(10, 3, 9), V = test::normal_matrix(10, 2, 10);
  cs.update(K, K, V);
  const auto before = cs.to_bytes();
  Eigen::VectorXd gate = Eigen::VectorXd::Zero(10);
  gate[4] = 0.25;
  REQUIRE_THROWS_WITH(cs.update(K, K, V, VectorRef<double>(gate)), Catch::Contains("log_gate[4]"));
  gate[4] = std::nan("");
  REQUIRE_THROWS_WITH(cs.prefill(K, V, VectorRef<double>(gate)), Catch::Contains("log_gate[4]"));
  REQUIRE_THROWS_WITH(cs.update(K, K, V, VectorRef<double>(gate.head(9))), Catch::Contains("one entry per row"));
  Eigen::VectorXd o(2);
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(3), k = K.row(0).transpose(), v = V.row(0).transpose();
  REQUIRE_THROWS_WITH(cs.step(VectorRef<double>(zero), VectorRef<double>(k), VectorRef<double>(v), o),
                      Catch::Contains("eps > 0"));
  REQUIRE(cs.to_bytes() == before);
  REQUIRE_THROWS_WITH(CausalStream(3, 2, 2, 0.5, 8, 0, FeatureKernel::taylor, Normalizer{-1.0, true}),
                      Catch::Contains("eps must be"));
}

TEST_CASE("serialized streams record the kernel and the normalizer options", "[models]") {
  CausalStream cs(4, 3, 4, 0.5, 16, 0, FeatureKernel::power, Normalizer{1e-3, true});
  const RowMatrix<double> X = test::normal_matrix(30, 4, 11), V = test::normal_matrix(30, 3, 12);
  cs.update(X, X, V);
  auto bytes = cs.to_bytes();
  const CausalStream back = CausalStream::from_bytes(bytes.data(), bytes.size());
  REQUIRE(back.kernel() == FeatureKernel::power);
  REQUIRE(back.normalizer().eps == 1e-3);
  REQUIRE(back.to_bytes() == bytes);
  // The kernel byte follows chunk, tokens, d, dv, degree (16 + 5 * 8 bytes in). An invalid
  // kernel is refused even with a correct checksum.
  bytes[16 + 40] = 7;
  bytes.resize(bytes.size() - 8);
  const std::uint64_t sum = checksum64(bytes.data(), bytes.size());
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(sum >> (8 * i)));
  REQUIRE_THROWS_WITH(CausalStream::from_bytes(bytes.data(), bytes.size()), Catch::Contains("kernel"));
}

TEST_CASE("set_state: a stream continued from another's state equals the one stream", "[models]") {
  const Index d = 3, dv = 2, n = 40, cut = 23;
  const RowMatrix<double> Q = test::normal_matrix(n, d, 31), K = test::normal_matrix(n, d, 32),
                          V = test::normal_matrix(n, dv, 33);
  MultiHeadCausalStream whole(2, 1, d, dv, 2, std::nullopt), first(2, 1, d, dv, 2, std::nullopt),
      second(2, 1, d, dv, 2, std::nullopt);
  using Refs = std::vector<MatrixRef<double>>;
  const auto run = [](MultiHeadCausalStream& s, const RowMatrix<double>& q, const RowMatrix<double>& k,
                      const RowMatrix<double>& v, Index a, Index b) {
    const Refs qs{MatrixRef<double>(q.middleRows(a, b - a)), MatrixRef<double>(q.middleRows(a, b - a))};
    const Refs ks{MatrixRef<double>(k.middleRows(a, b - a))}, vs{MatrixRef<double>(v.middleRows(a, b - a))};
    RowMatrix<double> out;
    s.update(qs, ks, vs, nullptr, &out);
    return out;
  };
  const RowMatrix<double> all = run(whole, Q, K, V, 0, n);
  run(first, Q, K, V, 0, cut);
  Refs M;
  std::vector<VectorRef<double>> s;
  for (Index h = 0; h < 2; ++h) {
    M.emplace_back(first.head(h).state().numerator_state());
    s.emplace_back(first.head(h).state().normalizer_state());
  }
  const RowMatrix<double> wrong = RowMatrix<double>::Zero(first.dim() + 1, dv);
  const Refs bad{MatrixRef<double>(wrong), MatrixRef<double>(wrong)};
  REQUIRE_THROWS_WITH(second.set_state(bad, s), Catch::Contains("state M must be"));
  REQUIRE(second.tokens_seen() == 0);
  second.set_state(M, s, static_cast<std::uint64_t>(cut));
  REQUIRE(second.tokens_seen() == static_cast<std::uint64_t>(cut));
  const RowMatrix<double> b = run(second, Q, K, V, cut, n);
  for (Index h = 0; h < 2; ++h) {
    const RowMatrix<double> got = b.middleRows(h * (n - cut), n - cut), want = all.middleRows(h * n + cut, n - cut);
    REQUIRE(test::max_rel_diff(got, want) <= 1e-12);
  }
}

TEST_CASE("update_heads_into writes each head's rows into strided float32/float64 views", "[models]") {
  const Index d = 3, dv = 2, n = 29, H = 4;
  std::vector<RowMatrix<double>> q, k, v;
  for (Index h = 0; h < H; ++h) {
    q.push_back(test::normal_matrix(n, d, 40 + static_cast<std::uint64_t>(h)));
    k.push_back(test::normal_matrix(n, d, 50 + static_cast<std::uint64_t>(h)));
    v.push_back(test::normal_matrix(n, dv, 60 + static_cast<std::uint64_t>(h)));
  }
  std::vector<MatrixRef<double>> Q, K, V;
  for (Index h = 0; h < H; ++h) Q.emplace_back(q[h]), K.emplace_back(k[h]), V.emplace_back(v[h]);
  MultiHeadCausalStream a(H, H, d, dv, 2, std::nullopt), b(H, H, d, dv, 2, std::nullopt),
      c(H, H, d, dv, 2, std::nullopt);
  RowMatrix<double> rows;
  a.update(Q, K, V, nullptr, &rows);
  // (tokens, heads, dv) layout: head h's row j at j * H * dv + h * dv
  std::vector<float> f(static_cast<std::size_t>(n * H * dv));
  std::vector<double> g(static_cast<std::size_t>(n * H * dv));
  std::vector<HeadRows<float>> fv;
  std::vector<HeadRows<double>> gv;
  const Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic> stride(H * dv, 1);
  for (Index h = 0; h < H; ++h) {
    fv.emplace_back(f.data() + h * dv, n, dv, stride);
    gv.emplace_back(g.data() + h * dv, n, dv, stride);
  }
  b.update_heads_into(Q, K, V, nullptr, fv);
  c.update_heads_into(Q, K, V, nullptr, gv);
  for (Index h = 0; h < H; ++h)
    for (Index j = 0; j < n; ++j)
      for (Index col = 0; col < dv; ++col) {
        const double want = rows(h * n + j, col);
        REQUIRE(g[static_cast<std::size_t>(j * H * dv + h * dv + col)] == want);
        REQUIRE(f[static_cast<std::size_t>(j * H * dv + h * dv + col)] == static_cast<float>(want));
      }
  std::vector<HeadRows<float>> short_views(fv.begin(), fv.end() - 1);
  REQUIRE_THROWS_WITH(b.update_heads_into(Q, K, V, nullptr, short_views), Catch::Contains("one view per query head"));
}

TEST_CASE("multi-head with grouped KV equals per-head streams bit for bit", "[models]") {
  const Index H = 4, G = 2, n = 70, d = 3, dv = 2;
  std::vector<RowMatrix<double>> Qs, Ks, Vs;
  for (Index h = 0; h < H; ++h) Qs.push_back(test::normal_matrix(n, d, 20 + static_cast<std::uint64_t>(h)));
  for (Index g = 0; g < G; ++g) {
    Ks.push_back(test::normal_matrix(n, d, 30 + static_cast<std::uint64_t>(g)));
    Vs.push_back(test::normal_matrix(n, dv, 40 + static_cast<std::uint64_t>(g)));
  }
  const RowMatrix<double> gate = -test::normal_matrix(H, n, 50, 0.1).cwiseAbs();
  std::vector<MatrixRef<double>> q, k, v;
  for (auto& m : Qs) q.emplace_back(m);
  for (auto& m : Ks) k.emplace_back(m);
  for (auto& m : Vs) v.emplace_back(m);
  MultiHeadCausalStream mh(H, G, d, dv, 2, 0.5, 16, 0, FeatureKernel::taylor, Normalizer{1e-6, true}, 2);
  RowMatrix<double> out;
  const MatrixRef<double> gref(gate);
  mh.update(q, k, v, &gref, &out);
  for (Index h = 0; h < H; ++h) {
    CausalStream s(d, dv, 2, 0.5, 16, 0, FeatureKernel::taylor, Normalizer{1e-6, true});
    RowMatrix<double> o;
    s.update(Qs[static_cast<std::size_t>(h)], Ks[static_cast<std::size_t>(h / 2)], Vs[static_cast<std::size_t>(h / 2)],
             VectorRef<double>(gate.row(h).transpose()), &o);
    REQUIRE(out.middleRows(h * n, n) == o);
    REQUIRE(mh.head(h).to_bytes() == s.to_bytes());
  }
  REQUIRE_THROWS_WITH(MultiHeadCausalStream(6, 4, d, dv, 2, 0.5), Catch::Contains("multiple of kv_heads"));
}
