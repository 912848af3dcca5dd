// MultiHeadCausalStream::update_layout: (heads, T, d), (B, T, H, d) and (B, H, T, d) arrays of
// any positive strides give, bit for bit, the rows of update() on the same rows packed
// contiguously; bad ranks, shapes, strides and head counts throw and change nothing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "../helpers.hpp"
#include "streamattn/core/strided.hpp"
#include "streamattn/stream/multi_head_stream.hpp"

using namespace streamattn;

namespace {

/// An owning N-D array of T with strides chosen by a physical axis order (`order`, outermost
/// first) and `pad` unused elements after every axis (pad > 0 makes the rows non-contiguous,
/// and pads the innermost axis too: element stride 1 + pad there when `step` is set).
template <class T>
struct Array {
  std::vector<Index> shape, strides;
  std::vector<T> buf;

  Array(std::vector<Index> shape_, const std::vector<int>& order, Index pad, bool step = false)
      : shape(std::move(shape_)), strides(shape.size()) {
    Index s = step ? 1 + pad : 1;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      strides[static_cast<std::size_t>(*it)] = s;
      s *= shape[static_cast<std::size_t>(*it)] + pad;
    }
    buf.assign(static_cast<std::size_t>(s + 1), T(-7));  // sentinel in the gaps
  }
  T& at(const std::vector<Index>& idx) {
    Index o = 0;
    for (std::size_t i = 0; i < idx.size(); ++i) o += idx[i] * strides[i];
    return buf[static_cast<std::size_t>(o)];
  }
  StridedArray view() const { return {buf.data(), scalar_type_of<T>(), shape, strides}; }
  MutableStridedArray out() { return {buf.data(), scalar_type_of<T>(), shape, strides}; }
};

/// Index vector of (batch b, head h, token t, feature f) in a layout (features last).
std::vector<Index> index_of(HeadLayout l, Index b, Index h, Index t, Index f, bool features = true) {
  std::vector<Index> idx;
  if (l == HeadLayout::heads) idx = {h, t};
  if (l == HeadLayout::batch_tokens_heads) idx = {b, t, h};
  if (l == HeadLayout::batch_heads_tokens) idx = {b, h, t};
  if (features) idx.push_back(f);
  return idx;
}

std::vector<Index> shape_of(HeadLayout l, Index B, Index H, Index n, Index c, bool features = true) {
  return index_of(l, B, H, n, c, features);
}

struct Case {
  HeadLayout layout;
  std::vector<int> order;  // physical axis order of every 4-D (3-D) array
  Index pad;
  bool step;
};

/// The per-head data of one test: query heads, kv heads, gates (stream head order).
struct Data {
  Index B, Hq, Hk, n, d, dv;
  std::vector<RowMatrix<double>> q, k, v;
  RowMatrix<double> gate;
};

Data make_data(Index B, Index Hq, Index Hk, Index n, Index d, Index dv, std::uint64_t seed) {
  Data x{B, Hq, Hk, n, d, dv, {}, {}, {}, RowMatrix<double>()};
  for (Index h = 0; h < B * Hq; ++h) x.q.push_back(test::normal_matrix(n, d, seed + static_cast<std::uint64_t>(h)));
  for (Index g = 0; g < B * Hk; ++g) {
    x.k.push_back(test::normal_matrix(n, d, seed + 100 + static_cast<std::uint64_t>(g)));
    x.v.push_back(test::normal_matrix(n, dv, seed + 200 + static_cast<std::uint64_t>(g)));
  }
  x.gate = -test::normal_matrix(B * Hq, n, seed + 300).cwiseAbs() * 0.1;
  return x;
}

