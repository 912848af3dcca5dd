// gemm.hpp: every shape and stride against a long-double reference; the same bits on every ISA
// path; the products of the causal stream unchanged in bits across paths.
#include <catch2/catch.hpp>

#include "../helpers.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "streamattn/kernels/gemm.hpp"
#include "streamattn/kernels/isa.hpp"
#include "streamattn/stream/causal_stream.hpp"

using streamattn::gemm;
using streamattn::Index;
using streamattn::Isa;
using streamattn::MatrixRef;
using streamattn::RowMatrix;
using streamattn::Trans;

namespace {

// C = A' B' in long double, and the sum of |a||b| per entry for the error bound.
void reference(const RowMatrix<double>& A, const RowMatrix<double>& B, RowMatrix<double>& C, RowMatrix<double>& mag) {
  C.resize(A.rows(), B.cols());
  mag.resize(A.rows(), B.cols());
  for (Index i = 0; i < A.rows(); ++i)
    for (Index j = 0; j < B.cols(); ++j) {
      long double s = 0, m = 0;
      for (Index p = 0; p < A.cols(); ++p) {
        s += static_cast<long double>(A(i, p)) * B(p, j);
        m += std::fabs(static_cast<long double>(A(i, p)) * B(p, j));
      }
      C(i, j) = static_cast<double>(s);
      mag(i, j) = static_cast<double>(m);
    }
}

// gemm of A (m x k) and B (k x n) given as views with the requested transposes and strides:
// transposed operands are stored transposed; strided ones are every other column of a wider one.
RowMatrix<double> run(const RowMatrix<double>& A, const RowMatrix<double>& B, Trans ta, Trans tb, bool strided,
                      bool accumulate, const RowMatrix<double>& C0) {
  RowMatrix<double> As = ta == Trans::yes ? RowMatrix<double>(A.transpose()) : A;
  RowMatrix<double> Bs = tb == Trans::yes ? RowMatrix<double>(B.transpose()) : B;
  RowMatrix<double> Aw(As.rows(), 2 * As.cols()), Bw(Bs.rows(), 2 * Bs.cols());
  Aw.setConstant(std::numeric_limits<double>::quiet_NaN());
  Bw.setConstant(std::numeric_limits<double>::quiet_NaN());
  for (Index j = 0; j < As.cols(); ++j) Aw.col(2 * j) = As.col(j);
  for (Index j = 0; j < Bs.cols(); ++j) Bw.col(2 * j) = Bs.col(j);
  using S = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  const MatrixRef<double> av = strided ? MatrixRef<double>(Eigen::Map<const RowMatrix<double>, 0, S>(
                                             Aw.data(), As.rows(), As.cols(), S(Aw.cols(), 2)))
                                       : MatrixRef<double>(As);
  const MatrixRef<double> bv = strided ? MatrixRef<double>(Eigen::Map<const RowMatrix<double>, 0, S>(
                                             Bw.data(), Bs.rows(), Bs.cols(), S(Bw.cols(), 2)))
                                       : MatrixRef<double>(Bs);
  // C is a block of a wider matrix (row stride > columns), the columns beside it must not change.
  RowMatrix<double> wide = RowMatrix<double>::Constant(C0.rows(), C0.cols() + 3, 7.0);
  wide.leftCols(C0.cols()) = C0;
  gemm(av, ta, bv, tb, wide.leftCols(C0.cols()), accumulate);
  REQUIRE((wide.rightCols(3).array() == 7.0).all());
  return wide.leftCols(C0.cols());
}

}  // namespace

TEST_CASE("gemm equals a long-double reference for every shape, transpose and stride", "[gemm]") {
  std::mt19937_64 rng(11);
  const Index sizes[] = {1, 2, 5, 6, 7, 8, 9, 17, 64, 121, 130};
  const Index ks[] = {1, 3, 16, 255, 256, 257, 600};
  int cases = 0;
  for (Index m : sizes)
    for (Index n : sizes)
      for (Index k : ks) {
        if ((m * n * k) % 5 != 0 && m * n * k > 20000) continue;  // a spread of shapes, not all of them
        const RowMatrix<double> A = streamattn::test::normal_matrix(m, k, rng),
                                B = streamattn::test::normal_matrix(k, n, rng);
        RowMatrix<double> C, mag;
        reference(A, B, C, mag);
        const RowMatrix<double> C0 = streamattn::test::normal_matrix(m, n, rng);
        for (int variant = 0; variant < 8; ++variant) {
          const Trans ta = variant & 1 ? Trans::yes : Trans::no, tb = variant & 2 ? Trans::yes : Trans::no;
          const bool strided = variant & 4;
          const bool accumulate = (variant + cases) % 2 == 0;
          const RowMatrix<double> got = run(A, B, ta, tb, strided, accumulate, C0);
          const RowMatrix<double> want = accumulate ? RowMatrix<double>(C + C0) : C;
          // Each entry: k fused products and ceil(k / 256) block sums, relative error <= ~(k+2) u.
          const double u = std::numeric_limits<double>::epsilon();
          const RowMatrix<double> bound = (static_cast<double>(k + 2) * u) * (mag.array() + C0.array().abs()).matrix();
          INFO("m=" << m << " n=" << n << " k=" << k << " variant=" << variant);
          REQUIRE(((got - want).array().abs() <= bound.array()).all());
        }
        ++cases;
      }
  REQUIRE(cases > 200);
}

