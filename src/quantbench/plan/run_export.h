// run_export: a whole run directory as one JSON document (`quantbench runs show RUN --json OUT`), for
// tools that post-process results without reading SQLite.
//
// Design choice: each result is Result::to_json() (the same shape `quantbench eval --json` writes per
// result) plus the store's own fields (row id, candidate label, finished), so one reader serves both
// files; the run's facts (id, dates, status, plan text and sha256) sit beside them. The document is
// written through AtomicFileWriter: a reader never sees half of it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "quantbench/report/store.h"

namespace qb::plan {

inline constexpr const char* kRunJsonSchema = "quantbench.run/1";

// {schema, run: {id, dir, created, status, plan_sha256, plan_text},
//  results: [{id, candidate, finished, regime, task, misses, metrics: [...], items: [...], manifest: {...}}]}
nlohmann::json run_to_json(const report::RunStore& store);

// Opens the run directory `run_dir` and writes run_to_json atomically to `out`.
void write_run_json(const std::string& run_dir, const std::string& out);

}  // namespace qb::plan
