// Where tests find bundled data: everything a test needs is in the repository (data/) or fetched by
// scripts/fetch-models into .models/; nothing reads ../shared, which users do not have.
#pragma once
#include <cstdlib>
#include <string>

namespace qb::test {
inline std::string source_path(const std::string& rel) { return std::string(QB_SOURCE_DIR) + "/" + rel; }
inline std::string stories260k_path() { return source_path("data/models/stories260K/stories260K.gguf"); }
// scripts/test sets QB_REQUIRE_MODELS=1 after fetching every model the suite uses: a test whose model
// is missing then fails instead of skipping, so CI cannot pass without running it.
inline bool models_required() {
  const char* v = std::getenv("QB_REQUIRE_MODELS");
  return v && std::string(v) == "1";
}
}  // namespace qb::test
