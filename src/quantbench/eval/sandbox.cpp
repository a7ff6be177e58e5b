// The sandbox for untrusted Python (see sandbox.h for the walls and why). Everything the child needs
// (argv, environment, limits) is prepared before fork(), so the child makes only async-signal-safe
// system calls before execve: the harness may be multi-threaded or sanitized.
//
// RLIMIT_NPROC counts every process of a real uid on the host (the user namespace bwrap creates keeps
// that count at the outer level), so a limit of N would leave a user who already runs N processes
// unable to start the sandbox at all. The limit is therefore set to the processes the uid runs now
// plus max_processes: a bound on a fork bomb, not an exact per-run count (concurrent runs share it);
// the PID namespace and the wall clock finish the job.
#include "quantbench/eval/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "quantbench/core/error.h"

namespace qb::eval {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kProgramFd = 3;  // the program's fd number in the child; bwrap copies it to /tmp/main.py

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Keeps the last `cap` bytes of a stream without buffering all of it.
struct Tail {
  std::string data;
  size_t cap;
  explicit Tail(size_t c) : cap(c) {}
  void append(const char* p, size_t n) {
    data.append(p, n);
    if (data.size() > 2 * cap + 65536) data.erase(0, data.size() - cap);
  }
  std::string take() {
    if (data.size() > cap) data.erase(0, data.size() - cap);
    return std::move(data);
  }
};

[[noreturn]] void child_fail(const char* what) {
  // Only async-signal-safe calls: write(2) and _exit(2).
  const char prefix[] = "qb-sandbox: ";
  (void)!::write(2, prefix, sizeof(prefix) - 1);
  (void)!::write(2, what, std::strlen(what));
  (void)!::write(2, "\n", 1);
  ::_exit(127);
}

bool set_limit(int resource, rlim_t soft, rlim_t hard) {
  const rlimit r{soft, hard};
  return ::setrlimit(resource, &r) == 0;
}

void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);  // the group bwrap leads
  ::kill(pid, SIGKILL);   // and bwrap itself, should it have left the group
}

// Processes whose real uid is `uid`, from /proc/<pid>/status ("Uid:\t<real>\t<effective>...").
uint64_t count_processes_of_uid(uid_t uid) {
  uint64_t n = 0;
  DIR* d = ::opendir("/proc");
  if (!d) return 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      if (std::strtoul(line.c_str() + 4, nullptr, 10) == uid) ++n;
      break;
    }
  }
  ::closedir(d);
  return n;
}

bool contains(const std::string& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

std::string trim_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  const size_t nl = s.rfind('\n');
  if (nl != std::string::npos) s.erase(0, nl + 1);
  if (s.size() > 200) s.resize(200);
  return s;
}

std::string human_bytes(uint64_t b) {
  if (b % (1ull << 30) == 0) return fmt::format("{}GiB", b >> 30);
  if (b % (1ull << 20) == 0) return fmt::format("{}MiB", b >> 20);
  if (b % (1ull << 10) == 0) return fmt::format("{}KiB", b >> 10);
  return fmt::format("{}B", b);
}

}  // namespace

std::string_view failure_reason_name(FailureReason r) {
  switch (r) {
    case FailureReason::None: return "none";
    case FailureReason::ExitCode: return "exit code";
    case FailureReason::Signal: return "signal";
    case FailureReason::Timeout: return "timeout";
    case FailureReason::CpuTime: return "cpu time limit";
    case FailureReason::Memory: return "memory limit";
    case FailureReason::FileSize: return "file size limit";
    case FailureReason::OutputLimit: return "output limit";
    case FailureReason::SandboxError: return "sandbox error";
  }
  return "unknown";
}

