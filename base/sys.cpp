#include "sys.hpp"

#include <string.h>  // strerrorname_np (glibc >= 2.32)

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace acceptbench {

void throw_errno(std::string_view what) { throw_errno(errno, what); }

void throw_errno(int err, std::string_view what) {
  throw std::system_error(err, std::generic_category(), std::string(what));
}

std::string errno_name(int err) {
  if (const char* name = ::strerrorname_np(err)) return name;
  return fmt::format("E{}", err);  // not "E" + to_string: GCC 12 warns falsely (-Wrestrict, PR 105651)
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_errno(errno ? errno : ENOENT, "open " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace acceptbench
