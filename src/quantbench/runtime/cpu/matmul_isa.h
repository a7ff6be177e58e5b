// Which instruction set the fast CPU matmul kernels use. Detected once per process from CPUID and
// cached (highway's and ggml's habit: probe once, dispatch through a table); QB_CPU_ISA=scalar|avx2|
// avx512 forces a lower target (tests, comparisons). The chosen name goes into the Manifest.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

namespace qb::runtime::cpu {

// avx2 = AVX2 + FMA + F16C; avx512 = AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4 and later).
enum class CpuIsa { Scalar, Avx2, Avx512 };

std::string_view cpu_isa_name(CpuIsa isa);
std::optional<CpuIsa> parse_cpu_isa(std::string_view name);  // "scalar" | "avx2" | "avx512"
bool cpu_isa_supported(CpuIsa isa);     // can this machine run kernels compiled for isa?
std::vector<CpuIsa> supported_cpu_isas();  // every supported target, scalar first
// The ISA the Fast path uses: QB_CPU_ISA if set (throws qb::Error if unknown or unsupported here),
// else the best supported. Computed on first call, then constant for the process.
CpuIsa selected_cpu_isa();
// Throws qb::Error ("<what>: this CPU cannot run <isa> kernels") unless this machine can run isa.
void check_cpu_isa(CpuIsa isa, std::string_view what);

// The kernels of one ISA: calls only the accessor for isa (code built for AVX-512, a table's
// initializer included, must never run on a CPU without it), after check_cpu_isa. The three
// accessors return the same type (a kernel table reference, a function pointer).
template <class Scalar, class Avx2, class Avx512>
decltype(auto) for_cpu_isa(CpuIsa isa, std::string_view what, Scalar&& scalar, Avx2&& avx2, Avx512&& avx512) {
  check_cpu_isa(isa, what);
  switch (isa) {
    case CpuIsa::Avx512: return avx512();
    case CpuIsa::Avx2: return avx2();
    case CpuIsa::Scalar: break;
  }
  return scalar();
}

}  // namespace qb::runtime::cpu