/// The reference rows: update() on contiguous per-head matrices of type T (heads * n x dv).
template <class T>
RowMatrix<double> reference(const Data& x, bool gated, Index chunk) {
  MultiHeadCausalStream s(x.B * x.Hq, x.B * x.Hk, x.d, x.dv, 2, std::nullopt, chunk, 0, FeatureKernel::taylor,
                          Normalizer{1e-6, true}, 1);
  std::vector<RowMatrix<T>> q, k, v;
  for (const auto& m : x.q) q.push_back(m.cast<T>());
  for (const auto& m : x.k) k.push_back(m.cast<T>());
  for (const auto& m : x.v) v.push_back(m.cast<T>());
  std::vector<MatrixRef<T>> Q(q.begin(), q.end()), K(k.begin(), k.end()), V(v.begin(), v.end());
  const MatrixRef<double> G(x.gate);
  RowMatrix<double> rows;
  s.update(Q, K, V, gated ? &G : nullptr, &rows);
  return rows;
}

template <class T>
Array<T> fill(const Data& x, const Case& c, const std::vector<RowMatrix<double>>& heads, Index per, Index cols) {
  const Index B = c.layout == HeadLayout::heads ? 1 : x.B;
  const Index H = c.layout == HeadLayout::heads ? x.B * per : per;
  Array<T> a(shape_of(c.layout, B, H, x.n, cols), c.order, c.pad, c.step);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < x.n; ++t)
        for (Index f = 0; f < cols; ++f)
          a.at(index_of(c.layout, b, h, t, f)) = static_cast<T>(heads[static_cast<std::size_t>(b * H + h)](t, f));
  return a;
}

/// Runs update_layout on arrays in case c (Q of type TQ, K and V of type TK, out of type O) and
/// checks every row against the reference bit for bit.
template <class TQ, class TK, class O>
void check_case(const Data& x, const Case& c, bool gated, Index chunk) {
  using T = std::conditional_t<std::is_same_v<TQ, float> && std::is_same_v<TK, float>, float, double>;
  Data y = x;  // the values as the arrays hold them
  for (auto& m : y.q) m = m.cast<TQ>().template cast<double>();
  for (auto& m : y.k) m = m.cast<TK>().template cast<double>();
  for (auto& m : y.v) m = m.cast<TK>().template cast<double>();
  const RowMatrix<double> want = reference<T>(y, gated, chunk);
  const Array<TQ> q = fill<TQ>(x, c, x.q, x.Hq, x.d);
  const Array<TK> k = fill<TK>(x, c, x.k, x.Hk, x.d), v = fill<TK>(x, c, x.v, x.Hk, x.dv);
  const Index B = c.layout == HeadLayout::heads ? 1 : x.B;
  const Index H = c.layout == HeadLayout::heads ? x.B * x.Hq : x.Hq;
  std::vector<int> gorder;  // the gate's physical order: the arrays' without the features axis
  for (int ax : c.order)
    if (ax != static_cast<int>(c.order.size()) - 1) gorder.push_back(ax);
  Array<double> g(shape_of(c.layout, B, H, x.n, 0, false), gorder, c.pad);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < x.n; ++t) g.at(index_of(c.layout, b, h, t, 0, false)) = x.gate(b * H + h, t);
  Array<O> out(shape_of(c.layout, B, H, x.n, x.dv), c.order, c.pad, c.step);
  MultiHeadCausalStream s(x.B * x.Hq, x.B * x.Hk, x.d, x.dv, 2, std::nullopt, chunk, 0, FeatureKernel::taylor,
                          Normalizer{1e-6, true}, 2);
  const StridedArray gv = g.view();
  REQUIRE(s.layout_output_shape(c.layout, q.view(), k.view(), v.view(), gated ? &gv : nullptr) == out.shape);
  s.update_layout(c.layout, q.view(), k.view(), v.view(), gated ? &gv : nullptr, out.out());
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < x.n; ++t)
        for (Index f = 0; f < x.dv; ++f) {
          const double w = want((b * H + h) * x.n + t, f);
          REQUIRE(out.at(index_of(c.layout, b, h, t, f)) == static_cast<O>(w));
        }
  // The gaps between the rows are untouched.
  Index written = 0;
  for (const O& e : out.buf) written += e != O(-7);
  REQUIRE(written <= B * H * x.n * x.dv);
}

