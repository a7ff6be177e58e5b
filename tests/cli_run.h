// Runs the built quantbench binary with arguments (passed through the shell), or any command line, and captures
// its exit code, stdout and stderr. Each call writes stderr to its own mkstemp file, so tests running in
// parallel processes (ctest -j) never read each other's output.
#pragma once
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace qb::test {

struct CliRun {
  int exit_code = -1;  // 128 when the process did not exit normally
  std::string out, err;
};

// Any shell command line (its own stderr redirection left out), captured the same way.
inline CliRun run_command(const std::string& command) {
  std::string err_path = ::testing::TempDir() + "qb_cli_stderr_XXXXXX";
  const int fd = ::mkstemp(err_path.data());
  CliRun r;
  if (fd < 0) return r;
  ::close(fd);
  const std::string cmd = command + " 2>" + err_path;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p) {
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (FILE* e = std::fopen(err_path.c_str(), "r")) {
      while ((n = std::fread(buf.data(), 1, buf.size(), e)) > 0) r.err.append(buf.data(), n);
      std::fclose(e);
    }
  }
  ::unlink(err_path.c_str());
  return r;
}

inline CliRun run_cli(const std::string& args) { return run_command(std::string(QB_BINARY_DIR) + "/quantbench " + args); }

inline int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

}  // namespace qb::test
