// RunStore: one run directory and the SQLite file that holds every Result it produced.
//
//   RUN/plan.toml        a copy of the plan text the run was started with
//   RUN/artifacts/       files evaluators write (quantized models, generations, ...)
//   RUN/results.sqlite   runs, results, their manifests, metrics and per-item records
//   RUN/reports/         what `quantbench report` writes by default
//
// Design choice: per-item records are appended in their own small transactions as each item completes,
// keyed by (result id, item key) with INSERT OR IGNORE, so a killed sweep resumes where it stopped and
// a resumed run never counts an item twice (DESIGN.md, "Nothing is lost"). The schema carries a version
// and is upgraded by numbered migrations; a file from a newer quantbench is refused, not guessed at.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quantbench/core/result.h"

struct sqlite3;

namespace qb::report {

inline constexpr const char* kPlanFile = "plan.toml";
inline constexpr const char* kDatabaseFile = "results.sqlite";
inline constexpr int kSchemaVersion = 1;  // the version this build writes; migrations bring older files up

struct RunInfo {
  std::string dir;
  std::string id;
  std::string created;      // UTC, ISO 8601
  std::string plan_sha256;
  std::string plan_text;
  std::string status;       // "running", "complete", "failed", or what set_status wrote
};

// A Result as stored: its row id, the candidate label it was recorded under and whether it finished.
struct StoredResult {
  int64_t id = 0;
  std::string candidate;
  bool finished = false;
  Result result;
};

class RunStore {
 public:
  // Makes DIR (which must not already hold a run), writes the plan copy and a fresh database.
  static RunStore create(const std::string& dir, const std::string& plan_text);
  // Opens an existing run; throws qb::Error naming the file for a non-run dir, a corrupt database or
  // a schema version newer than this build knows.
  static RunStore open(const std::string& dir);

  RunStore(RunStore&&) noexcept;
  RunStore& operator=(RunStore&&) noexcept;
  ~RunStore();

  const std::string& dir() const { return dir_; }
  std::string artifacts_dir() const { return dir_ + "/artifacts"; }
  std::string reports_dir() const { return dir_ + "/reports"; }
  RunInfo info() const;
  void set_status(const std::string& status);

  // Starts (or, on resume, finds) the result for (regime, task, candidate). Resuming with a different
  // manifest is an error: the items already stored were measured under the old one.
  int64_t begin_result(const std::string& regime, const std::string& task, const std::string& candidate,
                       const Manifest& manifest, const std::string& misses = "");
  // Appends one per-item record in its own transaction. Returns false (and stores nothing) when the
  // key is already present, i.e. the item was done before a resume.
  bool append_item(int64_t result_id, const std::string& item_key, const nlohmann::json& record);
  // The item keys already stored for a result, for resumption.
  std::set<std::string> done_items(int64_t result_id) const;
  // The stored records by item key, for evaluators that restore finished items on resume.
  std::map<std::string, nlohmann::json> item_records(int64_t result_id) const;
  // Records the aggregated metrics (replacing any from an earlier attempt) and marks the result finished.
  void finish_result(int64_t result_id, const std::vector<Metric>& metrics);

  // Every result, in the order begun, with its manifest, metrics and items (in append order). Object
  // records that lack a "key" field get one holding their item key, so consumers can pair items.
  std::vector<StoredResult> load_results() const;

 private:
  RunStore(std::string dir, sqlite3* db) : dir_(std::move(dir)), db_(db) {}
  std::string db_path() const { return dir_ + "/" + kDatabaseFile; }
  std::string dir_;
  sqlite3* db_ = nullptr;
};

}  // namespace qb::report
