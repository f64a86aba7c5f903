#pragma once
// The console reporter: the summary table after a run or sweep and the progress line on
// stderr while it runs. Main thread only.

#include <string>
#include <vector>

#include "summary.hpp"

namespace acceptbench {

// "42s", "3m07s".
std::string fmt_duration(double s);

// "elapsed 1m02s  ETA 3m00s": the steps done so far took elapsed_s; the rest are estimated at
// their mean (before the first one, at first_guess_s each).
std::string elapsed_and_eta(double elapsed_s, int done, int left, double first_guess_s);

// The summary table printed after a run or sweep, with the honest reading of it.
void print_summary(const std::vector<ConfigResult>& results);

// One progress line on stderr: on a terminal rewritten in place (padded to `width`), else one
// line per update (a log).
class ProgressLine {
 public:
  explicit ProgressLine(int width);
  void update(const std::string& line) const;
  // A line of its own, kept: on a terminal it starts below the progress line.
  void message(const std::string& line) const;
  void finish() const;  // ends the progress line on a terminal
  [[nodiscard]] bool tty() const { return tty_; }

 private:
  bool tty_;
  int width_;
};

}  // namespace acceptbench
