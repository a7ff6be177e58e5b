// Where tests find bundled data: everything a test needs is in the repository (data/) or fetched by
// scripts/fetch-models into .models/; nothing reads ../shared, which users do not have.
#pragma once
#include <string>

namespace qb::test {
inline std::string source_path(const std::string& rel) { return std::string(QB_SOURCE_DIR) + "/" + rel; }
inline std::string stories260k_path() { return source_path("data/models/stories260K/stories260K.gguf"); }
}  // namespace qb::test