PythonSandbox::PythonSandbox(SandboxConfig config) : config_(std::move(config)) {
  QB_CHECK(::access(config_.bwrap.c_str(), X_OK) == 0,
           "sandbox: bubblewrap not found at '{}' (install the bubblewrap package); untrusted code is never run "
           "without a sandbox",
           config_.bwrap);
  QB_CHECK(::access(config_.python.c_str(), X_OK) == 0, "sandbox: python interpreter not found at '{}'",
           config_.python);
  const auto& l = config_.limits;
  QB_CHECK(l.wall_seconds > 0 && l.cpu_seconds > 0 && l.address_space_bytes > 0 && l.max_processes > 0 &&
               l.open_files >= 8 && l.scratch_bytes > 0 && l.output_limit_bytes > 0,
           "sandbox: every limit must be positive (open files at least 8)");
  interpreter_ = config_.python;  // until the probe says which version
  const SandboxResult probe = run("import sys\nprint(sys.version.split()[0])\n");
  QB_CHECK(probe.passed, "sandbox: a trivial program failed inside bubblewrap ({}): {}",
           failure_reason_name(probe.reason), trim_line(probe.stderr_tail.empty() ? probe.detail : probe.stderr_tail));
  interpreter_ = fmt::format("{} (Python {})", config_.python, trim_line(probe.stdout_tail));
}

std::vector<std::pair<std::string, std::string>> PythonSandbox::manifest_facts() const {
  const auto& l = config_.limits;
  return {
      {"harness.sandbox",
       fmt::format("bubblewrap {}: new user/pid/net/ipc/uts namespaces, read-only root, read-only /dev, "
                   "private tmpfs /tmp of {}, no network",
                   config_.bwrap, human_bytes(l.scratch_bytes))},
      {"harness.sandbox.limits",
       fmt::format("wall {}s, cpu {}s, address space {}, processes {} (beyond those the uid already runs), file size {}, open files {}, output {}",
                   l.wall_seconds, l.cpu_seconds, human_bytes(l.address_space_bytes), l.max_processes,
                   human_bytes(l.file_size_bytes), l.open_files, human_bytes(l.output_limit_bytes))},
      {"harness.sandbox.interpreter", interpreter_},
  };
}

