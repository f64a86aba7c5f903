#include "run_config.hpp"

#include <optional>
#include <stdexcept>

#include <fmt/format.h>

namespace acceptbench {

void to_json(nlohmann::json& j, ClosePolicy p) { j = to_string(p); }

void from_json(const nlohmann::json& j, ClosePolicy& p) {
  if (!j.is_string()) throw std::invalid_argument("not a string: " + j.dump());
  p = close_policy_from_string(j.get<std::string>());
}

std::string RunConfig::key() const {
  std::string load = rate > 0 ? fmt::format("rate{}", rate) : fmt::format("c{}", connections);
  std::string k = fmt::format("{}|{}|t{}|{}|k{}|w{}|s{}|b{}|{}|ct{}", model, workload, server_threads, load,
                              requests_per_conn, work_us, sleep_us, response_bytes, to_string(close), client_threads);
  if (slow_fraction > 0) k += fmt::format("|slow{}x{}ms", slow_fraction, slow_ms);
  if (hold > 0) k += fmt::format("|hold{}", hold);
  for (const auto& a : server_args) k += "|" + a;
  return k;
}

nlohmann::json RunConfig::to_json() const {
  nlohmann::json j = json_fields::write(*this);
  j["mode"] = rate > 0 ? "open" : "closed";
  j["connections"] = rate > 0 ? nlohmann::json(nullptr) : nlohmann::json(connections);
  j["rate"] = rate > 0 ? nlohmann::json(rate) : nlohmann::json(nullptr);
  j["key"] = key();
  return j;
}

RunConfig RunConfig::from_json(const nlohmann::json& j) {
  RunConfig c = json_fields::read<RunConfig>(j, "config");
  std::optional<int> connections;  // required, null in open loop
  std::optional<double> rate;      // required, null in closed loop
  try {
    json_fields::Reader r(j, "");
    r("connections", connections);
    r("rate", rate);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("malformed config: ") + e.what());
  }
  if (connections) c.connections = *connections;
  if (rate) c.rate = *rate;
  return c;
}

}  // namespace acceptbench
