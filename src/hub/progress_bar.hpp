#pragma once
// Download progress on stderr: a redrawn line (bytes, rate, ETA) on a terminal; on a pipe or log file only
// one final line per file, so logs stay readable.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace pictor::hub {

std::string format_bytes(uint64_t bytes);     // "512 B", "1.5 KiB", "3.21 GiB"
std::string format_duration(double seconds);  // "45s", "3m07s", "1h02m"

class ProgressBar {
 public:
  enum class Mode { Interactive, FinalLineOnly, Silent };
  // `already` bytes were on disk before (a resumed download): they count towards the total, not the rate.
  ProgressBar(std::string label, std::optional<uint64_t> total, uint64_t already, Mode mode, std::FILE* out = stderr);
  // Picks Interactive when `out` is a terminal, FinalLineOnly otherwise (Silent when quiet).
  static Mode auto_mode(bool quiet, std::FILE* out = stderr);

  ~ProgressBar();  // ends a half-drawn line (a failed download) so the next message starts cleanly
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void restart(uint64_t already);  // the server ignored a resume: counting starts again
  void update(uint64_t done);      // total bytes on disk so far; redraws at most ~8 times a second
  void finish(const std::string& note = "");

  // The status line for `done` bytes after `elapsed_s` seconds (pure, for tests).
  std::string render(uint64_t done, double elapsed_s) const;

 private:
  std::string label_;
  std::optional<uint64_t> total_;
  uint64_t already_;
  uint64_t done_;
  Mode mode_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace pictor::hub
