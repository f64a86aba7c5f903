#include "loadgen.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "sys.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

namespace {

std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
std::int64_t mono_ns() { return clock_ns(CLOCK_MONOTONIC); }

constexpr std::size_t kHeadLimit = 8192;
constexpr std::int64_t kLateNs = 1'000'000;  // open loop: a start this late is "late"
constexpr std::size_t kSourcesPerThread = 256;

ErrorKind classify(int err) {
  switch (err) {
    case ECONNREFUSED: return ErrorKind::kRefused;
    case ECONNRESET:
    case EPIPE: return ErrorKind::kReset;
    case ETIMEDOUT: return ErrorKind::kTimeout;
    case EADDRNOTAVAIL:
    case EADDRINUSE: return ErrorKind::kNoAddress;
    case EMFILE:
    case ENFILE: return ErrorKind::kTooManyFiles;
    default: return ErrorKind::kOther;
  }
}

enum class Phase { kFree, kConnecting, kDelayed, kReading, kAwaitEof };

struct Slot {
  int fd = -1;
  Phase phase = Phase::kFree;
  bool measured = false;
  std::int64_t intended = 0, started = 0, connected = 0, first_byte = 0, response_done = 0, last_progress = 0;
  std::int64_t send_at = 0;  // a slow client's delayed request
  int requests_done = 0;
  std::string head;  // response head being read (capacity reused)
  bool in_body = false;
  std::uint64_t body_left = 0;
};

// One client thread: its own epoll loop, slots, histograms and counters (wrk's layout:
// plain fields owned by the thread, merged after join).
class Worker {
 public:
  Worker(const LoadConfig& c, int index, std::int64_t t0)
      : c_(c), index_(index), t0_(t0), measure_start_(t0 + static_cast<std::int64_t>(c.warmup_s * 1e9)),
        end_(measure_start_ + static_cast<std::int64_t>(c.duration_s * 1e9)) {
    const int n = c.threads;
    if (c.rate > 0) {
      rate_ = c.rate / n;
      slots_.resize(static_cast<std::size_t>(std::max(1, c.max_in_flight / n)));
    } else {
      slots_.resize(static_cast<std::size_t>(c.connections / n + (index < c.connections % n ? 1 : 0)));
    }
    quota_ = c.count ? c.count / static_cast<std::uint64_t>(n) + (static_cast<std::uint64_t>(index) < c.count % static_cast<std::uint64_t>(n) ? 1 : 0) : 0;
    for (std::size_t i = 0; i < slots_.size(); ++i) free_.push_back(slots_.size() - 1 - i);
    r_.timeseries.assign(static_cast<std::size_t>(std::ceil(c.duration_s * 1000.0 / c.timeseries_ms)) + 1, 0);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(c.port);
    ::inet_pton(AF_INET, c.host.c_str(), &target.sin_addr);
    target_ = target;
    const bool loopback = (ntohl(target.sin_addr.s_addr) >> 24) == 127;
    if (loopback && c.spread_sources) {
      for (std::size_t k = 0; k < kSourcesPerThread; ++k) {
        const std::uint32_t a = (127u << 24) | (static_cast<std::uint32_t>(1 + index % 254) << 16) |
                                (static_cast<std::uint32_t>(1 + k / 250) << 8) | static_cast<std::uint32_t>(1 + k % 250);
        sources_.push_back(htonl(a));
      }
    }
    request_keep_ = fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\n\r\n", c.path, c.host, c.port);
    request_close_ = fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n", c.path, c.host, c.port);
    epoll_.reset(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  }

  void run() {
    // Wake-ups on time: the default 50 us timer slack would make every open-loop start late.
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (!c_.cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      const int cpu = c_.cpus[static_cast<std::size_t>(index_) % c_.cpus.size()];
      CPU_SET(static_cast<unsigned>(cpu), &set);
      // Recorded as applied only when it was: a host's cpuset may refuse the CPU.
      if (::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0) pinned_cpu_ = cpu;
    }
    std::int64_t now = mono_ns();
    if (now < t0_) {  // every thread starts at the same moment
      const std::int64_t wait = t0_ - now;
      const timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
      ::nanosleep(&ts, nullptr);
      now = mono_ns();
    }
    if (rate_ <= 0) {
      for (std::size_t i = 0; i < slots_.size(); ++i) start_next(now);
    }
    std::int64_t last_sweep = now;
    std::array<epoll_event, 512> events{};
    while (now < end_ && !(quota_ && measured_done_ >= quota_)) {
      if (!cpu_started_ && now >= measure_start_) begin_window();
      std::int64_t wait_ns = std::min<std::int64_t>(end_ - now, 100'000'000);
      std::int64_t start_in = INT64_MAX;
      if (rate_ > 0) {
        start_due(now);
        now = mono_ns();
        start_in = std::max<std::int64_t>(0, next_intended() - now);
      }
      if (!cpu_started_) wait_ns = std::min(wait_ns, std::max<std::int64_t>(0, measure_start_ - now));
      if (!delayed_.empty()) wait_ns = std::min(wait_ns, std::max<std::int64_t>(0, send_delayed(now) - now));
      // On time: sleep until spin_ns_ before the next start, then poll (timeout 0) until it is
      // due; the spin is bounded by spin_ns_ per start.
      bool spinning = false;
      if (start_in <= wait_ns) {
        spinning = start_in <= spin_ns_;
        wait_ns = spinning ? 0 : start_in - spin_ns_;
      }
      const timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
      const int n = ::epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()), &ts, nullptr);
      const std::int64_t before = now;
      now = mono_ns();
      if (spinning && n == 0 && cpu_started_) spin_ns_total_ += now - before;
      for (int i = 0; i < n; ++i) {
        const auto& ev = events[static_cast<std::size_t>(i)];
        on_event(static_cast<std::size_t>(ev.data.u64), ev.events, now);
      }
      if (now - last_sweep >= 100'000'000) {
        last_sweep = now;
        expire(now);
      }
      progress_.store(measured_done_, std::memory_order_relaxed);
    }
    if (!cpu_started_) begin_window();
    const std::int64_t window_end = std::min(now, end_);
    r_.window_s = static_cast<double>(window_end - measure_start_) / 1e9;
    const double cpu = static_cast<double>(clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0_) / 1e9;
    const double spin = std::min(cpu, static_cast<double>(spin_ns_total_) / 1e9);
    r_.cpu.push_back({cpu, r_.window_s > 0 ? (cpu - spin) / r_.window_s : 0, spin, pinned_cpu_});
    if (c_.drain_ms > 0) drain(now);
    for (auto& s : slots_) {
      if (s.phase == Phase::kFree) continue;
      if (s.measured) ++r_.unfinished;
      abort_slot(s);
    }
    r_.source_addresses = sources_.size();
  }

