// The serving loop, on every model (models/models.json): the same bytes get the same answer,
// the same counts in the stats, and the same deadline rule (models/common/http_core.hpp).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model_fixture.hpp"
#include "test_client.hpp"

namespace acceptbench::testing {
namespace {

using namespace std::chrono_literals;

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nxxxxxxxxxxxxx";
const std::string kOkClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nxxxxxxxxxxxxx";
std::string error_response(int code, std::string_view reason) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, reason);
}

// Everything the server sends until it closes (or 3 s pass).
std::string read_until_close(int fd) {
  std::string got;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct Exchange {
  std::string name;
  std::vector<std::string> writes;  // sent one after another
  std::string expected;             // everything the server answers before it closes
};

std::vector<Exchange> exchanges() {
  const std::string get(kGet), get_close(kGetClose);
  std::vector<Exchange> list;
  list.push_back({"pipelined", {get + get + get_close}, kOk + kOk + kOkClose});
  Exchange split{"split_at_every_byte", {}, kOk + kOkClose};
  for (char c : get + get_close) split.writes.emplace_back(1, c);
  list.push_back(split);
  list.push_back({"head_too_large", {"GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n"},
                  error_response(431, "Request Header Fields Too Large")});
  list.push_back({"body_too_large", {"POST / HTTP/1.1\r\nContent-Length: 9000\r\n\r\n"},
                  error_response(413, "Content Too Large")});
  list.push_back({"malformed", {get + "BLAH\r\n\r\n"}, kOk + error_response(400, "Bad Request")});
  list.push_back({"body_then_close", {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + get_close},
                  kOk + kOkClose});
  return list;
}

class ServingLoopTest : public ::testing::TestWithParam<std::string> {};

// The same byte sequences get byte-identical answers from every model, and the stats count
// the same requests, bad requests and closes.
TEST_P(ServingLoopTest, SameBytesGetTheSameResponsesAndCounts) {
  ServerProcess server = start_model(GetParam(), 2);
  std::uint64_t oks = 0, bad = 0;
  int connections = 0;
  for (const Exchange& x : exchanges()) {
    UniqueFd fd = connect_loopback(server.port());
    set_nodelay(fd.get());
    for (const std::string& w : x.writes) ASSERT_EQ(write_all(fd.get(), w), 0) << x.name;
    EXPECT_EQ(read_until_close(fd.get()), x.expected) << x.name;
    ++connections;
    for (std::size_t at = 0; (at = x.expected.find("HTTP/1.1 200", at)) != std::string::npos; ++at) ++oks;
    if (x.expected.find("Content-Length: 0") != std::string::npos) ++bad;
  }
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  EXPECT_EQ(total(*stop.stats, "requests"), oks);
  EXPECT_EQ(total(*stop.stats, "bad_requests"), bad);
  EXPECT_EQ(total(*stop.stats, "closed"), static_cast<std::uint64_t>(connections));
  EXPECT_EQ(total(*stop.stats, "read_timeouts"), 0u);
}

// issue 18.1: a client that sends a request and never reads the (large) response makes no
// progress in either direction; it is closed after --read-timeout-ms like an idle one.
TEST_P(ServingLoopTest, ClientThatNeverReadsIsTimedOut) {
  constexpr std::size_t kBody = 8 << 20;
  ServerProcess server = start_model(GetParam(), 2, {"--response-bytes", std::to_string(kBody), "--read-timeout-ms", "300"});
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int small = 4096;  // so that the response cannot sit whole in the socket buffers
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(write_all(fd.get(), kGet), 0);
  std::this_thread::sleep_for(1500ms);  // 5x the timeout, never reading
  // Now read all: a connection closed by the timeout delivers less than the whole response.
  std::size_t got = 0;
  char buf[65536];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
    if (got >= kBody) break;
  }
  EXPECT_LT(got, kBody) << "the whole response arrived: the connection was not timed out";
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  EXPECT_EQ(total(*stop.stats, "read_timeouts"), 1u);
}

