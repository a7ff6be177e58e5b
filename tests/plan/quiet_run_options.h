// RunOptions for the plan tests: output in `out`, no progress bars, log lines dropped.
#pragma once
#include <string>

#include "quantbench/plan/run_plan.h"

namespace qb::test {

inline plan::RunOptions quiet_options(const std::string& out) {
  plan::RunOptions o;
  o.out = out;
  o.progress = false;
  o.log = [](const std::string&) {};
  return o;
}

}  // namespace qb::test
