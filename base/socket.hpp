#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "unique_fd.hpp"

namespace acceptbench {

struct ListenerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the kernel picks an ephemeral port
  int backlog = 0;         // <= 0: the value of /proc/sys/net/core/somaxconn
  bool reuseport = false;  // SO_REUSEPORT: several listeners on one port
  bool nonblocking = false;
};

// /proc/sys/net/core/somaxconn, the kernel's cap on a listen backlog (go_reuseport reads
// it the same way); 4096 when the file cannot be read (the default since Linux 5.4).
int somaxconn();

// socket() + SO_REUSEADDR [+ SO_REUSEPORT] + bind() + listen(), IPv4. Throws
// std::system_error naming the step and address on failure.
UniqueFd make_listener(const ListenerOptions& options);

// The port a bound socket got (getsockname).
std::uint16_t local_port(int fd);

// accept4() with SOCK_CLOEXEC (and SOCK_NONBLOCK when asked). Returns the fd or -errno.
// Unexpected errors (EBADF, EFAULT, ENOTSOCK, EOPNOTSUPP) are bugs: they abort, as muduo's
// sockets::accept does; expected ones (EAGAIN, ECONNABORTED, EINTR, EPROTO, EPERM, EMFILE,
// ENFILE, ENOBUFS, ENOMEM, EINVAL after shutdown) are returned for the caller to count.
int accept_connection(int listen_fd, bool nonblocking);

// Sets or clears O_NONBLOCK.
void set_nonblocking(int fd, bool on);

// Writes all of `data` (MSG_NOSIGNAL), blocking or retrying on EINTR. Returns 0 or the
// errno that stopped it.
int write_all(int fd, std::string_view data);

// SO_LINGER {1, 0}: close() then sends an RST instead of a FIN (no TIME_WAIT).
void set_linger_rst(int fd);

}  // namespace acceptbench