TEST_CASE("gemm: k = 0, empty results, overwrite ignores what C held, shape errors", "[gemm]") {
  RowMatrix<double> A(3, 0), B(0, 4);
  RowMatrix<double> C = RowMatrix<double>::Constant(3, 4, std::numeric_limits<double>::quiet_NaN());
  gemm(A, Trans::no, B, Trans::no, C, false);
  REQUIRE((C.array() == 0.0).all());
  C.setConstant(2.0);
  gemm(A, Trans::no, B, Trans::no, C, true);
  REQUIRE((C.array() == 2.0).all());

  std::mt19937_64 rng(3);
  const RowMatrix<double> X = streamattn::test::normal_matrix(10, 300, rng),
                          Y = streamattn::test::normal_matrix(300, 9, rng);
  RowMatrix<double> D = RowMatrix<double>::Constant(10, 9, std::numeric_limits<double>::infinity());
  gemm(X, Trans::no, Y, Trans::no, D, false);  // k > KC: the first block overwrites, later ones add
  REQUIRE(D.allFinite());
  REQUIRE((D - X * Y).cwiseAbs().maxCoeff() < 1e-10);

  RowMatrix<double> E(10, 8);
  REQUIRE_THROWS_AS(gemm(X, Trans::no, Y, Trans::no, E, false), std::invalid_argument);
  REQUIRE_THROWS_AS(gemm(X, Trans::yes, Y, Trans::no, D, false), std::invalid_argument);
}

TEST_CASE("gemm gives the same bits on every ISA path", "[gemm][isa]") {
  std::mt19937_64 rng(5);
  const RowMatrix<double> A = streamattn::test::normal_matrix(131, 517, rng),
                          B = streamattn::test::normal_matrix(517, 67, rng);
  const RowMatrix<double> C0 = streamattn::test::normal_matrix(131, 67, rng);
  std::vector<RowMatrix<double>> results;
  for (Isa isa : streamattn::available_isas()) {
    streamattn::set_isa(isa);
    INFO("isa " << streamattn::isa_name(isa) << ", kernel " << streamattn::gemm_kernel_name());
    RowMatrix<double> C = C0;
    gemm(A, Trans::no, B, Trans::no, C, true);
    gemm(A.topRows(67), Trans::no, A.topRows(67), Trans::yes, C.leftCols(67).topRows(67), true);
    results.push_back(C);
    REQUIRE(std::memcmp(C.data(), results.front().data(), sizeof(double) * static_cast<std::size_t>(C.size())) == 0);
  }
  streamattn::reset_isa_from_environment();
}

TEST_CASE("the causal stream's rows have the same bits on every ISA path", "[gemm][isa][stream]") {
  std::mt19937_64 rng(9);
  const Index n = 300, d = 8, dv = 5;
  const RowMatrix<double> Q = 0.5 * streamattn::test::normal_matrix(n, d, rng),
                          K = 0.5 * streamattn::test::normal_matrix(n, d, rng),
                          V = streamattn::test::normal_matrix(n, dv, rng);
  std::vector<RowMatrix<double>> outs;
  for (Isa isa : streamattn::available_isas()) {
    streamattn::set_isa(isa);
    streamattn::CausalStream s(d, dv, 2, 1.0 / std::sqrt(double(d)));
    RowMatrix<double> out;
    s.update(Q, K, V, &out);
    outs.push_back(out);
    INFO("isa " << streamattn::isa_name(isa));
    REQUIRE(std::memcmp(out.data(), outs.front().data(), sizeof(double) * static_cast<std::size_t>(out.size())) == 0);
  }
  streamattn::reset_isa_from_environment();
  REQUIRE(outs.size() >= 1);
}

