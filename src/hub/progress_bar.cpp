#include "hub/progress_bar.hpp"

#include <unistd.h>

#include <cmath>

namespace pictor::hub {

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : (v < 100 ? "%.1f %s" : "%.0f %s"), v, units[u]);
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%lds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return buf;
}

ProgressBar::ProgressBar(std::string label, std::optional<uint64_t> total, uint64_t already, Mode mode, std::FILE* out)
    : label_(std::move(label)), total_(total), already_(already), done_(already), mode_(mode), out_(out) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() {
  if (mode_ == Mode::Interactive && drawn_ && !finished_) std::fputc('\n', out_);
}

ProgressBar::Mode ProgressBar::auto_mode(bool quiet, std::FILE* out) {
  if (quiet) return Mode::Silent;
  return ::isatty(::fileno(out)) ? Mode::Interactive : Mode::FinalLineOnly;
}

void ProgressBar::restart(uint64_t already) {
  already_ = done_ = already;
  start_ = std::chrono::steady_clock::now();
}

std::string ProgressBar::render(uint64_t done, double elapsed_s) const {
  double rate = elapsed_s > 0 ? static_cast<double>(done - std::min(done, already_)) / elapsed_s : 0.0;
  std::string line = label_ + "  ";
  if (total_ && *total_ > 0) {
    int pct = static_cast<int>(100.0 * static_cast<double>(std::min(done, *total_)) / static_cast<double>(*total_));
    constexpr int kWidth = 20;
    int filled = pct * kWidth / 100;
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " + std::to_string(pct) + "%  ";
    line += format_bytes(done) + " / " + format_bytes(*total_);
  } else {
    line += format_bytes(done);
  }
  line += "  " + format_bytes(static_cast<uint64_t>(rate)) + "/s";
  if (total_ && done < *total_)
    line += "  ETA " + (rate > 0 ? format_duration(static_cast<double>(*total_ - done) / rate) : std::string("?"));
  return line;
}

void ProgressBar::update(uint64_t done) {
  done_ = done;
  if (mode_ != Mode::Interactive) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(125)) return;
  last_draw_ = now;
  drawn_ = true;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  // \033[K clears what a longer previous line left behind.
  std::fprintf(out_, "\r%s\033[K", render(done, elapsed).c_str());
  std::fflush(out_);
}

void ProgressBar::finish(const std::string& note) {
  finished_ = true;
  if (mode_ == Mode::Silent) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = render(done_, elapsed) + "  in " + format_duration(elapsed);
  if (!note.empty()) line += "  (" + note + ")";
  if (mode_ == Mode::Interactive)
    std::fprintf(out_, "\r%s\033[K\n", line.c_str());
  else
    std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace pictor::hub
