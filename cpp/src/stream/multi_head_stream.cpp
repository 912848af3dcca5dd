#include "streamattn/stream/multi_head_stream.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "streamattn/core/validate.hpp"

namespace streamattn {

namespace {

template <class T>
using VecMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>, 0, Eigen::InnerStride<>>;

/// Row i of a strided matrix as a strided vector (no copy).
template <class T>
VecMap<T> row_of(const MatrixRef<T>& m, Index i) {
  return VecMap<T>(m.data() + i * m.outerStride(), m.cols(), Eigen::InnerStride<>(m.innerStride()));
}

/// Axes of the batch (-1: none), heads, tokens and features of a HeadLayout's Q, K, V and out; a
/// log_gate has the same axes without the features (the last axis).
struct Axes {
  int b, h, t, f;
};

Axes axes_of(HeadLayout layout) {
  switch (layout) {
    case HeadLayout::batch_tokens_heads: return {0, 2, 1, 3};
    case HeadLayout::batch_heads_tokens: return {0, 1, 2, 3};
    default: return {-1, 0, 1, 2};
  }
}

const char* layout_text(HeadLayout layout) {
  switch (layout) {
    case HeadLayout::batch_tokens_heads: return "(batch, tokens, heads, d)";
    case HeadLayout::batch_heads_tokens: return "(batch, heads, tokens, d)";
    default: return "(heads, tokens, d)";
  }
}

std::string shape_text(const std::vector<Index>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

template <class A>
Index extent(const A& a, int axis) {
  return axis < 0 ? 1 : a.shape[static_cast<std::size_t>(axis)];
}

/// The stride of an axis, 0 where it is never used (no such axis, or length <= 1).
template <class A>
Index stride_of(const A& a, int axis) {
  return axis < 0 || a.shape[static_cast<std::size_t>(axis)] <= 1 ? 0 : a.strides[static_cast<std::size_t>(axis)];
}

/// Stream head j's (tokens x features) rows of an array in a layout with `per` heads per batch
/// (stream head j is batch j / per's head j % per).
template <class P>
BasicStridedRows<P> head_slice(const BasicStridedArray<P>& a, const Axes& x, Index j, Index per) {
  using Byte = std::conditional_t<std::is_const_v<std::remove_pointer_t<P>>, const char, char>;
  const Index off = (j / per) * stride_of(a, x.b) + (j % per) * stride_of(a, x.h);
  P p = a.size() == 0 ? a.data
                      : static_cast<P>(static_cast<Byte*>(a.data) + off * static_cast<Index>(scalar_size(a.dtype)));
  return {p, a.dtype, extent(a, x.t), extent(a, x.f), stride_of(a, x.t), stride_of(a, x.f)};
}

/// A quick pass over every feature row of an array in memory order (the batch, then the slower of
/// its tokens and heads axes, then the faster, the features innermost), so that a strided layout
/// is read sequentially: true when each row x has scale * |x|^2 <= 1e30 (keys and queries) or,
/// for scale < 0, every |x_j| <= 1e30 (values). This is the fast path of require_clean_rows and
/// require_clean_values; on false the per-head checks run for their messages. Inputs of at
/// least kParallelCheckEntries entries are checked by the pool's threads, split by outer rows.
constexpr Index kParallelCheckEntries = Index{1} << 18;
template <class T>
bool rows_look_clean(const StridedArray& a, const Axes& x, double scale, ThreadPool* pool, int threads) {
  constexpr double kLimit = 1e30;
  int outer = x.h, inner = x.t;
  if (stride_of(a, x.t) > stride_of(a, x.h)) std::swap(outer, inner);
  const Index nb = extent(a, x.b), no = extent(a, outer), ni = extent(a, inner), nf = extent(a, x.f);
  const Index sb = stride_of(a, x.b), so = stride_of(a, outer), si = stride_of(a, inner), sf = stride_of(a, x.f);
  const T* base = static_cast<const T*>(a.data);
  // Outer rows p = b * no + o in [p0, p1), each ni rows of nf features in memory order.
  const auto clean = [&](Index p0, Index p1) {
    bool ok = true;
    for (Index p = p0; p < p1 && ok; ++p)
      for (Index i = 0; i < ni; ++i) {
        const T* r = base + (p / no) * sb + (p % no) * so + i * si;
        if (scale >= 0) {
          ok = ok && scale * detail::row_squares(r, nf, sf) <= kLimit;
        } else {
          const T lim = static_cast<T>(kLimit);
          bool bad = false;
          if (sf <= 1)
            for (Index j = 0; j < nf; ++j) bad |= !(std::abs(r[j]) <= lim);
          else
            for (Index j = 0; j < nf; ++j) bad |= !(std::abs(r[j * sf]) <= lim);
          ok = ok && !bad;
        }
      }
    return ok;
  };
  // A pass over all the inputs before any head runs: on several threads it is split by outer
  // rows (whole heads, or batches), each part reading its own stretch of memory.
  const Index np = nb * no;
  const int parts = static_cast<int>(std::min<Index>(pool && np * ni * nf >= kParallelCheckEntries ? threads : 1, np));
  if (parts <= 1) return clean(0, np);
  std::vector<char> ok(static_cast<std::size_t>(parts), 0);
  pool->run(parts,
            [&](std::int64_t q) { ok[static_cast<std::size_t>(q)] = clean(np * q / parts, np * (q + 1) / parts); });
  return std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; });
}

bool rows_look_clean(const StridedArray& a, const Axes& x, double scale, ThreadPool* pool, int threads) {
  return a.dtype == ScalarType::float32 ? rows_look_clean<float>(a, x, scale, pool, threads)
                                        : rows_look_clean<double>(a, x, scale, pool, threads);
}

/// Rows packed per call to a head's stream: a multiple of its chunk (so that the chunks start
/// where one call over all the rows would start them) of about this many rows.
constexpr Index kTileRows = 256;

}  // namespace