SandboxResult PythonSandbox::run(std::string_view program, std::string_view tests) const {
  const auto& lim = config_.limits;
  SandboxResult res;
  res.interpreter = interpreter_;
  const auto start = Clock::now();
  res.run_id = fmt::format("qb-{}-{}", ::getpid(), start.time_since_epoch().count());

  // The program travels as an anonymous file; bwrap copies it into the sandbox's tmpfs.
  Fd prog(::memfd_create("qb-sandbox-program", MFD_CLOEXEC));
  QB_CHECK(prog.fd >= 0, "sandbox: memfd_create failed: {}", std::strerror(errno));
  std::string text(program);
  if (!tests.empty()) {
    text += "\n\n";
    text += tests;
    text += "\n";
  }
  for (size_t off = 0; off < text.size();) {
    const ssize_t w = ::write(prog.fd, text.data() + off, text.size() - off);
    QB_CHECK(w > 0, "sandbox: writing the program failed: {}", std::strerror(errno));
    off += static_cast<size_t>(w);
  }
  QB_CHECK(::lseek(prog.fd, 0, SEEK_SET) == 0, "sandbox: lseek failed");

  int out_pipe[2], err_pipe[2];
  QB_CHECK(::pipe2(out_pipe, O_CLOEXEC) == 0, "sandbox: pipe failed: {}", std::strerror(errno));
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  QB_CHECK(::pipe2(err_pipe, O_CLOEXEC) == 0, "sandbox: pipe failed: {}", std::strerror(errno));
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  QB_CHECK(devnull.fd >= 0, "sandbox: cannot open /dev/null");

  const std::vector<std::string> args = {
      config_.bwrap,
      "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
      "--disable-userns", "--die-with-parent", "--new-session",
      "--ro-bind", "/", "/",
      "--dev", "/dev", "--remount-ro", "/dev",
      "--proc", "/proc",
      "--size", std::to_string(lim.scratch_bytes), "--tmpfs", "/tmp",
      "--file", std::to_string(kProgramFd), "/tmp/main.py",
      "--chdir", "/tmp",
      "--clearenv",
      "--setenv", "PATH", "/usr/bin:/bin",
      "--setenv", "HOME", "/tmp",
      "--setenv", "TMPDIR", "/tmp",
      "--setenv", "LANG", "C.UTF-8",
      "--setenv", "PYTHONHASHSEED", "0",
      "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
      "--setenv", "QB_SANDBOX_RUN", res.run_id,
      "--",
      config_.python, "-B", "-s", "/tmp/main.py",
  };
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char env_path[] = "PATH=/usr/bin:/bin";
  char* envp[] = {env_path, nullptr};

  const bool drop_root = ::geteuid() == 0;
  const uid_t uid = config_.unprivileged_uid;
  const gid_t gid = config_.unprivileged_gid;
  const pid_t parent = ::getpid();
  const rlim_t cpu = lim.cpu_seconds;
  const rlim_t nproc = count_processes_of_uid(drop_root ? uid : ::getuid()) + lim.max_processes;

  const pid_t pid = ::fork();
  QB_CHECK(pid >= 0, "sandbox: fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    // ---- child: async-signal-safe calls only ----
    ::setpgid(0, 0);
    if (::dup2(devnull.fd, 0) < 0 || ::dup2(out_w.fd, 1) < 0 || ::dup2(err_w.fd, 2) < 0) child_fail("dup2 failed");
    if (prog.fd == kProgramFd) {
      if (::fcntl(kProgramFd, F_SETFD, 0) < 0) child_fail("fcntl failed");
    } else if (::dup2(prog.fd, kProgramFd) < 0) {
      child_fail("dup2 failed");
    }
    // Nothing else of the harness leaks in, whether or not it was opened close-on-exec.
    if (::close_range(kProgramFd + 1, ~0U, 0) < 0) child_fail("close_range failed");
    if (drop_root) {
      if (::setgroups(0, nullptr) < 0 || ::setgid(gid) < 0 || ::setuid(uid) < 0) child_fail("dropping root failed");
    }
    if (!set_limit(RLIMIT_CPU, cpu, cpu + 1) || !set_limit(RLIMIT_AS, lim.address_space_bytes, lim.address_space_bytes) ||
        !set_limit(RLIMIT_NPROC, nproc, nproc) ||
        !set_limit(RLIMIT_FSIZE, lim.file_size_bytes, lim.file_size_bytes) ||
        !set_limit(RLIMIT_NOFILE, lim.open_files, lim.open_files) || !set_limit(RLIMIT_CORE, 0, 0))
      child_fail("setrlimit failed");
    // After the uid change (which clears it): die if the harness dies; no setuid binaries inside.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail("prctl failed");
    if (::getppid() != parent) ::_exit(127);
    ::execve(argv[0], argv.data(), envp);
    child_fail("execve of bwrap failed");
  }

  // ---- parent ----
  ::setpgid(pid, pid);  // also here, so kill(-pid) works even if the child has not run yet
  out_w.reset();
  err_w.reset();
  prog.reset();
  devnull.reset();
  ::fcntl(out_r.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);

  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(lim.wall_seconds));
  bool timed_out = false, output_limited = false, killed = false;
  Tail out_tail(lim.tail_bytes), err_tail(lim.tail_bytes);
  std::vector<char> buf(65536);
  auto kill_now = [&] {
    if (!killed) kill_group(pid);
    killed = true;
  };
  // After a kill, the namespace's processes die and the pipes close; this bounds the wait if not.
  auto drain_deadline = deadline;
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    const auto now = Clock::now();
    const auto limit = killed ? drain_deadline : deadline;
    if (now >= limit) {
      if (killed) break;
      timed_out = true;
      kill_now();
      drain_deadline = Clock::now() + std::chrono::seconds(2);
      continue;
    }
    pollfd fds[2];
    int nf = 0;
    if (out_r.fd >= 0) fds[nf++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) fds[nf++] = {err_r.fd, POLLIN, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit - now).count() + 1;
    const int pr = ::poll(fds, nf, static_cast<int>(std::min<long long>(ms, 1000)));
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    for (int i = 0; i < nf; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const bool is_out = out_r.fd >= 0 && fds[i].fd == out_r.fd;
      Fd& fd = is_out ? out_r : err_r;
      const ssize_t n = ::read(fd.fd, buf.data(), buf.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        fd.reset();
        continue;
      }
      if (n < 0) continue;
      if (killed) continue;  // draining after a kill: discard
      (is_out ? res.stdout_bytes : res.stderr_bytes) += static_cast<uint64_t>(n);
      (is_out ? out_tail : err_tail).append(buf.data(), static_cast<size_t>(n));
      if (res.stdout_bytes + res.stderr_bytes > lim.output_limit_bytes) {
        output_limited = true;
        kill_now();
        drain_deadline = Clock::now() + std::chrono::seconds(2);
      }
    }
  }
  out_r.reset();
  err_r.reset();

  // The program may have closed its output and kept running: the wall clock still applies.
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) qb::fail("sandbox: waitpid failed: {}", std::strerror(errno));
    if (w == 0) {
      if (Clock::now() >= deadline) {
        timed_out = true;
        kill_now();
      } else {
        ::usleep(2000);
      }
    }
  }
  res.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  res.stdout_tail = out_tail.take();
  res.stderr_tail = err_tail.take();

  auto fail_with = [&](FailureReason r, std::string detail) {
    res.passed = false;
    res.reason = r;
    res.detail = std::move(detail);
  };
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (output_limited) {
    fail_with(FailureReason::OutputLimit,
              fmt::format("printed more than {} bytes; killed", lim.output_limit_bytes));
  } else if (timed_out) {
    fail_with(FailureReason::Timeout, fmt::format("still running after {}s of wall clock; killed", lim.wall_seconds));
  } else if (WIFSIGNALED(status)) {
    res.signal = WTERMSIG(status);
    fail_with(FailureReason::Signal, fmt::format("bwrap killed by signal {} ({})", res.signal, strsignal(res.signal)));
  } else if (res.exit_code == 0) {
    res.passed = true;
    res.reason = FailureReason::None;
  } else if (res.exit_code > 128 && res.exit_code <= 128 + 64) {
    // bwrap reports a child killed by signal N as exit status 128 + N.
    res.signal = res.exit_code - 128;
    const std::string name = strsignal(res.signal);
    if (res.signal == SIGXCPU || (res.signal == SIGKILL && contains(res.stderr_tail, "CPU time")))
      fail_with(FailureReason::CpuTime, fmt::format("killed by {} after {}s of CPU", name, lim.cpu_seconds));
    else if (res.signal == SIGXFSZ)
      fail_with(FailureReason::FileSize, fmt::format("killed by {}", name));
    else
      fail_with(FailureReason::Signal, fmt::format("killed by signal {} ({})", res.signal, name));
  } else if (contains(res.stderr_tail, "MemoryError")) {
    fail_with(FailureReason::Memory,
              fmt::format("MemoryError under a {} address-space limit", human_bytes(lim.address_space_bytes)));
  } else if (contains(res.stderr_tail, "[Errno 27] File too large")) {
    // CPython ignores SIGXFSZ, so RLIMIT_FSIZE shows as EFBIG.
    fail_with(FailureReason::FileSize, fmt::format("wrote past the {} file-size limit", human_bytes(lim.file_size_bytes)));
  } else if (res.stderr_tail.rfind("bwrap:", 0) == 0 || res.stderr_tail.rfind("qb-sandbox:", 0) == 0) {
    fail_with(FailureReason::SandboxError, trim_line(res.stderr_tail));
  } else {
    fail_with(FailureReason::ExitCode, fmt::format("exit code {}: {}", res.exit_code, trim_line(res.stderr_tail)));
  }
  return res;
}

}  // namespace qb::eval
