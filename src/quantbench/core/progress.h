// A progress bar on stderr with rate and ETA, redrawn at most a few times a second. When stderr is
// not a terminal (CI, logs) it prints a plain line at 10% steps instead, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace qb {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();  // finishes the line
  void advance(int64_t n = 1, const std::string& note = "");
  void finish();

 private:
  void draw(bool final);
  std::string label_, note_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace qb
