// streamattn/hash/scatter.hpp — the loops that follow a hash in the hashed sketches, on the ISA
// selected in streamattn/kernels/isa.hpp (every path gives the same bits). Internal to the library.
//
// x holds m rows of `columns` doubles, row i at x + i*ld. Every counter receives its terms in the
// order i = 0, 1, ..., each by one addition of sign[i] * x (sign[i] = ±1, so the product is exact).
#pragma once

#include <cstddef>
#include <cstdint>

namespace streamattn::detail {

/// CountSketch rows: table[bucket[i]*columns + c] += sign[i] * x_i[c].
void scatter_rows(double* table, std::size_t columns, const std::int64_t* bucket, const double* sign, std::size_t m,
                  const double* x, std::size_t ld);

/// Sparse-recovery bit tests, counters in (bucket, bit, column) order with `bits` bits: for every
/// bit t set in keys[i], cells[(bucket[i]*bits + t)*columns + c] += sign[i] * x_i[c]. A row of
/// zeros adds nothing.
void scatter_bits(double* cells, int bits, std::size_t columns, const std::uint64_t* keys, const std::int64_t* bucket,
                  const double* sign, std::size_t m, const double* x, std::size_t ld);

/// The standard sparse decoder's screen: for key i < m and column c < cols, the number of rows
/// r < R whose counter |table[(r*buckets + bucket[r*ld_bucket + i])*stride + c]| exceeds tau[c].
/// Writes i*cols + c for every pair with at least `need` such rows to out (increasing; room for
/// m*cols entries), returns how many.
std::size_t count_beyond(const double* table, std::size_t buckets, std::size_t stride, std::size_t cols,
                         const std::int64_t* bucket, std::size_t ld_bucket, std::size_t R, std::size_t m,
                         const double* tau, std::size_t need, std::uint64_t* out);

}  // namespace streamattn::detail
