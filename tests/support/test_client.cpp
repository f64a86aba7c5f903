#include "test_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <string>

#include "socket.hpp"
#include "sys.hpp"

namespace acceptbench::testing {

UniqueFd connect_loopback(std::uint16_t port, int timeout_ms) {
  UniqueFd fd(check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), "connect");
  return fd;
}

std::optional<Response> read_response(int fd) {
  // Byte by byte up to the end of the head, then exactly the body: whatever follows (a
  // pipelined response) stays in the socket for the next call.
  std::string head;
  char c;
  while (!head.ends_with("\r\n\r\n")) {
    if (::read(fd, &c, 1) != 1) return std::nullopt;
    head.push_back(c);
  }
  Response r;
  if (head.compare(0, 9, "HTTP/1.1 ") != 0) return std::nullopt;
  r.status = std::atoi(head.c_str() + 9);
  r.close = head.find("\r\nConnection: close") != std::string::npos;
  std::size_t length = 0;
  if (const auto at = head.find("\r\nContent-Length: "); at != std::string::npos) {
    length = std::strtoul(head.c_str() + at + 18, nullptr, 10);
  }
  r.body.resize(length);
  for (std::size_t got = 0; got < length;) {
    const ssize_t n = ::read(fd, r.body.data() + got, length - got);
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  return r;
}

std::optional<Response> roundtrip(int fd, std::string_view raw) {
  if (write_all(fd, raw) != 0) return std::nullopt;
  return read_response(fd);
}

bool peer_closed(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

}  // namespace acceptbench::testing