// issue 18.4: the request deadline restarts with each request. A client that always has part
// of the next request in flight, each request complete within a sixth of the timeout, is
// served for more than the timeout.
TEST_P(ServingLoopTest, RequestDeadlineRestartsBetweenPipelinedRequests) {
  ServerProcess server = start_model(GetParam(), 2, {"--read-timeout-ms", "1000"});
  UniqueFd fd = connect_loopback(server.port());
  set_nodelay(fd.get());
  const std::string get(kGet);
  const std::string head = get.substr(0, 10), tail = get.substr(10);
  ASSERT_EQ(write_all(fd.get(), head), 0);
  int served = 0;
  for (int i = 0; i < 10; ++i) {  // 10 x 150 ms: 1.5 timeouts
    std::this_thread::sleep_for(150ms);
    if (write_all(fd.get(), tail + head) != 0) break;
    const auto resp = read_response(fd.get());
    if (!resp || resp->status != 200) break;
    ++served;
  }
  EXPECT_EQ(served, 10) << "closed although every request completed within its deadline";
  if (served == 10) {  // complete the last one, so that nothing is left to time out at the stop
    const auto last = roundtrip(fd.get(), tail);
    EXPECT_TRUE(last && last->status == 200);
  }
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  EXPECT_EQ(total(*stop.stats, "read_timeouts"), 0u);
}

// issue 18.5: after a 4xx the server shuts down its write side and drains what the client
// still sends, briefly, instead of closing with unread input (an RST that can destroy the
// 4xx on a real network). The client reads the 431 and the end, then can still send the
// rest of its request without a reset.
TEST_P(ServingLoopTest, ErrorResponseIsFollowedByAHalfCloseAndADrain) {
  ServerProcess server = start_model(GetParam(), 2);
  UniqueFd fd = connect_loopback(server.port());
  ASSERT_EQ(write_all(fd.get(), "GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'a')), 0);
  EXPECT_EQ(read_until_close(fd.get()), error_response(431, "Request Header Fields Too Large"));
  const std::string more(4096, 'b');
  int sent_ok = 0;
  for (int i = 0; i < 3; ++i) {
    if (::send(fd.get(), more.data(), more.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(more.size())) ++sent_ok;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(sent_ok, 3) << "the server reset the connection right after its 4xx";
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  EXPECT_EQ(total(*stop.stats, "bad_requests"), 1u);
}

// A request that arrives before its deadline is served even if the server was busy (one
// worker spinning on another request) until after the deadline: no spurious timeout
// (issue 18.8: in asio an expiry already queued when the request completed closed it).
TEST_P(ServingLoopTest, RequestThatArrivedInTimeIsServedAfterABusySpell) {
  ServerProcess server =
      start_model(GetParam(), 1, {"--read-timeout-ms", "300", "--work-us", "600000", "--grace-ms", "3000"});
  UniqueFd busy = connect_loopback(server.port(), 5000);
  UniqueFd late = connect_loopback(server.port(), 5000);
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(write_all(busy.get(), kGetClose), 0);  // the worker spins 600 ms on this one
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(write_all(late.get(), kGet), 0);  // 200 ms after connecting: within 300 ms
  const auto first = read_response(busy.get());
  ASSERT_TRUE(first);
  const auto resp = read_response(late.get());
  ASSERT_TRUE(resp) << "the request that arrived in time got no response";
  EXPECT_EQ(resp->status, 200);
  EXPECT_FALSE(peer_closed(late.get(), 100)) << "closed after answering a keep-alive request";
  const StopResult stop = server.stop(8s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  EXPECT_EQ(total(*stop.stats, "read_timeouts"), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllModels, ServingLoopTest, ::testing::ValuesIn(model_ids()), [](const auto& param_info) {
  std::string name = param_info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// issue 18.6: --accept-mutex-delay-ms means what it says: an idle worker without the mutex
// tries again once per delay (it was clamped to the 100 ms sweep).
TEST(EpollMutexTest, AcceptMutexDelayIsHonoured) {
  ServerProcess server = start_model("epoll-mutex", 2, {"--accept-mutex-delay-ms", "1000"});
  std::this_thread::sleep_for(2500ms);
  const StopResult stop = server.stop(5s);
  ASSERT_TRUE(stop.stats) << stop.describe();
  // One loser at a time, trying at 0, 1 and 2 s (the holder blocks holding the mutex while
  // idle): at most a few failed tries; clamped to 100 ms it was ~25.
  EXPECT_LE(total(*stop.stats, "mutex_contended"), 6u);
}

}  // namespace
}  // namespace acceptbench::testing