std::vector<Case> cases() {
  return {
      {HeadLayout::heads, {0, 1, 2}, 0, false},                  // contiguous (no packing)
      {HeadLayout::heads, {1, 0, 2}, 0, false},                  // (T, heads, d) memory
      {HeadLayout::heads, {0, 1, 2}, 3, true},                   // padded, column stride 4
      {HeadLayout::batch_tokens_heads, {0, 1, 2, 3}, 0, false},  // fla's layout, contiguous
      {HeadLayout::batch_tokens_heads, {0, 2, 1, 3}, 0, false},  // a transposed head_first tensor
      {HeadLayout::batch_tokens_heads, {2, 1, 0, 3}, 2, false},  // batch innermost but one, padded
      {HeadLayout::batch_heads_tokens, {0, 1, 2, 3}, 0, false},  // head_first, contiguous
      {HeadLayout::batch_heads_tokens, {0, 2, 1, 3}, 1, true},   // fla's memory viewed head_first
      {HeadLayout::batch_heads_tokens, {3, 0, 1, 2}, 0, false},  // features outermost
  };
}

}  // namespace

TEST_CASE("update_layout equals update() on packed rows bit for bit: layouts, strides, dtypes", "[layout]") {
  // Odd T over several tiles and a partial chunk; 2 batches of 4 query heads on 2 kv heads.
  const Data x = make_data(2, 4, 2, 301, 3, 5, 11);
  for (const Case& c : cases()) {
    for (bool gated : {false, true}) {
      CAPTURE(static_cast<int>(c.layout), c.order, c.pad, c.step, gated);
      check_case<double, double, double>(x, c, gated, 32);
      check_case<float, float, float>(x, c, gated, 32);
      check_case<float, float, double>(x, c, gated, 7);
      check_case<double, double, float>(x, c, gated, 7);
      check_case<float, double, double>(x, c, gated, 32);  // mixed: computed in float64
    }
  }
}

TEST_CASE("update_layout: rows read in place and rows packed give the same bytes", "[layout]") {
  // fla's (B, T, H, d) layout: features adjacent (read in place, the rows strided by H * d) or
  // every entry one apart (packed into per-thread tiles); outputs and head states must agree
  // bit for bit. Odd T over three tiles and a partial chunk, grouped and ungrouped heads.
  struct Shape {
    Index B, Hq, Hk;
  };
  for (const Shape& sh : {Shape{3, 4, 2}, Shape{2, 3, 3}, Shape{1, 2, 1}}) {
    const Data x = make_data(sh.B, sh.Hq, sh.Hk, 613, 5, 6, 51);
    for (bool gated : {false, true})
      for (int threads : {1, 2})
        for (bool f32 : {true, false}) {
          CAPTURE(sh.B, sh.Hq, sh.Hk, gated, threads, f32);
          auto run = [&](bool packed, auto tag) {
            using T = decltype(tag);
            const Case c{HeadLayout::batch_tokens_heads, {0, 1, 2, 3}, packed ? 1 : 0, packed};
            const Array<T> q = fill<T>(x, c, x.q, x.Hq, x.d);
            const Array<T> k = fill<T>(x, c, x.k, x.Hk, x.d), v = fill<T>(x, c, x.v, x.Hk, x.dv);
            Array<double> g({x.B, x.n, x.Hq}, {0, 1, 2}, 0);
            for (Index b = 0; b < x.B; ++b)
              for (Index h = 0; h < x.Hq; ++h)
                for (Index t = 0; t < x.n; ++t) g.at({b, t, h}) = x.gate(b * x.Hq + h, t);
            Array<T> out({x.B, x.n, x.Hq, x.dv}, c.order, 0);
            MultiHeadCausalStream s(x.B * x.Hq, x.B * x.Hk, x.d, x.dv, 2, std::nullopt, 32, 0, FeatureKernel::taylor,
                                    Normalizer{1e-6, true}, threads);
            const StridedArray gv = g.view();
            s.update_layout(c.layout, q.view(), k.view(), v.view(), gated ? &gv : nullptr, out.out());
            return std::make_pair(out.buf, s.to_bytes());
          };
          if (f32) {
            const auto in_place = run(false, 0.0f), packed = run(true, 0.0f);
            REQUIRE(in_place.first == packed.first);
            REQUIRE(in_place.second == packed.second);
          } else {
            const auto in_place = run(false, 0.0), packed = run(true, 0.0);
            REQUIRE(in_place.first == packed.first);
            REQUIRE(in_place.second == packed.second);
          }
        }
  }
}

