#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace acceptbench::http {

// Limits: a request head (request line + headers + the blank line) over kMaxHeadBytes gets
// 431; a body (Content-Length) over kMaxBodyBytes gets 413. Both then close.
inline constexpr std::size_t kMaxHeadBytes = 8192;
inline constexpr std::size_t kMaxBodyBytes = 8192;
// A connection's read buffer holds one whole request at the limits, plus room to read.
inline constexpr std::size_t kReadBufferBytes = kMaxHeadBytes + kMaxBodyBytes + 4096;

enum class Parse {
  kIncomplete,      // need more bytes
  kComplete,        // one request of `length` bytes is at the front of the buffer
  kBadRequest,      // 400, then close
  kHeadTooLarge,    // 431, then close
  kBodyTooLarge,    // 413, then close
};

struct Request {
  Parse status = Parse::kIncomplete;
  std::size_t length = 0;  // bytes this request occupies (head + body) when kComplete
  bool keep_alive = true;  // HTTP/1.1 default; false on "Connection: close" or HTTP/1.0
};

// Parses the request at the front of `buffer`, which may hold a partial request or several
// pipelined ones. Garbage is rejected as soon as the first line shows it, without waiting
// for the blank line. Pure function: callable from any thread.
Request parse_request(std::string_view buffer);

// Pre-built responses, made once per server so the hot path never formats.
class Responses {
 public:
  explicit Responses(std::size_t body_bytes);
  [[nodiscard]] std::string_view ok(bool keep_alive) const { return keep_alive ? ok_keep_ : ok_close_; }
  // The error response for a parse failure; always "Connection: close".
  [[nodiscard]] std::string_view error(Parse status) const;

 private:
  std::string ok_keep_, ok_close_, bad_request_, head_too_large_, body_too_large_;
};

}  // namespace acceptbench::http