HeadLayout head_layout(bool head_first, Index rank) {
  require(rank == 3 || rank == 4, "arrays must be 3-D (heads, n, d) or 4-D (batch, n, heads, d), got ", rank, "-D");
  require(!head_first || rank == 4, "head_first=True needs 4-D (batch, heads, tokens, d) arguments");
  if (rank == 3) return HeadLayout::heads;
  return head_first ? HeadLayout::batch_heads_tokens : HeadLayout::batch_tokens_heads;
}

struct MultiHeadCausalStream::LayoutGrid {
  Axes x;
  Index batch, n, q_per, kv_per;  // batches, tokens, query and kv heads per batch
  const StridedArray *Q, *K, *V;
  std::vector<Index> out_shape;
};

MultiHeadCausalStream::MultiHeadCausalStream(Index heads, Index kv_heads, Index d, Index dv, int degree,
                                             std::optional<double> scale, Index chunk, std::uint64_t max_bytes,
                                             FeatureKernel kernel, Normalizer norm, int threads, ComputeDtype compute)
    : kv_heads_(kv_heads) {
  require_range(heads, 1, limits::max_heads, "heads");
  require_range(kv_heads, 1, limits::max_heads, "kv_heads");
  require(heads % kv_heads == 0, "heads (", heads, ") must be a multiple of kv_heads (", kv_heads,
          "): query head h reads kv head h // (heads // kv_heads)");
  CausalStream first(d, dv, degree, scale, chunk, max_bytes, kernel, norm, compute);
  streams_.reserve(static_cast<std::size_t>(heads));
  for (Index h = 1; h < heads; ++h) streams_.push_back(first);
  streams_.push_back(std::move(first));
  set_threads(threads);
}

void MultiHeadCausalStream::set_threads(int threads) {
  const int n = detail::resolve_threads(threads);
  if (n != threads_ || (n > 1 && !pool_)) pool_ = n > 1 ? std::make_shared<ThreadPool>(n) : nullptr;
  threads_ = n;
  // The heads' products use the same pool: split when the heads run one after another (one
  // head, or step() below its threshold), on the calling thread when heads are on the workers.
  for (auto& s : streams_) s.ws_.pool = pool_.get();
}

void MultiHeadCausalStream::set_compute(ComputeDtype compute) {
  for (CausalStream& s : streams_) s.set_compute(compute);
}

const CausalStream& MultiHeadCausalStream::head(Index h) const {
  require(h >= 0 && h < heads(), "head must be in [0, ", heads(), "), got ", h);
  return streams_[static_cast<std::size_t>(h)];
}

template <class F>
void MultiHeadCausalStream::for_heads(int workers, F&& f) {
  const Index H = heads();
  workers = static_cast<int>(std::min<Index>(std::max(workers, 1), H));
  if (workers <= 1 || !pool_) {
    for (Index h = 0; h < H; ++h) f(h);
    return;
  }
  // The stream's persistent pool (no thread started per call); heads are taken in turn by
  // whichever thread is free. Heads are independent, so the rows do not depend on the order.
  pool_->run(H, [&](std::int64_t h) { f(static_cast<Index>(h)); });
}

