#include "http.hpp"

#include <gtest/gtest.h>

#include <string>

namespace acceptbench::http {
namespace {

TEST(HttpParseTest, CompleteGetIsKeepAliveByDefault) {
  const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  const Request r = parse_request(req);
  EXPECT_EQ(r.status, Parse::kComplete);
  EXPECT_EQ(r.length, req.size());
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpParseTest, ConnectionCloseInAnyCaseAndList) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nconnection: Close\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: close, keep-alive\r\n\r\n").keep_alive);
}

TEST(HttpParseTest, Http10ClosesUnlessKeepAlive) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
}

TEST(HttpParseTest, EveryPrefixOfAValidRequestIsIncomplete) {
  const std::string req = "POST /submit?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  for (std::size_t i = 0; i < req.size(); ++i) {
    EXPECT_EQ(parse_request(std::string_view(req).substr(0, i)).status, Parse::kIncomplete) << "prefix " << i;
  }
  const Request r = parse_request(req);
  EXPECT_EQ(r.status, Parse::kComplete);
  EXPECT_EQ(r.length, req.size());
}

TEST(HttpParseTest, PipelinedRequestsParseOneAtATime) {
  const std::string one = "GET /a HTTP/1.1\r\n\r\n";
  const std::string two = "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
  const std::string both = one + two;
  const Request first = parse_request(both);
  ASSERT_EQ(first.status, Parse::kComplete);
  EXPECT_EQ(first.length, one.size());
  const Request second = parse_request(std::string_view(both).substr(first.length));
  ASSERT_EQ(second.status, Parse::kComplete);
  EXPECT_FALSE(second.keep_alive);
}

TEST(HttpParseTest, GarbageIsRejectedEarly) {
  EXPECT_EQ(parse_request("hello").status, Parse::kBadRequest);          // lower-case method
  EXPECT_EQ(parse_request("\x16\x03\x01").status, Parse::kBadRequest);   // a TLS hello
  EXPECT_EQ(parse_request("GET\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/2.0\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\n\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET  / HTTP/1.1\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nno colon here\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\n: empty name\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").status, Parse::kBadRequest);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status, Parse::kBadRequest);
}

TEST(HttpParseTest, OversizedHeadIs431EvenBeforeItEnds) {
  std::string req = "GET / HTTP/1.1\r\nX-Big: " + std::string(kMaxHeadBytes, 'a');
  EXPECT_EQ(parse_request(req).status, Parse::kHeadTooLarge);
  req += "\r\n\r\n";
  EXPECT_EQ(parse_request(req).status, Parse::kHeadTooLarge);
  EXPECT_EQ(parse_request("GET /" + std::string(kMaxHeadBytes + 1, 'a')).status, Parse::kHeadTooLarge);
}

TEST(HttpParseTest, OversizedBodyIs413) {
  const std::string req = "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(kMaxBodyBytes + 1) + "\r\n\r\n";
  EXPECT_EQ(parse_request(req).status, Parse::kBodyTooLarge);
}

TEST(HttpResponsesTest, OkCarriesBodyAndConnectionHeader) {
  const Responses r(5);
  EXPECT_EQ(r.ok(true), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nxxxxx");
  EXPECT_NE(r.ok(false).find("Connection: close\r\n"), std::string_view::npos);
  EXPECT_TRUE(r.error(Parse::kHeadTooLarge).starts_with("HTTP/1.1 431 "));
  EXPECT_TRUE(r.error(Parse::kBadRequest).starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(r.error(Parse::kBodyTooLarge).starts_with("HTTP/1.1 413 "));
}

}  // namespace
}  // namespace acceptbench::http
