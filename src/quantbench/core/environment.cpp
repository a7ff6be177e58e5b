#include "quantbench/core/environment.h"

#include <fstream>
#include <sstream>

#include "quantbench/core/build_info.h"

namespace qb {

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string cpu_feature_summary() {
  std::string out;
  auto add = [&](bool has, const char* name) {
    if (!has) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
#if defined(__x86_64__)
  __builtin_cpu_init();
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vnni"), "avx512vnni");
#endif
  return out.empty() ? "none detected" : out;
}

void add_build_and_host_facts(Manifest& m, int threads) {
  m.set("harness.quantbench_version", build::kVersion);
  if (std::string(build::kGitCommit) == "unknown") m.set_unknown("harness.git_commit", "built outside a git checkout");
  else m.set("harness.git_commit", build::kGitCommit);
  m.set("toolchain.compiler", build::kCompiler);
  m.set("toolchain.flags", std::string(build::kBuildType) + ": " + build::kCxxFlags);
  const std::string cpu = cpu_model_name();
  if (cpu == "unknown") m.set_unknown("hardware.cpu", "/proc/cpuinfo has no model name");
  else m.set("hardware.cpu", cpu + " [" + cpu_feature_summary() + "]");
  m.set("hardware.threads", std::to_string(threads));
}

}  // namespace qb
