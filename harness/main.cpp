// acceptbench: runs the models under the load client, repeats, collects evidence, writes
// results JSON, and compares runs. `acceptbench --help` lists the subcommands.
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <thread>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <system_error>

#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compare.hpp"
#include "env.hpp"
#include "kernel.hpp"
#include "export.hpp"
#include "junit.hpp"
#include "layout.hpp"
#include "matrix.hpp"
#include "netns.hpp"
#include "process.hpp"
#include "results.hpp"
#include "runner.hpp"
#include "supervise.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace acceptbench;

namespace {

constexpr const char* kUsage =
    "acceptbench: compares the ways a Linux TCP server can accept connections.\n\n"
    "Usage: acceptbench <command> [options]   (acceptbench <command> --help for its options)\n\n"
    "Commands:\n"
    "  run      one configuration x R repetitions\n"
    "  sweep    a matrix of configurations (--preset default|quick, --config FILE, flags)\n"
    "  compare  BASE NEW: per configuration, median ratios and a Mann-Whitney U test; exit 1 on a regression\n"
    "  ab       two builds (or binaries) run interleaved A B A B in one job, then compared\n"
    "  merge    loadgen JSON results of several clients merged into one (histograms exactly)\n"
    "  probe    prints a server process's CPU and context switches (--pid), its cgroup's CPU and memory\n"
    "           (--cgroup), the kernel's TCP counters (--kernel) and the host's sysctls (--sysctls) as JSON:\n"
    "           the reader the harness runs on the server's and clients' hosts behind ssh or netns\n"
    "  supervise -- SERVER...  runs a server in a cgroup of its own on this host (the harness's ssh launcher)\n"
    "  export   RESULTS.json as CSV (one row per repetition) or HdrHistogram .hgrm files\n"
    "  attach-cost-model  folds cost_model's Google Benchmark JSON into a results file\n"
    "  experiment NAME    a named experiment (herd, skew, stall, c10k): its preset's sweep, then the report\n";

[[noreturn]] void usage_error(const std::string& m) {
  fmt::print(stderr, "acceptbench: error: {}\n", m);
  std::exit(2);
}

// Parses a subcommand's flags; exits 2 with the message on an error. Returns true when
// --help was asked (and printed).
bool parse_flags(int argc, char** argv, const po::options_description& d, po::variables_map& vm,
                 const po::positional_options_description* positional = nullptr) {
  try {
    auto parser = po::command_line_parser(argc, argv).options(d);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << d << "\n";
      return true;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  return false;
}

// models.json and presets/ for a --bin-dir: a build's bin folder has them beside the
// binaries; else they are where this acceptbench's own layout keeps them.
std::string data_dir_for(const std::string& bin_dir, const Layout& layout) {
  return fs::exists(bin_dir + "/models.json") ? bin_dir : layout.data_dir;
}

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

std::vector<int> parse_cpus(const std::string& s, const char* flag) {
  std::vector<int> cpus;
  try {
    cpus = parse_cpu_list(s);
  } catch (const std::invalid_argument& e) {
    usage_error(fmt::format("--{}: {}", flag, e.what()));
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int c : cpus)
    if (c < 0 || c >= cores) usage_error(fmt::format("--{}: CPU {} does not exist here (0..{})", flag, c, cores - 1));
  return cpus;
}

struct MatrixFlags {
  std::string preset, config, models, server_threads, workloads, connections, keepalive_connections, rates, close,
      server_cpus, client_cpus, server_args;
  double duration = 0, warmup = -1;
  int repetitions = 0, keepalive_requests = 0, client_threads = 0;
  long work_us = -1, sleep_us = -1, response_bytes = -1;

  void add_to(po::options_description& d) {
    // clang-format off
    d.add_options()
      ("preset", po::value(&preset), "start from harness/presets/NAME.json: default, quick or slowclient")
      ("config", po::value(&config), "start from a matrix JSON file (same fields as the presets)")
      ("models", po::value(&models), "comma list of model ids, or 'all'")
      ("model", po::value(&models), "alias of --models")
      ("server-threads", po::value(&server_threads), "comma list, e.g. 1,2,4 (multi-acceptor models)")
      ("workloads", po::value(&workloads), "comma list of conn, keepalive, cost, slowclient")
      ("connections", po::value(&connections), "conn workload: connections in flight, comma list")
      ("keepalive-connections", po::value(&keepalive_connections), "keepalive workload: connections, comma list")
      ("keepalive-requests", po::value(&keepalive_requests), "keepalive workload: requests per connection")
      ("rates", po::value(&rates), "cost workload: offered new connections per second, comma list")
      ("duration", po::value(&duration), "measured seconds per repetition")
      ("warmup", po::value(&warmup), "warm-up seconds per repetition")
      ("repetitions", po::value(&repetitions), "repetitions per configuration")
      ("work-us", po::value(&work_us), "server CPU spin per request")
      ("sleep-us", po::value(&sleep_us), "server blocking wait per request")
      ("response-bytes", po::value(&response_bytes), "response body size")
      ("close", po::value(&close), "who closes: client, server, rst")
      ("client-threads", po::value(&client_threads), "load client threads (default: one per client CPU)")
      ("server-cpus", po::value(&server_cpus), "CPUs for the server (default: the upper half)")
      ("client-cpus", po::value(&client_cpus), "CPUs for the client (default: the lower half)")
      ("server-args", po::value(&server_args), "extra server flags, comma list, e.g. --accept-batch,0");
    // clang-format on
  }

  MatrixSpec build(const std::string& presets_dir, const std::string& default_preset) const {
    MatrixSpec spec;
    auto apply_file = [&](const std::string& path) {
      std::ifstream in(path);
      if (!in) usage_error("cannot read matrix config '" + path + "'");
      try {
        spec.apply(nlohmann::json::parse(in));
      } catch (const nlohmann::json::exception& e) {
        usage_error("'" + path + "' is not valid JSON: " + e.what());
      } catch (const std::invalid_argument& e) {
        usage_error(path + ": " + e.what());
      }
    };
    const std::string p = preset.empty() ? default_preset : preset;
    if (!p.empty()) {
      if (p.find('/') != std::string::npos || !fs::exists(presets_dir + "/" + p + ".json")) {
        std::vector<std::string> names;
        if (fs::is_directory(presets_dir)) {
          for (const auto& e : fs::directory_iterator(presets_dir)) {
            if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
          }
        }
        std::sort(names.begin(), names.end());
        usage_error(fmt::format("--preset '{}' is not one of {}/*.json ({}); a file of your own goes in --config", p,
                                presets_dir, fmt::join(names, ", ")));
      }
      apply_file(presets_dir + "/" + p + ".json");
    }
    if (!config.empty()) apply_file(config);
    if (!models.empty()) spec.models = models == "all" ? std::vector<std::string>{} : parse_list<std::string>(models, "models");
    if (!server_threads.empty()) spec.server_threads = parse_list<int>(server_threads, "server-threads");
    if (!workloads.empty()) spec.workloads = parse_list<std::string>(workloads, "workloads");
    if (!connections.empty()) spec.connections = parse_list<int>(connections, "connections");
    if (!keepalive_connections.empty()) spec.keepalive_connections = parse_list<int>(keepalive_connections, "keepalive-connections");
    if (!rates.empty()) spec.rates = parse_list<double>(rates, "rates");
    if (keepalive_requests) spec.keepalive_requests = keepalive_requests;
    if (duration) spec.duration_s = duration;
    if (warmup >= 0) spec.warmup_s = warmup;
    if (repetitions) spec.repetitions = repetitions;
    auto u32 = [](long v, const char* flag) {
      if (v < 0 || v > 100'000'000) usage_error(fmt::format("--{} out of range", flag));
      return static_cast<std::uint32_t>(v);
    };
    if (work_us != -1) spec.work_us = u32(work_us, "work-us");
    if (sleep_us != -1) spec.sleep_us = u32(sleep_us, "sleep-us");
    if (response_bytes != -1) spec.response_bytes = u32(response_bytes, "response-bytes");
    if (!close.empty()) spec.close = close;
    if (client_threads) spec.client_threads = client_threads;
    if (!server_cpus.empty()) spec.server_cpus = parse_cpus(server_cpus, "server-cpus");
    if (!client_cpus.empty()) spec.client_cpus = parse_cpus(client_cpus, "client-cpus");
    if (!server_args.empty()) spec.server_args = parse_list<std::string>(server_args, "server-args");
    try {
      spec.fill_default_placement();
    } catch (const std::invalid_argument& e) {
      usage_error(e.what());
    }
    return spec;
  }
};

std::string git_short_rev() {
  std::string rev = ACCEPTBENCH_GIT_REVISION;
  return rev.substr(0, 8);
}

std::string new_run_id() {
  return fmt::format("{:%Y%m%d-%H%M%S}-{}", fmt::gmtime(std::time(nullptr)), git_short_rev());
}

std::string fmt_duration(double s) {
  const auto total = static_cast<long>(std::max(0.0, s));
  return total >= 60 ? fmt::format("{}m{:02}s", total / 60, total % 60) : fmt::format("{}s", total);
}

// The summary table printed after a run or sweep, with the honest reading of it.
void print_summary(const nlohmann::json& doc) {
  fmt::print("\n{:<16} {:<10} {:>3} {:>12} {:>9} {:>25} {:>10} {:>9} {:>9} {:>7} {:>6}  {}\n", "model", "workload",
             "thr", "load", "conn/s", "CI of median (coverage)", "p99 us", "cpu us/c", "mach us/c", "wasted", "jain",
             "status");
  bool any_saturated = false, any_coarse = false, any_overloaded = false;
  int disturbed = 0;
  for (const auto& c : doc["configs"]) {
    const auto& cfg = c["config"];
    const std::string load = cfg["mode"] == "open" ? fmt::format("{:.0f}/s", cfg["rate"].get<double>())
                                                   : fmt::format("c={} k={}", cfg["connections"].get<int>(),
                                                                 cfg["requests_per_conn"].get<int>());
    if (c["summary"].is_null()) {
      fmt::print("{:<16} {:<10} {:>3} {:>12}  {}: {}\n", cfg["model"].get<std::string>(),
                 cfg["workload"].get<std::string>(), cfg["server_threads"].get<int>(), load,
                 c["status"] == "cannot_hold" ? "CANNOT HOLD" : "FAILED", c.value("reason", "").substr(0, 100));
      continue;
    }
    const auto& s = c["summary"];
    const bool sat = s["client_saturated"].get<bool>();
    any_saturated = any_saturated || sat;
    std::string status = c["status"].get<std::string>();
    if (sat) status += " (client saturated)";
    if (s.value("client_late", false)) {
      status += fmt::format(" (client late: start lateness p99 {:.0f} us)", s["start_lateness_us"]["p99"].get<double>());
    }
    const bool coarse = s.value("server_cpu_coarse", false);
    any_coarse = any_coarse || coarse;
    if (coarse) status += " (cpu coarse)";
    any_overloaded = any_overloaded || c["status"] == "overloaded";
    if (const int d = s.value("disturbed_repetitions", 0); d > 0) {
      disturbed += d;
      status += fmt::format(" ({} reps disturbed)", d);
    }
    if (!s["crosscheck_within_1pct"].get<bool>()) status += fmt::format(" (crosscheck {:.1f}%)", 100 * s["crosscheck_max_deviation"].get<double>());
    fmt::print("{:<16} {:<10} {:>3} {:>12} {:>9.0f} {:>25} {:>10.1f} {:>9.1f} {:>9.1f} {:>7.3f} {:>6.3f}  {}\n",
               cfg["model"].get<std::string>(), cfg["workload"].get<std::string>(), cfg["server_threads"].get<int>(), load,
               s["conn_per_s"]["median"].get<double>(),
               fmt::format("[{:.0f}, {:.0f}] {:.1f}%", s["conn_per_s"]["ci_low"].get<double>(),
                           s["conn_per_s"]["ci_high"].get<double>(), 100 * s["conn_per_s"]["ci_coverage"].get<double>()),
               s["latency_us"]["total"]["p99"].get<double>(), s["server_cpu_us_per_conn"]["median"].get<double>(),
               s.contains("machine_cpu_us_per_conn") ? s["machine_cpu_us_per_conn"]["median"].get<double>() : 0.0,
               s["accept"]["wasted_wakeups_per_accept"].get<double>(), s["fairness"]["jain_index"].get<double>(), status);
  }
  fmt::print(
      "\nHow to read this: medians over repetitions; the interval of the median is distribution-free (order "
      "statistics) and shown with its actual coverage (95% needs 6 or more repetitions: with 3 it is [min, max] at 75%)."
      "\nRank models by the cost workload (open loop at a fixed offered rate): server CPU us per connection and latency "
      "from the actual start; 'client late' marks runs whose own start lateness inflates latency from the intended "
      "start.\n"
      "cpu us/c: the server's cgroup CPU (every thread and child, ns) over the window / connections it accepted in the "
      "window (snapshot difference); mach us/c: busy time of every CPU (cpuidle residency, µs, or /proc/stat ticks) / "
      "the same connections.\n"
      "jain: the median over repetitions of each repetition's own index (the worst is in the JSON).\n{}{}{}{}",
      any_coarse ? "'cpu coarse': no cgroup could be made; that server CPU is /proc ticks (10 ms), not comparable.\n" : "",
      any_overloaded ? "'overloaded': the server did not hold the offered rate (completed in the window < 98% of the offered, "
                       "connections unfinished after the drain, or a drain over 200 ms); its numbers are kept but it is not ranked.\n"
                     : "",
      disturbed ? fmt::format("{} repetitions were disturbed: steal time above the threshold on the measured CPUs.\n",
                              disturbed)
                : "",
      any_saturated ? "Closed-loop conn/s marked 'client saturated' measure the load client's limit, not the server's: "
                      "on loopback the client pays about twice the server's CPU per connection.\n"
                    : "");
}

struct SweepRun {
  std::vector<RunConfig> configs;
  std::vector<ModelInfo> catalog;
  std::string bin_dir;         // where the server binaries are (on the server's host)
  RunnerOptions base_options;  // launcher and target
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

  void add_to(po::options_description& d) {
    // clang-format off
    d.add_options()
      ("launcher", po::value(&launcher)->default_value(launcher),
          "where the server runs: local, netns:NAME (ip netns exec NAME ...) or ssh:HOST (ssh -- HOST ...)")
      ("client-hosts", po::value(&client_hosts),
          "comma list of hosts that each run loadgen with the configuration's load, started together "
          "(HOST or ssh:HOST, netns:NAME, local); default: the in-process client here")
      ("target-host", po::value(&target_host)->default_value(target_host),
          "IPv4 address the clients connect to; the server binds it")
      ("remote-bin-dir", po::value(&remote_bin_dir),
          "ssh: the folder of the model binaries, acceptbench and loadgen on the remote hosts (default: --bin-dir)")
      ("ssh-config", po::value(&ssh_config), "ssh: an ssh_config file (ssh -F FILE)")
      ("ssh-option", po::value(&ssh_options)->composing(), "ssh: an option, KEY=VALUE (ssh -o KEY=VALUE); repeatable")
      ("ready-timeout-ms", po::value(&ready_timeout_ms)->default_value(ready_timeout_ms),
          "how long to wait for the server's READY line (ssh log-in included)")
      ("client-start-delay", po::value(&client_start_delay)->default_value(client_start_delay),
          "--client-hosts: seconds from launching the clients to their common start (covers ssh log-ins)")
      ("allow-remote-target", po::bool_switch(&allow_remote),
          "allow a target outside 127.0.0.0/8 (your own network namespace or lab host)")
      ("late-threshold-us", po::value(&late_threshold_us)->default_value(late_threshold_us),
          "open loop: flag a repetition client_late when the p99 of its start lateness exceeds this")

      ("no-cgroup", po::bool_switch(&no_cgroup),
          "no cgroup for the server: its CPU from /proc in 10 ms ticks, marked coarse (ACCEPTBENCH_CGROUP_ROOT moves "
          "the cgroup root, default /sys/fs/cgroup)")
      ("steal-threshold", po::value(&defaults.steal_threshold)->default_value(defaults.steal_threshold),
          "steal time over the server's and client's CPUs, fraction of the window, that marks a repetition disturbed")
      ("saturation-threshold", po::value(&defaults.saturation_threshold)->default_value(defaults.saturation_threshold),
          "busy fraction of the client's CPUs (incl. softirq and steal) that flags a saturated client")
      ("drain-ms", po::value(&defaults.drain_ms)->default_value(defaults.drain_ms),
          "open loop: after the window, measured connections in flight get this long to finish (late completions)");
    // clang-format on
  }

  // Fills the launcher fields of `o`; exits 2 on a bad value.
  void apply(RunnerOptions& o, std::string& bin_dir) const {
    in_addr a{};
    if (::inet_pton(AF_INET, target_host.c_str(), &a) != 1) usage_error("--target-host must be an IPv4 address");
    if ((ntohl(a.s_addr) >> 24) != 127 && !allow_remote) {
      usage_error("refusing a target outside 127.0.0.0/8 (" + target_host +
                  "): pass --allow-remote-target if it is your own namespace or lab host");
    }
    if (ready_timeout_ms < 1 || ready_timeout_ms > 600'000) usage_error("--ready-timeout-ms must be in [1, 600000]");
    if (!(client_start_delay > 0 && client_start_delay <= 600)) usage_error("--client-start-delay must be in (0, 600]");
    o.target_host = target_host;
    if (!(late_threshold_us > 0)) usage_error("--late-threshold-us must be > 0");
    o.late_threshold_us = late_threshold_us;
    if (defaults.steal_threshold < 0 || defaults.steal_threshold > 1) usage_error("--steal-threshold must be in [0, 1]");
    if (defaults.saturation_threshold <= 0 || defaults.saturation_threshold > 1) {
      usage_error("--saturation-threshold must be in (0, 1]");
    }
    if (defaults.drain_ms < 0 || defaults.drain_ms > 60'000) usage_error("--drain-ms must be in [0, 60000]");
    o.steal_threshold = defaults.steal_threshold;
    o.saturation_threshold = defaults.saturation_threshold;
    o.drain_ms = defaults.drain_ms;
    o.cgroup = !no_cgroup;
    o.ready_timeout_ms = ready_timeout_ms;
    o.client_start_delay_s = client_start_delay;
    std::vector<std::string> ssh_args;
    if (!ssh_config.empty()) ssh_args = {"-F", ssh_config};
    for (const auto& opt : ssh_options) {
      if (opt.empty() || opt.front() == '-' || opt.find('=') == std::string::npos) {
        usage_error("--ssh-option takes KEY=VALUE, got '" + opt + "'");
      }
      ssh_args.insert(ssh_args.end(), {"-o", opt});
    }
    auto parse = [&](const std::string& spec, bool bare_is_ssh, const char* flag) {
      try {
        Launcher l = Launcher::parse(spec, bare_is_ssh);
        if (l.remote()) l.ssh_options = ssh_args;
        return l;
      } catch (const std::invalid_argument& e) {
        usage_error(fmt::format("--{}: {}", flag, e.what()));
      }
    };
    o.launcher = parse(launcher, false, "launcher");
    bool any_ssh = o.launcher.remote();
    if (!client_hosts.empty()) {
      for (const auto& h : parse_list<std::string>(client_hosts, "client-hosts")) {
        o.client_hosts.push_back(parse(h, true, "client-hosts"));
        any_ssh = any_ssh || o.client_hosts.back().remote();
      }
    }
    if (!any_ssh && !remote_bin_dir.empty()) usage_error("--remote-bin-dir goes with ssh hosts");
    if (!any_ssh && (!ssh_config.empty() || !ssh_options.empty())) usage_error("--ssh-config and --ssh-option go with ssh hosts");
    const Layout layout = find_layout();
    const std::string here = layout.exe_dir;  // this acceptbench's folder: loadgen is beside it
    const std::string there = remote_bin_dir.empty() ? bin_dir : remote_bin_dir;
    // acceptbench (the probe) and loadgen on the remote hosts: in --remote-bin-dir or a given
    // --bin-dir (a build's bin/ holds everything); else at this host's paths, where the package
    // puts them on every host (/usr/bin, the models in /usr/libexec/acceptbench).
    const std::string there_tools =
        !remote_bin_dir.empty() ? remote_bin_dir : (bin_dir == layout.bin_dir ? layout.exe_dir : bin_dir);
    o.probe_binary = (o.launcher.remote() ? there_tools : here) + "/acceptbench";
    o.loadgen_binary = here + "/loadgen";
    o.remote_loadgen_binary = there_tools + "/loadgen";
    o.acceptbench_binary = here + "/acceptbench";
    o.remote_acceptbench_binary = there_tools + "/acceptbench";
    if (o.launcher.remote()) bin_dir = there;
  }
};

// --netns: "private" (default) moves the harness (client threads not made yet) and every
// server it starts into a fresh network namespace of their own; "off" keeps the host's.
// A launcher other than local runs the server elsewhere, and a target off loopback is reached
// through the host's interfaces: then the namespace stays the host's.
// Returns the record for env.network_namespace; exits 2 on a bad value.
nlohmann::json apply_netns(const std::string& flag, const std::string& launcher, const std::string& target_host,
                           bool client_hosts = false) {
  if (flag != "private" && flag != "off") usage_error("--netns must be private or off");
  if (launcher != "local") return {{"mode", "host"}, {"reason", "the server runs through --launcher " + launcher}};
  if (client_hosts) return {{"mode", "host"}, {"reason", "the load comes from --client-hosts"}};
  if (!target_host.starts_with("127.")) return {{"mode", "host"}, {"reason", "the target " + target_host + " is not on loopback"}};
  if (flag == "off") return {{"mode", "host"}, {"reason", "--netns off"}};
  try {
    const NetnsResult r = enter_private_netns();
    if (r.mode != "private") {
      fmt::print(stderr, "acceptbench: cannot make a private network namespace ({}); running in the host's namespace, "
                         "so the kernel counters include any other TCP traffic on this machine\n", r.reason);
    }
    return r.to_json();
  } catch (const std::exception& e) {
    fmt::print(stderr, "acceptbench: error: {}\n", e.what());
    std::exit(1);
  }
}

// Runs the configurations into `file` with their repetitions interleaved: round 1 runs
// repetition 1 of every configuration, round 2 repetition 2, and so on, each round in an
// order shuffled by `seed` (and the round), so drift of the machine spreads over every
// configuration instead of landing on one. Every repetition is saved as it finishes, with
// the execution record (seed, the sequence run); a configuration's summary is computed when
// its last repetition is in. Resuming keeps the repetitions already saved (a configuration
// that completed but failed starts over). Progress on stderr.
void run_matrix(const SweepRun& sweep, ResultsFile& file, bool resume, std::uint64_t seed) {
  const bool tty = ::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t n = sweep.configs.size();
  std::vector<nlohmann::json> reps(n, nlohmann::json::array());
  int rounds = 0, reps_total = 0, reps_done = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const RunConfig& c = sweep.configs[i];
    rounds = std::max(rounds, c.repetitions);
    if (const nlohmann::json* have = resume ? file.find(c.key()) : nullptr) {
      const auto& saved = (*have)["repetitions"];
      const bool complete = static_cast<int>(saved.size()) >= c.repetitions;
      // overloaded is a measured outcome (kept, not ranked), not a failure to redo; one that could
      // not hold its background is finished too: it would not the next time.
      const auto& st = (*have)["status"];
      if ((complete && (st == "ok" || st == "overloaded")) || st == "cannot_hold") {
        fmt::print(stderr, "[{:>3}/{}] {} (done, skipped)\n", i + 1, n, c.key());
        reps[i] = saved;
        continue;
      }
      if (!complete) {
        reps[i] = saved;
        if (!saved.empty()) fmt::print(stderr, "[{:>3}/{}] {} ({} repetitions kept)\n", i + 1, n, c.key(), saved.size());
      }
    }
    reps_total += c.repetitions - static_cast<int>(reps[i].size());
  }
  // A configuration whose server could not hold its `hold` background: one repetition shows
  // it, so its remaining repetitions are skipped in the later rounds (counted in the result).
  auto cannot_hold = [&](std::size_t i) {
    return std::any_of(reps[i].begin(), reps[i].end(), [](const nlohmann::json& r) { return r.value("status", "") == "cannot_hold"; });
  };
  nlohmann::json execution = file.doc().value("execution", nlohmann::json::object());
  if (!resume || !execution.contains("seed")) {
    execution = {{"order", "interleaved"}, {"seed", seed}, {"sequence", nlohmann::json::array()}};
  } else {
    seed = execution["seed"].get<std::uint64_t>();  // a resumed sweep keeps its seed
  }
  execution["rounds"] = rounds;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed ^ (std::uint64_t{0x9e3779b97f4a7c15} * static_cast<std::uint64_t>(round + 1)));
    std::shuffle(order.begin(), order.end(), rng);
    for (const std::size_t i : order) {
      const RunConfig& c = sweep.configs[i];
      if (round >= c.repetitions || static_cast<int>(reps[i].size()) > round || cannot_hold(i)) continue;
      RunnerOptions o = sweep.base_options;
      o.server_binary = sweep.bin_dir + "/" + c.model;
      o.multi_acceptor = find_model(sweep.catalog, c.model)->multi_acceptor;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double per_rep = reps_done ? elapsed / reps_done : c.duration_s + c.warmup_s + 0.5;
      const std::string line = fmt::format("round {}/{} [{:>3}/{}] {:<16} {:<9} t={} {} rep {}/{}  elapsed {}  ETA {}",
                                           round + 1, rounds, i + 1, n, c.model, c.workload, c.server_threads,
                                           c.rate > 0 ? fmt::format("{:.0f}/s", c.rate) : fmt::format("c={}", c.connections),
                                           reps[i].size() + 1, c.repetitions, fmt_duration(elapsed),
                                           fmt_duration(per_rep * (reps_total - reps_done)));
      fmt::print(stderr, fmt::runtime(tty ? "\r{:<120}" : "{}\n"), line);
      nlohmann::json rep = run_repetition(c, o);
      const auto position = execution["sequence"].size();
      rep["round"] = round + 1;
      rep["sequence_index"] = position;
      reps[i].push_back(std::move(rep));
      ++reps_done;
      execution["sequence"].push_back({{"round", round + 1}, {"key", c.key()}});
      nlohmann::json result;
      const bool held_not = cannot_hold(i);
      if (static_cast<int>(reps[i].size()) >= c.repetitions || held_not) {
        result = summarize_config(c, reps[i]);
        if (held_not) {
          const int skipped = c.repetitions - static_cast<int>(reps[i].size());
          result["repetitions_skipped"] = skipped;
          reps_total -= skipped;
        }
        if (result["status"] != "ok") {
          fmt::print(stderr, "{}[{:>3}/{}] {} {}: {}\n", tty ? "\n" : "", i + 1, n, c.key(),
                     result["status"] == "overloaded"    ? "OVERLOADED"
                     : result["status"] == "cannot_hold" ? "CANNOT HOLD"
                                                         : "FAILED",
                     result.value("reason", ""));
        }
      } else {
        result = {{"status", "running"}, {"summary", nullptr}};
      }
      result["config"] = c.to_json();
      result["repetitions"] = reps[i];
      file.put(result, "execution", execution);
    }
  }
  if (tty) fmt::print(stderr, "\n");
}

nlohmann::json ranking_notes() {
  return {"Medians over repetitions; intervals of the median are distribution-free (order statistics) and labelled "
          "with their actual coverage (95% needs 6 or more repetitions). Repetitions ran interleaved (execution).",
          "Peak view (workloads conn and keepalive, closed loop): maximum conn/s. On loopback the client pays about twice "
          "the server's CPU per connection, so a configuration flagged client_saturated measures the client, not the "
          "server.",
          "Cost view (workload cost, open loop at fixed offered rates below the client's limit): rank models by server "
          "CPU microseconds per connection (cgroup, ns; per connection accepted in the window) and by latency. Machine "
          "CPU per connection (every CPU's busy time) is shown beside it: on one host the kernel's listen-path work runs "
          "in softirq on the sending CPU and is billed to whatever runs there, so only the machine figure holds it; "
          "with the same client for every model its differences are what a model costs kernel and itself, but it also "
          "holds the client and anything else on the machine, so rankings use server CPU and show machine CPU as the "
          "check.",
          "A configuration with status overloaded did not hold its offered rate (completed in the window < 98% of the offered, "
          "connections unfinished after the drain, or a drain over 200 ms): its numbers are kept and drawn apart, never ranked."};
}

int cmd_sweep(int argc, char** argv, bool single, const std::string& experiment = "") {
  MatrixFlags mf;
  LaunchFlags lf;
  const Layout layout = find_layout();
  std::string out, bin_dir = layout.bin_dir;
  bool resume = false;
  po::options_description d(single ? "acceptbench run: one configuration x R repetitions.\n\nOptions"
                                   : "acceptbench sweep: a matrix of configurations.\n\nOptions");
  d.add_options()("help,h", "print this help")("out", po::value(&out), "results file (default results/<run-id>/results.json)")(
      "bin-dir", po::value(&bin_dir)->default_value(bin_dir),
      "where the model binaries are (models.json and presets/ too in a build tree; else from the install's share/acceptbench)");
  std::string netns = "private";
  d.add_options()("netns", po::value(&netns)->default_value(netns),
                  "private: server and client in a fresh network namespace of their own (loopback, the host's TCP "
                  "sysctls copied; kernel counters count this run only); off: the host's namespace");
  std::uint64_t seed = std::random_device{}();
  d.add_options()("seed", po::value(&seed), "shuffles the order of configurations within each round of repetitions "
                                            "(default: random; recorded in the results, kept by --resume)");
  if (!single) d.add_options()("resume", po::bool_switch(&resume), "continue an existing --out file, keeping every repetition already saved");
  mf.add_to(d);
  lf.add_to(d);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm)) return 0;
  if (resume && out.empty()) usage_error("--resume needs --out FILE");
  SweepRun sweep;
  std::string spec_comment;
  try {
    const std::string data_dir = data_dir_for(bin_dir, layout);
    sweep.catalog = load_models(data_dir);
    MatrixSpec spec = mf.build(data_dir + "/presets", single ? "" : "quick");
    spec_comment = spec.comment;
    if (single && spec.workloads.size() == 1 && mf.workloads.empty()) spec.workloads = {"conn"};
    sweep.configs = spec.expand(sweep.catalog);
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  }
  lf.apply(sweep.base_options, bin_dir);
  sweep.bin_dir = bin_dir;
  if (sweep.configs.empty()) usage_error("the matrix is empty");
  if (single && sweep.configs.size() != 1) {
    usage_error(fmt::format("run takes one configuration, these flags make {}; use sweep", sweep.configs.size()));
  }
  const std::string run_id = new_run_id();
  if (out.empty()) out = "results/" + run_id + "/results.json";
  const nlohmann::json netns_record = apply_netns(netns, lf.launcher, lf.target_host, !lf.client_hosts.empty());
  try {
    nlohmann::json env = collect_env(sweep.configs[0].server_cpus, sweep.configs[0].client_cpus);
    env["network_namespace"] = netns_record;
    env["placement"]["launcher"] = lf.launcher;
    env["placement"]["client_hosts"] = nlohmann::json::array();
    for (const auto& h : sweep.base_options.client_hosts) env["placement"]["client_hosts"].push_back(h.describe());
    env["placement"]["target_host"] = lf.target_host;
    env["hosts"] = collect_run_hosts(sweep.base_options);  // every host's sysctls, read there
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0) env["rlimit_nofile"] = files.rlim_cur;  // harness and servers
    ResultsFile file(out, std::move(env), run_id, resume);
    file.set("notes", ranking_notes());
    if (!experiment.empty()) {
      file.set("experiment", {{"name", experiment}, {"preset", mf.preset}, {"comment", spec_comment}});
    }
    fmt::print(stderr, "acceptbench: {} configurations -> {}\n", sweep.configs.size(), out);
    run_matrix(sweep, file, resume, seed);
    print_summary(file.doc());
    fmt::print("\nresults: {}\n", out);
    int failed = 0;
    for (const auto& c : file.doc()["configs"]) failed += c["status"] == "failed";
    if (failed) fmt::print(stderr, "acceptbench: {} configurations failed (see their reason in the JSON)\n", failed);
  } catch (const std::exception& e) {
    fmt::print(stderr, "acceptbench: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

// The named experiments: a preset each (NAME.json, and NAME-quick.json for tests), and a
// section of the report (plots/experiments.py).
constexpr std::array<const char*, 4> kExperiments = {"herd", "skew", "stall", "c10k"};

int cmd_experiment(int argc, char** argv) {
  std::string name, out;
  bool quick = false, report = true;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print(
          "acceptbench experiment NAME [--quick] [--no-report] [--out FILE] [sweep flags...]\n\n"
          "Runs a named experiment: the sweep of harness/presets/NAME.json (--quick: NAME-quick.json, a tiny\n"
          "version for tests), then plot.py (beside models.json), whose report has the experiment's section: figures and a\n"
          "finding computed from the results. Any sweep flag (acceptbench sweep --help) overrides the preset.\n\n"
          "Experiments:\n"
          "  herd   epoll-shared, epoll-exclusive, epoll-mutex, shared-accept, reuseport x 1, 2, 4, 8 workers, under\n"
          "         slow arrivals and under load: context switches, wasted wake-ups and CPU per connection\n"
          "  skew   epoll-shared, epoll-exclusive, epoll-mutex, reuseport, 4 workers, offered rates low to high:\n"
          "         each worker's share of the connections, Jain's index per repetition\n"
          "  stall  service-time shapes (none; 1% of requests block 10 ms; one worker blocks 50 ms a second) x\n"
          "         reuseport, reuseport-cbpf, epoll-exclusive, epoll-mutex, acceptor-dispatch: p50/p99/p99.9\n"
          "  c10k   0, 1000, 10000 idle keep-alive connections held open while new ones arrive at a fixed rate:\n"
          "         server memory per held connection, threads, CPU and latency per new connection\n\n"
          "Options:\n"
          "  --quick       the tiny preset NAME-quick (seconds; what the tests run)\n"
          "  --no-report   do not run plots/plot.py afterwards\n"
          "  --out FILE    results file (default results/<run-id>-NAME/results.json)\n");
      return 0;
    }
    if (a == "--quick") {
      quick = true;
    } else if (a == "--no-report") {
      report = false;
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (a.starts_with("--out=")) {
      out = a.substr(6);
    } else if (a == "--preset" || a.starts_with("--preset=")) {
      usage_error("experiment takes its preset from NAME");
    } else if (name.empty() && !a.starts_with("-")) {
      name = a;
    } else {
      rest.push_back(a);
    }
  }
  if (name.empty()) usage_error("experiment needs a NAME: herd, skew, stall or c10k (acceptbench experiment --help)");
  if (std::find(kExperiments.begin(), kExperiments.end(), name) == kExperiments.end()) {
    usage_error("unknown experiment '" + name + "': herd, skew, stall or c10k");
  }
  if (out.empty()) out = "results/" + new_run_id() + "-" + name + (quick ? "-quick" : "") + "/results.json";
  std::vector<std::string> args = {"experiment", "--preset", name + (quick ? "-quick" : ""), "--out", out};
  args.insert(args.end(), rest.begin(), rest.end());
  std::vector<char*> cargv;
  for (auto& x : args) cargv.push_back(x.data());
  cargv.push_back(nullptr);
  const int rc = cmd_sweep(static_cast<int>(args.size()), cargv.data(), false, name);
  if (rc != 0 || !report) return rc;
  const std::string plot = find_layout().data_dir + "/plot.py";  // beside models.json and presets/
  if (!fs::exists(plot)) {
    fmt::print(stderr, "acceptbench: {} not found; draw the report with plots/plot.py {}\n", plot, out);
    return 0;
  }
  // Paths are quoted for the shell; a quote inside them is escaped.
  auto quote = [](const std::string& x) {
    std::string q = "'";
    for (char ch : x) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
  };
  const int plot_rc = std::system(("/usr/bin/python3 " + quote(plot) + " " + quote(out)).c_str());
  if (plot_rc != 0) fmt::print(stderr, "acceptbench: the report failed (plot.py exit {})\n", plot_rc);
  return plot_rc == 0 ? 0 : 1;
}

int cmd_compare(int argc, char** argv) {
  std::string base, next, markdown, json_out, junit;
  CompareOptions o;
  po::options_description d(
      "acceptbench compare BASE NEW: per configuration, the median ratio of conn/s, server CPU per connection and p99\n"
      "latency, with an exact two-sided Mann-Whitney U test over repetitions (ties handled) and Holm's correction over\n"
      "the configurations. A regression: the median changed beyond the threshold and the adjusted p < alpha.\n"
      "Exit 0: no regression; 1: a regression; 2: bad input, or repetitions too few ever to reach significance.\n\nOptions");
  d.add_options()("help,h", "print this help")("base", po::value(&base), "baseline results JSON")(
      "new", po::value(&next), "new results JSON")("threshold", po::value(&o.threshold)->default_value(o.threshold),
                                                   "effect-size threshold: relative change of the median conn/s or CPU/conn that counts")(
      "latency-threshold", po::value(&o.latency_threshold)->default_value(o.latency_threshold), "the same for p99 latency")(
      "alpha", po::value(&o.alpha)->default_value(o.alpha), "family-wise significance level (Holm over configurations)")(
      "markdown", po::value(&markdown), "write a Markdown summary here")("json", po::value(&json_out), "write the rows as JSON here")(
      "junit", po::value(&junit), "write JUnit XML here: a test case per configuration and metric, failed on a regression, "
                                  "an error case when the repetitions cannot reach significance");
  po::positional_options_description pos;
  pos.add("base", 1).add("new", 1);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm, &pos)) return 0;
  if (base.empty() || next.empty()) usage_error("compare needs BASE and NEW results files");
  if (!(o.threshold > 0 && o.threshold < 1) || !(o.alpha > 0 && o.alpha < 1)) usage_error("threshold and alpha must be in (0, 1)");
  try {
    const CompareReport r = compare_results(load_results(base), load_results(next), o);
    fmt::print("{}", r.table);
    if (!markdown.empty()) write_file_atomically(markdown, r.markdown);
    if (!json_out.empty()) {
      write_file_atomically(json_out, nlohmann::json{{"rows", r.rows},
                                                     {"regressions", r.regressions},
                                                     {"cannot_decide", r.unreachable ? nlohmann::json(r.cannot_decide) : nlohmann::json(nullptr)}}
                                          .dump(1));
    }
    if (!junit.empty()) write_file_atomically(junit, compare_junit_xml(r.rows, o.alpha, "BASE", "NEW", r.unreachable ? r.cannot_decide : ""));
    if (r.unreachable) {
      fmt::print(stderr, "acceptbench: {}\n", r.cannot_decide);
      return 2;
    }
    return r.regressions > 0 ? 1 : 0;
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  } catch (const std::system_error& e) {  // an output file that cannot be written
    usage_error(e.what());
  }
}

