// Facts about the machine and the build, gathered once, for the Manifest's toolchain.* and
// hardware.* fields. Anything that cannot be read is recorded as unknown with the reason.
#pragma once
#include <string>

#include "quantbench/core/manifest.h"

namespace qb {

std::string cpu_model_name();         // from /proc/cpuinfo; "unknown" if unreadable
std::string cpu_feature_summary();    // the SIMD features quantbench cares about, e.g. "avx2 fma f16c avx512f avx512bw"

// Fills toolchain.compiler, toolchain.flags, harness.quantbench_version, harness.git_commit,
// hardware.cpu and hardware.threads (the threads argument is what the run uses).
void add_build_and_host_facts(Manifest& m, int threads);

}  // namespace qb
