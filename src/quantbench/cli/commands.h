// Subcommand registration. Each subcommand file defines one register_<name>(CLI::App&) that adds its
// options and a callback; the callback does its work through library calls only.
#pragma once
#include <CLI/CLI.hpp>

namespace qb::cli {
void register_inspect(CLI::App& app);
void register_generate(CLI::App& app);
void register_quantize(CLI::App& app);
void register_eval(CLI::App& app);
void register_bench(CLI::App& app);
void register_runs(CLI::App& app);
void register_compare(CLI::App& app);
void register_report(CLI::App& app);
void register_run(CLI::App& app);

// In the order a person uses them: look, quantize, measure loss and gain, keep and compare results.
inline void register_all(CLI::App& app) {
  register_inspect(app);
  register_generate(app);
  register_quantize(app);
  register_eval(app);
  register_bench(app);
  register_runs(app);
  register_compare(app);
  register_report(app);
  register_run(app);
}
}  // namespace qb::cli
