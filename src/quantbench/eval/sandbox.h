// Runs untrusted, model-written Python with its tests (EVALUATION.md "Code"; DESIGN.md "Untrusted code
// runs in a sandbox").
//
// Design: bubblewrap makes the walls (new user, PID, network, IPC, UTS namespaces; the host root bound
// read-only; a fresh /dev remounted read-only; a size-capped private tmpfs at /tmp as the only
// writable place, holding the program), and our own forked child sets rlimits (CPU, address space,
// processes, file size, open files, no core) before it execs bwrap. When the harness runs as root the
// child first drops to an unprivileged uid, because root ignores RLIMIT_NPROC and can read anything.
// The parent enforces the wall clock and an output cap, and kills the whole process group; the PID
// namespace guarantees every process the program made dies with it. No bwrap means an error, never an
// unsandboxed run.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qb::eval {

struct SandboxLimits {
  double wall_seconds = 10;                 // enforced by the parent: SIGKILL to the process group
  uint64_t cpu_seconds = 5;                 // RLIMIT_CPU soft (SIGXCPU); hard limit one second later
  uint64_t address_space_bytes = 1ull << 30;  // RLIMIT_AS
  uint64_t max_processes = 64;              // RLIMIT_NPROC headroom over the uid's processes (sandbox.cpp)
  uint64_t file_size_bytes = 16ull << 20;   // RLIMIT_FSIZE
  uint64_t open_files = 64;                 // RLIMIT_NOFILE
  uint64_t scratch_bytes = 64ull << 20;     // size of the private /tmp tmpfs
  uint64_t output_limit_bytes = 1ull << 20;  // stdout + stderr; beyond it the run is killed
  size_t tail_bytes = 4096;                 // how much of the end of each stream the result keeps
};

struct SandboxConfig {
  std::string bwrap = "/usr/bin/bwrap";
  std::string python = "/usr/bin/python3";  // the system interpreter, not a virtualenv's
  uint32_t unprivileged_uid = 65534;        // used only when the harness runs as root ("nobody")
  uint32_t unprivileged_gid = 65534;
  SandboxLimits limits;
};

enum class FailureReason {
  None,          // passed
  ExitCode,      // non-zero exit (a failed assert, an exception)
  Signal,        // killed by a signal other than the ones below
  Timeout,       // wall clock exceeded
  CpuTime,       // RLIMIT_CPU (SIGXCPU / SIGKILL from the hard limit)
  Memory,        // MemoryError under RLIMIT_AS
  FileSize,      // RLIMIT_FSIZE (SIGXFSZ)
  OutputLimit,   // printed more than output_limit_bytes
  SandboxError,  // bwrap itself could not set the sandbox up
};
std::string_view failure_reason_name(FailureReason r);

struct SandboxResult {
  bool passed = false;
  FailureReason reason = FailureReason::None;
  int exit_code = -1;  // as bwrap reported it; -1 when it did not exit normally
  int signal = 0;      // the program's terminating signal (bwrap reports it as 128 + signal)
  std::string stdout_tail, stderr_tail;  // last tail_bytes of each stream
  uint64_t stdout_bytes = 0, stderr_bytes = 0;
  double wall_seconds = 0;
  std::string run_id;       // QB_SANDBOX_RUN in the program's environment: finds stray processes
  std::string interpreter;  // path and version that ran, e.g. "/usr/bin/python3 (Python 3.11.2)"
  std::string detail;       // one line saying why it failed
};

class PythonSandbox {
 public:
  // Checks that bwrap and the interpreter exist and that a trivial program runs inside the sandbox
  // (recording the interpreter's version); throws qb::Error otherwise.
  explicit PythonSandbox(SandboxConfig config = {});

  // Runs `program`, then `tests` appended after it, as one file /tmp/main.py in a fresh sandbox.
  // Passed means exit code 0 within every limit. Never throws for anything the program does; throws
  // qb::Error only if the harness itself cannot fork or make pipes.
  SandboxResult run(std::string_view program, std::string_view tests = {}) const;

  const SandboxConfig& config() const { return config_; }
  const std::string& interpreter() const { return interpreter_; }
  // Manifest facts describing the sandbox and its limits ("harness.sandbox", ...).
  std::vector<std::pair<std::string, std::string>> manifest_facts() const;

 private:
  SandboxConfig config_;
  std::string interpreter_;
};

}  // namespace qb::eval