int cmd_ab(int argc, char** argv) {
  MatrixFlags mf;
  std::string a, b, out, junit;
  int rounds = 0;
  CompareOptions o;
  po::options_description d(
      "acceptbench ab: runs two builds (build folders holding bin/) or two binaries of one model interleaved,\n"
      "A B then B A, round after round, in one job, then compares them round by round (exact Wilcoxon signed-rank test\n"
      "of the per-round ratios: drift of the machine between rounds cancels). The way a CI job on a noisy shared\n"
      "machine should gate a merge. Exit codes as compare.\n\nOptions");
  d.add_options()("help,h", "print this help")("a", po::value(&a), "A: a build folder, or a model binary")(
      "b", po::value(&b), "B: a build folder, or a model binary")("rounds", po::value(&rounds)->default_value(rounds),
                                                                 "repetitions of each side; 0: enough for the exact test to "
                                                                 "reach alpha after Holm (at least 8)")(
      "out", po::value(&out), "folder for A.json, B.json and compare.md (default results/ab-<run-id>)")(
      "threshold", po::value(&o.threshold)->default_value(o.threshold), "as in compare")(
      "alpha", po::value(&o.alpha)->default_value(o.alpha), "as in compare")(
      "junit", po::value(&junit), "also write JUnit XML here (as compare --junit)");
  std::string netns = "private";
  d.add_options()("netns", po::value(&netns)->default_value(netns), "as in sweep: private or off");
  mf.add_to(d);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm)) return 0;
  if (a.empty() || b.empty()) usage_error("ab needs --a and --b");
  if (rounds != 0 && rounds < 2) usage_error("--rounds must be 0 (automatic) or >= 2");
  auto side_bin = [](const std::string& p, const std::string& model) -> std::string {
    if (fs::is_directory(p)) return fs::exists(p + "/bin/" + model) ? p + "/bin/" + model : p + "/" + model;
    return p;
  };
  const bool binaries = fs::is_regular_file(a) && fs::is_regular_file(b);
  if (!binaries && (!fs::is_directory(a) || !fs::is_directory(b))) usage_error("--a and --b must both be build folders or both be binaries");
  std::vector<RunConfig> configs;
  std::vector<ModelInfo> catalog;
  try {
    const Layout layout = find_layout();
    catalog = load_models(layout.data_dir);
    if (binaries && mf.models.empty()) mf.models = fs::path(a).filename().string();
    MatrixSpec spec = mf.build(layout.presets_dir(), "");
    spec.repetitions = 1;
    configs = spec.expand(catalog);
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  }
  if (configs.empty()) usage_error("the matrix is empty");
  if (rounds == 0) rounds = std::max(8, repetitions_to_reach(o.alpha, static_cast<int>(configs.size())));
  for (const auto& c : configs)
    for (const auto& side : {a, b})
      if (!fs::exists(side_bin(side, c.model))) usage_error("no binary " + side_bin(side, c.model));
  if (out.empty()) out = "results/ab-" + new_run_id();
  const nlohmann::json netns_record = apply_netns(netns, "local", "127.0.0.1");
  nlohmann::json env = collect_env(configs[0].server_cpus, configs[0].client_cpus);
  env["network_namespace"] = netns_record;
  ResultsFile fa(out + "/A.json", env, "A", false), fb(out + "/B.json", env, "B", false);
  fa.set("side", a);
  fb.set("side", b);
  // One job id in both files: compare then pairs their repetitions by round.
  const std::string job = new_run_id() + fmt::format("-{}", ::getpid());
  fa.set("ab", {{"job", job}, {"side", "A"}, {"order", "A B then B A, round after round"}});
  fb.set("ab", {{"job", job}, {"side", "B"}, {"order", "A B then B A, round after round"}});
  const bool tty = ::isatty(STDERR_FILENO);
  std::size_t index = 0;
  for (const auto& c0 : configs) {
    ++index;
    RunConfig c = c0;
    c.repetitions = rounds;
    nlohmann::json reps_a = nlohmann::json::array(), reps_b = nlohmann::json::array();
    for (int round = 0; round < rounds; ++round) {
      for (int k = 0; k < 2; ++k) {
        const bool run_a = (round % 2 == 0) == (k == 0);  // A B, then B A
        RunnerOptions ro;
        ro.server_binary = side_bin(run_a ? a : b, c.model);
        ro.multi_acceptor = find_model(catalog, c.model) ? find_model(catalog, c.model)->multi_acceptor : c.server_threads > 1;
        fmt::print(stderr, fmt::runtime(tty ? "\r{:<100}" : "{}\n"),
                   fmt::format("[{}/{}] {} round {}/{} side {}", index, configs.size(), c.key(), round + 1, rounds, run_a ? "A" : "B"));
        nlohmann::json rep = run_repetition(c, ro);
        rep["round"] = round + 1;
        (run_a ? reps_a : reps_b).push_back(std::move(rep));
      }
    }
    for (auto [file, reps] : {std::pair{&fa, &reps_a}, std::pair{&fb, &reps_b}}) {
      nlohmann::json result = summarize_config(c, *reps);
      result["config"] = c.to_json();
      result["repetitions"] = *reps;
      file->put(result);
    }
  }
  if (tty) fmt::print(stderr, "\n");
  try {
    const CompareReport r = compare_results(fa.doc(), fb.doc(), o, "A", "B");
    fmt::print("{}", r.table);
    write_file_atomically(out + "/compare.md", r.markdown);
    if (!junit.empty()) write_file_atomically(junit, compare_junit_xml(r.rows, o.alpha, "A", "B", r.unreachable ? r.cannot_decide : ""));
    fmt::print("A: {}\nB: {}\nsummary: {}\n", fa.path(), fb.path(), out + "/compare.md");
    if (r.unreachable) {
      fmt::print(stderr, "acceptbench: {}\n", r.cannot_decide);
      return 2;
    }
    return r.regressions > 0 ? 1 : 0;
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "acceptbench: {}\n", e.what());
    return 2;
  } catch (const std::system_error& e) {  // compare.md or --junit cannot be written; A.json and B.json are saved
    fmt::print(stderr, "acceptbench: {}\nA: {}\nB: {}\n", e.what(), fa.path(), fb.path());
    return 2;
  }
}

