#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_fields.hpp"
#include "loadgen.hpp"

namespace acceptbench {

// ClosePolicy in JSON: its name (client, server, rst).
void to_json(nlohmann::json& j, ClosePolicy p);
void from_json(const nlohmann::json& j, ClosePolicy& p);  // throws std::invalid_argument

// One configuration of the matrix: a model under one workload.
struct RunConfig {
  std::string model;
  std::string workload = "conn";  // a label: conn, keepalive, cost, ...
  int server_threads = 1;
  int client_threads = 1;
  int connections = 32;  // closed loop
  double rate = 0;       // > 0: open loop (connections per second)
  int requests_per_conn = 1;
  std::uint32_t work_us = 0, sleep_us = 0, response_bytes = 13;
  double duration_s = 2, warmup_s = 0.5;
  int repetitions = 3;
  ClosePolicy close = ClosePolicy::kClient;
  double slow_fraction = 0;  // slowclient workload: see LoadConfig
  int slow_ms = 0;
  std::vector<int> server_cpus, client_cpus;
  std::vector<std::string> server_args;  // extra flags for the server binary
  std::string variant;                   // a name for a preset's set of server_args (e.g. a service-time shape)
  int hold = 0;                          // idle keep-alive connections held open in the background (c10k)

  // The identity of a configuration, for --resume and compare (not repetitions, duration
  // or placement: those say how it was measured, not what).
  [[nodiscard]] std::string key() const;
  // The fields below, and around them: "mode" (open when rate > 0, else closed),
  // "connections" (null in open loop) and "rate" (null in closed loop), and "key". Reading
  // needs connections and rate present (either may be null) and ignores mode and key: both
  // follow from the fields. Throws std::invalid_argument.
  [[nodiscard]] nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& j);

  // The JSON fields (json_fields.hpp); the optional ones came after the first acceptbench/2 files.
  ACCEPTBENCH_JSON_FIELDS_AND_OPTIONAL((model, workload, server_threads, client_threads, requests_per_conn, work_us,
                                        sleep_us, response_bytes, duration_s, warmup_s, repetitions, close, server_cpus,
                                        client_cpus),
                                       (server_args, slow_fraction, slow_ms, variant, hold));

  bool operator==(const RunConfig&) const = default;
};

}  // namespace acceptbench
