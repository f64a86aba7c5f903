#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace acceptbench {

// The harness, its load client (threads made afterwards inherit it) and every server it
// starts (children inherit it) move into a fresh network namespace of their own: loopback
// up, the host's somaxconn, tcp_tw_reuse, ip_local_port_range and tcp_max_syn_backlog copied
// in. The kernel's TCP counters read from /proc/net then count this run's traffic only. The
// namespace has no name: it goes away with the last process in it (the harness and its
// servers), on every exit path. Must be called before the process makes any thread.
struct NetnsResult {
  std::string mode;    // "private", "host" (asked: --netns off) or "host-fallback" (could not)
  std::string reason;  // why it fell back, or empty
  nlohmann::json to_json() const;
};
NetnsResult enter_private_netns();

// The sysctls copied into the private namespace (names under /proc/sys, dotted).
inline constexpr const char* kNetnsSysctls[] = {"net.core.somaxconn", "net.ipv4.tcp_tw_reuse",
                                                "net.ipv4.ip_local_port_range", "net.ipv4.tcp_max_syn_backlog"};

}  // namespace acceptbench
