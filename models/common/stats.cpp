#include "stats.hpp"

#include <sys/mman.h>

#include <new>

#include <nlohmann/json.hpp>

#include "sys.hpp"

namespace acceptbench {

SharedState* map_shared_state() {
  void* mem = ::mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw_errno("mmap shared stats");
  return new (mem) SharedState();
}

namespace {

nlohmann::json acceptor_json(const AcceptorStats& s) {
  auto get = [](const AcceptorStats::Counter& c) { return c.load(std::memory_order_relaxed); };
  nlohmann::json errors = nlohmann::json::object();
  for (int e = 1; e < kMaxErrno; ++e) {
    if (const auto n = get(s.errors[static_cast<std::size_t>(e)])) errors[errno_name(e)] = n;
  }
  return {{"accepted", get(s.accepted)},         {"accept_calls", get(s.accept_calls)},
          {"accept_eagain", get(s.accept_eagain)}, {"listen_wakeups", get(s.listen_wakeups)},
          {"wasted_wakeups", get(s.wasted_wakeups)}, {"epoll_wakeups", get(s.epoll_wakeups)},
          {"mutex_acquired", get(s.mutex_acquired)}, {"mutex_contended", get(s.mutex_contended)},
          {"requests", get(s.requests)},         {"bad_requests", get(s.bad_requests)},
          {"read_timeouts", get(s.read_timeouts)}, {"closed", get(s.closed)},
          {"slept", get(s.slept)},               {"stalls", get(s.stalls)},
          {"errors", errors}};
}

}  // namespace

nlohmann::json stats_json(const SharedState& state, int acceptors) {
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json totals = nlohmann::json::object();
  totals["errors"] = nlohmann::json::object();
  for (int i = 0; i < acceptors; ++i) {
    nlohmann::json one = acceptor_json(state.acceptors[static_cast<std::size_t>(i)]);
    for (const auto& [key, value] : one.items()) {
      if (key == "errors") {
        for (const auto& [err, n] : value.items()) {
          auto& sum = totals["errors"][err];
          sum = (sum.is_null() ? 0 : sum.get<std::uint64_t>()) + n.get<std::uint64_t>();
        }
      } else {
        totals[key] = totals.value(key, std::uint64_t{0}) + value.get<std::uint64_t>();
      }
    }
    list.push_back(std::move(one));
  }
  return {{"acceptors", list},
          {"totals", totals},
          {"listen_in_epoll_sets_max", state.listen_in_sets_max.load()}};
}

}  // namespace acceptbench
