// streamattn/core/build_info.hpp — what this build is: version, compiler, kernel paths.
#pragma once

#include <string>

namespace streamattn {

/// Library version "MAJOR.MINOR.PATCH".
std::string version();
/// Compiler id and version the library was built with, e.g. "GNU 12.2.0".
std::string compiler();
/// Eigen version the library was built with, e.g. "3.4.1".
std::string eigen_version();

}  // namespace streamattn
