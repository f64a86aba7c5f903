// libFuzzer target for the HTTP request reader: parse_request must never crash, read out
// of bounds or loop, and what it reports must be consistent with its input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http.hpp"

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
  return 0;
}
