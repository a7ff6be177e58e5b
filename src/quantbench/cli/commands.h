// Subcommand registration. Each subcommand file defines one register_<name>(CLI::App&) that adds its
// options and a callback; the callback does its work through library calls only.
#pragma once
#include <CLI/CLI.hpp>

namespace qb::cli {
void register_inspect(CLI::App& app);
void register_generate(CLI::App& app);
void register_bench(CLI::App& app);

inline void register_all(CLI::App& app) {
  register_inspect(app);
  register_generate(app);
  register_bench(app);
}
}  // namespace qb::cli
