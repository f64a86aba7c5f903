#pragma once

#include <time.h>

#include <cstdint>

namespace acceptbench {

// CLOCK_MONOTONIC in nanoseconds: the one clock of the suite (servers, client, harness).
inline std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace acceptbench
