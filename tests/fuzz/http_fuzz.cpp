// libFuzzer target for the HTTP core: parse_request and the Exchange every serving loop
// drives must never crash, read out of bounds or loop, and what they report must be
// consistent with the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http.hpp"
#include "http_core.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using acceptbench::http::Parse;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  // Pipelined: parse request after request, as a connection does.
  for (int guard = 0; guard < 1000; ++guard) {
    const auto r = acceptbench::http::parse_request(rest);
    if (r.status != Parse::kComplete) break;
    if (r.length == 0 || r.length > rest.size()) std::abort();  // must consume, within the input
    rest.remove_prefix(r.length);
  }
  // Every prefix of a complete request is incomplete or an error, never complete beyond itself.
  const auto whole = acceptbench::http::parse_request(std::string_view(reinterpret_cast<const char*>(data), size));
  if (whole.status == Parse::kComplete && whole.length > size) std::abort();

  // The Exchange, fed the input in chunks whose sizes the first byte picks, sending each
  // response in two parts: it must end, count no more requests than it answered, and never
  // ask for a read while a response is unsent.
  using acceptbench::http::Next;
  static const acceptbench::http::Responses responses(13);
  acceptbench::AcceptorStats stats;
  acceptbench::http::Exchange x;
  x.open(responses, stats, 300, 0);
  const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::int64_t now = 0;
  std::uint64_t answered = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    const Next next = x.next();
    if (next == Next::kClose) break;
    if (next == Next::kSend) {
      if (x.out().empty()) std::abort();
      const std::size_t half = (x.out().size() + 1) / 2;
      x.sent(half, ++now);
      if (x.out().empty()) ++answered;
      continue;
    }
    if (next == Next::kShutdown) continue;
    const std::string_view piece = input.substr(0, chunk);  // empty at the end: the peer closed
    input.remove_prefix(piece.size());
    x.received(piece, ++now);
  }
  if (stats.requests.load() + stats.bad_requests.load() != answered) std::abort();
  x.close(false);
  return 0;
}