int cmd_merge(int argc, char** argv) {
  std::vector<std::string> inputs;
  std::string out;
  po::options_description d(
      "acceptbench merge FILE...: merges loadgen --json results of clients that ran side by side (several hosts)\n"
      "into one: counts add, histograms merge exactly from their raw buckets.\n\nOptions");
  d.add_options()("help,h", "print this help")("out", po::value(&out), "merged JSON (default: stdout)")(
      "inputs", po::value(&inputs)->multitoken(), "loadgen JSON files");
  po::positional_options_description pos;
  pos.add("inputs", -1);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm, &pos)) return 0;
  if (inputs.size() < 2) usage_error("merge needs at least two loadgen JSON files");
  LoadResult merged;
  bool first = true;
  for (const auto& path : inputs) {
    std::ifstream in(path);
    if (!in) usage_error("cannot read '" + path + "'");
    try {
      const LoadResult r = LoadResult::from_json(nlohmann::json::parse(in));
      if (first) {
        merged = r;
        first = false;
      } else {
        merged.merge(r);
      }
    } catch (const std::exception& e) {
      usage_error(path + ": " + e.what());
    }
  }
  nlohmann::json j = merged.to_json();
  j["merged_from"] = inputs;
  if (out.empty()) {
    fmt::print("{}\n", j.dump(1));
  } else {
    write_file_atomically(out, j.dump(1) + "\n");
    fmt::print(stderr, "{}", summarize(merged));
  }
  return 0;
}

