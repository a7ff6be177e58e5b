#include "quantbench/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace qb {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(2) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n, const std::string& note) {
  done_ += n;
  if (!note.empty()) note_ = note;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = total_ > 0 ? double(done_) / double(total_) : 1.0;
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    const int width = 30, filled = int(frac * width + 0.5);
    std::string bar(size_t(filled), '#');
    bar.resize(size_t(width), '.');
    const double eta = done_ > 0 && frac < 1 ? elapsed / frac - elapsed : 0;
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %.0fs elapsed, ETA %.0fs %s\033[K", label_.c_str(), bar.c_str(),
                 (long long)done_, (long long)total_, elapsed, eta, note_.c_str());
    if (final) std::fputc('\n', stderr);
  } else {
    const int decile = int(frac * 10);
    if (decile == last_decile_ && !final) return;
    if (final && decile == last_decile_ && decile == 10) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %lld/%lld (%.0f%%) %.1fs %s\n", label_.c_str(), (long long)done_, (long long)total_,
                 frac * 100, elapsed, note_.c_str());
  }
}

}  // namespace qb
