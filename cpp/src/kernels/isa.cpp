// Run-time choice of the kernel path. Compiled for the baseline CPU.
#include "streamattn/kernels/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "streamattn/core/common.hpp"
#include "streamattn/kernels/hash_kernels.hpp"

namespace streamattn {
namespace {

bool cpu_has(const char* feature) {
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const std::string f(feature);
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (f == "avx512ifma") return __builtin_cpu_supports("avx512ifma");
  return false;
#else
  (void)feature;
  return false;
#endif
}

bool isa_usable(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2:
#if defined(STREAMATTN_HAVE_AVX2)
      return cpu_has("avx2");
#else
      return false;
#endif
    case Isa::avx512:
#if defined(STREAMATTN_HAVE_AVX512)
      return cpu_has("avx512f") && cpu_has("avx512dq");
#else
      return false;
#endif
  }
  return false;
}

std::atomic<int> g_isa{-1};
std::mutex g_isa_mutex;

Isa best_isa() {
  const auto av = available_isas();
  return av.back();
}

Isa environment_isa() {
  const char* env = std::getenv("STREAMATTN_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  Isa isa;
  try {
    isa = parse_isa(env);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(message("STREAMATTN_ISA=", env, " is not an ISA name; use scalar, avx2 or avx512"));
  }
  require(isa_usable(isa), "STREAMATTN_ISA=", env, " is not available on this CPU or build; available: ", [] {
    std::string s;
    for (Isa i : available_isas()) s += std::string(s.empty() ? "" : ", ") + isa_name(i);
    return s;
  }());
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument(message("unknown ISA '", name, "'; use scalar, avx2 or avx512"));
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out{Isa::scalar};
#if defined(STREAMATTN_HAVE_AVX2)
  out.push_back(Isa::avx2);
#endif
#if defined(STREAMATTN_HAVE_AVX512)
  out.push_back(Isa::avx512);
#endif
  return out;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : compiled_isas())
    if (isa_usable(isa)) out.push_back(isa);
  return out;
}

Isa current_isa() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    std::lock_guard<std::mutex> lock(g_isa_mutex);
    v = g_isa.load(std::memory_order_relaxed);
    if (v < 0) {
      v = static_cast<int>(environment_isa());
      g_isa.store(v, std::memory_order_release);
    }
  }
  return static_cast<Isa>(v);
}

void set_isa(Isa isa) {
  std::string avail;
  for (Isa i : available_isas()) avail += std::string(avail.empty() ? "" : ", ") + isa_name(i);
  require(isa_usable(isa), "ISA '", isa_name(isa), "' is not available on this CPU or build; available: ", avail);
  g_isa.store(static_cast<int>(isa), std::memory_order_release);
}

void reset_isa_from_environment() {
  std::lock_guard<std::mutex> lock(g_isa_mutex);
  g_isa.store(static_cast<int>(environment_isa()), std::memory_order_release);
}

std::vector<std::string> cpu_features() {
  std::vector<std::string> out;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512dq", "avx512ifma"})
    if (cpu_has(f)) out.emplace_back(f);
  return out;
}

namespace detail {
const HashKernels& hash_kernels() {
  switch (current_isa()) {
#if defined(STREAMATTN_HAVE_AVX512)
    case Isa::avx512: return hash_kernels_avx512;
#endif
#if defined(STREAMATTN_HAVE_AVX2)
    case Isa::avx2: return hash_kernels_avx2;
#endif
    default: return hash_kernels_scalar;
  }
}
}  // namespace detail

}  // namespace streamattn