Index MultiHeadCausalStream::kv_head(Index h) const {
  require(h >= 0 && h < heads(), "h must be a query head in [0, ", heads(), "), got ", h);
  return kv_head_of(h);
}

MultiHeadCausalStream::LayoutGrid MultiHeadCausalStream::check_layout(HeadLayout layout, const StridedArray& Q,
                                                                      const StridedArray& K, const StridedArray& V,
                                                                      const StridedArray* log_gate,
                                                                      const MutableStridedArray* out) const {
  const Axes x = axes_of(layout);
  const Index rank = layout == HeadLayout::heads ? 3 : 4;
  const char* names[] = {"Q", "K", "V"};
  const StridedArray* arrays[] = {&Q, &K, &V};
  for (int i = 0; i < 3; ++i) {
    arrays[i]->check(names[i]);
    require(arrays[i]->rank() == rank, names[i], " must be ", rank, "-D ", layout_text(layout), ", got ",
            arrays[i]->rank(), "-D",
            layout == HeadLayout::batch_heads_tokens && arrays[i]->rank() == 3
                ? " (head_first=True needs 4-D (batch, heads, tokens, d) arguments)"
                : "");
  }
  const Index H = heads(), G = kv_heads_, n = extent(Q, x.t);
  LayoutGrid g{x, 1, n, H, G, &Q, &K, &V, Q.shape};
  if (layout == HeadLayout::heads) {
    require(Q.shape[0] == H, "Q must have one block per query head (", H, "), got ", Q.shape[0]);
    require(K.shape[0] == G, "K must have one block per kv head (", G, "), got ", K.shape[0]);
    require(V.shape[0] == G, "V must have one block per kv head (", G, "), got ", V.shape[0]);
  } else {
    const Index B = Q.shape[0];
    for (int i = 1; i < 3; ++i)
      require(arrays[i]->shape[0] == B && extent(*arrays[i], x.t) == n, names[i], " must have Q's batch (", B,
              ") and tokens (", n, ") in the layout ", layout_text(layout), ", got shape ",
              shape_text(arrays[i]->shape),
              layout == HeadLayout::batch_tokens_heads ? " (pass head_first=True for (batch, heads, tokens, d))" : "");
    const Index hq = extent(Q, x.h), hk = extent(K, x.h), hv = extent(V, x.h);
    require(B * hq == H && B * hk == G && B * hv == G, "batch x heads must match the stream: Q has ", B, " x ", hq,
            ", K ", B, " x ", hk, ", V ", B, " x ", hv, " heads, the stream heads=", H, ", kv_heads=", G);
    g.batch = B;
    g.q_per = hq;
    g.kv_per = hk;
  }
  require(extent(Q, x.f) == d(), "Q[0] must be ", n, " x ", d(), ", got ", n, " x ", extent(Q, x.f));
  require(extent(K, x.t) == n && extent(K, x.f) == d(), "K[0] must be ", n, " x ", d(), ", got ", extent(K, x.t), " x ",
          extent(K, x.f));
  require(extent(V, x.t) == n && extent(V, x.f) == dv(), "V[0] must be ", n, " x ", dv(), ", got ", extent(V, x.t),
          " x ", extent(V, x.f));
  if (log_gate) {
    log_gate->check("log_gate");
    if (layout == HeadLayout::heads) {
      require(log_gate->rank() == 2 && log_gate->shape[0] == H && log_gate->shape[1] == n,
              "log_gate must be heads x n = ", H, " x ", n, ", got shape ", shape_text(log_gate->shape));
    } else {
      std::vector<Index> want(3);
      want[0] = g.batch;
      want[static_cast<std::size_t>(x.h)] = g.q_per;
      want[static_cast<std::size_t>(x.t)] = n;
      require(log_gate->shape == want, "log_gate must be ",
              layout == HeadLayout::batch_tokens_heads ? "(batch, tokens, heads)" : "(batch, heads, tokens)", " = ",
              shape_text(want), ", got shape ", shape_text(log_gate->shape));
    }
  }
  g.out_shape.back() = dv();
  if (out) {
    out->check("out");
    require(out->shape == g.out_shape, "out must have shape ", shape_text(g.out_shape), " (Q's with dv = ", dv(),
            " features), got ", shape_text(out->shape));
  }
  return g;
}

std::vector<Index> MultiHeadCausalStream::layout_output_shape(HeadLayout layout, const StridedArray& Q,
                                                              const StridedArray& K, const StridedArray& V,
                                                              const StridedArray* log_gate) const {
  return check_layout(layout, Q, K, V, log_gate, nullptr).out_shape;
}

