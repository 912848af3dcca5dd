// OnlineSoftmax: streamed exact softmax of probe queries equals the direct formula.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cmath>
#include <random>

#include "streamattn/attention/online_softmax.hpp"

using namespace streamattn;

namespace {
RowMatrix<double> direct(const RowMatrix<double>& Q, const RowMatrix<double>& K, const RowMatrix<double>& V,
                         const std::vector<std::int64_t>& lim, double c) {
  RowMatrix<double> out(Q.rows(), V.cols());
  for (Index i = 0; i < Q.rows(); ++i) {
    const Index n = lim[static_cast<std::size_t>(i)] < 0 ? K.rows() : lim[static_cast<std::size_t>(i)] + 1;
    Eigen::VectorXd s = c * (K.topRows(n) * Q.row(i).transpose());
    const double m = s.maxCoeff();
    Eigen::VectorXd w = (s.array() - m).exp();
    out.row(i) = (w.transpose() * V.topRows(n)) / w.sum();
  }
  return out;
}
}  // namespace

TEST_CASE("OnlineSoftmax equals direct softmax for any block split and large scores", "[probe]") {
  std::mt19937_64 g(7);
  const Index n = 300, d = 8, dv = 5;
  for (double mag : {1.0, 30.0}) {  // mag 30: scores of several hundred
    const RowMatrix<double> K = test::normal_matrix(n, d, g, mag), V = test::normal_matrix(n, dv, g);
    const RowMatrix<double> Q = test::normal_matrix(4, d, g, mag);
    const std::vector<std::int64_t> lim = {-1, 0, 149, 299};
    OnlineSoftmax os(Q, lim, 0.5, dv);
    for (Index start = 0; start < n;) {
      const Index b = std::min<Index>(n - start, 1 + (start * 7) % 61);
      const MatrixRef<double> Kb(K.middleRows(start, b)), Vb(V.middleRows(start, b));
      os.absorb(static_cast<std::uint64_t>(start), Kb, Vb);
      start += b;
    }
    const RowMatrix<double> want = direct(Q, K, V, lim, 0.5);
    const RowMatrix<double> got = os.result();
    REQUIRE(got.allFinite());
    CHECK((got - want).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + want.cwiseAbs().maxCoeff()));
    CHECK(os.keys_seen()[1] == 1);
    CHECK(os.keys_seen()[2] == 150);
  }
}

TEST_CASE("OnlineSoftmax survives serialization", "[probe]") {
  std::mt19937_64 g(3);
  const RowMatrix<double> K = test::normal_matrix(50, 4, g), V = test::normal_matrix(50, 3, g),
                          Q = test::normal_matrix(2, 4, g);
  OnlineSoftmax os(Q, {}, 0.25, 3);
  os.absorb(0, MatrixRef<double>(K), MatrixRef<double>(V));
  ByteWriter w(ObjectKind::kv_stream);
  os.write_payload(w);
  const auto bytes = w.finish();
  ByteReader r(bytes.data(), bytes.size(), ObjectKind::kv_stream);
  const OnlineSoftmax back = OnlineSoftmax::read_payload(r);
  r.finish();
  CHECK(back.result() == os.result());
}