  // After the window: no new starts; serve the measured connections in flight until they
  // are done or drain_ms is over, so that the server's work on them lands before the
  // harness's end sample and their latency is kept (as late completions).
  void drain(std::int64_t now) {
    const std::int64_t until = now + std::int64_t{c_.drain_ms} * 1'000'000;
    std::int64_t last_sweep = now;
    std::array<epoll_event, 512> events{};
    auto in_flight = [&] {
      return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.phase != Phase::kFree && s.measured; });
    };
    while (now < until && in_flight()) {
      std::int64_t wait_ns = std::min<std::int64_t>(until - now, 10'000'000);
      if (!delayed_.empty()) wait_ns = std::min(wait_ns, std::max<std::int64_t>(0, send_delayed(now) - now));
      const timespec ts{0, static_cast<long>(wait_ns)};
      const int n = ::epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()), &ts, nullptr);
      now = mono_ns();
      for (int i = 0; i < n; ++i) on_event(static_cast<std::size_t>(events[static_cast<std::size_t>(i)].data.u64), events[static_cast<std::size_t>(i)].events, now);
      if (now - last_sweep >= 100'000'000) {
        last_sweep = now;
        expire(now);
      }
    }
  }

  LoadResult& result() { return r_; }
  std::uint64_t progress() const { return progress_.load(std::memory_order_relaxed); }

 private:
  void begin_window() {
    cpu_started_ = true;
    cpu0_ = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  }

  std::int64_t next_intended() const {
    return t0_ + static_cast<std::int64_t>(static_cast<double>(scheduled_) * 1e9 / rate_);
  }

  // Open loop: start every connection whose scheduled time has come.
  // Starts due by `now` (the loop's bound: never more, or a client slower than its schedule
  // would start connections without ever serving their events). Each start reads the clock
  // again: a start behind others in a burst is that much later.
  void start_due(const std::int64_t now) {
    for (std::int64_t due = next_intended(); due <= now && due < end_; due = next_intended()) {
      ++scheduled_;
      const bool measured = due >= measure_start_;
      if (measured) ++r_.started;
      if (free_.empty()) {
        if (measured) ++r_.dropped_starts;
        continue;
      }
      const std::int64_t at = mono_ns();
      if (measured) {
        if (at - due > kLateNs) ++r_.late_starts;
        r_.start_lateness.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, at - due)));
      }
      start(due, at);
    }
  }

  // Closed loop: start a connection now (if the window is still open).
  void start_next(std::int64_t now) {
    if (now >= end_ || free_.empty()) return;
    if (now >= measure_start_) ++r_.started;
    start(now, now);
  }

  void start(std::int64_t intended, std::int64_t now) {
    const std::size_t id = free_.back();
    free_.pop_back();
    Slot& s = slots_[id];
    s.phase = Phase::kConnecting;
    s.measured = intended >= measure_start_;
    s.intended = intended;
    s.started = s.last_progress = now;
    s.connected = s.first_byte = 0;
    s.requests_done = 0;
    s.head.clear();
    s.in_body = false;
    s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) return fail(id, errno);
    if (!sources_.empty()) {
      const int one = 1;
      ::setsockopt(s.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = sources_[next_source_++ % sources_.size()];
      if (::bind(s.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) < 0) return fail(id, errno);
    }
    const int rc = ::connect(s.fd, reinterpret_cast<const sockaddr*>(&target_), sizeof target_);
    if (rc < 0 && errno != EINPROGRESS) return fail(id, errno);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.fd, &ev) < 0) return fail(id, errno);
  }

  // Sends the requests of slow clients whose time has come; returns the next due time.
  std::int64_t send_delayed(std::int64_t now) {
    std::int64_t next = INT64_MAX;
    for (std::size_t i = 0; i < delayed_.size();) {
      const std::size_t id = delayed_[i];
      Slot& s = slots_[id];
      if (s.phase != Phase::kDelayed) {  // failed or aborted meanwhile
        delayed_[i] = delayed_.back();
        delayed_.pop_back();
      } else if (s.send_at <= now) {
        delayed_[i] = delayed_.back();
        delayed_.pop_back();
        s.last_progress = now;
        send_request(id);
        if (s.phase != Phase::kFree) read_available(id, now);
      } else {
        next = std::min(next, s.send_at);
        ++i;
      }
    }
    return next;
  }

  void send_request(std::size_t id) {
    Slot& s = slots_[id];
    const bool last = s.requests_done + 1 == c_.requests_per_conn;
    const std::string& req = (last && c_.close == ClosePolicy::kServer) ? request_close_ : request_keep_;
    const ssize_t n = ::send(s.fd, req.data(), req.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(req.size())) return fail(id, n < 0 ? errno : EIO);
    s.phase = Phase::kReading;
    s.head.clear();
    s.in_body = false;
  }

  void on_event(std::size_t id, std::uint32_t events, std::int64_t now) {
    Slot& s = slots_[id];
    if (s.phase == Phase::kFree) return;
    s.last_progress = now;
    if (s.phase == Phase::kConnecting) {
      if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        return fail(id, err ? err : ECONNREFUSED);
      }
      if (!(events & EPOLLOUT)) return;
      s.connected = now;
      if (slow_every_ && ++connected_count_ % slow_every_ == 0) {
        s.phase = Phase::kDelayed;
        s.send_at = now + std::int64_t{c_.slow_ms} * 1'000'000;
        delayed_.push_back(id);
        return;
      }
      send_request(id);
      if (s.phase == Phase::kFree) return;
    }
    if (s.phase == Phase::kDelayed) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_available(id, now);
  }

  void read_available(std::size_t id, std::int64_t now) {
    Slot& s = slots_[id];
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(s.fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EAGAIN) return;
        if (errno == EINTR) continue;
        return fail(id, errno);
      }
      if (n == 0) {
        if (s.phase == Phase::kAwaitEof) return complete(id, now);
        return fail_kind(id, ErrorKind::kShortResponse);
      }
      if (s.phase == Phase::kAwaitEof) return fail_kind(id, ErrorKind::kBadResponse);
      if (!s.first_byte) s.first_byte = now;
      if (!consume(s, buf, static_cast<std::size_t>(n))) return fail_kind(id, ErrorKind::kBadResponse);
      if (s.in_body && s.body_left == 0) {
        ++s.requests_done;
        if (s.measured) ++r_.requests;
        if (s.requests_done < c_.requests_per_conn) {
          send_request(id);
          if (s.phase == Phase::kFree) return;
          continue;
        }
        s.response_done = now;
        if (c_.close == ClosePolicy::kServer) {
          s.phase = Phase::kAwaitEof;  // complete once the server's FIN arrives
          continue;
        }
        return complete(id, now);
      }
    }
  }

  // Feeds response bytes; false on a response that is not "HTTP/1.x 200" or malformed.
  static bool consume(Slot& s, const char* data, std::size_t n) {
    if (!s.in_body) {
      const std::size_t old = s.head.size();
      s.head.append(data, n);
      const std::size_t from = old >= 3 ? old - 3 : 0;
      const std::size_t end = s.head.find("\r\n\r\n", from);
      if (end == std::string::npos) return s.head.size() <= kHeadLimit;
      if (s.head.compare(0, 13, "HTTP/1.1 200 ") != 0 && s.head.compare(0, 13, "HTTP/1.0 200 ") != 0) return false;
      std::uint64_t length = 0;
      bool found = false;
      for (std::size_t pos = s.head.find("\r\n"); pos < end; pos = s.head.find("\r\n", pos + 2)) {
        if (strncasecmp(s.head.c_str() + pos + 2, "content-length:", 15) == 0) {
          length = std::strtoull(s.head.c_str() + pos + 17, nullptr, 10);
          found = true;
          break;
        }
      }
      if (!found) return false;
      const std::size_t extra = s.head.size() - (end + 4);
      if (extra > length) return false;  // bytes beyond the response
      s.in_body = true;
      s.body_left = length - extra;
      return true;
    }
    if (n > s.body_left) return false;
    s.body_left -= n;
    return true;
  }

  void complete(std::size_t id, std::int64_t now) {
    Slot& s = slots_[id];
    // Latency ends with the last response; the connection counts once closed.
    const std::int64_t done = s.response_done;
    if (s.measured && now <= end_) {
      ++r_.connections;
      ++measured_done_;
      r_.connect.record(static_cast<std::uint64_t>(s.connected - s.started));
      r_.ttfb.record(static_cast<std::uint64_t>(s.first_byte - s.started));
      r_.total.record(static_cast<std::uint64_t>(done - s.intended));
      r_.total_uncorrected.record(static_cast<std::uint64_t>(done - s.started));
      const auto bucket = static_cast<std::size_t>((now - measure_start_) / (std::int64_t{c_.timeseries_ms} * 1'000'000));
      if (bucket < r_.timeseries.size()) ++r_.timeseries[bucket];
    } else if (s.measured) {
      // Finished after the window closed: in flight at its end. Its latency is kept (a
      // server falling behind must not lose its tail), but it is not in the window's rate.
      ++r_.late_completions;
      r_.drain_s = std::max(r_.drain_s, static_cast<double>(now - end_) / 1e9);
      r_.connect.record(static_cast<std::uint64_t>(s.connected - s.started));
      r_.ttfb.record(static_cast<std::uint64_t>(s.first_byte - s.started));
      r_.total.record(static_cast<std::uint64_t>(done - s.intended));
      r_.total_uncorrected.record(static_cast<std::uint64_t>(done - s.started));
    }
    release(id, /*reset=*/c_.close == ClosePolicy::kReset);
    if (rate_ <= 0) start_next(now);
  }

  void fail_kind(std::size_t id, ErrorKind kind) {
    Slot& s = slots_[id];
    if (s.measured) ++r_.errors[static_cast<std::size_t>(kind)];
    release(id, /*reset=*/true);
    if (rate_ <= 0) start_next(mono_ns());
  }
  void fail(std::size_t id, int err) { fail_kind(id, classify(err)); }

  void abort_slot(Slot& s) {
    if (s.fd >= 0) {
      const linger rst{1, 0};
      ::setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
      ::close(s.fd);
    }
    s.fd = -1;
    s.phase = Phase::kFree;
  }

  void release(std::size_t id, bool reset) {
    Slot& s = slots_[id];
    if (s.fd >= 0) {
      if (reset) {
        const linger rst{1, 0};
        ::setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
      }
      ::close(s.fd);  // also leaves the epoll set
    }
    s.fd = -1;
    s.phase = Phase::kFree;
    free_.push_back(id);
  }

  void expire(std::int64_t now) {
    const std::int64_t limit = std::int64_t{c_.timeout_ms} * 1'000'000;
    for (std::size_t id = 0; id < slots_.size(); ++id) {
      if (slots_[id].phase != Phase::kFree && now - slots_[id].last_progress > limit) fail_kind(id, ErrorKind::kTimeout);
    }
  }

  const LoadConfig& c_;
  int index_;
  int pinned_cpu_ = -1;
  std::int64_t t0_, measure_start_, end_;
  double rate_ = 0;
  std::uint64_t scheduled_ = 0;
  std::uint64_t quota_ = 0, measured_done_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::size_t> free_;
  std::vector<std::uint32_t> sources_;
  std::size_t next_source_ = 0;
  sockaddr_in target_{};
  std::string request_keep_, request_close_;
  UniqueFd epoll_;
  LoadResult r_;
  bool cpu_started_ = false;
  std::int64_t cpu0_ = 0;
  std::int64_t spin_ns_ = std::int64_t{c_.spin_us} * 1000, spin_ns_total_ = 0;
  std::atomic<std::uint64_t> progress_{0};
  std::uint64_t slow_every_ = c_.slow_fraction > 0 ? static_cast<std::uint64_t>(std::llround(1.0 / c_.slow_fraction)) : 0;
  std::uint64_t connected_count_ = 0;
  std::vector<std::size_t> delayed_;
};

}  // namespace

