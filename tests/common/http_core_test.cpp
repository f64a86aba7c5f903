// The HTTP core without I/O: what every serving loop does, driven with a fake clock.
#include "http_core.hpp"

#include <gtest/gtest.h>

#include <string>

namespace acceptbench::http {
namespace {

constexpr std::int64_t kMs = 1'000'000;
const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override { x.open(responses, stats, /*timeout_ms=*/300, 0); }
  Responses responses{13};
  AcceptorStats stats;
  Exchange x;
};

TEST_F(ExchangeTest, CountsARequestOnlyWhenItsWholeResponseIsSent) {
  EXPECT_EQ(x.next(), Next::kRead);
  x.received(kGet + kGet, 1 * kMs);
  ASSERT_EQ(x.next(), Next::kSend);
  EXPECT_TRUE(x.take_work());
  EXPECT_FALSE(x.take_work());
  const std::size_t size = x.out().size();
  x.sent(size - 1, 2 * kMs);
  EXPECT_EQ(stats.requests.load(), 0u);
  ASSERT_EQ(x.next(), Next::kSend);
  EXPECT_EQ(x.out().size(), 1u);
  x.sent(1, 3 * kMs);
  EXPECT_EQ(stats.requests.load(), 1u);
  ASSERT_EQ(x.next(), Next::kSend);  // the pipelined second one, without reading
  x.sent(x.out().size(), 4 * kMs);
  EXPECT_EQ(stats.requests.load(), 2u);
  EXPECT_EQ(x.next(), Next::kRead);
  x.received({}, 5 * kMs);  // the peer closed
  EXPECT_EQ(x.next(), Next::kClose);
  x.close(false);
  EXPECT_EQ(stats.closed.load(), 1u);
  EXPECT_EQ(stats.read_timeouts.load(), 0u);
}

TEST_F(ExchangeTest, IdleAndSlowRequestsExpire) {
  EXPECT_EQ(x.expiry(299 * kMs), Exchange::Expiry::kNone);
  EXPECT_EQ(x.expiry(300 * kMs), Exchange::Expiry::kTimedOut);
  x.received("GET / HT", 100 * kMs);
  x.received("T", 350 * kMs);  // progress, but the request began at 100 ms
  EXPECT_EQ(x.next(), Next::kRead);
  EXPECT_EQ(x.expiry(399 * kMs), Exchange::Expiry::kNone);
  EXPECT_EQ(x.expiry(400 * kMs), Exchange::Expiry::kTimedOut);
  EXPECT_EQ(x.deadline(), 400 * kMs);
}

TEST_F(ExchangeTest, RequestDeadlineRestartsWhenThePreviousRequestCompletes) {
  x.received(kGet + "GET / ", 100 * kMs);
  ASSERT_EQ(x.next(), Next::kSend);
  x.sent(x.out().size(), 250 * kMs);
  EXPECT_EQ(x.next(), Next::kRead);
  EXPECT_EQ(x.expiry(500 * kMs), Exchange::Expiry::kNone);  // 400 ms after the first byte
  EXPECT_EQ(x.expiry(550 * kMs), Exchange::Expiry::kTimedOut);
}

TEST_F(ExchangeTest, NoProgressWhileSendingExpires) {
  x.received(kGet, 10 * kMs);
  ASSERT_EQ(x.next(), Next::kSend);
  x.sent(3, 20 * kMs);
  EXPECT_EQ(x.expiry(319 * kMs), Exchange::Expiry::kNone);
  EXPECT_EQ(x.expiry(320 * kMs), Exchange::Expiry::kTimedOut);
  x.close(true);
  EXPECT_EQ(stats.read_timeouts.load(), 1u);
  EXPECT_EQ(stats.requests.load(), 0u);
}

TEST_F(ExchangeTest, ErrorIsSentThenWriteSideShutThenDrainedBriefly) {
  x.received("BLAH\r\n\r\n", 10 * kMs);
  ASSERT_EQ(x.next(), Next::kSend);
  EXPECT_FALSE(x.take_work());
  EXPECT_NE(x.out().find("400 Bad Request"), std::string_view::npos);
  x.sent(x.out().size(), 20 * kMs);
  EXPECT_EQ(stats.bad_requests.load(), 1u);
  EXPECT_EQ(x.next(), Next::kShutdown);
  EXPECT_EQ(x.next(), Next::kLinger);
  EXPECT_TRUE(x.idle());
  x.received(kGet, 30 * kMs);  // discarded: no 200 after a 4xx
  EXPECT_EQ(x.next(), Next::kLinger);
  EXPECT_EQ(x.expiry(319 * kMs), Exchange::Expiry::kNone);
  EXPECT_EQ(x.expiry(320 * kMs), Exchange::Expiry::kLingerOver);
  x.received({}, 40 * kMs);
  EXPECT_EQ(x.next(), Next::kClose);
  EXPECT_EQ(stats.requests.load(), 0u);
}

TEST_F(ExchangeTest, LingerIsAtMostOneSecond) {
  x.open(responses, stats, /*timeout_ms=*/5000, 0);
  x.received("POST / HTTP/1.1\r\nContent-Length: 9000\r\n\r\n", 0);
  ASSERT_EQ(x.next(), Next::kSend);
  EXPECT_NE(x.out().find("413"), std::string_view::npos);
  x.sent(x.out().size(), 0);
  EXPECT_EQ(x.deadline(), 1000 * kMs);
}

TEST_F(ExchangeTest, ConnectionCloseEndsAfterTheResponse) {
  x.received("GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + kGet, 0);
  ASSERT_EQ(x.next(), Next::kSend);
  x.sent(x.out().size(), 0);
  EXPECT_EQ(x.next(), Next::kClose);
  EXPECT_EQ(stats.requests.load(), 1u);
}

}  // namespace
}  // namespace acceptbench::http
