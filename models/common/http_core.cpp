#include "http_core.hpp"

#include <algorithm>

namespace acceptbench::http {

namespace {
constexpr std::int64_t kMaxLingerNs = 1'000'000'000;
}

void Exchange::open(const Responses& responses, AcceptorStats& stats, int timeout_ms, std::int64_t now) {
  responses_ = &responses;
  stats_ = &stats;
  timeout_ns_ = std::int64_t{timeout_ms} * 1'000'000;
  in_.clear();
  out_ = {};
  state_ = State::kReading;
  keep_alive_ = true;
  error_ = eof_ = work_ = false;
  last_progress_ns_ = now;
  request_started_ns_ = 0;
  linger_started_ns_ = 0;
}

Next Exchange::next() {
  switch (state_) {
    case State::kSending: return Next::kSend;
    case State::kShutdown:
      state_ = State::kLinger;
      return eof_ ? Next::kClose : Next::kShutdown;
    case State::kLinger: return eof_ ? Next::kClose : Next::kLinger;
    case State::kDone: return Next::kClose;
    case State::kReading: break;
  }
  const Request req = parse_request(in_);
  if (req.status == Parse::kIncomplete) return eof_ ? Next::kClose : Next::kRead;
  if (req.status == Parse::kComplete) {
    out_ = responses_->ok(req.keep_alive);
    keep_alive_ = req.keep_alive;
    error_ = false;
    work_ = true;
    in_.erase(0, req.length);
  } else {
    out_ = responses_->error(req.status);
    keep_alive_ = false;
    error_ = true;
    in_.clear();
  }
  state_ = State::kSending;
  return Next::kSend;
}

void Exchange::received(std::string_view bytes, std::int64_t now) {
  if (bytes.empty()) {
    eof_ = true;
    return;
  }
  last_progress_ns_ = now;
  if (state_ == State::kLinger || state_ == State::kShutdown) return;  // drained and dropped
  if (in_.empty()) request_started_ns_ = now;
  in_.append(bytes);
}

void Exchange::sent(std::size_t n, std::int64_t now) {
  if (n > 0) last_progress_ns_ = now;
  out_.remove_prefix(std::min(n, out_.size()));
  if (!out_.empty()) return;
  AcceptorStats::add(error_ ? stats_->bad_requests : stats_->requests);
  if (error_) {
    state_ = State::kShutdown;
    linger_started_ns_ = now;
  } else if (!keep_alive_) {
    state_ = State::kDone;
  } else {
    state_ = State::kReading;
    // The deadline of the next request, if part of it is here already, starts now.
    request_started_ns_ = in_.empty() ? 0 : now;
  }
}

std::int64_t Exchange::deadline() const {
  if (state_ == State::kLinger || state_ == State::kShutdown) {
    return linger_started_ns_ + std::min(timeout_ns_, kMaxLingerNs);
  }
  std::int64_t at = last_progress_ns_ + timeout_ns_;
  if (state_ == State::kReading && request_started_ns_ != 0) at = std::min(at, request_started_ns_ + timeout_ns_);
  return at;
}

Exchange::Expiry Exchange::expiry(std::int64_t now) const {
  if (state_ == State::kDone || now < deadline()) return Expiry::kNone;
  return (state_ == State::kLinger || state_ == State::kShutdown) ? Expiry::kLingerOver : Expiry::kTimedOut;
}

void Exchange::close(bool timed_out) {
  if (timed_out) AcceptorStats::add(stats_->read_timeouts);
  AcceptorStats::add(stats_->closed);
  state_ = State::kDone;
  in_.clear();
  out_ = {};
}

}  // namespace acceptbench::http
