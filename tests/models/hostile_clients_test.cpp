// Hostile clients and resource limits, on every model (models/models.json).
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

class HostileClientTest : public ::testing::TestWithParam<std::string> {};

// Slowloris: a byte every 100 ms keeps a connection active, but a request must arrive
// whole within --read-timeout-ms of its first byte.
TEST_P(HostileClientTest, SlowlorisConnectionsAreClosedByTheRequestDeadline) {
  ServerProcess server = start_model(GetParam(), 2, {"--read-timeout-ms", "400"});
  constexpr int kSlow = 3;
  std::vector<int> closed_after_ms(kSlow, -1);
  {
    std::vector<std::jthread> slow;
    for (int i = 0; i < kSlow; ++i) {
      slow.emplace_back([&, i] {
        UniqueFd fd = connect_loopback(server.port());
        if (write_all(fd.get(), "GET / HTTP/1.1\r\nX-Slow: ") != 0) return;
        const auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < 60; ++k) {  // at most 6 s
          if (write_all(fd.get(), "a") != 0 || peer_closed(fd.get(), 100)) {
            closed_after_ms[static_cast<std::size_t>(i)] = static_cast<int>(
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
            return;
          }
        }
      });
    }
  }
  for (int ms : closed_after_ms) {
    EXPECT_GE(ms, 0) << "a slowloris connection was never closed";
    // Models that serve one connection per thread take them in turn (iterative: one at a time).
    EXPECT_LT(ms, 3000);
  }
  EXPECT_EQ(drive(server.port(), 2, 2, 1).failures, 0) << "the server does not serve after the slowloris";
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_GE(total(*stop.stats, "read_timeouts"), static_cast<std::uint64_t>(kSlow));
}

// A client that sends its request and half-closes (shutdown SHUT_WR) still gets its answer.
TEST_P(HostileClientTest, HalfClosedClientGetsItsResponse) {
  ServerProcess server = start_model(GetParam());
  UniqueFd fd = connect_loopback(server.port());
  ASSERT_EQ(write_all(fd.get(), kGet), 0);
  ::shutdown(fd.get(), SHUT_WR);
  const auto resp = read_response(fd.get());
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_TRUE(peer_closed(fd.get(), 3000));
  EXPECT_TRUE(server.alive());
}

// RLIMIT_NOFILE 64 and 100 connections held open: EMFILE must not make the server spin,
// and it must serve again once the descriptors are free.
TEST_P(HostileClientTest, SurvivesDescriptorExhaustionWithoutSpinning) {
  ServerProcess server = start_model(GetParam(), 2, {"--read-timeout-ms", "3000"}, /*rlimit_nofile=*/64);
  {
    std::vector<UniqueFd> held;
    for (int i = 0; i < 100; ++i) {
      try {
        held.push_back(connect_loopback(server.port(), 1000));
      } catch (const std::exception&) {  // the backlog may refuse some: fine
      }
    }
    std::this_thread::sleep_for(300ms);
    const auto before = sample_proc(server.pid());
    std::this_thread::sleep_for(1000ms);
    const auto after = sample_proc(server.pid());
    const double cpu = (after.user_s + after.system_s + after.children_user_s + after.children_system_s) -
                       (before.user_s + before.system_s + before.children_user_s + before.children_system_s);
    EXPECT_LT(cpu, 0.3) << "the server burned " << cpu << " s of CPU in 1 s with descriptors exhausted";
    EXPECT_TRUE(server.alive());
  }
  // Descriptors come back as the server sees the closes (well within 500 ms); then the very
  // first request must be served. A blocking acceptor whose EMFILE cure waits in accept()
  // with its spare descriptor closed would drop that first connection (issue 18, item 2).
  std::this_thread::sleep_for(500ms);
  {
    UniqueFd fd = connect_loopback(server.port());
    const auto first = roundtrip(fd.get(), kGetClose);
    ASSERT_TRUE(first) << "the first connection after the descriptors were freed was dropped";
    EXPECT_EQ(first->status, 200);
  }
  const LoadResult again = drive(server.port(), 2, 3, 1);
  EXPECT_EQ(again.failures, 0) << "the server did not recover after the descriptors were freed";
  const StopResult stop = server.stop(8s);
  EXPECT_EQ(stop.exit_code, 0) << stop.describe() << stop.stderr_text;
}

INSTANTIATE_TEST_SUITE_P(AllModels, HostileClientTest, ::testing::ValuesIn(model_ids()), [](const auto& param_info) {
  std::string name = param_info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

}  // namespace
}  // namespace acceptbench::testing
