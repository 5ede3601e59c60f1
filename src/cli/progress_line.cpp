#include "cli/progress_line.hpp"

#include <unistd.h>

#include <cstdio>

namespace pictor::cli {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

ProgressLine::ProgressLine(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) == 1) {}

void ProgressLine::update(int done, int total, double elapsed_s, double eta_s) {
  constexpr int kWidth = 24;
  const int filled = total > 0 ? done * kWidth / total : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s [%s] %d/%d  %s/it  ETA %s", label_.c_str(), bar.c_str(), done, total,
                format_duration(done > 0 ? elapsed_s / done : 0).c_str(), format_duration(eta_s).c_str());
  last_ = buf;
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K", buf);
    std::fflush(stderr);
    open_ = true;
  }
}

void ProgressLine::finish() {
  if (tty_ && open_)
    std::fprintf(stderr, "\n");
  else if (!last_.empty())
    std::fprintf(stderr, "%s\n", last_.c_str());
  open_ = false;
}

}  // namespace pictor::cli
