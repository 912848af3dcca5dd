#include "streamattn/attention/online_softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace streamattn {

OnlineSoftmax::OnlineSoftmax(RowMatrix<double> queries, std::vector<std::int64_t> limits, double scale, Index dv)
    : queries_(std::move(queries)), limits_(std::move(limits)), scale_(scale), dv_(dv) {
  const auto p = static_cast<std::size_t>(queries_.rows());
  if (limits_.empty()) limits_.assign(p, -1);
  require(limits_.size() == p, "probe positions must have one entry per probe: ", p, " probes, ", limits_.size(),
          " positions");
  require(scale > 0 && std::isfinite(scale), "scale must be a positive finite number, got ", scale);
  require(dv >= 1, "dv must be >= 1, got ", dv);
  max_.assign(p, -std::numeric_limits<double>::infinity());
  sum_.assign(p, 0.0);
  seen_.assign(p, 0);
  acc_ = RowMatrix<double>::Zero(static_cast<Index>(p), dv);
}

template <class T>
void OnlineSoftmax::absorb_impl(std::uint64_t key_start, const MatrixRef<T>& K, const MatrixRef<T>& V) {
  const Index p = probes(), B = K.rows();
  if (p == 0 || B == 0) return;
  const RowMatrix<double> Kd = K.template cast<double>();
  RowMatrix<double> S = (scale_ * queries_) * Kd.transpose();  // p x B scores
  RowMatrix<double> W = RowMatrix<double>::Zero(p, B);
  for (Index i = 0; i < p; ++i) {
    const std::int64_t lim = limits_[static_cast<std::size_t>(i)];
    Index b = B;
    if (lim >= 0) {
      if (static_cast<std::uint64_t>(lim) < key_start) continue;
      b = static_cast<Index>(
          std::min<std::uint64_t>(static_cast<std::uint64_t>(B), static_cast<std::uint64_t>(lim) - key_start + 1));
    }
    const double m_old = max_[static_cast<std::size_t>(i)];
    const double m_new = std::max(m_old, S.row(i).head(b).maxCoeff());
    const double factor = std::exp(m_old - m_new);  // 0 when m_old = -inf
    W.row(i).head(b) = (S.row(i).head(b).array() - m_new).exp().matrix();
    sum_[static_cast<std::size_t>(i)] = sum_[static_cast<std::size_t>(i)] * factor + W.row(i).head(b).sum();
    acc_.row(i) *= factor;
    max_[static_cast<std::size_t>(i)] = m_new;
    seen_[static_cast<std::size_t>(i)] += static_cast<std::uint64_t>(b);
  }
  acc_.noalias() += W * V.template cast<double>();
}

RowMatrix<double> OnlineSoftmax::result() const {
  RowMatrix<double> out(probes(), dv_);
  for (Index i = 0; i < probes(); ++i) {
    if (seen_[static_cast<std::size_t>(i)] == 0)
      out.row(i).setConstant(std::numeric_limits<double>::quiet_NaN());
    else
      out.row(i) = acc_.row(i) / sum_[static_cast<std::size_t>(i)];
  }
  return out;
}

void OnlineSoftmax::merge(const OnlineSoftmax& o) {
  require(queries_ == o.queries_ && limits_ == o.limits_ && scale_ == o.scale_ && dv_ == o.dv_,
          "cannot merge probe accumulators of different probes");
  for (Index i = 0; i < probes(); ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (o.seen_[u] == 0) continue;
    const double m = std::max(max_[u], o.max_[u]);
    const double fa = std::exp(max_[u] - m), fb = std::exp(o.max_[u] - m);
    sum_[u] = sum_[u] * fa + o.sum_[u] * fb;
    acc_.row(i) = acc_.row(i) * fa + o.acc_.row(i) * fb;
    max_[u] = m;
    seen_[u] += o.seen_[u];
  }
}

std::size_t OnlineSoftmax::nbytes() const {
  return sizeof(double) * static_cast<std::size_t>(queries_.size() + acc_.size()) +
         (sizeof(double) * 2 + sizeof(std::int64_t) + sizeof(std::uint64_t)) * limits_.size();
}

void OnlineSoftmax::write_payload(ByteWriter& w) const {
  w.u64(static_cast<std::uint64_t>(probes()));
  w.u64(static_cast<std::uint64_t>(d()));
  w.u64(static_cast<std::uint64_t>(dv_));
  w.f64(scale_);
  w.f64_array(queries_.data(), static_cast<std::size_t>(queries_.size()));
  w.i64_array(limits_.data(), limits_.size());
  w.f64_array(max_.data(), max_.size());
  w.f64_array(sum_.data(), sum_.size());
  for (auto s : seen_) w.u64(s);
  w.f64_array(acc_.data(), static_cast<std::size_t>(acc_.size()));
}

OnlineSoftmax OnlineSoftmax::read_payload(ByteReader& r) {
  const std::uint64_t p = r.u64(), d = r.u64(), dv = r.u64();
  const double scale = r.f64();
  r.check(p <= (std::uint64_t{1} << 20) && d >= 1 && d <= (std::uint64_t{1} << 20) && dv >= 1 &&
              dv <= (std::uint64_t{1} << 20),
          "probe sizes out of range");
  r.check(static_cast<long double>(p) * (d + dv + 4) * 8 <= static_cast<long double>(r.remaining()),
          "probe state exceeds the payload");
  r.check(scale > 0 && std::isfinite(scale), "probe scale is not positive");
  RowMatrix<double> q(static_cast<Index>(p), static_cast<Index>(d));
  r.f64_array(q.data(), static_cast<std::uint64_t>(q.size()));
  std::vector<std::int64_t> limits;
  r.i64_array(limits, p);
  OnlineSoftmax out(std::move(q), std::move(limits), scale, static_cast<Index>(dv));
  r.f64_array(out.max_.data(), p);
  r.f64_array(out.sum_.data(), p);
  for (auto& s : out.seen_) s = r.u64();
  r.f64_array(out.acc_.data(), static_cast<std::uint64_t>(out.acc_.size()));
  r.check(out.queries_.allFinite() && out.acc_.allFinite(), "probe state is not finite");
  for (std::size_t i = 0; i < p; ++i) {
    r.check(std::isfinite(out.sum_[i]) && out.sum_[i] >= 0, "probe normalizer is invalid");
    r.check(out.limits_[i] >= -1, "probe position is invalid");
  }
  return out;
}

void OnlineSoftmax::absorb(std::uint64_t key_start, const MatrixRef<float>& K, const MatrixRef<float>& V) {
  absorb_impl(key_start, K, V);
}
void OnlineSoftmax::absorb(std::uint64_t key_start, const MatrixRef<double>& K, const MatrixRef<double>& V) {
  absorb_impl(key_start, K, V);
}

}  // namespace streamattn
