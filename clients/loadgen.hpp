#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "histogram.hpp"
#include "unique_fd.hpp"

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
  // start, then polls without sleeping until it is due. 0: sleep all the way. The spin's CPU
  // is measured (spin_s) and the harness takes it out of every busy figure. (A longer spin
  // did not help on the 2-core development VM: at 2000/s, three runs each gave start
  // lateness p99 of 56-212 us at 50, 0.7-3,629 us at 200 and 27-509 us at 400: what makes
  // starts late there is the thread losing its CPU, not the wake-up.)
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
  int pinned_cpu = -1;     // the CPU this thread was pinned to (--cpus); -1: not pinned
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

// Idle keep-alive connections held open in the background while a load runs (the c10k
// experiment). Each connects (source addresses spread over 127.77.x.y on loopback), sends one
// keep-alive request, reads the response, then stays open and idle: the server has accepted
// and served it and must keep it. At most `max_pending` are being opened at once, so that the
// listen backlog never overflows. Opening stops early when no connection made progress for
// `stall_ms` (a model that serves one connection at a time never answers the second), so a
// model that cannot hold N is reported in seconds, not after a timeout per connection.
struct HoldResult {
  int requested = 0;
  int held = 0;          // answered and kept open
  int failed = 0;        // failed while opening (errors by kind below)
  int unanswered = 0;    // still waiting for their response when opening gave up
  std::array<std::uint64_t, static_cast<std::size_t>(ErrorKind::kCount)> errors{};
  double open_s = 0;     // time to open and answer them
  std::int64_t client_rss_delta_kb = 0;       // this process's VmRSS after minus before
  std::int64_t kernel_tcp_mem_delta_kb = 0;   // /proc/net/sockstat TCP mem (pages) delta, both ends
  int still_open_at_end = -1;                 // checked by HeldConnections::check(); -1: not checked
  [[nodiscard]] bool all_held() const { return held == requested; }
  [[nodiscard]] double client_bytes_per_conn() const {
    return held > 0 ? static_cast<double>(client_rss_delta_kb) * 1024.0 / held : 0.0;
  }
  [[nodiscard]] std::string describe() const;  // "held 1 of 1000: 999 unanswered after ..."
  [[nodiscard]] nlohmann::json to_json() const;
};

class HeldConnections {
 public:
  HeldConnections() = default;
  // Opens n connections as described above. Throws std::invalid_argument on a bad host or n.
  static HeldConnections open(const std::string& host, std::uint16_t port, int n, int stall_ms = 2000,
                              int max_pending = 256);
  HeldConnections(HeldConnections&&) = default;
  HeldConnections& operator=(HeldConnections&&) = default;
  ~HeldConnections() { close(); }

  [[nodiscard]] const HoldResult& result() const { return result_; }
  // Counts the held connections the server has not closed (no EOF, reset or data pending)
  // into result().still_open_at_end, and returns it.
  int check();
  // Closes every connection with RST (no TIME_WAIT for thousands of sockets).
  void close();

 private:
  std::vector<UniqueFd> fds_;
  HoldResult result_;
};

// This process's resident set size (VmRSS) in KiB; 0 if unreadable.
std::int64_t self_rss_kb();

// A short human summary (fmt), several lines.
std::string summarize(const LoadResult& r);

}  // namespace acceptbench
