#pragma once

#include <sys/types.h>

#include <cstdint>

namespace acceptbench {

// The memory of a server's whole process tree (the server and its live descendants:
// prefork's workers, fork-per-conn's children): proportional set size (Pss, from
// /proc/PID/smaps_rollup: shared pages split between the processes that map them, so
// forked children are not counted once each), resident set size summed, and how many
// processes and threads. Kernel socket memory is not in it. Local processes only.
struct TreeMemory {
  std::uint64_t pss_kb = 0;
  std::uint64_t rss_kb = 0;
  int processes = 0;
  int threads = 0;
};
// Throws std::runtime_error if `pid` is gone.
TreeMemory sample_tree_memory(pid_t pid);

}  // namespace acceptbench
