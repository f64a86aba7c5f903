#include "http.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace acceptbench::http {
namespace {

constexpr std::string_view kEndOfHead = "\r\n\r\n";

bool is_tchar(char c) {
  // RFC 9110 token characters.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_vchar(char c) { return c > 0x20 && c < 0x7f; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Checks what is known of the request line so far. Returns false on garbage.
// `line` excludes the CRLF; `complete` says whether the CRLF has arrived.
bool plausible_request_line(std::string_view line, bool complete) {
  std::size_t i = 0;
  while (i < line.size() && line[i] >= 'A' && line[i] <= 'Z') ++i;
  if (i == line.size()) return !complete && i <= 20;  // still reading the method
  if (i == 0 || i > 20 || line[i] != ' ') return false;
  std::size_t j = i + 1;
  while (j < line.size() && is_vchar(line[j])) ++j;
  if (j == line.size()) return !complete;  // still reading the target
  if (j == i + 1 || line[j] != ' ') return false;
  const std::string_view version = line.substr(j + 1);
  if (!complete) return std::string_view("HTTP/1.1").starts_with(version) ||
                        std::string_view("HTTP/1.0").starts_with(version);
  return version == "HTTP/1.1" || version == "HTTP/1.0";
}

}  // namespace

Request parse_request(std::string_view buffer) {
  Request req;
  const std::size_t first_eol = buffer.find('\n');
  if (first_eol == std::string_view::npos) {
    const std::string_view partial = buffer.ends_with('\r') ? buffer.substr(0, buffer.size() - 1) : buffer;
    if (partial.find('\r') != std::string_view::npos || !plausible_request_line(partial, false)) {
      req.status = Parse::kBadRequest;
    } else if (buffer.size() > kMaxHeadBytes) {
      req.status = Parse::kHeadTooLarge;
    }
    return req;
  }
  if (first_eol == 0 || buffer[first_eol - 1] != '\r' ||
      !plausible_request_line(buffer.substr(0, first_eol - 1), true)) {
    req.status = Parse::kBadRequest;
    return req;
  }
  const std::size_t end = buffer.find(kEndOfHead, first_eol - 1);
  if (end == std::string_view::npos) {
    if (buffer.size() > kMaxHeadBytes) req.status = Parse::kHeadTooLarge;
    return req;
  }
  const std::size_t head_length = end + kEndOfHead.size();
  if (head_length > kMaxHeadBytes) {
    req.status = Parse::kHeadTooLarge;
    return req;
  }

  const std::string_view request_line = buffer.substr(0, first_eol - 1);
  const bool http11 = request_line.ends_with("HTTP/1.1");
  bool close_option = false;
  bool keep_alive_option = false;
  bool saw_length = false;
  std::size_t body = 0;
  std::size_t pos = first_eol + 1;
  while (pos < end + 2) {
    const std::size_t eol = buffer.find("\r\n", pos);
    const std::string_view line = buffer.substr(pos, eol - pos);
    pos = eol + 2;
    const std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return Request{Parse::kBadRequest, 0, false};
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return Request{Parse::kBadRequest, 0, false};
    const std::string_view value = trim(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f; })) {
      return Request{Parse::kBadRequest, 0, false};
    }
    if (iequals(name, "connection")) {
      // A comma-separated list of options; "close" wins over "keep-alive".
      std::string_view rest = value;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        const std::string_view option = trim(rest.substr(0, comma));
        if (iequals(option, "close")) close_option = true;
        if (iequals(option, "keep-alive")) keep_alive_option = true;
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (iequals(name, "content-length")) {
      std::size_t n = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || value.empty() || (saw_length && n != body)) {
        return Request{Parse::kBadRequest, 0, false};
      }
      saw_length = true;
      body = n;
    } else if (iequals(name, "transfer-encoding")) {
      return Request{Parse::kBadRequest, 0, false};  // chunked bodies are not supported
    }
  }
  req.keep_alive = !close_option && (http11 || keep_alive_option);
  if (body > kMaxBodyBytes) return Request{Parse::kBodyTooLarge, 0, false};
  if (buffer.size() < head_length + body) return req;  // body still arriving
  req.status = Parse::kComplete;
  req.length = head_length + body;
  return req;
}

Responses::Responses(std::size_t body_bytes) {
  const std::string body(body_bytes, 'x');
  ok_keep_ = fmt::format("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                         body_bytes, body);
  ok_close_ = fmt::format(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      body_bytes, body);
  auto error = [](int code, std::string_view reason) {
    return fmt::format("HTTP/1.1 {} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code, reason);
  };
  bad_request_ = error(400, "Bad Request");
  head_too_large_ = error(431, "Request Header Fields Too Large");
  body_too_large_ = error(413, "Content Too Large");
}

std::string_view Responses::error(Parse status) const {
  switch (status) {
    case Parse::kHeadTooLarge: return head_too_large_;
    case Parse::kBodyTooLarge: return body_too_large_;
    default: return bad_request_;
  }
}

}  // namespace acceptbench::http
