#pragma once

#include <string>

namespace acceptbench {

// Where the parts of acceptbench are, found from the running executable (/proc/self/exe),
// so that one binary works both in a build tree and under an install prefix:
//   build tree:  <build>/bin/acceptbench, the model binaries, models.json and presets/ beside it
//   installed:   <prefix>/bin/acceptbench, the model binaries in <prefix>/libexec/acceptbench,
//                models.json, presets/ and plot.py in <prefix>/share/acceptbench
// Nothing here points at the source tree, so an installed copy never depends on one.
struct Layout {
  std::string exe_dir;   // the folder of the running acceptbench
  std::string bin_dir;   // the model server binaries
  std::string data_dir;  // models.json and presets/
  bool installed = false;

  [[nodiscard]] std::string models_json() const { return data_dir + "/models.json"; }
  [[nodiscard]] std::string presets_dir() const { return data_dir + "/presets"; }
};

// The layout around `exe_dir`: the build tree's when models.json is beside the executable,
// the installed one when <exe_dir>/../share/acceptbench/models.json exists, else the build
// tree's (whose missing models.json is then reported by the reader).
Layout layout_for(const std::string& exe_dir);
// layout_for(the folder of /proc/self/exe).
Layout find_layout();

}  // namespace acceptbench