const char* to_string(ClosePolicy p) {
  switch (p) {
    case ClosePolicy::kClient: return "client";
    case ClosePolicy::kServer: return "server";
    case ClosePolicy::kReset: return "rst";
  }
  return "?";
}

ClosePolicy close_policy_from_string(const std::string& s) {
  if (s == "client") return ClosePolicy::kClient;
  if (s == "server") return ClosePolicy::kServer;
  if (s == "rst") return ClosePolicy::kReset;
  throw std::invalid_argument("close policy '" + s + "': expected client, server or rst");
}

const char* to_string(ErrorKind k) {
  static constexpr const char* kNames[] = {"refused", "reset", "timeout", "no_address",
                                           "emfile", "short_response", "bad_response", "other"};
  return kNames[static_cast<std::size_t>(k)];
}

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t comma = text.find(',', pos);
    const std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::size_t dash = part.find('-');
    try {
      std::size_t used_lo = 0, used_hi = 0;
      const int lo = std::stoi(part.substr(0, dash), &used_lo);
      const int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1), &used_hi);
      if (used_lo != (dash == std::string::npos ? part.size() : dash) ||
          (dash != std::string::npos && used_hi != part.size() - dash - 1) || lo < 0 || hi < lo) {
        throw std::invalid_argument("junk");
      }
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    } catch (const std::exception&) {
      throw std::invalid_argument("CPU list '" + text + "': expected e.g. 0 or 0-1 or 0,2");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return cpus;
}

