// Reliability defects found in review (issue 18), each on the class of model it concerns,
// driven from models/models.json.
#include <sys/socket.h>
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "clock.hpp"
#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::vector<std::string> multi_acceptor_models() {
  std::vector<std::string> ids;
  for (const auto& id : model_ids())
    if (multi_acceptor(id)) ids.push_back(id);
  return ids;
}

// --- One failing worker stops the whole server --------------------------------------------
//
// Eight acceptors under a descriptor limit of 16: a model either starts all of them and
// serves, or it exits 2 at once with the reason on stderr. Never half alive: some workers
// serving, no READY, the error lost until the harness's SIGKILL.
class WorkerFailureTest : public ::testing::TestWithParam<std::string> {};

// 17 leaves two free descriptors to the epoll models once their eight epoll sets, the
// spare and the Server's duplicate of the listener are made (the harness passes the server
// no descriptor but 0, 1 and 2).
constexpr int kTightNofile = 17;

SpawnOptions tight_spawn(const std::string& model, int nofile = kTightNofile) {
  SpawnOptions o;
  o.argv = {bin_dir() + "/" + model, "--port", "0", "--threads", "8"};
  o.rlimit_nofile = nofile;
  o.ready_timeout = 5000ms;
  return o;
}

TEST_P(WorkerFailureTest, StartsFullyOrExitsTwoWithTheReason) {
  const std::int64_t t0 = now_ns();
  try {
    ServerProcess server = ServerProcess::start(tight_spawn(GetParam()));
    EXPECT_EQ(drive(server.port(), 2, 2, 1).failures, 0) << "READY was printed but the server does not serve";
    const StopResult stop = server.stop(5s);
    EXPECT_EQ(stop.exit_code, 0) << stop.describe() << stop.stderr_text;
  } catch (const std::runtime_error& e) {
    const double ms = static_cast<double>(now_ns() - t0) / 1e6;
    const std::string what = e.what();
    EXPECT_NE(what.find("exited before READY (exit 2)"), std::string::npos) << what;
    EXPECT_NE(what.find("error: "), std::string::npos) << "no reason on stderr: " << what;
    EXPECT_LT(ms, 2500) << "took " << ms << " ms to give up: " << what;
  }
}

INSTANTIATE_TEST_SUITE_P(MultiAcceptorModels, WorkerFailureTest, ::testing::ValuesIn(multi_acceptor_models()), test_name);

// The repro: under a limit of 12, epoll-shared cannot make eight epoll sets (it
// needs 5 + 8); it must say so and exit 2 within about a second (not wait for a READY that
// never comes).
TEST(WorkerFailure, EpollSharedOutOfDescriptorsExitsTwoWithinASecond) {
  const std::int64_t t0 = now_ns();
  try {
    ServerProcess server = ServerProcess::start(tight_spawn("epoll-shared", 12));
    FAIL() << "epoll-shared started 8 workers under RLIMIT_NOFILE 12";
  } catch (const std::runtime_error& e) {
    const double ms = static_cast<double>(now_ns() - t0) / 1e6;
    const std::string what = e.what();
    EXPECT_NE(what.find("exited before READY (exit 2)"), std::string::npos) << what;
    EXPECT_NE(what.find("Too many open files"), std::string::npos) << what;
    EXPECT_LT(ms, 1500) << what;  // 1 s, and slack for a loaded machine
  }
}


// --- --max-conns caps the per-connection threads and processes ------------------------------
//
// With --max-conns 3 and six clients connected at once, three are served (three threads or
// children) and three wait in the backlog until a slot frees; all six are answered; the
// stats report a peak of exactly three live workers.
class MaxConnsTest : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> max_conns_models() {
  std::vector<std::string> ids;
  for (const auto& id : model_ids())
    if (model_flag(id, "max_conns")) ids.push_back(id);
  return ids;
}

int live_workers_now(pid_t pid) { return sample_proc(pid).threads + count_children(pid); }

TEST_P(MaxConnsTest, CapsLiveWorkersAndServesTheRestInTurn) {
  constexpr int kCap = 3, kClients = 6;
  ServerProcess server = start_model(GetParam(), 1, {"--max-conns", std::to_string(kCap), "--read-timeout-ms", "5000"});
  const int base = live_workers_now(server.pid());
  std::vector<UniqueFd> clients;
  // Generous: under a sanitizer on a loaded machine each turn of a slot takes a while.
  for (int i = 0; i < kClients; ++i) clients.push_back(connect_loopback(server.port(), 15000));
  // Give the acceptor time to take what it may (it must stop at kCap).
  int most = 0;
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(50ms);
    most = std::max(most, live_workers_now(server.pid()) - base);
  }
  EXPECT_LE(most, kCap) << "more live workers than --max-conns";
  for (auto& fd : clients) ASSERT_EQ(write_all(fd.get(), kGetClose), 0);
  int ok = 0;
  for (auto& fd : clients) {
    const auto resp = read_response(fd.get());
    if (resp && resp->status == 200) ++ok;
  }
  EXPECT_EQ(ok, kClients) << "connections beyond the cap must wait, then be served";
  clients.clear();
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe() << stop.stderr_text;
  EXPECT_EQ(stop.stats->value("live_workers_peak", -1), kCap) << stop.stats->dump();
  EXPECT_EQ(stop.stats->at("config").value("max_conns", -1), kCap);
}

INSTANTIATE_TEST_SUITE_P(PerConnectionModels, MaxConnsTest, ::testing::ValuesIn(max_conns_models()), test_name);

// Every other model has no per-connection worker to cap: the flag is a usage error.
class MaxConnsRejectedTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MaxConnsRejectedTest, FlagIsAUsageError) {
  try {
    ServerProcess server = start_model(GetParam(), 1, {"--max-conns", "3"});
    FAIL() << "--max-conns accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exit 2"), std::string::npos) << e.what();
  }
}

std::vector<std::string> models_without_max_conns() {
  std::vector<std::string> ids;
  for (const auto& id : model_ids())
    if (!model_flag(id, "max_conns")) ids.push_back(id);
  return ids;
}

INSTANTIATE_TEST_SUITE_P(OtherModels, MaxConnsRejectedTest, ::testing::ValuesIn(models_without_max_conns()), test_name);

// --- A failed sched_getaffinity() ---------------------------------------------------------
//
// Every model starts and serves when sched_getaffinity() fails (reuseport-cbpf pins its
// workers to the allowed CPUs, and divided by their count even when it had none).
class AffinityFailureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AffinityFailureTest, ServesWhenSchedGetaffinityFails) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer runtimes need sched_getaffinity (pthread_getattr_np) to start a thread";
#endif
  SpawnOptions o;
  o.argv = {DENY_SYSCALL, std::to_string(SYS_sched_getaffinity), std::to_string(EINVAL), bin_dir() + "/" + GetParam(),
            "--port", "0"};
  if (multi_acceptor(GetParam())) o.argv.insert(o.argv.end(), {"--threads", "2"});
  o.ready_timeout = 5000ms;
  ServerProcess server = ServerProcess::start(o);
  EXPECT_EQ(drive(server.port(), 2, 2, 1).failures, 0);
  const StopResult stop = server.stop(5s);
  EXPECT_EQ(stop.exit_code, 0) << stop.describe() << stop.stderr_text;
}

INSTANTIATE_TEST_SUITE_P(AllModels, AffinityFailureTest, ::testing::ValuesIn(model_ids()), test_name);

}  // namespace
}  // namespace acceptbench::testing
