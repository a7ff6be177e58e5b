// run_export: the store's results, in load order, wrapped with the run's facts.
#include "quantbench/plan/run_export.h"

#include "quantbench/core/mapped_file.h"

namespace qb::plan {

nlohmann::json run_to_json(const report::RunStore& store) {
  const report::RunInfo info = store.info();
  nlohmann::json results = nlohmann::json::array();
  for (const auto& sr : store.load_results()) {
    nlohmann::json j = sr.result.to_json();
    j["id"] = sr.id;
    j["candidate"] = sr.candidate;
    j["finished"] = sr.finished;
    results.push_back(std::move(j));
  }
  return {{"schema", kRunJsonSchema},
          {"run",
           {{"id", info.id},
            {"dir", info.dir},
            {"created", info.created},
            {"status", info.status},
            {"plan_sha256", info.plan_sha256},
            {"plan_text", info.plan_text}}},
          {"results", std::move(results)}};
}

void write_run_json(const std::string& run_dir, const std::string& out) {
  const auto store = report::RunStore::open(run_dir);
  const std::string text = run_to_json(store).dump(2) + "\n";
  AtomicFileWriter w(out);
  w.write(text.data(), text.size());
  w.commit();
}

}  // namespace qb::plan
