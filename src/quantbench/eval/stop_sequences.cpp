// See stop_sequences.h.
#include "quantbench/eval/stop_sequences.h"

#include <algorithm>

namespace qb::eval {

size_t first_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const auto& s : stops) {
    if (s.empty()) continue;  // lm-eval skips empty terms
    best = std::min(best, text.find(s));
  }
  return best;
}

std::string cut_at_stops(const std::string& text, const std::vector<std::string>& stops) {
  std::string s = text;
  for (const auto& u : stops)
    if (!u.empty()) s = s.substr(0, s.find(u));
  return s;
}

}  // namespace qb::eval
