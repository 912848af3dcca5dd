#include "streamattn/core/strided.hpp"

namespace streamattn {

const char* scalar_type_name(ScalarType t) { return t == ScalarType::float32 ? "float32" : "float64"; }

ScalarType output_dtype(const std::vector<ScalarType>& inputs) {
  for (ScalarType t : inputs)
    if (t != ScalarType::float32) return ScalarType::float64;
  return ScalarType::float32;
}

}  // namespace streamattn
