#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "launcher.hpp"

namespace acceptbench {

// The kernel's TCP counters, "Group.Name" -> value, from /proc/net/snmp and
// /proc/net/netstat (both: a header line of names and a line of values per group), plus
// "Sockstat.tw" (sockets in TIME_WAIT) from /proc/net/sockstat. `root` is "" for this
// machine, or a prefix for tests.
using KernelCounters = std::map<std::string, std::int64_t>;
KernelCounters read_kernel_counters(const std::string& root = "");
// The same in the network namespace or on the host behind `launcher`: here it is called
// directly; elsewhere `PROBE probe --kernel` (PROBE: the acceptbench binary on that side)
// runs the same function there and prints its result as JSON.
KernelCounters read_kernel_counters_via(const Launcher& launcher, const std::string& probe);

// The counters the results report, as after - before.
inline constexpr const char* kReportedCounters[] = {
    "Tcp.PassiveOpens",  "Tcp.ActiveOpens",         "Tcp.AttemptFails",       "Tcp.EstabResets",
    "TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPReqQFullDrop", "TcpExt.SyncookiesSent",
    "TcpExt.TCPAbortOnData", "TcpExt.TCPBacklogDrop"};
nlohmann::json kernel_deltas(const KernelCounters& before, const KernelCounters& after);

// Parses the two-line-per-group format; exposed for tests.
KernelCounters parse_proc_net_pairs(const std::string& text);

}  // namespace acceptbench
