// ItemHook: lets a caller (the plan runner) keep each evaluated item the moment it is computed and,
// after an interruption, hand the kept items back so they are restored instead of recomputed.
//
// Design choice: the record an evaluator hands out per item is its usual per-item record plus the state
// its aggregates need (per-token values, option scores, generated tokens), so a resumed evaluation
// computes exactly the numbers an uninterrupted one would: nlohmann::json prints doubles in their
// shortest round-trip form, so they come back bit for bit. Without a hook nothing changes.
#pragma once
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "quantbench/core/manifest.h"

namespace qb::eval {

struct ItemHook {
  // Called once, before any item is computed, with the Result's regime, task, complete Manifest and its
  // "what this regime misses" line.
  // Returns the records an earlier attempt stored (item key -> record as given to on_item); those items
  // are restored, not recomputed. May throw (e.g. the manifest differs from the stored one).
  std::function<std::map<std::string, nlohmann::json>(const std::string& regime, const std::string& task,
                                                      const Manifest& manifest, const std::string& misses)>
      begin;
  // Called as each item completes (in item order within a batch), not for restored items.
  std::function<void(const std::string& key, const nlohmann::json& record)> on_item;
};

// Item keys made unique by position where ids repeat ("id", then "id#3" for a later duplicate at index 3).
std::vector<std::string> unique_item_keys(const std::vector<std::string>& ids);

}  // namespace qb::eval