TEST_CASE("update_layout: one token, and a short block below one chunk", "[layout]") {
  for (Index n : {1, 5}) {
    const Data x = make_data(3, 2, 1, n, 4, 3, 21);
    for (const Case& c : cases()) {
      check_case<double, double, double>(x, c, true, 32);
      check_case<float, float, float>(x, c, false, 32);
    }
  }
}

// A stream of 4 query heads on 2 kv heads (2 batches x 2 heads in (B, T, H, D)) fed 9 tokens,
// with the arrays it was fed and its bytes after them.
struct Fed {
  explicit Fed(std::uint64_t seed)
      : x(make_data(2, 2, 1, 9, 3, 2, seed)), q(fill<double>(x, c, x.q, 2, 3)), k(fill<double>(x, c, x.k, 1, 3)),
        v(fill<double>(x, c, x.v, 1, 2)), out(shape_of(c.layout, 2, 2, 9, 2), c.order, 0),
        s(4, 2, 3, 2, 2, std::nullopt) {
    s.update_layout(c.layout, q.view(), k.view(), v.view(), nullptr, out.out());
    before = s.to_bytes();
  }
  const Case c{HeadLayout::batch_tokens_heads, {0, 1, 2, 3}, 0, false};
  Data x;
  Array<double> q, k, v, out;
  MultiHeadCausalStream s;
  std::vector<std::uint8_t> before;
};

TEST_CASE("update_layout: zero tokens with the zero strides DLPack gives empty arrays", "[layout]") {
  Fed fed(41);
  auto empty = [](auto a) {
    a.shape[1] = 0;
    std::fill(a.strides.begin(), a.strides.end(), Index{0});
    return a;
  };
  fed.s.update_layout(fed.c.layout, empty(fed.q.view()), empty(fed.k.view()), empty(fed.v.view()), nullptr,
                      empty(fed.out.out()));
  REQUIRE(fed.s.to_bytes() == fed.before);
  REQUIRE(fed.s.tokens_seen() == 9);
}

