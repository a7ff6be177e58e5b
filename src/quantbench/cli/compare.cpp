// `quantbench compare RUN_A RUN_B`: pair the two runs' results, list manifest differences, rank only
// what is comparable. Exit status 0: every pair comparable and ranked; 3: some pairs refused because
// their methodology differs; 1: an error (unreadable run).
#include <cstdio>
#include <cstdlib>

#include "quantbench/cli/commands.h"
#include "quantbench/report/compare.h"

namespace qb::cli {

void register_compare(CLI::App& app) {
  auto* cmd = app.add_subcommand("compare", "Compare two runs; refuse to rank results whose methodology differs (exit 3)");
  auto a = std::make_shared<std::string>();
  auto b = std::make_shared<std::string>();
  cmd->add_option("run_a", *a, "run directory A")->required();
  cmd->add_option("run_b", *b, "run directory B")->required();
  cmd->callback([a, b] {
    int code = 0;
    {
      const auto ra = report::RunStore::open(*a).load_results();
      const auto rb = report::RunStore::open(*b).load_results();
      const auto c = report::compare_results(ra, rb);
      std::fputs(report::render_comparison_text(c, *a, *b).c_str(), stdout);
      code = c.exit_code();
    }
    // main() maps exceptions to 1; a refusal is not an error, so it leaves through its own status.
    if (code != 0) {
      std::fflush(stdout);
      std::exit(code);
    }
  });
}

}  // namespace qb::cli
