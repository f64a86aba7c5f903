#include "loadgen.hpp"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "socket.hpp"
#include "socket.hpp"
#include "model_fixture.hpp"

namespace acceptbench {
namespace {

using namespace std::chrono_literals;

// A scripted misbehaving server: accepts and runs `behaviour` on each connection, until
// destroyed. Loopback, ephemeral port.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(UniqueFd)> behaviour) : listener_(make_listener({})) {
    set_nonblocking(listener_.get(), true);
    thread_ = std::jthread([this, behaviour](const std::stop_token& stop) {
      std::vector<UniqueFd> keep;
      while (!stop.stop_requested()) {
        const int fd = accept_connection(listener_.get(), false);
        if (fd < 0) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        behaviour(UniqueFd(fd));
      }
    });
  }
  std::uint16_t port() const { return local_port(listener_.get()); }

 private:
  UniqueFd listener_;
  std::jthread thread_;
};

void read_request(int fd) {
  char buf[4096];
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

LoadConfig short_load(std::uint16_t port) {
  LoadConfig c;
  c.port = port;
  c.connections = 2;
  c.duration_s = 0.5;
  c.timeout_ms = 200;
  return c;
}

std::uint64_t errors_of(const LoadResult& r, ErrorKind k) { return r.errors[static_cast<std::size_t>(k)]; }

TEST(LoadgenErrorsTest, RefusedWhenNothingListens) {
  std::uint16_t port;
  {
    UniqueFd l = make_listener({});
    port = local_port(l.get());
  }
  const LoadResult r = run_load(short_load(port));
  EXPECT_EQ(r.connections, 0u);
  EXPECT_GT(errors_of(r, ErrorKind::kRefused), 0u);
  EXPECT_EQ(r.error_total(), errors_of(r, ErrorKind::kRefused));
}

TEST(LoadgenErrorsTest, ResetWhenServerAbortsAfterTheRequest) {
  ScriptedServer s([](UniqueFd fd) {
    read_request(fd.get());
    const linger rst{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
  });
  const LoadResult r = run_load(short_load(s.port()));
  EXPECT_GT(errors_of(r, ErrorKind::kReset), 0u);
  EXPECT_EQ(r.connections, 0u);
}

TEST(LoadgenErrorsTest, TimeoutWhenServerStalls) {
  std::vector<UniqueFd> held;
  std::mutex m;
  ScriptedServer s([&](UniqueFd fd) {
    const std::lock_guard lock(m);
    held.push_back(std::move(fd));  // never answers
  });
  const LoadResult r = run_load(short_load(s.port()));
  EXPECT_GT(errors_of(r, ErrorKind::kTimeout), 0u);
  EXPECT_EQ(r.connections, 0u);
}

TEST(LoadgenErrorsTest, ShortAndBadResponsesAreCountedApart) {
  ScriptedServer short_server([](UniqueFd fd) {
    read_request(fd.get());
    write_all(fd.get(), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  });
  const LoadResult a = run_load(short_load(short_server.port()));
  EXPECT_GT(errors_of(a, ErrorKind::kShortResponse), 0u);
  EXPECT_EQ(errors_of(a, ErrorKind::kBadResponse), 0u);

  ScriptedServer bad_server([](UniqueFd fd) {
    read_request(fd.get());
    write_all(fd.get(), "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
  });
  const LoadResult b = run_load(short_load(bad_server.port()));
  EXPECT_GT(errors_of(b, ErrorKind::kBadResponse), 0u);
  EXPECT_EQ(errors_of(b, ErrorKind::kShortResponse), 0u);
}

TEST(LoadgenTest, ClosedLoopAgainstAModelCountsWhatTheServerAccepted) {
  for (const char* close : {"client", "server", "rst"}) {
    ServerProcess server = testing::start_model("reuseport", 2);
    LoadConfig c;
    c.port = server.port();
    c.threads = 2;
    c.connections = 8;
    c.requests_per_conn = 3;
    c.duration_s = 0.5;
    c.close = close_policy_from_string(close);
    const LoadResult r = run_load(c);
    EXPECT_GT(r.connections, 0u) << close;
    EXPECT_EQ(r.error_total(), 0u) << close;
    EXPECT_EQ(r.connect.count(), r.connections);
    EXPECT_EQ(r.total.count(), r.connections);
    EXPECT_GT(r.source_addresses, 1u);
    const StopResult stop = server.stop(5s);
    ASSERT_TRUE(stop.stats);
    // Every connection the client completed or abandoned was accepted by the server
    // (warm-up is 0, so all starts are measured).
    EXPECT_GE(testing::total(*stop.stats, "accepted"), r.connections) << close;
    EXPECT_LE(testing::total(*stop.stats, "accepted"), r.started) << close;
  }
}

TEST(LoadgenTest, OpenLoopFollowsItsSchedule) {
  ServerProcess server = testing::start_model("reuseport", 2);
  LoadConfig c;
  c.port = server.port();
  c.threads = 2;
  c.rate = 2000;
  c.duration_s = 1.0;
  c.warmup_s = 0.2;
  const LoadResult r = run_load(c);
  // 2000/s for 1 s: the schedule makes exactly 2000 measured starts (+-1 per thread at the edges).
  EXPECT_NEAR(static_cast<double>(r.started), 2000.0, 2.0);
  EXPECT_EQ(r.started, r.connections + r.error_total() + r.unfinished + r.dropped_starts);
  EXPECT_EQ(r.error_total(), 0u);
  // Corrected latency is measured from the scheduled start, so it is never below the uncorrected.
  EXPECT_GE(r.total.percentile(99), r.total_uncorrected.percentile(99));
  EXPECT_GE(r.total.min(), r.total_uncorrected.min());
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["config"]["mode"], "open");
  EXPECT_EQ(j["timeseries"]["completions"].size(), 11u);
}

TEST(LoadgenTest, CountStopsTheRunEarly) {
  ServerProcess server = testing::start_model("reuseport", 1);
  LoadConfig c;
  c.port = server.port();
  c.connections = 1;
  c.count = 50;
  c.duration_s = 30;
  const auto t0 = std::chrono::steady_clock::now();
  const LoadResult r = run_load(c);
  EXPECT_EQ(r.connections, 50u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(LoadgenTest, ResultJsonRoundTripsAndMerges) {
  ServerProcess server = testing::start_model("reuseport", 1);
  LoadConfig c;
  c.port = server.port();
  c.connections = 2;
  c.duration_s = 0.3;
  const LoadResult a = run_load(c);
  const LoadResult back = LoadResult::from_json(a.to_json());
  EXPECT_EQ(back.to_json(), a.to_json());
  LoadResult merged = back;
  merged.merge(a);
  EXPECT_EQ(merged.connections, 2 * a.connections);
  EXPECT_EQ(merged.total.count(), 2 * a.total.count());
  EXPECT_THROW(LoadResult::from_json(nlohmann::json{{"schema", "x"}}), std::invalid_argument);
}

TEST(LoadgenTest, BadConfigIsRejectedWithAMessage) {
  LoadConfig c;
  c.port = 80;
  c.host = "localhost-ish";
  EXPECT_THROW(validate(c), std::invalid_argument);
  c.host = "127.0.0.1";
  c.duration_s = 0;
  EXPECT_THROW(validate(c), std::invalid_argument);
  c.duration_s = 1;
  c.connections = 0;
  EXPECT_THROW(validate(c), std::invalid_argument);
  EXPECT_THROW(close_policy_from_string("maybe"), std::invalid_argument);
}

}  // namespace
}  // namespace acceptbench