namespace {
/// Calls f(view) with the rows of a float32 or float64 slice as a MatrixRef of its own type.
template <class F>
void with_rows(const StridedRows& r, F&& f) {
  if (r.dtype == ScalarType::float32)
    f(MatrixRef<float>(r.map<float>(0, r.rows)));
  else
    f(MatrixRef<double>(r.map<double>(0, r.rows)));
}
}  // namespace

void MultiHeadCausalStream::update_layout(HeadLayout layout, const StridedArray& Q, const StridedArray& K,
                                          const StridedArray& V, const StridedArray* log_gate,
                                          const MutableStridedArray& out) {
  const LayoutGrid g = check_layout(layout, Q, K, V, log_gate, &out);
  const Index H = heads(), n = g.n;
  if (n == 0) return;
  const double c = scale();
  // The values: one pass in memory order; the per-head checks (and their messages) on failure.
  if (!rows_look_clean(Q, g.x, c, pool_.get(), threads_))
    for (Index h = 0; h < H; ++h)
      with_rows(head_slice(Q, g.x, h, g.q_per), [&](const auto& q) { detail::require_clean_rows(q, c, "Q"); });
  if (!rows_look_clean(K, g.x, c, pool_.get(), threads_))
    for (Index j = 0; j < kv_heads_; ++j)
      with_rows(head_slice(K, g.x, j, g.kv_per), [&](const auto& k) { detail::require_clean_rows(k, c, "K"); });
  if (!rows_look_clean(V, g.x, -1.0, pool_.get(), threads_))
    for (Index j = 0; j < kv_heads_; ++j)
      with_rows(head_slice(V, g.x, j, g.kv_per), [&](const auto& v) { detail::require_clean_values(v, "V"); });
  // The gates, one row per stream head (float64, H x n: small next to Q), checked.
  std::optional<RowMatrix<double>> gates;
  if (log_gate) {
    gates.emplace(H, n);
    const Axes gx{g.x.b, g.x.h, g.x.t, -1};
    for (Index h = 0; h < H; ++h) {
      RowMatrix<double> row;
      const MatrixRef<double> col(rows_of<double>(head_slice(*log_gate, gx, h, g.q_per), 0, n, row));
      gates->row(h) = col.col(0).transpose();
      detail::require_log_gate(VectorRef<double>(Eigen::Map<const Eigen::VectorXd>(gates->data() + h * n, n)));
    }
  }
  // Every input is checked; only a normalizer <= 0 can still fail, in every head alike.
  std::optional<std::vector<CausalStream>> backup;
  if (normalizer().normalize && (degree() % 2 == 1 || (kernel() == FeatureKernel::power && normalizer().eps == 0.0)))
    backup = streams_;
  try {
    if (output_dtype({Q.dtype, K.dtype, V.dtype}) == ScalarType::float32)
      run_layout<float>(g, gates ? &*gates : nullptr, out);
    else
      run_layout<double>(g, gates ? &*gates : nullptr, out);
  } catch (...) {
    if (backup) streams_ = std::move(*backup);
    throw;
  }
}