void validate(const LoadConfig& c) {
  auto bad = [](const std::string& m) { throw std::invalid_argument(m); };
  in_addr a{};
  if (::inet_pton(AF_INET, c.host.c_str(), &a) != 1) bad("target host '" + c.host + "' is not an IPv4 address");
  if (c.port == 0) bad("target port must be 1..65535");
  if (c.threads < 1 || c.threads > 256) bad("threads must be 1..256");
  if (c.rate < 0 || !std::isfinite(c.rate)) bad("rate must be >= 0");
  if (c.rate == 0 && (c.connections < c.threads || c.connections > 100'000))
    bad(fmt::format("connections must be in [threads ({}), 100000]", c.threads));
  if (c.requests_per_conn < 1 || c.requests_per_conn > 1'000'000) bad("requests per connection must be 1..1000000");
  if (!(c.duration_s > 0) || c.duration_s > 86'400) bad("duration must be in (0, 86400] seconds");
  if (c.warmup_s < 0 || c.warmup_s > 3600) bad("warmup must be in [0, 3600] seconds");
  if (c.timeout_ms < 1) bad("timeout must be >= 1 ms");
  if (c.drain_ms < 0 || c.drain_ms > 600'000) bad("drain must be in [0, 600000] ms");
  if (c.max_in_flight < c.threads) bad("max in flight must be >= threads");
  if (c.timeseries_ms < 1) bad("timeseries interval must be >= 1 ms");
  if (c.slow_fraction < 0 || c.slow_fraction > 1) bad("slow fraction must be in [0, 1]");
  if (c.slow_ms < 0 || c.slow_ms >= c.timeout_ms) bad("slow delay must be in [0, timeout)");
  if (c.spin_us < 0 || c.spin_us > 10'000) bad("spin must be in [0, 10000] us");
  if (!(c.late_threshold_us > 0) || !std::isfinite(c.late_threshold_us)) bad("late threshold must be > 0 us");
  if (c.path.empty() || c.path.front() != '/' || c.path.find_first_of(" \r\n") != std::string::npos)
    bad("path must start with / and contain no spaces or line breaks");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (int cpu : c.cpus)
    if (cpu < 0 || static_cast<unsigned>(cpu) >= cores) bad(fmt::format("cpu {} does not exist here (0..{})", cpu, cores - 1));
}

nlohmann::json to_json(const LoadConfig& c) {
  return {{"host", c.host},
          {"port", c.port},
          {"threads", c.threads},
          {"mode", c.rate > 0 ? "open" : "closed"},
          {"connections", c.rate > 0 ? nlohmann::json(nullptr) : nlohmann::json(c.connections)},
          {"rate", c.rate > 0 ? nlohmann::json(c.rate) : nlohmann::json(nullptr)},
          {"requests_per_conn", c.requests_per_conn},
          {"duration_s", c.duration_s},
          {"warmup_s", c.warmup_s},
          {"count", c.count},
          {"close", to_string(c.close)},
          {"path", c.path},
          {"timeout_ms", c.timeout_ms},
          {"drain_ms", c.drain_ms},
          {"max_in_flight", c.max_in_flight},
          {"spread_sources", c.spread_sources},
          {"cpus", c.cpus},
          {"timeseries_ms", c.timeseries_ms},
          {"slow_fraction", c.slow_fraction},
          {"slow_ms", c.slow_ms},
          {"spin_us", c.spin_us},
          {"late_threshold_us", c.late_threshold_us}};
}

std::uint64_t LoadResult::error_total() const {
  std::uint64_t n = 0;
  for (auto e : errors) n += e;
  return n;
}

bool LoadResult::client_late() const {
  return config.rate > 0 && start_lateness.count() > 0 &&
         static_cast<double>(start_lateness.percentile(99)) / 1000.0 > config.late_threshold_us;
}

double LoadResult::max_thread_utilization() const {
  double m = 0;
  for (const auto& t : cpu) m = std::max(m, t.utilization);
  return m;
}

nlohmann::json LoadResult::to_json() const {
  nlohmann::json errs = nlohmann::json::object();
  for (std::size_t k = 0; k < errors.size(); ++k) errs[to_string(static_cast<ErrorKind>(k))] = errors[k];
  errs["total"] = error_total();
  nlohmann::json cpus = nlohmann::json::array();
  double cpu_total = 0;
  for (const auto& t : cpu) {
    cpus.push_back({{"cpu_s", t.cpu_s},
                    {"utilization", t.utilization},
                    {"spin_s", t.spin_s},
                    {"pinned_cpu", t.pinned_cpu >= 0 ? nlohmann::json(t.pinned_cpu) : nlohmann::json(nullptr)}});
    cpu_total += t.cpu_s;
  }
  return {{"schema", "acceptbench-loadgen/1"},
          {"config", acceptbench::to_json(config)},
          {"window_s", window_s},
          {"connections", connections},
          {"requests", requests},
          {"conn_per_s", conn_per_s()},
          {"req_per_s", window_s > 0 ? static_cast<double>(requests) / window_s : 0.0},
          {"started", started},
          {"achieved_start_rate", window_s > 0 ? static_cast<double>(started - dropped_starts) / window_s : 0.0},
          {"late_starts", late_starts},
          {"start_lateness_us",
           {{"count", start_lateness.count()},
            {"p50", static_cast<double>(start_lateness.percentile(50)) / 1000.0},
            {"p99", static_cast<double>(start_lateness.percentile(99)) / 1000.0},
            {"max", static_cast<double>(start_lateness.max()) / 1000.0}}},
          {"client_late", client_late()},
          {"dropped_starts", dropped_starts},
          {"unfinished", unfinished},
          {"late_completions", late_completions},
          {"drain_s", drain_s},
          {"errors", errs},
          {"source_addresses", source_addresses},
          {"latency_ns",
           {{"connect", connect.to_json()},
            {"ttfb", ttfb.to_json()},
            {"total", total.to_json()},
            {"total_uncorrected", total_uncorrected.to_json()},
            {"start_lateness", start_lateness.to_json()}}},
          {"timeseries", {{"interval_ms", config.timeseries_ms}, {"completions", timeseries}}},
          {"client_cpu", {{"threads", cpus}, {"total_s", cpu_total}, {"max_thread_utilization", max_thread_utilization()}}}};
}

void LoadResult::merge(const LoadResult& o) {
  window_s = std::max(window_s, o.window_s);
  connections += o.connections;
  requests += o.requests;
  started += o.started;
  late_starts += o.late_starts;
  dropped_starts += o.dropped_starts;
  unfinished += o.unfinished;
  late_completions += o.late_completions;
  drain_s = std::max(drain_s, o.drain_s);
  for (std::size_t k = 0; k < errors.size(); ++k) errors[k] += o.errors[k];
  connect.merge(o.connect);
  ttfb.merge(o.ttfb);
  total.merge(o.total);
  total_uncorrected.merge(o.total_uncorrected);
  start_lateness.merge(o.start_lateness);
  if (timeseries.size() < o.timeseries.size()) timeseries.resize(o.timeseries.size(), 0);
  for (std::size_t i = 0; i < o.timeseries.size(); ++i) timeseries[i] += o.timeseries[i];
  cpu.insert(cpu.end(), o.cpu.begin(), o.cpu.end());
  source_addresses += o.source_addresses;
}

LoadResult LoadResult::from_json(const nlohmann::json& j) {
  try {
    if (j.at("schema") != "acceptbench-loadgen/1") throw std::invalid_argument("not a loadgen result (schema)");
    LoadResult r;
    const auto& c = j.at("config");
    r.config.host = c.at("host");
    r.config.port = c.at("port");
    r.config.threads = c.at("threads");
    if (!c.at("connections").is_null()) r.config.connections = c.at("connections");
    if (!c.at("rate").is_null()) r.config.rate = c.at("rate");
    r.config.requests_per_conn = c.at("requests_per_conn");
    r.config.duration_s = c.at("duration_s");
    r.config.warmup_s = c.at("warmup_s");
    r.config.close = close_policy_from_string(c.at("close"));
    r.config.timeseries_ms = c.at("timeseries_ms");
    r.window_s = j.at("window_s");
    r.connections = j.at("connections");
    r.requests = j.at("requests");
    r.started = j.at("started");
    r.late_starts = j.at("late_starts");
    r.dropped_starts = j.at("dropped_starts");
    r.unfinished = j.at("unfinished");
    r.late_completions = j.value("late_completions", std::uint64_t{0});
    r.drain_s = j.value("drain_s", 0.0);
    for (std::size_t k = 0; k < r.errors.size(); ++k) r.errors[k] = j.at("errors").at(to_string(static_cast<ErrorKind>(k)));
    const auto& l = j.at("latency_ns");
    r.connect = Histogram::from_json(l.at("connect"));
    r.ttfb = Histogram::from_json(l.at("ttfb"));
    r.total = Histogram::from_json(l.at("total"));
    r.total_uncorrected = Histogram::from_json(l.at("total_uncorrected"));
    if (l.contains("start_lateness")) r.start_lateness = Histogram::from_json(l.at("start_lateness"));
    r.config.late_threshold_us = c.value("late_threshold_us", r.config.late_threshold_us);
    r.config.spin_us = c.value("spin_us", r.config.spin_us);
    r.timeseries = j.at("timeseries").at("completions").get<std::vector<std::uint64_t>>();
    for (const auto& t : j.at("client_cpu").at("threads")) {
      const auto pinned = t.find("pinned_cpu");
      r.cpu.push_back({t.at("cpu_s"), t.at("utilization"), t.value("spin_s", 0.0),
                       pinned != t.end() && pinned->is_number_integer() ? pinned->get<int>() : -1});
    }
    r.source_addresses = j.value("source_addresses", std::uint64_t{0});
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed loadgen result: ") + e.what());
  }
}

LoadResult run_load(const LoadConfig& config, const std::function<void(double, std::uint64_t)>& progress) {
  validate(config);
  const std::int64_t t0 = mono_ns() + 5'000'000;  // a moment for the threads to start
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < config.threads; ++i) workers.push_back(std::make_unique<Worker>(config, i, t0));
  {
    std::vector<std::jthread> threads;
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
    if (progress) {
      const std::int64_t end = t0 + static_cast<std::int64_t>((config.warmup_s + config.duration_s) * 1e9);
      std::int64_t next = t0 + 1'000'000'000;
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        bool all_done = true;
        for (const auto& t : threads) all_done = all_done && !t.joinable();
        const std::int64_t now = mono_ns();
        if (now >= end + 200'000'000) break;
        if (now >= next) {
          std::uint64_t done = 0;
          for (const auto& w : workers) done += w->progress();
          progress(static_cast<double>(now - t0) / 1e9, done);
          next += 1'000'000'000;
        }
        if (config.count) {
          std::uint64_t done = 0;
          for (const auto& w : workers) done += w->progress();
          if (done >= config.count) break;
        }
      }
    }
  }  // join
  LoadResult r;
  r.config = config;
  for (auto& w : workers) {
    if (r.timeseries.empty() && r.cpu.empty()) {
      r = std::move(w->result());
      r.config = config;
    } else {
      r.merge(w->result());
    }
  }
  return r;
}

std::int64_t self_rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

namespace {

// TCP socket memory in use (pages, machine-wide) from /proc/net/sockstat's "TCP: ... mem N".
std::int64_t sockstat_tcp_mem_pages() {
  std::ifstream in("/proc/net/sockstat");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("TCP:")) continue;
    const std::size_t at = line.find(" mem ");
    if (at != std::string::npos) return std::strtoll(line.c_str() + at + 5, nullptr, 10);
  }
  return 0;
}

// One response read whole: the head up to \r\n\r\n, then Content-Length bytes.
bool response_complete(const std::string& got) {
  const std::size_t end = got.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::uint64_t length = 0;
  for (std::size_t pos = got.find("\r\n"); pos < end; pos = got.find("\r\n", pos + 2)) {
    if (strncasecmp(got.c_str() + pos + 2, "content-length:", 15) == 0) {
      length = std::strtoull(got.c_str() + pos + 17, nullptr, 10);
      break;
    }
  }
  return got.size() >= end + 4 + length;
}

}  // namespace

std::string HoldResult::describe() const {
  std::string s = fmt::format("held {} of {} idle connections", held, requested);
  if (unanswered) s += fmt::format(", {} unanswered (no progress for the stall limit)", unanswered);
  if (failed) {
    s += fmt::format(", {} failed:", failed);
    for (std::size_t k = 0; k < errors.size(); ++k)
      if (errors[k]) s += fmt::format(" {}={}", to_string(static_cast<ErrorKind>(k)), errors[k]);
  }
  return s;
}

nlohmann::json HoldResult::to_json() const {
  nlohmann::json errs = nlohmann::json::object();
  for (std::size_t k = 0; k < errors.size(); ++k) errs[to_string(static_cast<ErrorKind>(k))] = errors[k];
  return {{"requested", requested},
          {"held", held},
          {"failed", failed},
          {"unanswered", unanswered},
          {"errors", errs},
          {"open_s", open_s},
          {"client_rss_delta_kb", client_rss_delta_kb},
          {"client_bytes_per_conn", client_bytes_per_conn()},
          {"kernel_tcp_mem_delta_kb", kernel_tcp_mem_delta_kb},
          {"still_open_at_end", still_open_at_end < 0 ? nlohmann::json(nullptr) : nlohmann::json(still_open_at_end)}};
}

HeldConnections HeldConnections::open(const std::string& host, std::uint16_t port, int n, int stall_ms,
                                      int max_pending) {
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &target.sin_addr) != 1) {
    throw std::invalid_argument("hold: target host '" + host + "' is not an IPv4 address");
  }
  if (n < 0 || n > 1'000'000) throw std::invalid_argument("hold: connections must be 0..1000000");
  if (stall_ms < 1 || max_pending < 1) throw std::invalid_argument("hold: stall and pending limits must be >= 1");
  HeldConnections h;
  HoldResult& r = h.result_;
  r.requested = n;
  if (n == 0) return h;
  const bool loopback = (ntohl(target.sin_addr.s_addr) >> 24) == 127;
  const std::string request = fmt::format("GET / HTTP/1.1\r\nHost: {}:{}\r\n\r\n", host, port);
  const std::int64_t rss0 = self_rss_kb(), mem0 = sockstat_tcp_mem_pages();
  const std::int64_t t0 = mono_ns();
  UniqueFd ep(acceptbench::check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  struct Pending {
    UniqueFd fd;
    bool sent = false;
    std::string got;
  };
  std::vector<Pending> pending(static_cast<std::size_t>(std::min(n, max_pending)));
  std::vector<std::size_t> free_slots;
  for (std::size_t i = 0; i < pending.size(); ++i) free_slots.push_back(pending.size() - 1 - i);
  h.fds_.reserve(static_cast<std::size_t>(n));
  int started = 0;
  std::int64_t last_progress = t0;
  auto fail = [&](std::size_t slot, int err) {
    ++r.failed;
    ++r.errors[static_cast<std::size_t>(classify(err))];
    pending[slot] = Pending{};
    free_slots.push_back(slot);
  };
  std::array<epoll_event, 256> events{};
  char buf[4096];
  while (r.held + r.failed < n) {
    while (started < n && !free_slots.empty()) {
      const std::size_t slot = free_slots.back();
      free_slots.pop_back();
      ++started;
      Pending& p = pending[slot];
      p.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!p.fd) {
        fail(slot, errno);
        continue;
      }
      if (loopback) {
        // 1000 connections per source address: 127.77.x.y, far from the load's 127.T.x.y.
        const int one = 1;
        ::setsockopt(p.fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        const auto k = static_cast<std::uint32_t>(started / 1000);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24) | (77u << 16) | ((1 + k / 250) << 8) | (1 + k % 250));
        if (::bind(p.fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) < 0) {
          fail(slot, errno);
          continue;
        }
      }
      if (::connect(p.fd.get(), reinterpret_cast<const sockaddr*>(&target), sizeof target) < 0 && errno != EINPROGRESS) {
        fail(slot, errno);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
      ev.data.u64 = slot;
      if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.fd.get(), &ev) < 0) fail(slot, errno);
    }
    if (r.held + r.failed >= n) break;
    const int k = ::epoll_wait(ep.get(), events.data(), static_cast<int>(events.size()), 100);
    const std::int64_t now = mono_ns();
    for (int i = 0; i < k; ++i) {
      const auto slot = static_cast<std::size_t>(events[static_cast<std::size_t>(i)].data.u64);
      const std::uint32_t e = events[static_cast<std::size_t>(i)].events;
      Pending& p = pending[slot];
      if (!p.fd) continue;
      if (e & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(p.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        fail(slot, err ? err : ECONNRESET);
        continue;
      }
      if (!p.sent && (e & EPOLLOUT)) {
        if (::send(p.fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
          fail(slot, errno);
          continue;
        }
        p.sent = true;
        last_progress = now;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = slot;
        ::epoll_ctl(ep.get(), EPOLL_CTL_MOD, p.fd.get(), &ev);
      }
      if (!(e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) continue;
      const ssize_t got = ::read(p.fd.get(), buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        fail(slot, got == 0 ? ECONNRESET : errno);
        continue;
      }
      if (got < 0) continue;
      p.got.append(buf, static_cast<std::size_t>(got));
      last_progress = now;
      if (!response_complete(p.got)) continue;
      if (p.got.compare(0, 13, "HTTP/1.1 200 ") != 0) {
        ++r.failed;
        ++r.errors[static_cast<std::size_t>(ErrorKind::kBadResponse)];
        pending[slot] = Pending{};
      } else {
        ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, p.fd.get(), nullptr);
        h.fds_.push_back(std::move(p.fd));
        ++r.held;
        p = Pending{};
      }
      free_slots.push_back(slot);
    }
    if (now - last_progress > std::int64_t{stall_ms} * 1'000'000) break;
  }
  r.unanswered = n - r.held - r.failed;
  r.open_s = static_cast<double>(mono_ns() - t0) / 1e9;
  pending.clear();  // the unanswered ones close here
  r.client_rss_delta_kb = self_rss_kb() - rss0;
  r.kernel_tcp_mem_delta_kb = (sockstat_tcp_mem_pages() - mem0) * (::sysconf(_SC_PAGESIZE) / 1024);
  return h;
}

