// CPU feature probe for the matmul kernels: __builtin_cpu_supports reads CPUID (and the OS's
// XSAVE state) once; the selection is a function-local constant, so there is no mutable global.
#include "quantbench/runtime/cpu/matmul_isa.h"

#include <cstdlib>
#include <string>

#include "quantbench/core/error.h"

namespace qb::runtime::cpu {

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return "scalar";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

std::optional<CpuIsa> parse_cpu_isa(std::string_view name) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
    if (name == cpu_isa_name(isa)) return isa;
  return std::nullopt;
}

bool cpu_isa_supported(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case CpuIsa::Scalar: return true;
    case CpuIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CpuIsa::Avx512:
      return cpu_isa_supported(CpuIsa::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return isa == CpuIsa::Scalar;
#endif
}

void check_cpu_isa(CpuIsa isa, std::string_view what) {
  QB_CHECK(cpu_isa_supported(isa), "{}: this CPU cannot run {} kernels", what, cpu_isa_name(isa));
}

std::vector<CpuIsa> supported_cpu_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
    if (cpu_isa_supported(isa)) out.push_back(isa);
  return out;
}

namespace {
CpuIsa choose_isa() {
  if (const char* env = std::getenv("QB_CPU_ISA"); env && *env) {
    const std::string want(env);
    const auto isa = parse_cpu_isa(want);
    QB_CHECK(isa.has_value(), "QB_CPU_ISA={}: unknown (expected scalar, avx2 or avx512)", want);
    QB_CHECK(cpu_isa_supported(*isa), "QB_CPU_ISA={}: this CPU does not support it", want);
    return *isa;
  }
  return supported_cpu_isas().back();
}
}  // namespace

CpuIsa selected_cpu_isa() {
  static const CpuIsa isa = choose_isa();
  return isa;
}

}  // namespace qb::runtime::cpu
