#include "model_fixture.hpp"

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_client.hpp"

namespace acceptbench::testing {

std::string bin_dir() { return ACCEPTBENCH_BIN_DIR; }

namespace {
const nlohmann::json& models_json() {
  static const nlohmann::json j = [] {
    std::ifstream in(bin_dir() + "/models.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}
}  // namespace

std::vector<std::string> model_ids() {
  std::vector<std::string> ids;
  for (const auto& m : models_json()["models"]) ids.push_back(m["id"]);
  return ids;
}

bool multi_acceptor(const std::string& model) {
  for (const auto& m : models_json()["models"]) {
    if (m["id"] == model) return m["acceptors"] != "one";
  }
  return false;
}

bool model_flag(const std::string& model, const std::string& key) {
  for (const auto& m : models_json()["models"]) {
    if (m["id"] == model) return m.value(key, false);
  }
  return false;
}

ServerProcess start_model(const std::string& model, int threads, std::vector<std::string> extra, int rlimit_nofile) {
  SpawnOptions o;
  o.rlimit_nofile = rlimit_nofile;
  o.argv = {bin_dir() + "/" + model, "--port", "0"};
  if (multi_acceptor(model)) {
    o.argv.push_back("--threads");
    o.argv.push_back(std::to_string(threads));
  }
  o.argv.insert(o.argv.end(), extra.begin(), extra.end());
  o.ready_timeout = std::chrono::milliseconds(5000);
  return ServerProcess::start(o);
}

LoadResult drive(std::uint16_t port, int threads, int conns, int keep_alive_requests) {
  std::vector<LoadResult> parts(static_cast<std::size_t>(threads));
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        LoadResult& r = parts[static_cast<std::size_t>(t)];
        for (int c = 0; c < conns; ++c) {
          try {
            UniqueFd fd = connect_loopback(port);
            bool ok = true;
            for (int k = 0; k <= keep_alive_requests && ok; ++k) {
              const bool last = k == keep_alive_requests;
              const auto resp = roundtrip(fd.get(), last ? kGetClose : kGet);
              ok = resp && resp->status == 200 && resp->close == last;
              if (ok) ++r.ok_responses;
            }
            ok = ok && peer_closed(fd.get(), 3000);
            ++(ok ? r.connections : r.failures);
          } catch (const std::exception&) {
            ++r.failures;
          }
        }
      });
    }
  }
  LoadResult sum;
  for (const auto& p : parts) {
    sum.connections += p.connections;
    sum.ok_responses += p.ok_responses;
    sum.failures += p.failures;
  }
  return sum;
}

std::uint64_t total(const nlohmann::json& stats, const std::string& key) {
  return stats.at("totals").at(key).get<std::uint64_t>();
}

}  // namespace acceptbench::testing
