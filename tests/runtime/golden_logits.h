// Compares a backend's logits with golden logits from Hugging Face transformers (made by
// tests/golden/logits/make_golden.py, which loads the same GGUF). The tolerance is relative to the
// row's scale: max |Δlogit| over the stored columns <= 1e-4 × RMS(golden row).
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>

#include "quantbench/runtime/backend.h"

namespace qb::test {

inline nlohmann::json load_golden(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return nlohmann::json::parse(in);
}

// Runs every golden prompt in one batched forward per prompt and checks the stored rows.
// Returns the worst max|Δ| / RMS seen.
inline double expect_matches_golden(runtime::Backend& backend, const nlohmann::json& golden, double tol = 1e-4) {
  double worst = 0;
  const auto& cols_j = golden["columns"];
  for (const auto& pr : golden["prompts"]) {
    const std::vector<int32_t> ids = pr["ids"].get<std::vector<int32_t>>();
    // Logits only at the stored positions: the output matrix is most of the cost for a large vocabulary
    // on the reference path (Gemma 3's 262144 rows), and the other rows are not checked.
    std::vector<size_t> row_of(ids.size(), SIZE_MAX);
    for (const auto& row : pr["rows"]) row_of.at(row["pos"].get<size_t>()) = 0;
    const runtime::SeqId seq = backend.create_sequence();
    runtime::Batch b;
    size_t n_rows = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (row_of[i] != SIZE_MAX) row_of[i] = n_rows++;
      b.add(ids[i], seq, int64_t(i), row_of[i] != SIZE_MAX);
    }
    const runtime::Logits lg = backend.forward(b);
    backend.free_sequence(seq);
    EXPECT_EQ(lg.rows(), n_rows);
    for (const auto& row : pr["rows"]) {
      const size_t pos = row["pos"].get<size_t>();
      const auto ours = lg.row(row_of[pos]);
      const auto want = row["logits"].get<std::vector<double>>();
      const double rms = row["rms"].get<double>();
      double max_d = 0;
      size_t at = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        const size_t c = cols_j.is_null() ? i : cols_j[i].get<size_t>();
        const double dlt = std::fabs(double(ours[c]) - want[i]);
        if (dlt > max_d) max_d = dlt, at = c;
      }
      size_t am = 0;
      for (size_t c = 1; c < ours.size(); ++c)
        if (ours[c] > ours[am]) am = c;
      EXPECT_EQ(int64_t(am), row["argmax"].get<int64_t>()) << pr["name"] << " pos " << pos;
      EXPECT_LE(max_d, tol * rms) << backend.name() << " prompt " << pr["name"] << " pos " << pos
                                  << ": max |dlogit| " << max_d << " at column " << at << ", rms " << rms;
      worst = std::max(worst, max_d / rms);
    }
  }
  return worst;
}

}  // namespace qb::test
