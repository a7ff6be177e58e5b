// quantbench command line: each subcommand lives in its own file and registers itself here; errors
// become one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "quantbench/cli/commands.h"
#include "quantbench/core/build_info.h"

int main(int argc, char** argv) {
  CLI::App app{"quantbench: decide whether a quantized LLM is fit to deploy"};
  app.set_version_flag("--version", std::string("quantbench ") + qb::build::kVersion + " (" + qb::build::kGitCommit + ")");
  app.require_subcommand(1);
  qb::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "quantbench: error: %s (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quantbench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
