// Stop strings of generation tasks (lm-eval's `until`), shared by the scored generation tasks and the
// code regime so both cut a continuation by the same rule.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace qb::eval {

// Earliest position of any non-empty stop string in text (npos if none): "has the model emitted a stop?"
size_t first_stop(const std::string& text, const std::vector<std::string>& stops);

// lm-eval's cut: `for term in until: s = s.split(term)[0]`, empty terms skipped. It equals cutting at
// first_stop unless a later stop straddles an earlier stop's position.
std::string cut_at_stops(const std::string& text, const std::vector<std::string>& stops);

}  // namespace qb::eval