int cmd_probe(int argc, char** argv) {
  int pid = 0;
  bool kernel = false, sysctls = false;
  std::string cgroup;
  po::options_description d(
      "acceptbench probe: one JSON line with what the harness measures on the server's side: the process\n"
      "(sample_proc: CPU of every thread and live or reaped child, context switches, RSS, threads, descriptors),\n"
      "the server's cgroup (made by `acceptbench supervise` on this host), the kernel's TCP counters, and\n"
      "this host's description and sysctls. The harness runs it there through the launcher (ssh, netns), so\n"
      "every side is measured by the same code.\n\nOptions");
  d.add_options()("help,h", "print this help")("pid", po::value(&pid), "the server's PID (> 1)")(
      "cgroup", po::value(&cgroup), "the server's cgroup, acceptbench-PID-N: CPU ns and memory bytes (\"cgroup\")")(
      "kernel", po::bool_switch(&kernel), "the kernel's counters (/proc/net/snmp, netstat, sockstat)")(
      "sysctls", po::bool_switch(&sysctls), "this host: name, kernel, CPUs this process may use, sysctls (\"host\")");
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm)) return 0;
  if (vm.count("pid") && pid <= 1) usage_error("--pid must be > 1");
  if (vm.count("cgroup") && !ServerCgroup::creator_of(cgroup)) usage_error("--cgroup takes a name acceptbench-PID-N");
  if (!vm.count("pid") && !kernel && cgroup.empty() && !sysctls) {
    usage_error("probe needs --pid PID, --cgroup NAME, --kernel and/or --sysctls");
  }
  nlohmann::json out = nlohmann::json::object();
  try {
    if (pid > 1) out["proc"] = to_json(sample_proc(pid));
    if (!cgroup.empty()) {
      const ServerCgroup found = ServerCgroup::find(cgroup);
      out["cgroup"] = to_json(sample_cgroup(found));
      out["cgroup"]["source"] = found.describe();
    }
    if (kernel) out["kernel"] = read_kernel_counters();
    if (sysctls) out["host"] = collect_host();
  } catch (const std::exception& e) {
    fmt::print(stderr, "acceptbench probe: {}\n", e.what());
    return 1;
  }
  fmt::print("{}\n", out.dump());
  return 0;
}