template <class T>
void MultiHeadCausalStream::run_tile(const LayoutGrid& g, const RowMatrix<double>* gates,
                                     const MutableStridedArray& out, Index h, Index a, Index r) {
  // Rows of the computing type whose features are adjacent are read in place, whatever their row
  // stride (fla's (B, T, H, d) layout): the stream copies each chunk's rows into its own buffers
  // anyway, so a tile copy would only add a pass. Other rows (strided features, the other dtype)
  // are packed into per-thread tiles here.
  thread_local RowMatrix<T> tq, tk, tv;
  thread_local RowMatrix<double> to;
  const Index kv = kv_head_of(h), dvv = dv();
  const StridedRows q = head_slice(*g.Q, g.x, h, g.q_per), k = head_slice(*g.K, g.x, kv, g.kv_per),
                    v = head_slice(*g.V, g.x, kv, g.kv_per);
  const MutableStridedRows o = head_slice(out, g.x, h, g.q_per);
  CausalStream& s = streams_[static_cast<std::size_t>(h)];
  const MatrixRef<T> Qc(rows_of<T>(q, a, r, tq)), Kc(rows_of<T>(k, a, r, tk)), Vc(rows_of<T>(v, a, r, tv));
  std::optional<VectorRef<double>> gate;
  if (gates) gate.emplace(Eigen::Map<const Eigen::VectorXd>(gates->data() + h * g.n + a, r));
  const VectorRef<double>* gp = gate ? &*gate : nullptr;
  if (o.dtype == ScalarType::float64 && o.col_stride == 1) {
    // float64 rows with unit column stride: written in place.
    Eigen::Map<RowMatrix<double>, 0, Eigen::OuterStride<>> m(static_cast<double*>(o.data) + a * o.row_stride, r, dvv,
                                                             Eigen::OuterStride<>(o.row_stride));
    Eigen::Ref<RowMatrix<double>> rows(m);
    s.update_into_checked(Qc, Kc, Vc, gp, &rows);
  } else if (std::is_same_v<T, float> && o.dtype == ScalarType::float32 && o.col_stride == 1) {
    // float32 rows of float32 inputs, unit column stride: rounded once, in place.
    if constexpr (std::is_same_v<T, float>) {
      Eigen::Map<RowMatrix<float>, 0, Eigen::OuterStride<>> m(static_cast<float*>(o.data) + a * o.row_stride, r, dvv,
                                                              Eigen::OuterStride<>(o.row_stride));
      Eigen::Ref<RowMatrix<float>> rows(m);
      s.update_into_checked(Qc, Kc, Vc, gp, &rows);
    }
  } else {
    to.resize(r, dvv);
    Eigen::Ref<RowMatrix<double>> rows(to);
    s.update_into_checked(Qc, Kc, Vc, gp, &rows);
    write_rows(to, o, a);
  }
}

template <class T>
void MultiHeadCausalStream::run_layout(const LayoutGrid& g, const RowMatrix<double>* gates,
                                       const MutableStridedArray& out) {
  const Index n = g.n, tile = chunk() * std::max<Index>(1, kTileRows / chunk());
  // Tile by tile, every head's rows of the tile in turn: the heads' rows of one tile lie close
  // together in any layout (for (B, T, H, d) arrays they are one block), so the threads read and
  // write them nearly sequentially instead of each striding alone through the whole array.
  for (Index a = 0; a < n; a += tile) {
    const Index r = std::min(tile, n - a);
    for_heads(threads_, [&](Index h) { run_tile<T>(g, gates, out, h, a, r); });
  }
}

