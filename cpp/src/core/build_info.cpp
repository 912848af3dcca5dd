#include "streamattn/core/build_info.hpp"

#include <Eigen/Core>

#include "streamattn/core/common.hpp"

namespace streamattn {

std::string version() { return STREAMATTN_VERSION_STRING; }

std::string compiler() {
#if defined(__clang__)
  return message("Clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  return message("GNU ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#elif defined(_MSC_VER)
  return message("MSVC ", _MSC_VER);
#else
  return "unknown";
#endif
}

std::string eigen_version() { return message(EIGEN_WORLD_VERSION, ".", EIGEN_MAJOR_VERSION, ".", EIGEN_MINOR_VERSION); }

}  // namespace streamattn
