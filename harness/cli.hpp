#pragma once
// The flag layer the acceptbench commands share: parsing, the usage error (exit 2), the
// matrix flags (what to run), the launch flags (where), the network namespace and run ids.
// Everything here runs on the main thread before any measurement.

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "layout.hpp"
#include "matrix.hpp"
#include "runner.hpp"

namespace acceptbench {

// Prints "acceptbench: error: M" and exits 2 (bad input).
[[noreturn]] void usage_error(const std::string& m);

// Parses a subcommand's flags; exits 2 with the message on an error. Returns true when
// --help was asked (and printed).
bool parse_flags(int argc, char** argv, const boost::program_options::options_description& d,
                 boost::program_options::variables_map& vm,
                 const boost::program_options::positional_options_description* positional = nullptr);

// models.json and presets/ for a --bin-dir: a build's bin folder has them beside the
// binaries; else they are where this acceptbench's own layout keeps them.
std::string data_dir_for(const std::string& bin_dir, const Layout& layout);

// A comma list of ints, doubles or strings; exits 2 naming --flag on a bad item.
template <typename T>
std::vector<T> parse_list(const std::string& s, const char* flag) {
  std::vector<T> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      std::size_t used = 0;
      if constexpr (std::is_same_v<T, int>) {
        out.push_back(std::stoi(item, &used));
      } else if constexpr (std::is_same_v<T, double>) {
        out.push_back(std::stod(item, &used));
      } else {
        out.push_back(item);
        used = item.size();
      }
      if (used != item.size() || item.empty()) throw std::invalid_argument("junk");
    } catch (const std::exception&) {
      usage_error(fmt::format("--{}: '{}' is not a valid list item", flag, item));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// A CPU list (0-3,6) of CPUs this machine has; exits 2 naming --flag otherwise.
std::vector<int> parse_cpus(const std::string& s, const char* flag);

// What to run: a preset or config file, then the flags over it.
struct MatrixFlags {
  std::string preset, config, models, server_threads, workloads, connections, keepalive_connections, rates, close,
      server_cpus, client_cpus, server_args;
  double duration = 0, warmup = -1;
  int repetitions = 0, keepalive_requests = 0, client_threads = 0;
  long work_us = -1, sleep_us = -1, response_bytes = -1;

  void add_to(boost::program_options::options_description& d);
  // The matrix: `preset` (or `default_preset`) from presets_dir, --config, then the flags;
  // exits 2 on a bad value.
  [[nodiscard]] MatrixSpec build(const std::string& presets_dir, const std::string& default_preset) const;
};

// Where the server and the clients run, from --launcher, --client-hosts, --target-host,
// --allow-remote-target and the ssh flags.
struct LaunchFlags {
  std::string launcher = "local", target_host = "127.0.0.1", remote_bin_dir, client_hosts, ssh_config;
  std::vector<std::string> ssh_options;
  bool allow_remote = false;
  int ready_timeout_ms = 10'000;
  bool no_cgroup = false;
  RunnerOptions defaults;
  double client_start_delay = 1.5;
  double late_threshold_us = 20;

  void add_to(boost::program_options::options_description& d);
  // Fills the launcher fields of `o`; exits 2 on a bad value.
  void apply(RunnerOptions& o, std::string& bin_dir) const;
};

// --netns: "private" (default) moves the harness (client threads not made yet) and every
// server it starts into a fresh network namespace of their own; "off" keeps the host's.
// A launcher other than local runs the server elsewhere, and a target off loopback is reached
// through the host's interfaces: then the namespace stays the host's.
// Returns the record for env.network_namespace; exits 2 on a bad value.
nlohmann::json apply_netns(const std::string& flag, const std::string& launcher, const std::string& target_host,
                           bool client_hosts = false);

// <UTC date>-<time>-<git revision>: names a run's results folder.
std::string new_run_id();

}  // namespace acceptbench