template <class T, class O>
void MultiHeadCausalStream::update_impl(const std::vector<MatrixRef<T>>& Q, const std::vector<MatrixRef<T>>& K,
                                        const std::vector<MatrixRef<T>>& V, const MatrixRef<double>* log_gate,
                                        Eigen::Ref<RowMatrix<double>>* out, const std::vector<HeadRows<O>>* heads_out) {
  const Index H = heads(), G = kv_heads_;
  require(static_cast<Index>(Q.size()) == H, "Q must have one block per query head (", H, "), got ", Q.size());
  require(static_cast<Index>(K.size()) == G, "K must have one block per kv head (", G, "), got ", K.size());
  require(static_cast<Index>(V.size()) == G, "V must have one block per kv head (", G, "), got ", V.size());
  const Index n = Q[0].rows();
  const double c = scale();
  for (Index h = 0; h < H; ++h) {
    const auto& q = Q[static_cast<std::size_t>(h)];
    require(q.rows() == n && q.cols() == d(), "Q[", h, "] must be ", n, " x ", d(), ", got ", q.rows(), " x ",
            q.cols());
    detail::require_clean_rows(q, c, "Q");
  }
  for (Index g = 0; g < G; ++g) {
    const auto& k = K[static_cast<std::size_t>(g)];
    const auto& v = V[static_cast<std::size_t>(g)];
    require(k.rows() == n && k.cols() == d(), "K[", g, "] must be ", n, " x ", d(), ", got ", k.rows(), " x ",
            k.cols());
    require(v.rows() == n && v.cols() == dv(), "V[", g, "] must be ", n, " x ", dv(), ", got ", v.rows(), " x ",
            v.cols());
    detail::require_clean_rows(k, c, "K");
    detail::require_clean_values(v, "V");
  }
  if (log_gate) {
    require(log_gate->rows() == H && log_gate->cols() == n, "log_gate must be heads x n = ", H, " x ", n, ", got ",
            log_gate->rows(), " x ", log_gate->cols());
    for (Index h = 0; h < H; ++h) detail::require_log_gate(VectorRef<double>(row_of(*log_gate, h)));
  }
  if (out)
    require(out->rows() == H * n && out->cols() == dv(), "out must be heads*n x dv = ", H * n, " x ", dv(), ", got ",
            out->rows(), " x ", out->cols());
  if (heads_out) {
    require(static_cast<Index>(heads_out->size()) == H, "out must have one view per query head (", H, "), got ",
            heads_out->size());
    for (Index h = 0; h < H; ++h) {
      const auto& o = (*heads_out)[static_cast<std::size_t>(h)];
      require(o.rows() == n && o.cols() == dv(), "out[", h, "] must be ", n, " x ", dv(), ", got ", o.rows(), " x ",
              o.cols());
    }
  }
  if (n == 0) return;

  // Every input is checked; only a normalizer <= 0 can still fail, in every head alike.
  std::optional<std::vector<CausalStream>> backup;
  if (streams_[0].normalizer().normalize &&
      (degree() % 2 == 1 || (kernel() == FeatureKernel::power && normalizer().eps == 0.0)))
    backup = streams_;
  try {
    for_heads(threads_, [&](Index h) {
      const auto g = static_cast<std::size_t>(kv_head_of(h));
      CausalStream& s = streams_[static_cast<std::size_t>(h)];
      std::optional<VectorRef<double>> gate;
      if (log_gate) gate.emplace(row_of(*log_gate, h));
      const VectorRef<double>* gp = gate ? &*gate : nullptr;
      // Each head writes its rows straight into out (no per-head copy); the values were checked
      // above, once per kv head.
      if (out) {
        Eigen::Ref<RowMatrix<double>> rows = out->middleRows(h * n, n);
        s.update_into_checked(Q[static_cast<std::size_t>(h)], K[g], V[g], gp, &rows);
      } else if (heads_out) {
        HeadRows<O> dst = (*heads_out)[static_cast<std::size_t>(h)];
        // float64 rows, or float32 rows of float32 inputs: written in place when the columns are.
        if constexpr (std::is_same_v<O, double> || std::is_same_v<T, float>) {
          if (dst.innerStride() == 1 || dv() == 1) {
            Eigen::Map<RowMatrix<O>, 0, Eigen::OuterStride<>> m(dst.data(), n, dv(),
                                                                Eigen::OuterStride<>(dst.outerStride()));
            Eigen::Ref<RowMatrix<O>> rows(m);
            s.update_into_checked(Q[static_cast<std::size_t>(h)], K[g], V[g], gp, &rows);
            return;
          }
        }
        thread_local RowMatrix<double> buf;
        buf.resize(n, dv());
        Eigen::Ref<RowMatrix<double>> rows(buf);
        s.update_into_checked(Q[static_cast<std::size_t>(h)], K[g], V[g], gp, &rows);
        dst = buf.template cast<O>();
      } else {
        s.update_into_checked(Q[static_cast<std::size_t>(h)], K[g], V[g], gp,
                              static_cast<Eigen::Ref<RowMatrix<double>>*>(nullptr));
      }
    });
  } catch (...) {
    if (backup) streams_ = std::move(*backup);
    throw;
  }
}

void MultiHeadCausalStream::update(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
                                   const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                                   RowMatrix<double>* out) {
  update_rows(Q, K, V, log_gate, out);
}
void MultiHeadCausalStream::update(const std::vector<MatrixRef<double>>& Q, const std::vector<MatrixRef<double>>& K,
                                   const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate,
                                   RowMatrix<double>* out) {
  update_rows(Q, K, V, log_gate, out);
}
void MultiHeadCausalStream::update_into(const std::vector<MatrixRef<float>>& Q, const std::vector<MatrixRef<float>>& K,
                                        const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                                        Eigen::Ref<RowMatrix<double>> out) {
  update_impl(Q, K, V, log_gate, &out);
}
void MultiHeadCausalStream::update_into(const std::vector<MatrixRef<double>>& Q,
                                        const std::vector<MatrixRef<double>>& K,
                                        const std::vector<MatrixRef<double>>& V, const MatrixRef<double>* log_gate,
                                        Eigen::Ref<RowMatrix<double>> out) {
  update_impl(Q, K, V, log_gate, &out);
}

