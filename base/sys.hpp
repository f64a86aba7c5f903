#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace acceptbench {

// Setup calls go through here: a failure throws std::system_error naming what failed,
// e.g. "bind 127.0.0.1:8080: Address already in use". The hot path never throws.
[[noreturn]] void throw_errno(std::string_view what);
[[noreturn]] void throw_errno(int err, std::string_view what);

inline int check(int rc, std::string_view what) {
  if (rc < 0) throw_errno(what);
  return rc;
}

// Short symbolic name of an errno value ("EAGAIN"), or "E<number>" when unknown.
std::string errno_name(int err);

// Reads a small whole file such as /proc/sys/net/core/somaxconn; throws on failure.
std::string read_small_file(const std::string& path);

}  // namespace acceptbench
