// The server contract (DESIGN.md), checked on every model listed in models/models.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

class ModelContractTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelContractTest, PrintsReadyAndServesConcurrentKeepAliveAndCloseRequests) {
  ServerProcess server = start_model(GetParam());
  EXPECT_GT(server.port(), 0);
  EXPECT_GT(server.server_pid(), 0);
  const LoadResult load = drive(server.port(), /*threads=*/8, /*conns=*/5, /*keep_alive_requests=*/3);
  EXPECT_EQ(load.failures, 0);
  EXPECT_EQ(load.connections, 40);
  EXPECT_EQ(load.ok_responses, 160);

  const StopResult stop = server.stop(5s);
  ASSERT_EQ(stop.exit_code, 0) << stop.describe() << "\n" << stop.stderr_text;
  ASSERT_TRUE(stop.stats) << "no JSON stats in: " << stop.stdout_text;
  EXPECT_EQ(total(*stop.stats, "accepted"), 40u);
  EXPECT_EQ(total(*stop.stats, "requests"), 160u);
  EXPECT_EQ((*stop.stats)["model"], GetParam());
  EXPECT_TRUE((*stop.stats)["clean_shutdown"].get<bool>());
}

TEST_P(ModelContractTest, AnswersOversizedHeadersWith431AndGarbageWith400) {
  ServerProcess server = start_model(GetParam());
  {
    UniqueFd fd = connect_loopback(server.port());
    const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
    const auto resp = roundtrip(fd.get(), big);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 431);
    EXPECT_TRUE(peer_closed(fd.get(), 3000));
  }
  {
    UniqueFd fd = connect_loopback(server.port());
    const auto resp = roundtrip(fd.get(), "\x01\x02garbage\r\n\r\n");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 400);
    EXPECT_TRUE(peer_closed(fd.get(), 3000));
  }
  {  // pipelined requests, and one split into single bytes, still work afterwards
    UniqueFd fd = connect_loopback(server.port());
    const std::string two = std::string(kGet) + std::string(kGet);
    ASSERT_EQ(write_all(fd.get(), two), 0);
    for (int i = 0; i < 2; ++i) {
      const auto resp = read_response(fd.get());
      ASSERT_TRUE(resp);
      EXPECT_EQ(resp->status, 200);
    }
    for (char c : kGetClose) ASSERT_EQ(write_all(fd.get(), std::string_view(&c, 1)), 0);
    const auto resp = read_response(fd.get());
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
  }
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(total(*stop.stats, "bad_requests"), 2u);
}

TEST_P(ModelContractTest, VanishingAndStalledClientsCrashNothingAndLeakNothing) {
  ServerProcess server = start_model(GetParam(), 2, {"--read-timeout-ms", "300"});
  ASSERT_EQ(drive(server.port(), 1, 1, 0).connections, 1);
  const int baseline_fds = sample_proc(server.pid()).open_fds;

  for (int i = 0; i < 20; ++i) connect_loopback(server.port());  // connect and vanish
  for (int i = 0; i < 10; ++i) {  // vanish mid-request
    UniqueFd fd = connect_loopback(server.port());
    ASSERT_EQ(write_all(fd.get(), "GET / HT"), 0);
  }
  {
    std::vector<UniqueFd> stalled;  // stall mid-request and stay: closed by the read timeout
    for (int i = 0; i < 3; ++i) {
      stalled.push_back(connect_loopback(server.port()));
      ASSERT_EQ(write_all(stalled.back().get(), "GET / HTTP/1.1\r\nHost"), 0);
    }
    // Served despite the stalled ones (iterative only after their timeouts: its nature).
    const LoadResult after = drive(server.port(), 2, 3, 1);
    EXPECT_EQ(after.failures, 0);
    for (auto& fd : stalled) EXPECT_TRUE(peer_closed(fd.get(), 3000)) << "stalled client not timed out";
  }
  int fds = -1;
  for (int i = 0; i < 100 && fds != baseline_fds; ++i) {
    std::this_thread::sleep_for(30ms);
    fds = sample_proc(server.pid()).open_fds;
  }
  EXPECT_EQ(fds, baseline_fds) << "descriptors leaked";
  EXPECT_TRUE(server.alive());
  const StopResult stop = server.stop(5s);
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  ASSERT_TRUE(stop.stats);
  EXPECT_GE(total(*stop.stats, "read_timeouts"), 3u);
}

TEST_P(ModelContractTest, StopsPromptlyWithAnIdleKeepAliveConnectionOpen) {
  ServerProcess server = start_model(GetParam(), 2, {"--grace-ms", "1000"});
  UniqueFd idle = connect_loopback(server.port());
  ASSERT_TRUE(roundtrip(idle.get(), kGet));
  const auto t0 = std::chrono::steady_clock::now();
  const StopResult stop = server.stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_FALSE(stop.killed);
  ASSERT_TRUE(stop.stats);
  EXPECT_EQ(total(*stop.stats, "accepted"), 1u);
}

TEST_P(ModelContractTest, InvalidFlagsExitWithCode2AndAMessage) {
  const std::vector<std::vector<std::string>> bad = {
      {"--bogus"}, {"--port", "70000"}, {"--port", "abc"}, {"--work-us", "-5"}, {"--bind", "999.1.1.1"},
      {"--threads", "0"}, {"--read-timeout-ms", "0"}};
  for (const auto& flags : bad) {
    SpawnOptions o;
    o.argv = {bin_dir() + "/" + GetParam()};
    o.argv.insert(o.argv.end(), flags.begin(), flags.end());
    try {
      ServerProcess::start(o);
      ADD_FAILURE() << "started with " << flags[0];
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("exit 2"), std::string::npos) << flags[0] << ": " << what;
      EXPECT_NE(what.find("error:"), std::string::npos) << flags[0] << ": " << what;
    }
  }
}

TEST_P(ModelContractTest, PortInUseIsAClearError) {
  ServerProcess first = start_model(GetParam());
  SpawnOptions o;
  o.argv = {bin_dir() + "/" + GetParam(), "--port", std::to_string(first.port())};
  try {
    ServerProcess::start(o);
    ADD_FAILURE() << "second server started on a port in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelContractTest, ::testing::ValuesIn(model_ids()),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace acceptbench::testing
