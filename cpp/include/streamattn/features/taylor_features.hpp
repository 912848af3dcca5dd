// streamattn/features/taylor_features.hpp — the polynomial method's feature map (docs/design.md §2.1;
// Alman & Song, "Fast Attention Requires Bounded Entries", NeurIPS 2023).
//
// For x in R^d, scale c > 0 and degree g, the features are, over all multi-indices |alpha| <= g,
//
//     phi(x)_alpha = c^{|alpha|/2} x^alpha / sqrt(alpha!)
//
// so that phi(q) . phi(k) = sum_{p<=g} (c q.k)^p / p! = P_g(c q.k), the degree-g Taylor
// polynomial of exp (multinomial theorem: (q.k)^p = sum_{|alpha|=p} p!/alpha! q^alpha k^alpha).
// The dimension t = C(d+g, g) is the number of monomials of degree <= g in d variables.
//
// Truncation error (Lagrange remainder): for |x| <= beta,
//     |e^x - P_g(x)| <= e^x * eps(beta, g),   eps(beta, g) = e^beta beta^{g+1} / (g+1)!
// (for x < 0 the remainder is at most |x|^{g+1}/(g+1)! and e^x >= e^-beta). If every entry of
// exp(c Q K^T) is approximated within relative eps < 1, the normalized attention output is
// within 2 eps/(1 - eps) * ||V||_max entrywise. Even g keep P_g > 0 on all of R, so the
// normalizer of the approximate attention never vanishes; odd g can make it <= 0.
//
// Monomial order (the column order of transform()): by degree, 0 first. Within degree p the
// monomials x_{i1} x_{i2} ... x_{ip} with i1 <= i2 <= ... <= ip are in lexicographic order of
// (i1, ..., ip) — for d = 2, g = 2: 1, x0, x1, x0x0, x0x1, x1x1. Each degree-p feature is one
// degree-(p-1) feature times one coordinate times a precomputed weight: the monomial
// x_{i1} * (x_{i2}...x_{ip}) has weight sqrt(c / m) where m is the multiplicity of i1 in it
// (alpha! grows by the factor m). Built by multiplication only — no pow, no factorials at
// run time — so one row costs t multiplications.
//
// Kernels (FeatureKernel): `taylor` is the map above. `power` is symmetric power attention
// (Buckman et al.): the kernel (c q.k)^p for an even degree p, whose features are the degree-p
// block alone, times sqrt(p!):
//
//     phi(x)_alpha = sqrt(p! / alpha!) c^{p/2} x^alpha,  |alpha| = p   =>   phi(q).phi(k) = (c q.k)^p
//
// (the square-root multinomial weights), t = C(d+p-1, p): for d = 16, p = 2, 136 features where
// the full outer product x (x) x has 256. Odd p > 1 are refused: (c q.k)^p changes sign, so the
// normalizer sum_j (c q.k_j)^p could vanish. p = 1 is linear attention, phi(x) = sqrt(c) x, t = d:
// the kernel of models whose feature map is applied before the stream (phi(q), phi(k) given as
// q and k); its normalizer can vanish too, and is checked like an odd Taylor degree's. The lower degrees are still
// built (they are the parents of the degree-p monomials) but in a per-thread scratch row, not in the output.
//
// Memory limit: a state built on these features holds t x d float64 numbers (U2^T V for
// d value columns), so the constructor refuses maps whose t*d*8 bytes exceed `max_bytes`
// (default 1 GiB, TaylorFeatures::default_max_bytes) with an error naming t and the bytes,
// instead of failing later in an allocation. Pass a larger max_bytes to go beyond it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "streamattn/core/common.hpp"

namespace streamattn {

/// Which kernel kappa(q, k) the features realize as phi(q).phi(k).
enum class FeatureKernel : std::uint8_t {
  taylor = 0,  ///< P_g(c q.k) = sum_{p<=g} (c q.k)^p / p!
  power = 1,   ///< (c q.k)^g, g even
};

/// "taylor" / "power" -> FeatureKernel; std::invalid_argument naming `kernel` otherwise.
FeatureKernel parse_feature_kernel(const std::string& name);
const char* feature_kernel_name(FeatureKernel k);

/// e^beta beta^{g+1} / (g+1)!: the relative error of P_g against exp on [-beta, beta].
/// @param beta   >= 0, finite (c * max||q|| * max||k||, or c*d*B^2 for entries bounded by B)
/// @param degree 0 .. 8
double taylor_error(double beta, int degree);

/// The smallest even degree g <= 8 with taylor_error(beta, g) <= eps (even degrees keep the
/// normalizer positive). Throws std::invalid_argument when no such degree exists, giving the
/// error degree 8 reaches and what to change (shrink beta by normalizing q, k or lowering the
/// scale, or loosen eps).
/// @param eps  > 0
/// @param beta >= 0, finite
int choose_degree(double eps, double beta);

/// P_g(x) = sum_{p <= g} x^p / p! applied to every entry of x in place (Horner's rule): the
/// kernel of the intra-chunk part of causal attention, P_g(c Q_c K_c^T).
void taylor_polynomial_inplace(Eigen::Ref<RowMatrix<double>> x, int degree);

/// kappa applied to every score x = c q.k in place: P_g(x) for taylor, x^g for power (the
/// intra-chunk kernel, so that it equals phi(q).phi(k) of the same kernel up to rounding).
void kernel_inplace(Eigen::Ref<RowMatrix<double>> x, int degree, FeatureKernel kernel);
/// Same in float32 (the float32 compute path's intra-chunk scores).
void kernel_inplace(Eigen::Ref<RowMatrix<float>> x, int degree, FeatureKernel kernel);

/// C(d + g, g), the feature dimension; saturates at INT64_MAX instead of overflowing.
std::int64_t taylor_dim(Index d, int degree);

/// The feature dimension of a kernel: C(d + g, g) for taylor, C(d + g - 1, g) for power.
std::int64_t feature_dim(Index d, int degree, FeatureKernel kernel);

class TaylorFeatures {
 public:
  static constexpr int max_degree = 8;
  static constexpr std::uint64_t default_max_bytes = std::uint64_t{1} << 30;

