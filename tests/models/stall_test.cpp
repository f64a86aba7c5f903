// The stall experiment's server flags: --sleep-fraction makes exactly that share of the
// requests wait --sleep-us, --stall-worker/--stall-ms/--stall-every-ms block one worker
// periodically; both are counted in the server's stats.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

class StallFlagsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StallFlagsTest, ChosenFractionOfRequestsSleepsAndIsCounted) {
  ServerProcess server = start_model(GetParam(), 2, {"--sleep-us", "2000", "--sleep-fraction", "0.25"});
  // 2 threads x 10 connections x (3 keep-alive + 1 closing request) = 80 requests.
  const LoadResult r = drive(server.port(), 2, 10, 3);
  EXPECT_EQ(r.ok_responses, 80);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.stderr_text;
  EXPECT_EQ(total(*stop.stats, "requests"), 80u);
  EXPECT_EQ(total(*stop.stats, "slept"), 20u);  // exactly floor(80 * 0.25)
  EXPECT_EQ(total(*stop.stats, "stalls"), 0u);
  EXPECT_EQ((*stop.stats)["config"]["sleep_fraction"], 0.25);
}

TEST_P(StallFlagsTest, StallWorkerBlocksPeriodicallyAndOnlyThatWorker) {
  // Worker 0 stalls 30 ms on its first request after every 100 ms.
  ServerProcess server =
      start_model(GetParam(), 2, {"--stall-worker", "0", "--stall-ms", "30", "--stall-every-ms", "100"});
  const auto until = std::chrono::steady_clock::now() + 700ms;
  int ok = 0;
  while (std::chrono::steady_clock::now() < until) ok += drive(server.port(), 2, 2, 0).ok_responses;
  EXPECT_GT(ok, 0);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.stderr_text;
  const auto& acceptors = (*stop.stats)["acceptors"];
  const auto stalls0 = acceptors[0]["stalls"].get<std::uint64_t>();
  // At most one stall per period (about 7 in 0.7 s plus the driving slack), at least one.
  EXPECT_GE(stalls0, 1u);
  EXPECT_LE(stalls0, 12u);
  for (std::size_t i = 1; i < acceptors.size(); ++i) EXPECT_EQ(acceptors[i]["stalls"], 0u);
  EXPECT_EQ(total(*stop.stats, "slept"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Models, StallFlagsTest,
                         ::testing::Values("reuseport", "epoll-exclusive", "acceptor-dispatch", "thread-per-conn"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(StallFlagsTest, BadValuesAreClearErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--sleep-fraction", "0.5"},  // without --sleep-us
        {"--sleep-us", "10", "--sleep-fraction", "0"},
        {"--sleep-us", "10", "--sleep-fraction", "1.5"},
        {"--stall-worker", "0"},  // without --stall-ms
        {"--stall-worker", "5", "--stall-ms", "10"}}) {  // only 2 workers
    EXPECT_THROW(start_model("reuseport", 2, args), std::runtime_error) << args[0];
  }
}

}  // namespace
}  // namespace acceptbench::testing
