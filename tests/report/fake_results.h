// Synthetic Results for the report tests. Every number here is made up by the test (clearly fake,
// simple patterns) so each chart and table has data to draw; none of it is a measurement.
#pragma once
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "quantbench/core/manifest.h"
#include "quantbench/core/result.h"

namespace qb::report::test {

// A complete manifest: every schema field set, a few as unknown with a reason.
inline Manifest fake_manifest(const std::string& scheme, const std::string& bpw) {
  Manifest m;
  for (const auto& f : manifest_schema()) m.set(std::string(f.key), "fake-" + std::string(f.key));
  m.set("scheme.name", scheme);
  m.set("scheme.bits_per_weight", bpw);
  m.set("calibration.dataset_sha256", "aaaa1111");
  m.set("harness.task_version", "1");
  m.set_unknown("hardware.gpu", "no GPU in this (fake) run");
  return m;
}

inline Metric metric(std::string name, double v, Direction d, std::optional<double> se = {}) {
  Metric m;
  m.name = std::move(name);
  m.value = v;
  m.direction = d;
  m.aggregation = "mean";
  m.stderr_ = se;
  if (se) m.interval = Interval{v - 1.96 * *se, v + 1.96 * *se, 0.95, "analytic (normal, stderr)"};
  return m;
}

// A fresh, empty directory under the test temp dir.
inline std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "qb_report_" + name;
  std::filesystem::remove_all(d);
  return d;
}

}  // namespace qb::report::test