int cmd_supervise(int argc, char** argv) {
  SuperviseOptions o;
  std::string cpus;
  bool no_cgroup = false;
  po::options_description d(
      "acceptbench supervise [options] -- SERVER [ARGS...]: runs SERVER in a cgroup of its own on this host\n"
      "(made like a local server's; default root /sys/fs/cgroup, ACCEPTBENCH_CGROUP_ROOT moves it), in a\n"
      "session of its own; prints \"SUPERVISOR {json}\" (the cgroup's name, for `probe --cgroup`) before\n"
      "anything of the server's; when the server exits, SIGKILLs what is left of its process group and\n"
      "cgroup and removes the cgroup. Exits with the server's status (128 + signal). The harness runs it\n"
      "through ssh on the server's host.\n\nOptions");
  // clang-format off
  d.add_options()
    ("help,h", "print this help")
    ("no-cgroup", po::bool_switch(&no_cgroup), "no cgroup (the harness reads /proc ticks, marked coarse)")
    ("cpus", po::value(&cpus), "pin the server to these CPUs (sched_setaffinity before exec), e.g. 0 or 0-1")
    ("exit-on-stdin-eof", po::bool_switch(&o.exit_on_stdin_eof),
        "when stdin reaches EOF (the harness or its ssh session is gone), end the server: it has the grace period to "
        "exit by itself, then it is killed")
    ("grace-ms", po::value(&o.grace_ms)->default_value(o.grace_ms),
        "after stdin's EOF, SIGTERM, SIGINT or SIGHUP: how long the server has before SIGKILL")
    ("command", po::value(&o.argv)->multitoken(), "the server's command (after --)");
  // clang-format on
  po::positional_options_description positional;
  positional.add("command", -1);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm, &positional)) return 0;
  if (o.argv.empty()) usage_error("supervise needs the server's command after --");
  if (o.grace_ms < 0 || o.grace_ms > 600'000) usage_error("--grace-ms must be in [0, 600000]");
  o.cgroup = !no_cgroup;
  if (!cpus.empty()) o.cpus = parse_cpus(cpus, "cpus");
  try {
    return supervise(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "acceptbench supervise: {}\n", e.what());
    return 1;
  }
}

