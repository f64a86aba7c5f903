#pragma once

#include <string_view>

#include "http_core.hpp"
#include "server.hpp"
#include "unique_fd.hpp"

namespace acceptbench {

// Accepts on one listen fd on behalf of one acceptor, counting every call in its stats.
// The process keeps one spare descriptor on /dev/null (shared by its acceptors, see
// connection.cpp) for EMFILE/ENFILE: close it, accept a connection,
// reopen the spare; if the spare cannot be reopened the table is still full and the
// connection is closed at once (the peer sees a close instead of waiting), otherwise it is
// returned to be served (on a blocking listener that accept may have waited for the next
// connection, by when descriptors may be free again). Without it a level-triggered or
// blocking accept() would return EMFILE in a busy loop. (The trick is muduo's Acceptor,
// which credits libev's documentation.) One thread only.
class Acceptor {
 public:
  // With count_accepted false the caller credits `accepted` itself (acceptor-dispatch
  // credits the worker it hands the connection to).
  Acceptor(int listen_fd, AcceptorStats& stats, bool nonblocking_connections, bool count_accepted = true);
  // Returns a connection, or an invalid fd with *err set to the errno (EAGAIN: nothing
  // pending; EINVAL: the listener was shut down, i.e. the server stops).
  UniqueFd accept_one(int* err);
  [[nodiscard]] int listen_fd() const { return listen_fd_; }

 private:
  UniqueFd accept_with_spare(int* err);  // after EMFILE/ENFILE
  int listen_fd_;
  AcceptorStats* stats_;
  bool nonblocking_;
  bool count_accepted_;
};

// The EMFILE/ENFILE cure: closes `spare` (an fd on /dev/null), accepts one pending
// connection from `listen_fd` (one is pending: accept() just failed for it) and closes it at once (the peer sees a close
// instead of waiting in the backlog), then reopens `spare`. Returns false if there was no
// spare to give back. Used by Acceptor, and by the io-uring and Asio models.
bool drop_pending_connection(int listen_fd, UniqueFd& spare);
UniqueFd open_spare_descriptor();

// Every serving loop reads at most this much per read() into a buffer of its worker's.
inline constexpr std::size_t kReadChunkBytes = 4096;

// Serves one connection on a blocking socket with the HTTP core (http_core.hpp) until the
// peer closes, a protocol error, the deadline, or the stop: the thread-per-conn,
// fork-per-conn, iterative, shared-accept and prefork way. Reads wake at least every 100 ms
// (SO_RCVTIMEO) to notice the stop and the deadline.
void serve_blocking(Server& server, AcceptorStats& stats, UniqueFd fd);

}  // namespace acceptbench