void MultiHeadCausalStream::update_heads_into(const std::vector<MatrixRef<float>>& Q,
                                              const std::vector<MatrixRef<float>>& K,
                                              const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                                              const std::vector<HeadRows<float>>& out) {
  update_impl(Q, K, V, log_gate, nullptr, &out);
}
void MultiHeadCausalStream::update_heads_into(const std::vector<MatrixRef<float>>& Q,
                                              const std::vector<MatrixRef<float>>& K,
                                              const std::vector<MatrixRef<float>>& V, const MatrixRef<double>* log_gate,
                                              const std::vector<HeadRows<double>>& out) {
  update_impl(Q, K, V, log_gate, nullptr, &out);
}
void MultiHeadCausalStream::update_heads_into(const std::vector<MatrixRef<double>>& Q,
                                              const std::vector<MatrixRef<double>>& K,
                                              const std::vector<MatrixRef<double>>& V,
                                              const MatrixRef<double>* log_gate,
                                              const std::vector<HeadRows<float>>& out) {
  update_impl(Q, K, V, log_gate, nullptr, &out);
}
void MultiHeadCausalStream::update_heads_into(const std::vector<MatrixRef<double>>& Q,
                                              const std::vector<MatrixRef<double>>& K,
                                              const std::vector<MatrixRef<double>>& V,
                                              const MatrixRef<double>* log_gate,
                                              const std::vector<HeadRows<double>>& out) {
  update_impl(Q, K, V, log_gate, nullptr, &out);
}

template <class T>
void MultiHeadCausalStream::update_rows(const std::vector<MatrixRef<T>>& Q, const std::vector<MatrixRef<T>>& K,
                                        const std::vector<MatrixRef<T>>& V, const MatrixRef<double>* log_gate,
                                        RowMatrix<double>* out) {
  if (!out) return update_impl(Q, K, V, log_gate, nullptr);
  require(!Q.empty(), "Q must have one block per query head (", heads(), "), got 0");
  RowMatrix<double> rows(heads() * Q[0].rows(), dv());
  Eigen::Ref<RowMatrix<double>> ref(rows);
  update_impl(Q, K, V, log_gate, &ref);
  *out = std::move(rows);  // only after success: a rejected call leaves *out as it was
}

template <class T>
void MultiHeadCausalStream::step_impl(const MatrixRef<T>& q, const MatrixRef<T>& k, const MatrixRef<T>& v,
                                      Eigen::Ref<RowMatrix<double>> out, const VectorRef<double>* log_gate) {
  const Index H = heads(), G = kv_heads_;
  require(q.rows() == H && q.cols() == d(), "q must be heads x d = ", H, " x ", d(), ", got ", q.rows(), " x ",
          q.cols());
  require(k.rows() == G && k.cols() == d(), "k must be kv_heads x d = ", G, " x ", d(), ", got ", k.rows(), " x ",
          k.cols());
  require(v.rows() == G && v.cols() == dv(), "v must be kv_heads x dv = ", G, " x ", dv(), ", got ", v.rows(), " x ",
          v.cols());
  require(out.rows() == H && out.cols() == dv(), "out must be heads x dv = ", H, " x ", dv());
  detail::require_clean_rows(q, scale(), "q");
  detail::require_clean_rows(k, scale(), "k");
  detail::require_clean_values(v, "v");
  if (log_gate) {
    require(log_gate->size() == H, "log_gate must have one entry per query head (", H, "), got ", log_gate->size());
    detail::require_log_gate(*log_gate);
  }
  // A step can only fail on a normalizer <= 0 (power kernel at eps = 0, or odd degree): then
  // every head's denominator is computed first (O(t) each, no state change), so a refused step
  // changes no head.
  const bool may_fail =
      normalizer().normalize && (degree() % 2 == 1 || (kernel() == FeatureKernel::power && normalizer().eps == 0.0));
  if (may_fail) {
    for (Index h = 0; h < H; ++h) {
      const Index g = kv_head_of(h);
      const double den = streams_[static_cast<std::size_t>(h)].step_denominator(
          VectorRef<T>(row_of(q, h)), VectorRef<T>(row_of(k, g)), log_gate ? (*log_gate)[h] : 0.0);
      detail::require_positive_normalizers(Eigen::Matrix<double, 1, 1>(den), tokens_seen(), degree(), kernel());
    }
  }
  const double work = static_cast<double>(H) * static_cast<double>(dim()) * static_cast<double>(dv());
  const int workers = work >= static_cast<double>(1 << 20) ? threads_ : 1;
  for_heads(workers, [&](Index h) {
    const Index g = kv_head_of(h);
    Eigen::Map<Eigen::VectorXd> o(out.data() + h * out.outerStride(), dv());
    streams_[static_cast<std::size_t>(h)].step(VectorRef<T>(row_of(q, h)), VectorRef<T>(row_of(k, g)),
                                               VectorRef<T>(row_of(v, g)), o, log_gate ? (*log_gate)[h] : 0.0);
  });
}