TEST_CASE("float32 gemm and gemm_acc64: within float32 rounding, the same bits on every ISA path", "[gemm][isa]") {
  std::mt19937_64 rng(11);
  const RowMatrix<double> A64 = streamattn::test::normal_matrix(131, 517, rng),
                          B64 = streamattn::test::normal_matrix(517, 67, rng);
  const RowMatrix<float> A = A64.cast<float>(), B = B64.cast<float>();
  RowMatrix<double> ref, mag;
  reference(A.cast<double>(), B.cast<double>(), ref, mag);
  const RowMatrix<double> C0 = streamattn::test::normal_matrix(131, 67, rng);
  std::vector<RowMatrix<float>> f32;
  std::vector<RowMatrix<double>> acc;
  for (Isa isa : streamattn::available_isas()) {
    streamattn::set_isa(isa);
    INFO("isa " << streamattn::isa_name(isa) << ", kernel " << streamattn::gemm_f32_kernel_name());
    RowMatrix<float> C(131, 67);
    gemm(A, Trans::no, B, Trans::no, C, false);
    // Each entry: chains of fused multiply-adds in float32 (KC = 256 terms, then added).
    const double u = std::ldexp(1.0, -24);
    REQUIRE(((C.cast<double>() - ref).array().abs() <= 520 * u * mag.array()).all());
    RowMatrix<float> Ct(67, 131);  // (A B)^T = B^T A^T: transposed operands, read in place
    gemm(B, Trans::yes, A, Trans::yes, Ct, false);
    REQUIRE(((Ct.transpose().cast<double>() - ref).array().abs() <= 520 * u * mag.array()).all());
    f32.push_back(C);
    REQUIRE(std::memcmp(C.data(), f32.front().data(), sizeof(float) * static_cast<std::size_t>(C.size())) == 0);
    // gemm_acc64: C64 += the float32 product (in float64), C32 = float(C64), both in the epilogue.
    RowMatrix<double> C64 = C0;
    RowMatrix<float> C32 = RowMatrix<float>::Constant(131, 67, -1.0f);
    streamattn::gemm_acc64(A, Trans::no, B, Trans::no, C64, C32);
    REQUIRE(((C64 - C0 - ref).array().abs() <= 520 * u * mag.array() + 1e-15).all());
    REQUIRE((C32.array() == C64.cast<float>().array()).all());
    acc.push_back(C64);
    REQUIRE(std::memcmp(C64.data(), acc.front().data(), sizeof(double) * static_cast<std::size_t>(C64.size())) == 0);
  }
  streamattn::reset_isa_from_environment();
}

TEST_CASE("the float32 compute path's rows have the same bits on every ISA path", "[gemm][isa][stream]") {
  std::mt19937_64 rng(12);
  const Index n = 300, d = 8, dv = 5;
  const RowMatrix<float> Q = (0.5 * streamattn::test::normal_matrix(n, d, rng)).cast<float>(),
                         K = (0.5 * streamattn::test::normal_matrix(n, d, rng)).cast<float>(),
                         V = streamattn::test::normal_matrix(n, dv, rng).cast<float>();
  std::vector<RowMatrix<double>> outs;
  RowMatrix<double> f64;
  streamattn::CausalStream ref(d, dv, 2, 1.0 / std::sqrt(double(d)), 32, 0, streamattn::FeatureKernel::taylor, {},
                               streamattn::ComputeDtype::float64);
  ref.update(Q, K, V, &f64);
  for (Isa isa : streamattn::available_isas()) {
    streamattn::set_isa(isa);
    streamattn::CausalStream s(d, dv, 2, 1.0 / std::sqrt(double(d)));
    REQUIRE(s.compute() == streamattn::ComputeDtype::input);
    RowMatrix<double> out;
    s.update(Q, K, V, &out);  // float32 inputs: the float32 path
    outs.push_back(out);
    INFO("isa " << streamattn::isa_name(isa));
    REQUIRE(std::memcmp(out.data(), outs.front().data(), sizeof(double) * static_cast<std::size_t>(out.size())) == 0);
    REQUIRE((out - f64).cwiseAbs().maxCoeff() <= 64 * std::ldexp(1.0, -24) * f64.cwiseAbs().maxCoeff());
    REQUIRE((out - f64).cwiseAbs().maxCoeff() > 0.0);
  }
  streamattn::reset_isa_from_environment();
}
