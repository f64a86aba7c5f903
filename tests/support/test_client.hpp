#pragma once

// A small blocking HTTP/1.1 client for tests: loopback only, every call bounded in time.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "socket.hpp"
#include "unique_fd.hpp"

namespace acceptbench::testing {

// Connects to 127.0.0.1:port with send/receive timeouts of `timeout_ms`. Throws on failure.
UniqueFd connect_loopback(std::uint16_t port, int timeout_ms = 3000);

struct Response {
  int status = 0;
  bool close = false;  // "Connection: close"
  std::string body;
};

// Sends `raw` and reads one response. nullopt if the server closed or timed out first.
std::optional<Response> roundtrip(int fd, std::string_view raw);
// Reads one response only.
std::optional<Response> read_response(int fd);
// True if the peer has closed (read returns 0 or an error) within timeout_ms.
bool peer_closed(int fd, int timeout_ms);

inline constexpr std::string_view kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
inline constexpr std::string_view kGetClose = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

}  // namespace acceptbench::testing
