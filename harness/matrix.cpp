#include "matrix.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace acceptbench {

std::vector<ModelInfo> load_models(const std::string& dir) {
  const std::string path = dir + "/models.json";
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path + " (is --bin-dir a build's bin folder?)");
  std::vector<ModelInfo> out;
  try {
    const nlohmann::json doc = nlohmann::json::parse(in);  // kept alive for the loop
    for (const auto& m : doc.at("models")) {
      out.push_back({m.at("id"), m.at("acceptors") != "one", m.value("summary", ""),
                     m.value("primitives", std::vector<std::string>{})});
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return out;
}

const ModelInfo* find_model(const std::vector<ModelInfo>& models, const std::string& id) {
  for (const auto& m : models)
    if (m.id == id) return &m;
  return nullptr;
}

void MatrixSpec::apply(const nlohmann::json& j) {
  static const std::set<std::string> kKnown = {
      "comment", "models", "server_threads", "workloads", "connections", "keepalive_connections", "rates",
      "keepalive_requests", "duration_s", "warmup_s", "repetitions", "work_us", "sleep_us", "response_bytes",
      "close", "client_threads", "server_cpus", "client_cpus", "server_args", "slow_fraction", "slow_ms",
      "variants", "holds", "model_args", "experiment"};
  if (!j.is_object()) throw std::invalid_argument("a matrix config must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (!kKnown.contains(k)) throw std::invalid_argument("unknown matrix field '" + k + "'");
  }
  try {
    if (j.contains("models")) {
      if (j["models"] == "all") models.clear();
      else models = j["models"].get<std::vector<std::string>>();
    }
    auto get = [&](const char* k, auto& field) {
      if (j.contains(k)) field = j[k].get<std::decay_t<decltype(field)>>();
    };
    get("server_threads", server_threads);
    get("workloads", workloads);
    get("connections", connections);
    get("keepalive_connections", keepalive_connections);
    get("rates", rates);
    get("keepalive_requests", keepalive_requests);
    get("duration_s", duration_s);
    get("warmup_s", warmup_s);
    get("repetitions", repetitions);
    get("work_us", work_us);
    get("sleep_us", sleep_us);
    get("response_bytes", response_bytes);
    get("close", close);
    get("client_threads", client_threads);
    get("server_cpus", server_cpus);
    get("client_cpus", client_cpus);
    get("server_args", server_args);
    get("slow_fraction", slow_fraction);
    get("slow_ms", slow_ms);
    get("holds", holds);
    get("model_args", model_args);
    get("experiment", experiment);
    get("comment", comment);
    if (j.contains("variants")) {
      variants.clear();
      for (const auto& v : j["variants"]) {
        Variant one;
        v.at("name").get_to(one.name);
        if (v.contains("server_args")) v.at("server_args").get_to(one.server_args);
        variants.push_back(std::move(one));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("matrix config: ") + e.what());
  }
}

void MatrixSpec::fill_default_placement() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (server_cpus.empty() && client_cpus.empty()) {
    if (cores == 1) {
      server_cpus = client_cpus = {0};
    } else {
      // The client gets the lower half, the server the upper half: on 2 cores, 0 and 1.
      for (int c = 0; c < cores / 2; ++c) client_cpus.push_back(c);
      for (int c = cores / 2; c < cores; ++c) server_cpus.push_back(c);
    }
  } else if (server_cpus.empty() || client_cpus.empty()) {
    throw std::invalid_argument("give both --server-cpus and --client-cpus, or neither");
  }
}

std::vector<RunConfig> MatrixSpec::expand(const std::vector<ModelInfo>& catalog) const {
  auto bad = [](const std::string& m) { throw std::invalid_argument(m); };
  if (repetitions < 1 || repetitions > 1000) bad("repetitions must be 1..1000");
  if (!(duration_s > 0)) bad("duration must be > 0");
  if (warmup_s < 0) bad("warmup must be >= 0");
  for (int t : server_threads)
    if (t < 1 || t > 256) bad("server threads must be 1..256");
  for (int h : holds)
    if (h < 0 || h > 1'000'000) bad("holds must be 0..1000000");
  // The extra axes: each service-time shape (variant) with each background size.
  std::vector<std::pair<Variant, int>> axes;
  for (const auto& shape : variants.empty() ? std::vector<Variant>{Variant{}} : variants)
    for (int hold : holds) axes.emplace_back(shape, hold);
  std::vector<std::string> ids = models;
  if (ids.empty())
    for (const auto& m : catalog) ids.push_back(m.id);
  const ClosePolicy policy = close_policy_from_string(close);
  std::vector<RunConfig> out;
  for (const auto& id : ids) {
    const ModelInfo* m = find_model(catalog, id);
    if (!m) {
      std::vector<std::string> known;
      for (const auto& x : catalog) known.push_back(x.id);
      bad(fmt::format("unknown model '{}' (this build has: {})", id, fmt::join(known, ", ")));
    }
    std::vector<int> threads = m->multi_acceptor ? server_threads : std::vector<int>{1};
    for (int t : threads) {
      for (const auto& [shape, hold] : axes) {
        for (const auto& w : workloads) {
          RunConfig base;
          base.variant = shape.name;
          base.hold = hold;
          base.model = id;
          base.workload = w;
          base.server_threads = t;
          base.client_threads = client_threads > 0 ? client_threads : static_cast<int>(client_cpus.size());
          base.work_us = work_us;
          base.sleep_us = sleep_us;
          base.response_bytes = response_bytes;
          base.duration_s = duration_s;
          base.warmup_s = warmup_s;
          base.repetitions = repetitions;
          base.close = policy;
          base.server_cpus = server_cpus;
          base.client_cpus = client_cpus;
          base.server_args = server_args;
          base.server_args.insert(base.server_args.end(), shape.server_args.begin(), shape.server_args.end());
          if (const auto it = model_args.find(id); it != model_args.end()) {
            base.server_args.insert(base.server_args.end(), it->second.begin(), it->second.end());
          }
          if (w == "conn" || w == "keepalive" || w == "slowclient") {
            for (int c : w == "keepalive" ? keepalive_connections : connections) {
              RunConfig rc = base;
              rc.connections = std::max(c, rc.client_threads);
              rc.requests_per_conn = w == "keepalive" ? keepalive_requests : 1;
              if (w == "slowclient") {
                rc.slow_fraction = slow_fraction;
                rc.slow_ms = slow_ms;
              }
              out.push_back(rc);
            }
          } else if (w == "cost") {
            for (double r : rates) {
              if (!(r > 0)) bad("rates must be > 0");
              RunConfig rc = base;
              rc.rate = r;
              out.push_back(rc);
            }
          } else {
            bad("unknown workload '" + w + "' (conn, keepalive, cost, slowclient)");
          }
        }
      }
    }
  }
  return out;
}

}  // namespace acceptbench
