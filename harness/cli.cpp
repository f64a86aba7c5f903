#include "cli.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/ranges.h>

#include "netns.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace acceptbench {

[[noreturn]] void usage_error(const std::string& m) {
  fmt::print(stderr, "acceptbench: error: {}\n", m);
  std::exit(2);
}

bool parse_flags(int argc, char** argv, const po::options_description& d, po::variables_map& vm,
                 const po::positional_options_description* positional) {
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

std::string data_dir_for(const std::string& bin_dir, const Layout& layout) {
  return fs::exists(bin_dir + "/models.json") ? bin_dir : layout.data_dir;
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

void MatrixFlags::add_to(po::options_description& d) {
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

MatrixSpec MatrixFlags::build(const std::string& presets_dir, const std::string& default_preset) const {
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

namespace {

std::string git_short_rev() {
  std::string rev = ACCEPTBENCH_GIT_REVISION;
  return rev.substr(0, 8);
}

}  // namespace

std::string new_run_id() {
  return fmt::format("{:%Y%m%d-%H%M%S}-{}", fmt::gmtime(std::time(nullptr)), git_short_rev());
}

void LaunchFlags::add_to(po::options_description& d) {
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

void LaunchFlags::apply(RunnerOptions& o, std::string& bin_dir) const {
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

nlohmann::json apply_netns(const std::string& flag, const std::string& launcher, const std::string& target_host,
                           bool client_hosts) {
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

}  // namespace acceptbench
