// unique_item_keys: store keys must be unique per result; ids from data files usually are, but a
// duplicated id must not make a resumed run skip the wrong item.
#include "quantbench/eval/item_hook.h"

#include <set>

namespace qb::eval {

std::vector<std::string> unique_item_keys(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string k = ids[i];
    if (!seen.insert(k).second) {
      k += '#';  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "lit" + string
      k += std::to_string(i);
      seen.insert(k);
    }
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace qb::eval