int HeldConnections::check() {
  int open = 0;
  for (const auto& fd : fds_) {
    pollfd p{fd.get(), POLLIN | POLLRDHUP, 0};
    // Idle and open: nothing to read, no hang-up. Anything else means the server let go.
    if (::poll(&p, 1, 0) == 0) ++open;
  }
  result_.still_open_at_end = open;
  return open;
}

void HeldConnections::close() {
  for (auto& fd : fds_) {
    const linger rst{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    fd.reset();
  }
  fds_.clear();
}

std::string summarize(const LoadResult& r) {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::string s = fmt::format(
      "{} loop, {} threads, close={}, {} req/conn, window {:.2f} s\n"
      "  connections {}  ({:.0f} conn/s)  requests {}  errors {}  unfinished {}\n",
      r.config.rate > 0 ? fmt::format("open ({:.0f}/s)", r.config.rate) : fmt::format("closed ({} in flight)", r.config.connections),
      r.config.threads, to_string(r.config.close), r.config.requests_per_conn, r.window_s, r.connections, r.conn_per_s(),
      r.requests, r.error_total(), r.unfinished);
  if (r.error_total()) {
    s += "  errors:";
    for (std::size_t k = 0; k < r.errors.size(); ++k)
      if (r.errors[k]) s += fmt::format(" {}={}", to_string(static_cast<ErrorKind>(k)), r.errors[k]);
    s += "\n";
  }
  if (r.config.rate > 0) {
    auto us1 = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
    s += fmt::format("  starts {}  late >1ms {}  dropped {}\n", r.started, r.late_starts, r.dropped_starts);
    s += fmt::format("  start lateness (us): p50 {:.1f}  p99 {:.1f}  max {:.1f}{}\n", us1(r.start_lateness.percentile(50)),
                     us1(r.start_lateness.percentile(99)), us1(r.start_lateness.max()),
                     r.client_late() ? fmt::format("  CLIENT LATE (p99 > {:.0f} us): latency from the intended start "
                                                   "includes the client's own lateness",
                                                   r.config.late_threshold_us)
                                     : "");
  }
  s += "  latency (us)          p50       p90       p99     p99.9    p99.99       max\n";
  auto row = [&](const char* name, const Histogram& h) {
    s += fmt::format("  {:<16} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", name, us(h.percentile(50)),
                     us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.percentile(99.99)), us(h.max()));
  };
  row("connect", r.connect);
  row("first byte", r.ttfb);
  row(r.config.rate > 0 ? "total (intended)" : "total", r.total);
  if (r.config.rate > 0) row("total (actual)", r.total_uncorrected);
  s += fmt::format("  client CPU: busiest thread {:.0f}%{}\n", 100 * r.max_thread_utilization(),
                   r.max_thread_utilization() > 0.9 ? "  (saturated: the client may be the limit)" : "");
  return s;
}

}  // namespace acceptbench
