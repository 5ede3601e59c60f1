#pragma once
// A one-line progress bar on stderr: "[#####.....] 5/20 steps  2.1 s/it  ETA 31 s". On a terminal it
// redraws in place; otherwise it prints only the final line so logs stay readable.
#include <string>

namespace pictor::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  void update(int done, int total, double elapsed_s, double eta_s);
  void finish();

 private:
  std::string label_;
  bool tty_;
  bool open_ = false;
  std::string last_;
};

std::string format_duration(double seconds);

}  // namespace pictor::cli
