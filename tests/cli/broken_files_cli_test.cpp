// The CLI on hostile files: `quantbench inspect FILE` must exit non-zero, print nothing on stdout and
// exactly one line on stderr, "quantbench: error: ..." naming the file. Runs the built binary
// (QB_BINARY_DIR/quantbench; `cmake --build` builds it beside the tests) on the broken-file corpus.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../formats/broken_gguf_corpus.h"
#include "../formats/temp_dir.h"
#include "../test_paths.h"

extern char** environ;

namespace qb {
namespace {

struct RunResult {
  int status = -1;
  std::string out, err;
};

// Runs argv with stdout and stderr captured in files under `dir`.
RunResult run(const std::vector<std::string>& argv, const test::TempDir& dir) {
  const auto out_path = dir.file("stdout.txt"), err_path = dir.file("stderr.txt");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  RunResult r;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "cannot run " << argv[0];
    return r;
  }
  while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  const auto out = test::read_bytes(out_path), err = test::read_bytes(err_path);
  r.out.assign(out.begin(), out.end());
  r.err.assign(err.begin(), err.end());
  return r;
}

std::string cli_path() { return std::string(QB_BINARY_DIR) + "/quantbench"; }

void expect_one_error_line(const RunResult& r, const std::string& file, const std::string& what) {
  ASSERT_TRUE(WIFEXITED(r.status)) << what << ": did not exit normally (signal " << WTERMSIG(r.status) << ")\n" << r.err;
  EXPECT_NE(WEXITSTATUS(r.status), 0) << what;
  EXPECT_EQ(r.out, "") << what;
  const std::string prefix = "quantbench: error: ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << what << ": " << r.err;
  ASSERT_FALSE(r.err.empty()) << what;
  EXPECT_EQ(r.err.back(), '\n') << what;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << what << ": more than one line:\n" << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << what << ": file not named: " << r.err;
}

TEST(BrokenFilesCli, InspectGivesOneErrorLine) {
  struct stat st {};
  ASSERT_EQ(::stat(cli_path().c_str(), &st), 0) << cli_path() << " is missing: build the quantbench target";
  test::TempDir dir;
  const auto valid = test::read_bytes(test::stories260k_path());

  // The valid file works, so failures below are the files' doing.
  const auto ok = run({cli_path(), "inspect", "--tensors", test::stories260k_path()}, dir);
  ASSERT_TRUE(WIFEXITED(ok.status));
  EXPECT_EQ(WEXITSTATUS(ok.status), 0) << ok.err;
  EXPECT_NE(ok.out.find("token_embd.weight"), std::string::npos);

  auto variants = test::broken_gguf_variants(valid);
  for (size_t n : {size_t(0), size_t(3), size_t(23), size_t(100), size_t(6470), size_t(11300), size_t(14000),
                   valid.size() / 2, valid.size() - 1})
    variants.push_back({"truncated_" + std::to_string(n), std::vector<uint8_t>(valid.begin(), valid.begin() + std::ptrdiff_t(n))});
  variants.push_back({"missing_file", {}});
  for (const auto& v : variants) {
    const auto path = dir.file(v.name + ".gguf");
    if (v.name != "missing_file") test::write_bytes(path, v.bytes);
    expect_one_error_line(run({cli_path(), "inspect", path}, dir), path, v.name);
  }
}

}  // namespace
}  // namespace qb