// Which primitives (cost_model benchmark names) each model pays per connection: the
// "primitives" of each model in models.json.
nlohmann::json primitives_per_model(const std::vector<ModelInfo>& catalog) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& m : catalog)
    if (!m.primitives.empty()) out[m.id] = m.primitives;
  return out;
}

int cmd_export(int argc, char** argv) {
  std::string results, format, out, unit = "ms";
  po::options_description d(
      "acceptbench export RESULTS.json --format csv|hgrm: the results in formats other tools read.\n"
      "  csv:  one row per configuration and repetition (columns: results/SCHEMA.md, \"CSV export\")\n"
      "  hgrm: HdrHistogram percentile distributions (as wrk2 prints them; HdrHistogram's plotter reads them),\n"
      "        one file per configuration and latency kind (connect, ttfb, total, total_uncorrected)\n\nOptions");
  d.add_options()("help,h", "print this help")("results", po::value(&results), "results JSON (acceptbench/2)")(
      "format", po::value(&format), "csv or hgrm (required)")(
      "out", po::value(&out), "csv: the file (default: stdout); hgrm: the folder (required)")(
      "unit", po::value(&unit)->default_value(unit), "hgrm value unit: ms (as wrk2) or us");
  po::positional_options_description pos;
  pos.add("results", 1);
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm, &pos)) return 0;
  if (results.empty()) usage_error("export needs a RESULTS.json");
  if (format != "csv" && format != "hgrm") usage_error("--format must be csv or hgrm");
  if (unit != "ms" && unit != "us") usage_error("--unit must be ms or us");
  if (format == "hgrm" && out.empty()) usage_error("--format hgrm needs --out FOLDER");
  try {
    const nlohmann::json doc = load_results(results);
    if (format == "csv") {
      const std::string csv = results_csv(doc);
      if (out.empty()) {
        fmt::print("{}", csv);
      } else {
        write_file_atomically(out, csv);
      }
      return 0;
    }
    const auto files = results_hgrm(doc, unit == "ms" ? 1e6 : 1e3);
    if (files.empty()) usage_error(results + " has no latency samples: no successful repetition completed a connection");
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) usage_error("cannot create '" + out + "': " + ec.message());
    for (const auto& f : files) write_file_atomically(out + "/" + f.name, f.text);
    fmt::print("{} files in {}\n", files.size(), out);
    return 0;
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  } catch (const std::system_error& e) {  // an output file that cannot be written
    usage_error(e.what());
  }
}