TEST_CASE("update_layout refuses bad ranks, shapes, strides and head counts, changing nothing", "[layout]") {
  Fed fed(31);
  auto &q = fed.q, &k = fed.k, &v = fed.v, &out = fed.out;
  auto& s = fed.s;
  const auto& c = fed.c;
  const auto& before = fed.before;
  auto expect = [&](const StridedArray& Q, const StridedArray& K, const StridedArray& V, const StridedArray* G,
                    const MutableStridedArray& O, const char* what,
                    HeadLayout layout = HeadLayout::batch_tokens_heads) {
    CAPTURE(what);
    REQUIRE_THROWS_WITH(s.update_layout(layout, Q, K, V, G, O), Catch::Contains(what));
    REQUIRE(s.to_bytes() == before);
  };
  StridedArray bad = q.view();
  bad.shape.pop_back();
  bad.strides.pop_back();
  expect(bad, k.view(), v.view(), nullptr, out.out(), "Q must be 4-D");
  expect(q.view(), k.view(), v.view(), nullptr, out.out(), "Q must be 3-D (heads, tokens, d)", HeadLayout::heads);
  expect(q.view(), k.view(), v.view(), nullptr, out.out(), "K must have Q's batch (2) and tokens (2)",
         HeadLayout::batch_heads_tokens);
  bad = q.view();
  bad.shape[3] = 2;
  expect(bad, k.view(), v.view(), nullptr, out.out(), "Q[0] must be 9 x 3, got 9 x 2");
  bad = q.view();
  bad.strides[1] = 0;
  expect(bad, k.view(), v.view(), nullptr, out.out(), "strides must be > 0");
  bad.strides[1] = -3;
  expect(bad, k.view(), v.view(), nullptr, out.out(), "has stride -3 on axis 1");
  bad = q.view();
  bad.strides.pop_back();
  expect(bad, k.view(), v.view(), nullptr, out.out(), "one stride (in elements) per axis");
  bad = k.view();
  bad.shape[0] = 1;
  expect(q.view(), bad, v.view(), nullptr, out.out(), "K must have Q's batch (2) and tokens (9)");
  bad = k.view();
  bad.shape[2] = 2;  // 2 batches x 2 kv heads, the stream has 2 kv heads
  expect(q.view(), bad, v.view(), nullptr, out.out(), "batch x heads must match the stream");
  bad = v.view();
  bad.shape[3] = 3;
  expect(q.view(), k.view(), bad, nullptr, out.out(), "V[0] must be 9 x 2, got 9 x 3");
  Array<double> g({2, 9, 3}, {0, 1, 2}, 0);
  const StridedArray gv = g.view();
  expect(q.view(), k.view(), v.view(), &gv, out.out(), "log_gate must be (batch, tokens, heads) = (2, 9, 2)");
  Array<double> g2({2, 9, 2}, {0, 1, 2}, 0);
  g2.at({1, 4, 1}) = 0.5;  // a positive log-gate
  const StridedArray gv2 = g2.view();
  expect(q.view(), k.view(), v.view(), &gv2, out.out(), "log_gate");
  MutableStridedArray bo = out.out();
  bo.shape[3] = 3;
  expect(q.view(), k.view(), v.view(), nullptr, bo, "out must have shape (2, 9, 2, 2)");
  bad = q.view();
  bad.data = nullptr;
  expect(bad, k.view(), v.view(), nullptr, out.out(), "no data");
  q.at({0, 3, 1, 2}) = std::numeric_limits<double>::quiet_NaN();
  expect(q.view(), k.view(), v.view(), nullptr, out.out(), "non-finite");

  REQUIRE_THROWS_WITH(head_layout(true, 3), Catch::Contains("head_first=True needs 4-D"));
  REQUIRE_THROWS_WITH(head_layout(false, 2), Catch::Contains("3-D (heads, n, d) or 4-D"));
  REQUIRE(head_layout(true, 4) == HeadLayout::batch_heads_tokens);
  REQUIRE(head_layout(false, 4) == HeadLayout::batch_tokens_heads);
  REQUIRE(head_layout(false, 3) == HeadLayout::heads);
  REQUIRE_THROWS_WITH(MultiHeadCausalStream(6, 4, 3, 2, 2, std::nullopt), Catch::Contains("multiple of kv_heads"));
}

TEST_CASE("kv_head maps query heads onto kv heads, checked; output_dtype", "[layout]") {
  MultiHeadCausalStream s(8, 2, 3, 2, 2, std::nullopt);
  for (Index h = 0; h < 8; ++h) REQUIRE(s.kv_head(h) == h / 4);
  REQUIRE_THROWS_WITH(s.kv_head(8), Catch::Contains("[0, 8)"));
  REQUIRE_THROWS_WITH(s.kv_head(-1), Catch::Contains("[0, 8)"));
  REQUIRE(output_dtype({ScalarType::float32, ScalarType::float32}) == ScalarType::float32);
  REQUIRE(output_dtype({ScalarType::float32, ScalarType::float64, ScalarType::float32}) == ScalarType::float64);
  REQUIRE(output_dtype({ScalarType::float64}) == ScalarType::float64);
  REQUIRE(parse_compute_option(std::nullopt) == ComputeDtype::input);
  REQUIRE(parse_compute_option(std::string("float32")) == ComputeDtype::float32);
  REQUIRE_THROWS_WITH(parse_compute_option(std::string("half")), Catch::Contains("compute must be"));
  REQUIRE(!compute_option_name(ComputeDtype::input));
  REQUIRE(*compute_option_name(ComputeDtype::float64) == "float64");
}
