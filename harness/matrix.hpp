#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner.hpp"

namespace acceptbench {

// The models a build has: models.json (the one list), beside the binaries in a build tree,
// in share/acceptbench when installed (layout.hpp).
struct ModelInfo {
  std::string id;
  bool multi_acceptor = false;
  std::string summary;
  std::vector<std::string> primitives;  // cost_model benchmarks the model pays per connection
};
// Reads <dir>/models.json; throws std::invalid_argument when missing or malformed.
std::vector<ModelInfo> load_models(const std::string& dir);
const ModelInfo* find_model(const std::vector<ModelInfo>& models, const std::string& id);

// A named set of extra server flags, one axis of a sweep (the stall experiment's
// service-time shapes: none, 1% of requests block 10 ms, one worker stalls 50 ms a second).
struct Variant {
  std::string name;
  std::vector<std::string> server_args;
};

// A sweep: models x server threads x workloads x (connections or rates) x variants x held
// background connections. Read from a
// preset or config file (JSON), then overridden by flags. Workloads:
//   conn       closed loop, one request per connection, at each of `connections`
//   keepalive  closed loop, `keepalive_requests` per connection, at each of `keepalive_connections`
//   cost       open loop, one request per connection, at each of `rates` (offered conn/s)
//   slowclient closed loop, one request per connection, at each of `connections`, with
//              `slow_fraction` of the clients waiting `slow_ms` before their request:
//              head-of-line blocking (iterative) made visible
struct MatrixSpec {
  std::vector<std::string> models;  // empty: all
  std::vector<int> server_threads = {1};
  std::vector<std::string> workloads = {"conn"};
  std::vector<int> connections = {32};
  std::vector<int> keepalive_connections = {64};
  std::vector<double> rates = {4000};
  int keepalive_requests = 100;
  double slow_fraction = 0.05;
  int slow_ms = 50;
  double duration_s = 2, warmup_s = 0.5;
  int repetitions = 3;
  std::uint32_t work_us = 0, sleep_us = 0, response_bytes = 13;
  std::string close = "client";
  int client_threads = 0;  // 0: one per client CPU
  std::vector<int> server_cpus, client_cpus;  // empty: the default placement
  std::vector<std::string> server_args;
  std::vector<Variant> variants;  // empty: one, without a name or flags
  std::vector<int> holds = {0};   // idle keep-alive connections held open in the background
  std::map<std::string, std::vector<std::string>> model_args;  // extra flags for one model
  std::string experiment;          // the experiment a preset belongs to (recorded, not swept)
  std::string comment;             // the preset's description

  // Applies the fields present in `j`; throws std::invalid_argument on an unknown field or
  // a value of the wrong type.
  void apply(const nlohmann::json& j);
  void fill_default_placement();
  // Expands to configurations; single-acceptor models get one entry with 1 thread.
  // Throws std::invalid_argument for an unknown model or workload.
  [[nodiscard]] std::vector<RunConfig> expand(const std::vector<ModelInfo>& catalog) const;
};

}  // namespace acceptbench