  /// @param d         input dimension, >= 1
  /// @param degree    g, 0 .. 8
  /// @param scale     c > 0, finite (nullopt: 1/sqrt(d), the attention default; the paper uses 1/d)
  /// @param max_bytes refuse maps with t*d*8 > max_bytes (0 = default_max_bytes)
  /// @param kernel    taylor (default) or power (degree must then be even)
  TaylorFeatures(Index d, int degree, std::optional<double> scale, std::uint64_t max_bytes = 0,
                 FeatureKernel kernel = FeatureKernel::taylor);

  Index d() const { return d_; }
  int degree() const { return degree_; }
  double scale() const { return scale_; }
  FeatureKernel kernel() const { return kernel_; }
  /// t = C(d + g, g) (taylor) or C(d + g - 1, g) (power).
  Index dim() const { return t_; }
  std::uint64_t max_bytes() const { return max_bytes_; }

  /// phi(X): X.rows() x dim(), float64. Checks X (d columns, finite).
  RowMatrix<double> transform(const MatrixRef<float>& X) const;
  RowMatrix<double> transform(const MatrixRef<double>& X) const;

  /// Kernel: writes phi(X.row(i)) to out + i*ld, for i < X.rows(); ld >= dim(). No checks,
  /// no allocation (after a thread's first power-kernel call, which sizes its scratch row): the
  /// caller guarantees X.cols() == d() and room for X.rows() rows.
  void transform_into(const MatrixRef<float>& X, double* out, Index ld) const;
  void transform_into(const MatrixRef<double>& X, double* out, Index ld) const;
  /// Kernel: features c0 .. c0+n-1 of each row only, phi(X.row(i))[c0 + j] written to
  /// out[i*ld + j] (the same bits as transform_into's columns; the lower-degree features they are
  /// built from are recomputed per row, which is cheap next to the top degree). A thread works on
  /// the feature columns it owns without reading another thread's rows. Same contract otherwise;
  /// 0 <= c0, c0 + n <= dim().
  void transform_cols_into(const MatrixRef<float>& X, Index c0, Index n, double* out, Index ld) const;
  void transform_cols_into(const MatrixRef<double>& X, Index c0, Index n, double* out, Index ld) const;

  /// Splits the feature columns [0, dim()) into `blocks` contiguous ranges of about equal cost for
  /// transform_cols_into and what follows per column: out[b] .. out[b+1] - 1 is block b (out[0] = 0,
  /// out[blocks] = dim()). A column costs 1 and each top-degree run a range meets kRunCost more
  /// (its loop overhead: short runs, the high variables', cost more per column). Depends on the
  /// map alone. blocks >= 1.
  std::vector<Index> column_blocks(Index blocks) const;
  /// A run's overhead in columns of work (measured: a 4-row block of the last quarter of d = 64,
  /// g = 2, 32 runs, took 1.56x the first quarter's, 9 runs, for the same number of columns).
  static constexpr double kRunCost = 4.0;

  /// The multi-index of feature f as its d exponents (for tests and inspection; O(d)).
  std::vector<int> exponents(Index f) const;

 private:
  template <class T>
  void transform_into_impl(const MatrixRef<T>& X, double* out, Index ld) const;
  /// The d degree-1 features of row r of X at dst[1 .. d] (their layout positions).
  template <class T>
  void degree_one_into(const MatrixRef<T>& X, Index r, double* dst) const;
  template <class T>
  void transform_cols_into_impl(const MatrixRef<T>& X, Index c0, Index n, double* out, Index ld) const;
  template <class T>
  RowMatrix<double> transform_impl(const MatrixRef<T>& X) const;

  // A run of features of degree p whose smallest variable is `var`: they are
  // x_var * (features parent .. parent+len-1 of degree p-1), elementwise times weight[out..].
  struct Run {
    Index out, parent, len, var;
  };

  Index d_;
  int degree_;
  double scale_;
  FeatureKernel kernel_;
  Index t_;       // output dimension
  Index full_t_;  // C(d+g, g): the layout runs_ and weight_ describe
  std::uint64_t max_bytes_;
  std::vector<Index> deg_start_;
  std::vector<Run> runs_;       // sorted by out
  std::vector<double> weight_;  // per feature: sqrt(c / multiplicity of its smallest variable)
                                // (degree-g ones also times sqrt(g!) for power)
};

}  // namespace streamattn
