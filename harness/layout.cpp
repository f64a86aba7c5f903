#include "layout.hpp"

#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace acceptbench {

Layout layout_for(const std::string& exe_dir) {
  Layout l;
  l.exe_dir = exe_dir;
  l.bin_dir = l.data_dir = exe_dir;
  if (fs::exists(exe_dir + "/models.json")) return l;
  // Relative paths from the install's bin/ folder, set by CMake from GNUInstallDirs.
  const fs::path exe(exe_dir);
  const fs::path data = (exe / ACCEPTBENCH_REL_DATA_DIR).lexically_normal();
  if (fs::exists(data / "models.json")) {
    l.installed = true;
    l.data_dir = data.string();
    l.bin_dir = (exe / ACCEPTBENCH_REL_LIBEXEC_DIR).lexically_normal().string();
  }
  return l;
}

Layout find_layout() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return layout_for(ec ? std::string(".") : exe.parent_path().string());
}

}  // namespace acceptbench
