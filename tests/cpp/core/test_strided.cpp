// core/strided.hpp: rows_of reads rows whose entries are adjacent in place (any row stride) and
// packs (and converts) the others into the tile; write_rows writes rows into strided slices.
#include <catch2/catch.hpp>

#include <vector>

#include "streamattn/core/strided.hpp"

using namespace streamattn;

namespace {
/// A 7 x 5 slice of a buffer of n values i + 0.5 (i the element's offset).
template <class T>
std::vector<T> ramp(Index n) {
  std::vector<T> b(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) b[static_cast<std::size_t>(i)] = static_cast<T>(i) + T(0.5);
  return b;
}
}  // namespace

TEST_CASE("rows_of: in place for adjacent entries of the same type, packed otherwise", "[strided]") {
  const std::vector<float> f = ramp<float>(400);
  const std::vector<double> g = ramp<double>(400);
  const Index a = 2, r = 4;
  struct Slice {
    Index row_stride, col_stride;
    bool in_place;
  };
  // Contiguous rows, rows with gaps (a (T, H, d) head's rows), entries with gaps.
  for (const Slice& c : {Slice{5, 1, true}, Slice{40, 1, true}, Slice{40, 3, false}}) {
    CAPTURE(c.row_stride, c.col_stride);
    const StridedRows sf(f.data(), ScalarType::float32, 7, 5, c.row_stride, c.col_stride);
    const StridedRows sg(g.data(), ScalarType::float64, 7, 5, c.row_stride, c.col_stride);
    RowMatrix<float> tf;
    RowMatrix<double> tg;
    const auto vf = rows_of<float>(sf, a, r, tf);
    const auto vg = rows_of<double>(sg, a, r, tg);
    REQUIRE((vf.data() == f.data() + a * c.row_stride) == c.in_place);
    REQUIRE((vf.data() == tf.data()) == !c.in_place);
    REQUIRE((vg.data() == g.data() + a * c.row_stride) == c.in_place);
    RowMatrix<double> tc;  // float32 rows read as float64: always converted into the tile
    const auto vc = rows_of<double>(sf, a, r, tc);
    REQUIRE(vc.data() == tc.data());
    for (Index i = 0; i < r; ++i)
      for (Index j = 0; j < 5; ++j) {
        const Index at = (a + i) * c.row_stride + j * c.col_stride;
        REQUIRE(vf(i, j) == f[static_cast<std::size_t>(at)]);
        REQUIRE(vg(i, j) == g[static_cast<std::size_t>(at)]);
        REQUIRE(vc(i, j) == static_cast<double>(f[static_cast<std::size_t>(at)]));
      }
  }
}

TEST_CASE("write_rows writes into strided float32 and float64 slices, leaving the gaps", "[strided]") {
  RowMatrix<double> rows(3, 4);
  for (Index i = 0; i < rows.size(); ++i) rows.data()[i] = 0.25 + static_cast<double>(i);
  for (Index cs : {1, 2}) {
    CAPTURE(cs);
    std::vector<float> f(200, -1.0f);
    std::vector<double> g(200, -1.0);
    write_rows(rows, MutableStridedRows(f.data(), ScalarType::float32, 6, 4, 20, cs), 2);
    write_rows(rows, MutableStridedRows(g.data(), ScalarType::float64, 6, 4, 20, cs), 2);
    Index written = 0;
    for (Index i = 0; i < 3; ++i)
      for (Index j = 0; j < 4; ++j) {
        const auto at = static_cast<std::size_t>((2 + i) * 20 + j * cs);
        REQUIRE(f[at] == static_cast<float>(rows(i, j)));
        REQUIRE(g[at] == rows(i, j));
      }
    for (std::size_t e = 0; e < f.size(); ++e) written += (f[e] != -1.0f) + (g[e] != -1.0);
    REQUIRE(written == 2 * 3 * 4);
  }
}
