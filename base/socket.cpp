#include "socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "sys.hpp"

namespace acceptbench {

int somaxconn() {
  try {
    const int value = std::stoi(read_small_file("/proc/sys/net/core/somaxconn"));
    if (value > 0) return value;
  } catch (const std::exception&) {
  }
  return 4096;
}

UniqueFd make_listener(const ListenerOptions& options) {
  const std::string where = fmt::format("{}:{}", options.bind, options.port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (::inet_pton(AF_INET, options.bind.c_str(), &addr.sin_addr) != 1) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "bind address '" + options.bind + "' is not an IPv4 address");
  }
  int type = SOCK_STREAM | SOCK_CLOEXEC;
  if (options.nonblocking) type |= SOCK_NONBLOCK;
  UniqueFd fd(check(::socket(AF_INET, type, IPPROTO_TCP), "socket"));
  const int one = 1;
  check(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one),
        "setsockopt SO_REUSEADDR");
  if (options.reuseport) {
    check(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one),
          "setsockopt SO_REUSEPORT");
  }
  check(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), "bind " + where);
  const int backlog = options.backlog > 0 ? options.backlog : somaxconn();
  check(::listen(fd.get(), backlog), "listen " + where);
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  check(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), "getsockname");
  return ntohs(addr.sin_port);
}

int accept_connection(int listen_fd, bool nonblocking) {
  int flags = SOCK_CLOEXEC;
  if (nonblocking) flags |= SOCK_NONBLOCK;
  const int fd = ::accept4(listen_fd, nullptr, nullptr, flags);
  if (fd >= 0) return fd;
  const int err = errno;
  switch (err) {
    case EBADF:
    case EFAULT:
    case ENOTSOCK:
    case EOPNOTSUPP:
      std::fprintf(stderr, "accept4 on fd %d: unexpected %s\n", listen_fd, errno_name(err).c_str());
      std::abort();
    default:
      return -err;
  }
}

void set_nonblocking(int fd, bool on) {
  const int flags = check(::fcntl(fd, F_GETFL), "fcntl F_GETFL");
  check(::fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK)), "fcntl F_SETFL");
}

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

void set_linger_rst(int fd) {
  const linger rst{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
}

}  // namespace acceptbench
