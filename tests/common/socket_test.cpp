#include "socket.hpp"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "test_client.hpp"

namespace acceptbench {
namespace {

TEST(ListenerTest, BindsEphemeralPortWhenZero) {
  UniqueFd fd = make_listener({});
  EXPECT_GT(local_port(fd.get()), 0);
}

TEST(ListenerTest, SomaxconnMatchesProc) {
  EXPECT_GT(somaxconn(), 0);
}

TEST(ListenerTest, SecondBindWithoutReuseportFails) {
  UniqueFd a = make_listener({});
  ListenerOptions o;
  o.port = local_port(a.get());
  EXPECT_THROW(make_listener(o), std::system_error);
}

TEST(ListenerTest, ReuseportAllowsManyListenersOnOnePort) {
  ListenerOptions o;
  o.reuseport = true;
  UniqueFd a = make_listener(o);
  o.port = local_port(a.get());
  UniqueFd b = make_listener(o);
  EXPECT_EQ(local_port(b.get()), o.port);
}

TEST(ListenerTest, ErrorNamesTheAddress) {
  ListenerOptions o;
  o.bind = "not-an-address";
  try {
    make_listener(o);
    FAIL() << "expected a throw";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("not-an-address"), std::string::npos);
  }
}

// The stop relies on this: shutdown() of a listening socket wakes a thread blocked in
// accept() on it, which then fails with EINVAL.
TEST(ListenerTest, ShutdownWakesBlockedAccept) {
  UniqueFd fd = make_listener({});
  auto result = std::async(std::launch::async, [&] { return accept_connection(fd.get(), false); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(result.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout) << "accept did not block";
  ::shutdown(fd.get(), SHUT_RD);
  ASSERT_EQ(result.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(result.get(), -EINVAL);
}

TEST(ListenerTest, AcceptReturnsConnection) {
  UniqueFd fd = make_listener({});
  UniqueFd client = testing::connect_loopback(local_port(fd.get()));
  const int conn = accept_connection(fd.get(), true);
  ASSERT_GE(conn, 0);
  UniqueFd owned(conn);
  set_nonblocking(fd.get(), true);
  EXPECT_EQ(accept_connection(fd.get(), false), -EAGAIN);  // nothing else pending
}

}  // namespace
}  // namespace acceptbench
