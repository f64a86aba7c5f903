#include "netns.hpp"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "unique_fd.hpp"

namespace acceptbench {

namespace {

std::string sysctl_path(const std::string& dotted) {
  std::string p = "/proc/sys/" + dotted;
  for (std::size_t i = 10; i < p.size(); ++i)
    if (p[i] == '.') p[i] = '/';
  return p;
}

// The number of threads of this process (unshare(CLONE_NEWNET) moves only the caller).
int thread_count() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  return 1;
}

}  // namespace

nlohmann::json NetnsResult::to_json() const {
  nlohmann::json j = {{"mode", mode}};
  if (!reason.empty()) j["reason"] = reason;
  return j;
}

NetnsResult enter_private_netns() {
  auto fallback = [](const std::string& why) { return NetnsResult{"host-fallback", why}; };
  if (thread_count() != 1) return fallback("the harness already has threads, which would stay in the host's namespace");
  std::vector<std::pair<std::string, std::string>> copied;
  for (const char* name : kNetnsSysctls) {
    std::ifstream in(sysctl_path(name));
    std::string value;
    if (in && std::getline(in, value)) copied.emplace_back(name, value);
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    const int e = errno;
    return fallback(fmt::format("unshare(CLONE_NEWNET): {}{}", std::strerror(e),
                                e == EPERM ? " (needs root or CAP_SYS_ADMIN)" : ""));
  }
  // From here on a failure leaves us in an empty namespace: say so (the caller exits).
  const UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s.get() < 0 || ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) throw std::runtime_error("private netns: cannot read lo's flags");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) {
    throw std::runtime_error(std::string("private netns: cannot bring lo up: ") + std::strerror(errno));
  }
  for (const auto& [name, value] : copied) {
    std::ofstream out(sysctl_path(name));
    out << value << "\n";
    out.close();
    if (!out) throw std::runtime_error("private netns: cannot set " + name + " to " + value);
  }
  return {"private", ""};
}

}  // namespace acceptbench
