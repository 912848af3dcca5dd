#include "streamattn/hash/scatter.hpp"

#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn::detail {

void scatter_rows(double* table, std::size_t columns, const std::int64_t* bucket, const double* sign, std::size_t m,
                  const double* x, std::size_t ld) {
  hash_kernels().add_rows(table, columns, bucket, sign, m, x, ld);
}

void scatter_bits(double* cells, int bits, std::size_t columns, const std::uint64_t* keys, const std::int64_t* bucket,
                  const double* sign, std::size_t m, const double* x, std::size_t ld) {
  hash_kernels().add_bits(cells, bits, columns, keys, bucket, sign, m, x, ld);
}

std::size_t count_beyond(const double* table, std::size_t buckets, std::size_t stride, std::size_t cols,
                         const std::int64_t* bucket, std::size_t ld_bucket, std::size_t R, std::size_t m,
                         const double* tau, std::size_t need, std::uint64_t* out) {
  return hash_kernels().count_beyond(table, buckets, stride, cols, bucket, ld_bucket, R, m, tau, need, out);
}

}  // namespace streamattn::detail