int cmd_attach_cost_model(int argc, char** argv) {
  std::string results, cost, data_dir = find_layout().data_dir;
  po::options_description d(
      "acceptbench attach-cost-model: adds cost_model's Google Benchmark JSON (--benchmark_out) to a results file\n"
      "as its cost_model section, with the primitives each model pays per connection (from models.json).\n\nOptions");
  d.add_options()("help,h", "print this help")("results", po::value(&results), "results JSON to update")(
      "cost-model", po::value(&cost), "Google Benchmark JSON")(
      "models-dir", po::value(&data_dir)->default_value(data_dir), "the folder of models.json");
  po::variables_map vm;
  if (parse_flags(argc, argv, d, vm)) return 0;
  if (results.empty() || cost.empty()) usage_error("attach-cost-model needs --results and --cost-model");
  try {
    nlohmann::json doc = load_results(results);
    const std::vector<ModelInfo> catalog = load_models(data_dir);
    std::ifstream in(cost);
    if (!in) throw std::invalid_argument("cannot read '" + cost + "'");
    nlohmann::json gb;
    try {
      gb = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument("'" + cost + "' is not valid JSON: " + e.what());
    }
    if (!gb.contains("benchmarks") || !gb["benchmarks"].is_array() || gb["benchmarks"].empty()) {
      throw std::invalid_argument("'" + cost + "' has no benchmarks (is it Google Benchmark's JSON?)");
    }
    for (const auto& b : gb["benchmarks"]) {
      if (!b.contains("name") || !b.contains("real_time")) throw std::invalid_argument("a benchmark lacks name or real_time");
    }
    doc["cost_model"] = {{"context", gb.value("context", nlohmann::json::object())},
                         {"benchmarks", gb["benchmarks"]},
                         {"per_model", primitives_per_model(catalog)},
                         {"note", "Round trips (Handoff*, *WakeRoundTrip) cross two threads and back: one hand-off or "
                                  "wake-up is about half. Connect/accept benchmarks close with RST (no TIME_WAIT)."}};
    write_file_atomically(results, doc.dump() + "\n");
    fmt::print("cost model: {} benchmarks attached to {}\n", gb["benchmarks"].size(), results);
    return 0;
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // Thousands of held connections (the c10k experiment) need descriptors on both sides: the
  // soft limit goes up to the hard one here, and the servers inherit it.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    fmt::print(argc < 2 ? stderr : stdout, "{}", kUsage);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  // Each subcommand parses argv[1..]: its own name stands where a program name would.
  if (cmd == "run") return cmd_sweep(argc - 1, argv + 1, true);
  if (cmd == "sweep") return cmd_sweep(argc - 1, argv + 1, false);
  if (cmd == "compare") return cmd_compare(argc - 1, argv + 1);
  if (cmd == "ab") return cmd_ab(argc - 1, argv + 1);
  if (cmd == "merge") return cmd_merge(argc - 1, argv + 1);
  if (cmd == "probe") return cmd_probe(argc - 1, argv + 1);
  if (cmd == "supervise") return cmd_supervise(argc - 1, argv + 1);
  if (cmd == "export") return cmd_export(argc - 1, argv + 1);
  if (cmd == "attach-cost-model") return cmd_attach_cost_model(argc - 1, argv + 1);
  if (cmd == "experiment") return cmd_experiment(argc - 1, argv + 1);
  fmt::print(stderr, "acceptbench: error: unknown command '{}'\n\n{}", cmd, kUsage);
  return 2;
}
