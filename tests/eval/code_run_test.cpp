// Running code-task programs in the sandbox: the datasets' own canonical solutions pass, known-wrong
// completions fail with the right reason, and hostile completions leave the harness unharmed. Small
// limits keep each run short (every sandbox start costs ~0.1-0.5 s, more under ASan).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../test_paths.h"
#include "quantbench/eval/code.h"
#include "quantbench/eval/code_tasks.h"

namespace qb::eval {
namespace {

SandboxConfig quick_config() {
  SandboxConfig c = default_code_sandbox_config();
  c.limits.cpu_seconds = 1;
  c.limits.wall_seconds = 4;
  c.limits.address_space_bytes = 512ull << 20;
  c.limits.max_processes = 32;
  return c;
}

std::string describe(const CodeOutcome& o) { return o.reason + " | " + o.detail; }

TEST(CodeRun, CanonicalSolutionsPass) {
  const PythonSandbox sb(quick_config());
  for (const char* name : {"humaneval", "mbpp"}) {
    const auto task = load_code_task(name, test::source_path("data/eval"), 3);
    for (const auto& it : task.items) {
      const auto o = run_code(sb, code_program(it, it.canonical));
      EXPECT_TRUE(o.passed) << it.id << ": " << describe(o);
      EXPECT_EQ(o.reason, "passed");
    }
  }
}

TEST(CodeRun, WrongCompletionsFailWithTheirReason) {
  const PythonSandbox sb(quick_config());
  const auto task = load_code_task("humaneval", test::source_path("data/eval"), 1);  // has_close_elements
  const auto& it = task.items[0];
  struct Case {
    std::string completion, reason, detail;
  };
  const std::vector<Case> cases = {
      {"    return False\n", "assertion", ""},
      {"    return undefined_name\n", "exception", "NameError"},
      {"    return (\n", "exception", "SyntaxError"},
      {"    raise ValueError('no')\n", "exception", "ValueError"},
      {"    return False\nimport sys\nsys.exit(0)\n", "exited_early", ""},
      {"    return False\nimport sys\nsys.exit(3)\n", "exit_code", ""},
      {"    while True:\n        pass\n", "killed_by_limit", ""},
  };
  for (const auto& c : cases) {
    const auto o = run_code(sb, code_program(it, c.completion));
    EXPECT_FALSE(o.passed) << c.completion;
    EXPECT_EQ(o.reason, c.reason) << c.completion << " -> " << describe(o);
    if (!c.detail.empty()) {
      EXPECT_EQ(o.detail, c.detail) << c.completion;
    }
  }
}

TEST(CodeRun, HostileCompletionsLeaveTheHarnessUnharmed) {
  const PythonSandbox sb(quick_config());
  const auto task = load_code_task("mbpp", test::source_path("data/eval"), 1);
  const auto& it = task.items[0];
  const auto marker = std::filesystem::path(test::source_path("")) / "qb_code_run_escape_marker";
  std::filesystem::remove(marker);
  const std::string hostile =
      "import os, signal\n"
      "try:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept Exception:\n    pass\n"
      "try:\n    os.kill(" + std::to_string(getpid()) + ", signal.SIGKILL)\nexcept Exception:\n    pass\n"
      "try:\n    open('" + marker.string() + "', 'w').write('x')\nexcept Exception:\n    pass\n"
      "def remove_Occ(s, ch):\n    return s\n";
  const auto o = run_code(sb, code_program(it, hostile));
  EXPECT_FALSE(o.passed);
  EXPECT_EQ(o.reason, "assertion") << describe(o);
  EXPECT_FALSE(std::filesystem::exists(marker));
  // Still here, and the sandbox still works.
  EXPECT_TRUE(run_code(sb, code_program(it, it.canonical)).passed);
}

}  // namespace
}  // namespace qb::eval
