#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "histogram.hpp"

namespace acceptbench {

// Who closes a connection after its last response. The same for every model in one
// comparison; recorded in every result.
enum class ClosePolicy {
  kClient,  // the client close()s after the last response: TIME_WAIT on the client
  kServer,  // the last request says "Connection: close"; the client waits for the
            // server's FIN, then closes: TIME_WAIT on the server (wrk -H 'Connection: close')
  kReset,   // SO_LINGER 0 then close(): an RST, no TIME_WAIT anywhere
};
const char* to_string(ClosePolicy p);
ClosePolicy close_policy_from_string(const std::string& s);  // throws std::invalid_argument

struct LoadConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  int threads = 1;
  int connections = 1;        // closed loop: connections in flight (over all threads)
  double rate = 0;            // > 0: open loop, new connections per second (over all threads)
  int requests_per_conn = 1;  // K; 1 measures the connection rate itself
  double duration_s = 5;      // measured window
  double warmup_s = 0;        // before it, not recorded
  std::uint64_t count = 0;    // > 0: stop once this many connections were measured
  ClosePolicy close = ClosePolicy::kClient;
  std::string path = "/";
  int timeout_ms = 5000;        // a connection without progress this long is a timeout
  int max_in_flight = 20'000;   // open loop: a start beyond this is dropped and counted
  bool spread_sources = true;   // on loopback: source addresses over 127.0.0.0/8
  std::vector<int> cpus;        // client threads pinned round-robin to these; empty: none
  int timeseries_ms = 100;
  // Slow clients: every (1/slow_fraction)-th connection waits slow_ms between its handshake
  // and its request, like a client on a slow link (head-of-line blocking shows in the others).
  double slow_fraction = 0;
  int slow_ms = 0;
  // Open loop, on time: a thread sleeps (timer slack 1 ns) until spin_us before the next due
  // start, then polls without sleeping until it is due. 0: sleep all the way.
  int spin_us = 50;
  // Open loop: the run is flagged client_late when the p99 of start lateness exceeds this.
  double late_threshold_us = 20;
  // After the window: measured connections still in flight get up to this long to finish.
  // They count as late_completions (latency recorded, not in the rate); those still not
  // done are unfinished. 0: no drain (in flight at the window's end = unfinished).
  int drain_ms = 0;
};

// "0", "0-1", "0,2-3" -> CPU numbers; throws std::invalid_argument on anything else.
std::vector<int> parse_cpu_list(const std::string& text);

// Validates; throws std::invalid_argument with a message naming the bad field.
void validate(const LoadConfig& c);
nlohmann::json to_json(const LoadConfig& c);

enum class ErrorKind {
  kRefused, kReset, kTimeout, kNoAddress, kTooManyFiles, kShortResponse, kBadResponse, kOther, kCount
};
const char* to_string(ErrorKind k);

struct ThreadCpu {
  double cpu_s = 0;        // CLOCK_THREAD_CPUTIME_ID over the measured window
  double utilization = 0;  // (cpu_s - spin_s) / window: the work, not the on-time spinning
  double spin_s = 0;       // open loop: time spent polling just before a due start
};

struct LoadResult {
  LoadConfig config;
  double window_s = 0;  // measured window actually run
  std::uint64_t connections = 0;  // measured connections that completed every request
  std::uint64_t requests = 0;
  std::uint64_t started = 0;      // measured connection starts (open loop: scheduled)
  std::uint64_t late_starts = 0;  // open loop: started more than 1 ms after the schedule
  std::uint64_t dropped_starts = 0;  // open loop: not started (max_in_flight reached)
  std::uint64_t unfinished = 0;   // still in flight when the window (and the drain) closed
  std::uint64_t late_completions = 0;  // measured, completed after the window: in the
                                       // latency histograms, not in `connections`
  double drain_s = 0;  // from the window's end to the last late completion
  std::array<std::uint64_t, static_cast<std::size_t>(ErrorKind::kCount)> errors{};
  Histogram connect, ttfb, total, total_uncorrected;
  // Open loop: actual start - scheduled start of every measured start (ns).
  Histogram start_lateness;
  std::vector<std::uint64_t> timeseries;  // measured completions per interval
  std::vector<ThreadCpu> cpu;
  std::uint64_t source_addresses = 0;

  [[nodiscard]] std::uint64_t error_total() const;
  [[nodiscard]] double conn_per_s() const { return window_s > 0 ? static_cast<double>(connections) / window_s : 0; }
  [[nodiscard]] double max_thread_utilization() const;
  // Open loop: the p99 of start lateness exceeds config.late_threshold_us (so latency from the
  // intended start is partly the client's own lateness).
  [[nodiscard]] bool client_late() const;
  [[nodiscard]] nlohmann::json to_json() const;
  // Merges results of clients that ran side by side (hosts or processes): counts add,
  // histograms merge exactly, the window is the longest.
  void merge(const LoadResult& other);
  static LoadResult from_json(const nlohmann::json& j);
};

// Runs one load. `progress`, if set, is called about once a second from the calling
// thread with the seconds elapsed and connections completed so far. Throws
// std::invalid_argument on a bad config and std::system_error on setup failures.
LoadResult run_load(const LoadConfig& config, const std::function<void(double, std::uint64_t)>& progress = {});

// A short human summary (fmt), several lines.
std::string summarize(const LoadResult& r);

}  // namespace acceptbench
