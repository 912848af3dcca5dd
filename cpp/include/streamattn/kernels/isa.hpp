// streamattn/kernels/isa.hpp — which instruction-set path the per-ISA kernels run on.
//
// The library is compiled for a baseline CPU. Faster kernels live in their own translation
// units compiled with target flags (cpp/src/kernels/*_{scalar,avx2,avx512}.cpp) and are chosen
// once at run time from CPUID. Every path gives bit-identical results.
//
// The environment variable STREAMATTN_ISA ("scalar", "avx2" or "avx512"), read on first use,
// forces a path; naming one this CPU lacks is an error (std::invalid_argument).
#pragma once

#include <string>
#include <vector>

namespace streamattn {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

/// "scalar", "avx2" or "avx512".
const char* isa_name(Isa isa);

/// Parses an ISA name; throws std::invalid_argument for an unknown one.
Isa parse_isa(const std::string& name);

/// The paths compiled into this build (scalar always).
std::vector<Isa> compiled_isas();

/// The compiled paths this CPU (and OS) can run, slowest first.
std::vector<Isa> available_isas();

/// The path in use now: STREAMATTN_ISA if set, else the best available.
Isa current_isa();

/// Forces a path; throws std::invalid_argument if it is not available on this CPU.
void set_isa(Isa isa);

/// Re-reads STREAMATTN_ISA (or picks the best path when unset). Throws for a bad value.
void reset_isa_from_environment();

/// CPU features seen at run time, e.g. {"avx2", "fma", "avx512f", "avx512ifma"}.
std::vector<std::string> cpu_features();

}  // namespace streamattn