void MultiHeadCausalStream::step(const MatrixRef<float>& q, const MatrixRef<float>& k, const MatrixRef<float>& v,
                                 Eigen::Ref<RowMatrix<double>> out, const VectorRef<double>* log_gate) {
  step_impl(q, k, v, out, log_gate);
}
void MultiHeadCausalStream::step(const MatrixRef<double>& q, const MatrixRef<double>& k, const MatrixRef<double>& v,
                                 Eigen::Ref<RowMatrix<double>> out, const VectorRef<double>* log_gate) {
  step_impl(q, k, v, out, log_gate);
}

void MultiHeadCausalStream::set_state(const std::vector<MatrixRef<double>>& M, const std::vector<VectorRef<double>>& s,
                                      std::optional<std::uint64_t> tokens) {
  const Index H = heads();
  require(static_cast<Index>(M.size()) == H && static_cast<Index>(s.size()) == H,
          "set_state needs one M and one s per query head (", H, "), got ", M.size(), " and ", s.size());
  for (Index h = 0; h < H; ++h) {
    const auto& st = streams_[static_cast<std::size_t>(h)];
    require(!st.has_probes() && !st.has_output_sketch(),
            "set_state: a stream with probes or an output sketch cannot take a state from outside");
    st.state().check_assign(M[static_cast<std::size_t>(h)], s[static_cast<std::size_t>(h)]);
  }
  require(!tokens || *tokens >= 1, "a state stands for at least one absorbed row (tokens >= 1), got tokens = 0");
  for (Index h = 0; h < H; ++h)
    streams_[static_cast<std::size_t>(h)].set_state(M[static_cast<std::size_t>(h)], s[static_cast<std::size_t>(h)],
                                                    tokens);
}

std::size_t MultiHeadCausalStream::nbytes() const {
  std::size_t b = 0;
  for (const auto& s : streams_) b += s.nbytes();
  return b;
}

std::string MultiHeadCausalStream::repr() const {
  const Normalizer& nz = normalizer();
  return message("MultiHeadCausalStream(heads=", heads(), ", kv_heads=", kv_heads_, ", d=", d(), ", dv=", dv(),
                 ", degree=", degree(), ", kernel='", feature_kernel_name(kernel()), "', scale=", scale(),
                 ", t=", dim(), nz.eps != 0.0 ? message(", eps=", nz.eps) : "", nz.normalize ? "" : ", normalize=False",
                 ", chunk=", chunk(), ", tokens_seen=", tokens_seen(), ", threads=", threads_, ", nbytes=", nbytes(),
                 ")");
}

std::vector<std::uint8_t> MultiHeadCausalStream::to_bytes() const {
  ByteWriter w(ObjectKind::multi_head_causal_stream);
  w.u64(static_cast<std::uint64_t>(heads()));
  w.u64(static_cast<std::uint64_t>(kv_heads_));
  for (const auto& s : streams_) w.blob(s.to_bytes());
  return w.finish();
}

MultiHeadCausalStream MultiHeadCausalStream::from_bytes(const std::uint8_t* data, std::size_t size) {
  ByteReader r(data, size, ObjectKind::multi_head_causal_stream);
  const std::uint64_t heads = r.u64(), kv_heads = r.u64();
  r.check(heads >= 1 && heads <= 4096 && kv_heads >= 1 && heads % kv_heads == 0, "head counts out of range");
  MultiHeadCausalStream m;
  m.kv_heads_ = static_cast<Index>(kv_heads);

  m.streams_.reserve(static_cast<std::size_t>(heads));
  for (std::uint64_t h = 0; h < heads; ++h) {
    const std::vector<std::uint8_t> blob = r.blob();
    try {
      m.streams_.push_back(CausalStream::from_bytes(blob.data(), blob.size()));
    } catch (const std::invalid_argument& e) {
      r.check(false, message("head ", h, ": ", e.what()));
    }
    const CausalStream& s = m.streams_.back();
    const CausalStream& s0 = m.streams_.front();
    r.check(!s.has_probes() && !s.has_output_sketch(), "a head has probes or an output sketch");
    r.check(s.d() == s0.d() && s.dv() == s0.dv() && s.degree() == s0.degree() && s.scale() == s0.scale() &&
                s.kernel() == s0.kernel() && s.chunk() == s0.chunk() && s.tokens_seen() == s0.tokens_seen() &&
                s.normalizer().eps == s0.normalizer().eps && s.normalizer().normalize == s0.normalizer().normalize,
            "heads disagree on their parameters or token counts");
  }
  r.finish();
  m.set_threads(0);
  return m;
}

}  // namespace streamattn
