#include "streamattn/stream/certificate.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace streamattn {

std::string Certificate::repr() const {
  std::ostringstream os;
  os.precision(4);
  os << "Certificate(probes=" << probes << ", evaluated=" << evaluated << ", max_abs_error=" << max_abs_error
     << ", mean_abs_error=" << mean_abs_error << ", max_rel_error=" << max_rel_error << ")";
  return os.str();
}

Certificate make_certificate(RowMatrix<double> exact, RowMatrix<double> approx, std::vector<std::int64_t> positions) {
  Certificate c;
  c.probes = exact.rows();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double sum_abs = 0;
  Index count = 0;
  for (Index i = 0; i < c.probes; ++i) {
    if (!exact.row(i).allFinite() || !approx.row(i).allFinite()) {
      exact.row(i).setConstant(nan);
      approx.row(i).setConstant(nan);
      continue;
    }
    const auto diff = (approx.row(i) - exact.row(i)).eval();
    c.max_abs_error = std::max(c.max_abs_error, diff.cwiseAbs().maxCoeff());
    sum_abs += diff.cwiseAbs().sum();
    count += diff.size();
    const double norm = exact.row(i).norm();
    const double rel =
        norm > 0 ? diff.norm() / norm : (diff.norm() > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    c.max_rel_error = std::max(c.max_rel_error, rel);
    ++c.evaluated;
  }
  if (c.evaluated == 0) {
    c.max_abs_error = c.mean_abs_error = c.max_rel_error = nan;
  } else {
    c.mean_abs_error = sum_abs / static_cast<double>(count);
  }
  c.exact = std::move(exact);
  c.approx = std::move(approx);
  c.positions = std::move(positions);
  return c;
}

}  // namespace streamattn
