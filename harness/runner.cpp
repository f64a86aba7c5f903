#include "runner.hpp"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "env.hpp"
#include "kernel.hpp"
#include "machine_cpu.hpp"
#include "memory.hpp"
#include "process.hpp"
#include "stats_math.hpp"

namespace acceptbench {

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
  return {{"model", model},
          {"workload", workload},
          {"server_threads", server_threads},
          {"client_threads", client_threads},
          {"mode", rate > 0 ? "open" : "closed"},
          {"connections", rate > 0 ? nlohmann::json(nullptr) : nlohmann::json(connections)},
          {"rate", rate > 0 ? nlohmann::json(rate) : nlohmann::json(nullptr)},
          {"requests_per_conn", requests_per_conn},
          {"work_us", work_us},
          {"sleep_us", sleep_us},
          {"response_bytes", response_bytes},
          {"duration_s", duration_s},
          {"warmup_s", warmup_s},
          {"repetitions", repetitions},
          {"close", to_string(close)},
          {"server_cpus", server_cpus},
          {"client_cpus", client_cpus},
          {"server_args", server_args},
          {"slow_fraction", slow_fraction},
          {"slow_ms", slow_ms},
          {"variant", variant},
          {"hold", hold},
          {"key", key()}};
}

RunConfig RunConfig::from_json(const nlohmann::json& j) {
  try {
    RunConfig c;
    c.model = j.at("model");
    c.workload = j.at("workload");
    c.server_threads = j.at("server_threads");
    c.client_threads = j.at("client_threads");
    if (!j.at("connections").is_null()) c.connections = j.at("connections");
    if (!j.at("rate").is_null()) c.rate = j.at("rate");
    c.requests_per_conn = j.at("requests_per_conn");
    c.work_us = j.at("work_us");
    c.sleep_us = j.at("sleep_us");
    c.response_bytes = j.at("response_bytes");
    c.duration_s = j.at("duration_s");
    c.warmup_s = j.at("warmup_s");
    c.repetitions = j.at("repetitions");
    c.close = close_policy_from_string(j.at("close"));
    c.server_cpus = j.at("server_cpus").get<std::vector<int>>();
    c.client_cpus = j.at("client_cpus").get<std::vector<int>>();
    c.server_args = j.value("server_args", std::vector<std::string>{});
    c.slow_fraction = j.value("slow_fraction", 0.0);
    c.slow_ms = j.value("slow_ms", 0);
    c.variant = j.value("variant", "");
    c.hold = j.value("hold", 0);
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed config: ") + e.what());
  }
}

OpenLoopVerdict judge_open_loop(double rate, double window_s, double in_window, double late, double unfinished,
                                double drain_s, double overload_ratio, double overload_drain_s) {
  OpenLoopVerdict v;
  const double offered = rate * window_s;
  if (!(rate > 0) || !(offered > 0)) return v;  // closed loop: nothing offered to hold
  v.in_window_ratio = in_window / offered;
  v.achieved_ratio = (in_window + late) / offered;
  v.overloaded = v.in_window_ratio < overload_ratio || unfinished > 0 || drain_s > overload_drain_s;
  return v;
}

namespace {

nlohmann::json proc_delta(const ProcSample& a, const ProcSample& b) {
  const double user = (b.user_s - a.user_s) + (b.children_user_s - a.children_user_s);
  const double sys = (b.system_s - a.system_s) + (b.children_system_s - a.children_system_s);
  return {{"cpu_user_s", user},
          {"cpu_system_s", sys},
          {"cpu_children_s", (b.children_user_s - a.children_user_s) + (b.children_system_s - a.children_system_s)},
          {"voluntary_ctxt", b.voluntary_ctxt - a.voluntary_ctxt},
          {"involuntary_ctxt", b.involuntary_ctxt - a.involuntary_ctxt},
          {"peak_rss_kb", b.peak_rss_kb},
          {"threads", b.threads},
          {"open_fds", b.open_fds}};
}

// A private folder under $TMPDIR or /tmp (the ssh control socket), removed with everything
// in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base && std::strlen(base) < 60 ? base : "/tmp") + "/acceptbench-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

double wall_clock_s() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// loadgen on every client host with `lc`, started together at one wall-clock time; the
// results merged (counts add, histograms merge by bucket). `per_host` gets each host's share.
LoadResult run_remote_clients(const LoadConfig& lc, const RunnerOptions& o, nlohmann::json& per_host) {
  const double start_at = wall_clock_s() + o.client_start_delay_s;
  std::vector<std::vector<std::string>> argvs;
  std::vector<std::string> why_unpinned;
  for (const auto& host : o.client_hosts) {
    std::vector<std::string> cmd = {host.remote() ? o.remote_loadgen_binary : o.loadgen_binary,
                                    "--target", fmt::format("{}:{}", lc.host, lc.port),
                                    "--threads", std::to_string(lc.threads),
                                    "--requests-per-conn", std::to_string(lc.requests_per_conn),
                                    "--duration", fmt::format("{}", lc.duration_s),
                                    "--close", to_string(lc.close),
                                    "--timeout-ms", std::to_string(lc.timeout_ms),
                                    "--drain-ms", std::to_string(lc.drain_ms),
                                    "--start-at", fmt::format("{:.6f}", start_at),
                                    "--quiet", "--json", "-"};
    if (lc.rate > 0) {
      cmd.insert(cmd.end(), {"--rate", fmt::format("{}", lc.rate)});
    } else {
      cmd.insert(cmd.end(), {"--connections", std::to_string(lc.connections)});
    }
    if (lc.slow_fraction > 0) {
      cmd.insert(cmd.end(), {"--slow-fraction", fmt::format("{}", lc.slow_fraction), "--slow-ms", std::to_string(lc.slow_ms)});
    }
    // Pinned to the configuration's client CPUs on every host that has them all.
    const std::size_t i = argvs.size();
    const std::vector<int> allowed = i < o.client_host_cpus.size() ? o.client_host_cpus[i] : std::vector<int>{};
    std::string why;
    if (lc.cpus.empty()) {
      why = "the configuration gives no client CPUs";
    } else if (allowed.empty()) {
      why = "the host's CPUs are unknown (no probe of it succeeded: see env.hosts)";
    } else if (const auto missing = std::find_if(lc.cpus.begin(), lc.cpus.end(), [&](int cpu) {
                 return std::find(allowed.begin(), allowed.end(), cpu) == allowed.end();
               });
               missing != lc.cpus.end()) {
      why = fmt::format("CPU {} is not among the host's CPUs ({})", *missing, fmt::join(allowed, ","));
    } else {
      cmd.insert(cmd.end(), {"--cpus", fmt::format("{}", fmt::join(lc.cpus, ","))});
    }
    why_unpinned.push_back(why);
    argvs.push_back(host.wrap(cmd));
  }
  const int timeout_ms = static_cast<int>((o.client_start_delay_s + lc.duration_s) * 1000) + 30'000;
  const std::vector<std::string> outs = run_capture_all(argvs, timeout_ms);
  LoadResult merged;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    LoadResult r;
    try {
      r = LoadResult::from_json(nlohmann::json::parse(outs[i]));
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("client host {}: unreadable loadgen result: {}", o.client_hosts[i].describe(), e.what()));
    }
    // What loadgen applied there, thread by thread.
    std::set<int> applied;
    std::size_t unpinned = 0;
    for (const auto& t : r.cpu) {
      if (t.pinned_cpu >= 0) {
        applied.insert(t.pinned_cpu);
      } else {
        ++unpinned;
      }
    }
    std::string why = why_unpinned[i];
    if (why.empty() && unpinned > 0) why = fmt::format("loadgen could not pin {} of its {} threads there", unpinned, r.cpu.size());
    per_host.push_back({{"host", o.client_hosts[i].describe()},
                        {"connections", r.connections},
                        {"unfinished", r.unfinished},
                        {"window_s", r.window_s},
                        {"conn_per_s", r.conn_per_s()},
                        {"max_thread_utilization", r.max_thread_utilization()},
                        {"cpus_requested", lc.cpus},
                        {"cpus_applied", std::vector<int>(applied.begin(), applied.end())},
                        {"why_not_pinned", why.empty() ? nlohmann::json(nullptr) : nlohmann::json(why)}});
    if (i == 0) {
      merged = std::move(r);
    } else {
      merged.merge(r);
    }
  }
  return merged;
}

}  // namespace

nlohmann::json collect_run_hosts(RunnerOptions& o) {
  nlohmann::json hosts = nlohmann::json::array();
  auto add = [&](const Launcher& where, const char* role) -> const nlohmann::json& {
    for (auto& h : hosts) {
      if (h["launcher"] == where.describe()) {
        h["roles"].push_back(role);
        return h;
      }
    }
    nlohmann::json h = collect_host_via(where, where.remote() ? o.remote_acceptbench_binary : o.acceptbench_binary);
    h["roles"] = nlohmann::json::array({role});
    hosts.push_back(std::move(h));
    return hosts.back();
  };
  add(o.launcher, "server");
  o.client_host_cpus.clear();
  if (o.client_hosts.empty()) add(Launcher{}, "client");  // the in-process client, here
  for (const auto& c : o.client_hosts) o.client_host_cpus.push_back(cpus_allowed(add(c, "client")));
  return hosts;
}

namespace {

nlohmann::json failed(nlohmann::json rep, const std::string& reason) {
  rep["status"] = "failed";
  rep["reason"] = reason;
  return rep;
}

// The difference of two server snapshots (SNAPSHOT lines): per-acceptor and total
// counters, and the context switches of every thread and process the server had in between
// (getrusage self: live and exited threads; children: reaped ones; live children: /proc).
nlohmann::json snapshot_delta(const nlohmann::json& a, const nlohmann::json& b) {
  auto num = [](const nlohmann::json& j, const char* k) { return j.contains(k) ? j.at(k).get<double>() : 0.0; };
  std::vector<double> per_acceptor;
  const auto& aa = a.at("acceptors");
  const auto& ba = b.at("acceptors");
  for (std::size_t i = 0; i < ba.size(); ++i) {
    per_acceptor.push_back(num(ba[i], "accepted") - (i < aa.size() ? num(aa[i], "accepted") : 0.0));
  }
  nlohmann::json totals = nlohmann::json::object();
  for (const char* k : {"accepted", "accept_calls", "accept_eagain", "listen_wakeups", "wasted_wakeups", "epoll_wakeups",
                        "mutex_acquired", "mutex_contended", "requests"}) {
    totals[k] = num(b.at("totals"), k) - num(a.at("totals"), k);
  }
  auto csw = [&](const nlohmann::json& s, const char* k) {
    return num(s.at("rusage_self"), k) + num(s.at("rusage_children"), k) + num(s.at("live_children"), k);
  };
  auto cpu_us = [&](const nlohmann::json& s) {
    return num(s.at("rusage_self"), "utime_us") + num(s.at("rusage_self"), "stime_us") +
           num(s.at("rusage_children"), "utime_us") + num(s.at("rusage_children"), "stime_us");
  };
  return {{"per_acceptor_accepted", per_acceptor},
          {"totals", totals},
          {"voluntary_ctxt", csw(b, "nvcsw") - csw(a, "nvcsw")},
          {"involuntary_ctxt", csw(b, "nivcsw") - csw(a, "nivcsw")},
          {"rusage_cpu_us", cpu_us(b) - cpu_us(a)},
          {"live_children_end", num(b.at("live_children"), "processes")},
          {"interval_s", (num(b, "mono_ns") - num(a, "mono_ns")) / 1e9}};
}

}  // namespace

nlohmann::json run_repetition(const RunConfig& c, const RunnerOptions& o) {
  nlohmann::json rep = nlohmann::json::object();
  SpawnOptions spawn;
  spawn.argv = {o.server_binary, "--port", "0", "--response-bytes", std::to_string(c.response_bytes)};
  // Only when set: a variant's server_args may give --sleep-us itself (with --sleep-fraction).
  if (c.work_us > 0) spawn.argv.insert(spawn.argv.end(), {"--work-us", std::to_string(c.work_us)});
  if (c.sleep_us > 0) spawn.argv.insert(spawn.argv.end(), {"--sleep-us", std::to_string(c.sleep_us)});
  if (o.multi_acceptor) {
    spawn.argv.insert(spawn.argv.end(), {"--threads", std::to_string(c.server_threads)});
  } else if (c.server_threads != 1) {
    return failed(rep, fmt::format("{} has one acceptor; server_threads must be 1", c.model));
  }
  if (o.target_host != "127.0.0.1") spawn.argv.insert(spawn.argv.end(), {"--bind", o.target_host});
  spawn.argv.insert(spawn.argv.end(), c.server_args.begin(), c.server_args.end());
  // The server ends when the pipe to its stdin closes: when this harness dies, however it
  // dies, and behind ssh when the session drops.
  spawn.argv.emplace_back("--exit-on-stdin-eof");
  spawn.argv.insert(spawn.argv.begin(), o.server_wrapper.begin(), o.server_wrapper.end());
  spawn.cpus = c.server_cpus;
  spawn.launcher = o.launcher;
  spawn.supervisor = o.probe_binary;  // behind ssh: acceptbench there supervises the server
  spawn.ready_timeout = std::chrono::milliseconds(o.ready_timeout_ms);
  // ssh: the server's session is the master connection the probes share, so that reading
  // the counters opens no TCP connection on the server host (PassiveOpens counts clients only).
  std::optional<TempDir> control_dir;
  if (spawn.launcher.remote()) {
    control_dir.emplace();
    spawn.launcher.control_path = control_dir->path() + "/m";
  }
  const Launcher& at_server = spawn.launcher;
  spawn.cgroup = o.cgroup;

  std::optional<ServerProcess> server;
  try {
    server.emplace(ServerProcess::start(spawn));
  } catch (const std::exception& e) {
    return failed(rep, std::string("server did not start: ") + e.what());
  }

  LoadConfig load;
  load.host = o.target_host;
  load.port = server->port();
  load.threads = c.client_threads;
  load.connections = c.connections;
  load.rate = c.rate;
  load.requests_per_conn = c.requests_per_conn;
  load.close = c.close;
  load.cpus = c.client_cpus;
  load.timeout_ms = 3000;
  load.slow_fraction = c.slow_fraction;
  load.slow_ms = c.slow_ms;
  load.late_threshold_us = o.late_threshold_us;
  // The load: in-process here, or loadgen on every client host at once.
  nlohmann::json per_host = nlohmann::json::array();
  auto run_clients = [&](const LoadConfig& lc) -> LoadResult {
    if (o.client_hosts.empty()) return run_load(lc);
    return run_remote_clients(lc, o, per_host);
  };
  std::optional<HeldConnections> held;
  try {
    if (c.hold > 0) {
      // The background of idle keep-alive connections, opened before the warm-up and held
      // until the server's figures are read. Memory per held connection: the server tree's
      // Pss (and RSS) after minus before, over the connections held.
      auto memory = [&] { return at_server.remote() ? TreeMemory{} : sample_tree_memory(server->server_pid()); };
      const TreeMemory before = memory();
      held.emplace(HeldConnections::open(o.target_host, server->port(), c.hold));
      const TreeMemory after = memory();
      const HoldResult& h = held->result();
      auto per_conn = [&](std::uint64_t a, std::uint64_t b) {
        return h.held > 0 && !at_server.remote() ? nlohmann::json((static_cast<double>(b) - static_cast<double>(a)) * 1024.0 / h.held)
                                       : nlohmann::json(nullptr);
      };
      rep["hold"] = h.to_json();
      rep["hold"]["server_pss_before_kb"] = before.pss_kb;
      rep["hold"]["server_pss_after_kb"] = after.pss_kb;
      rep["hold"]["server_bytes_per_conn"] = per_conn(before.pss_kb, after.pss_kb);
      rep["hold"]["server_rss_bytes_per_conn"] = per_conn(before.rss_kb, after.rss_kb);
      rep["hold"]["server_processes"] = after.processes;
      rep["hold"]["server_threads"] = after.threads;
      if (!h.all_held()) {
        held->close();
        const StopResult s = server->stop(std::chrono::milliseconds(o.stop_timeout_ms));
        rep["status"] = "cannot_hold";
        rep["reason"] = h.describe() + (s.exit_code == 0 ? "" : " (then the server stopped: " + s.describe() + ")");
        return rep;
      }
    }
    if (c.warmup_s > 0) {
      LoadConfig warm = load;
      warm.duration_s = c.warmup_s;
      run_clients(warm);
      per_host = nlohmann::json::array();
    }
    if (!server->alive()) {
      const StopResult s = server->stop(std::chrono::milliseconds(0));
      return failed(rep, "server died during the warm-up (" + s.describe() + "): " + s.stderr_text);
    }
    auto sample = [&] { return sample_proc_via(at_server, o.probe_binary, server->server_pid()); };
    // The server's cgroup: here (local, netns) or on its host (ssh, made by the supervisor
    // there and read by `probe --cgroup`): one reader either way.
    const ServerCgroup* cgroup = server->cgroup();
    const SupervisorInfo* remote = server->supervisor();
    const bool remote_cgroup = !cgroup && remote && !remote->cgroup.empty();
    auto read_cgroup = [&]() -> CgroupSample {
      if (cgroup) return sample_cgroup(*cgroup);
      if (remote_cgroup) return sample_cgroup_via(at_server, o.probe_binary, remote->cgroup);
      return {};
    };
    // The window's edges, in this order so that each pair brackets the same interval and
    // the snapshots' own cost stays outside the CPU readings.
    const auto snap_before = server->snapshot(std::chrono::milliseconds(o.snapshot_timeout_ms));
    const ProcSample proc_before = sample();
    const CgroupSample cgroup_before = read_cgroup();
    const auto memory_before = cgroup_before.memory_bytes;
    const auto cpu_before = cgroup_before.cpu_ns;
    const MachineSample machine_before = sample_machine();
    // Kernel counters are machine-wide (on loopback): read them tightest around the load.
    const KernelCounters kernel_before = read_kernel_counters_via(at_server, o.probe_binary);
    load.duration_s = c.duration_s;
    // Open loop drains (bounded) what the window offered; a closed loop's C connections in
    // flight at the end are by construction, so it does not wait for them (and keeps the
    // machine-wide kernel counters' interval as short as the window).
    load.drain_ms = c.rate > 0 ? o.drain_ms : 0;
    const LoadResult r = run_clients(load);
    const KernelCounters kernel_after = read_kernel_counters_via(at_server, o.probe_binary);
    const MachineSample machine_after = sample_machine();
    const CgroupSample cgroup_after = read_cgroup();
    const auto cpu_after = cgroup_after.cpu_ns;
    const auto memory_after = cgroup_after.memory_bytes;
    if (!server->alive()) {
      const StopResult s = server->stop(std::chrono::milliseconds(0));
      rep["client"] = r.to_json();
      if (!o.client_hosts.empty()) rep["client_hosts"] = per_host;
      return failed(rep, "server died during the measurement (" + s.describe() + "): " + s.stderr_text);
    }
    const ProcSample proc_after = sample();
    const auto snap_after = server->snapshot(std::chrono::milliseconds(o.snapshot_timeout_ms));
    if (held) {
      const int still = held->check();
      rep["hold"]["still_open_at_end"] = still;
      held->close();
      if (still < held->result().held) {
        server->stop(std::chrono::milliseconds(o.stop_timeout_ms));
        rep["status"] = "cannot_hold";
        rep["reason"] = fmt::format("the server closed {} of the {} held idle connections during the run",
                                    held->result().held - still, held->result().held);
        return rep;
      }
    }
    rep["client"] = r.to_json();
    if (!o.client_hosts.empty()) rep["client_hosts"] = per_host;
    rep["server_proc"] = proc_delta(proc_before, proc_after);
    rep["kernel"] = kernel_deltas(kernel_before, kernel_after);
    const bool exact_cpu = cpu_before && cpu_after;
    const double cpu_s = exact_cpu ? static_cast<double>(*cpu_after - *cpu_before) / 1e9
                                   : rep["server_proc"]["cpu_user_s"].get<double>() + rep["server_proc"]["cpu_system_s"].get<double>();
    const std::string cpu_source = cgroup ? cgroup->cpu_source() : remote_cgroup ? remote->cpu_source : "";
    const std::int64_t cpu_resolution = cgroup ? cgroup->cpu_resolution_ns() : remote_cgroup ? remote->resolution_ns : 0;
    const std::string memory_source = cgroup ? cgroup->memory_source() : remote_cgroup ? remote->memory_source : "";
    std::string why_coarse = server->cgroup_why();
    if (!exact_cpu && why_coarse.empty()) why_coarse = "the server's cgroup could not be read";
    rep["server_cpu"] = {{"cpu_s", cpu_s},
                         {"source", exact_cpu ? cpu_source : "proc-ticks"},
                         {"resolution_ns", exact_cpu ? cpu_resolution : 1'000'000'000 / ::sysconf(_SC_CLK_TCK)},
                         {"coarse", !exact_cpu},
                         {"why_coarse", exact_cpu ? nlohmann::json(nullptr) : nlohmann::json(why_coarse)},
                         {"host", at_server.describe()}};
    if (cgroup) rep["server_cpu"]["cgroup"] = cgroup->describe();
    if (remote_cgroup) rep["server_cpu"]["cgroup"] = remote->describe();
    rep["server_memory"] = {
        {"source", memory_before && memory_after ? nlohmann::json(memory_source) : nlohmann::json(nullptr)},
        {"bytes_start", memory_before ? nlohmann::json(*memory_before) : nlohmann::json(nullptr)},
        {"bytes_end", memory_after ? nlohmann::json(*memory_after) : nlohmann::json(nullptr)}};
    rep["machine"] = machine_delta(machine_before, machine_after, c.server_cpus, c.client_cpus);
    // This machine's CPUs: the server's and the client's only when neither is on another host.
    const bool one_host = !at_server.remote() && std::none_of(o.client_hosts.begin(), o.client_hosts.end(),
                                                              [](const Launcher& h) { return h.remote(); });
    rep["machine"]["scope"] = one_host ? "server and client" : "the harness's host only";
    const bool snapshots = snap_before && snap_after;
    if (snapshots) rep["snapshot"] = snapshot_delta(*snap_before, *snap_after);

    const StopResult stop = server->stop(std::chrono::milliseconds(o.stop_timeout_ms));
    if (stop.killed) {
      return failed(rep, fmt::format("server hung: still running {} ms after SIGTERM; SIGKILLed", o.stop_timeout_ms));
    }
    if (stop.exit_code != 0) return failed(rep, "server stopped badly (" + stop.describe() + "): " + stop.stderr_text);
    if (!stop.stats) return failed(rep, "server printed no JSON stats at exit");
    rep["server"] = *stop.stats;
    if (!stop.stats->value("clean_shutdown", false)) {
      return failed(rep, "server did not shut down cleanly (clean_shutdown: false: its model outlived the grace period)");
    }

    // Derived per-repetition figures.
    const double conns = static_cast<double>(r.connections);
    const auto& errs = r.errors;
    auto err = [&](ErrorKind k) { return static_cast<double>(errs[static_cast<std::size_t>(k)]); };
    // Connections that reached the server in the window: completed (in it or in the drain),
    // abandoned at the end, or failed after the handshake.
    const double reached = conns + static_cast<double>(r.late_completions) + static_cast<double>(r.unfinished) +
                           err(ErrorKind::kReset) + err(ErrorKind::kTimeout) + err(ErrorKind::kShortResponse) +
                           err(ErrorKind::kBadResponse);
    const double passive = rep["kernel"].value("Tcp.PassiveOpens", 0.0);
    // The denominator of every per-connection cost: what the server accepted between the two
    // snapshots (so the work on connections still open at the window's end is paid for by
    // them), or, without snapshots, what the client completed.
    const double accepted = snapshots ? rep["snapshot"]["totals"]["accepted"].get<double>() : conns;
    const double ctx = snapshots ? rep["snapshot"]["voluntary_ctxt"].get<double>() + rep["snapshot"]["involuntary_ctxt"].get<double>()
                                 : rep["server_proc"]["voluntary_ctxt"].get<double>() + rep["server_proc"]["involuntary_ctxt"].get<double>();
    std::vector<double> per_acceptor;
    if (snapshots) {
      per_acceptor = rep["snapshot"]["per_acceptor_accepted"].get<std::vector<double>>();
    } else {
      for (const auto& a : rep["server"]["acceptors"]) per_acceptor.push_back(a["accepted"].get<double>());
    }
    const auto& m = rep["machine"];
    const double client_cpu_s = rep["client"]["client_cpu"]["total_s"].get<double>();
    const double steal = (m["server_cpus"]["steal_fraction"].get<double>() + m["client_cpus"]["steal_fraction"].get<double>()) / 2;
    const OpenLoopVerdict verdict =
        judge_open_loop(c.rate, r.window_s, conns, static_cast<double>(r.late_completions),
                        static_cast<double>(r.unfinished), r.drain_s, o.overload_ratio, o.overload_drain_s);
    auto per_conn = [&](double us) { return accepted > 0 ? us / accepted : 0.0; };
    rep["derived"] = {{"conn_per_s", r.conn_per_s()},
                      {"req_per_s", r.window_s > 0 ? static_cast<double>(r.requests) / r.window_s : 0.0},
                      {"accepted_in_window", accepted},
                      {"server_cpu_us_per_conn", per_conn(cpu_s * 1e6)},
                      {"server_cpu_coarse", !exact_cpu},
                      {"machine_cpu_us_per_conn", per_conn(m["busy_us"].get<double>())},
                      {"client_cpu_us_per_conn", per_conn(client_cpu_s * 1e6)},
                      {"server_cpu_utilization", r.window_s > 0 ? cpu_s / r.window_s : 0.0},
                      {"ctx_switches_per_conn", per_conn(ctx)},
                      {"jain_index", stats::jain_index(per_acceptor)},
                      {"per_acceptor_accepted", per_acceptor},
                      {"counters_source", snapshots ? "snapshot" : "exit-stats"},
                      {"p99_total_us", static_cast<double>(r.total.percentile(99)) / 1000.0},
                      {"client_max_thread_utilization", r.max_thread_utilization()},
                      {"client_late", r.client_late()},
                      {"start_lateness_p99_us", static_cast<double>(r.start_lateness.percentile(99)) / 1000.0},
                      {"client_cpus_busy_fraction", m["client_cpus"]["busy_fraction"]},
                      {"client_saturated", m["client_cpus"]["busy_fraction"].get<double>() > o.saturation_threshold},
                      {"steal_fraction", steal},
                      {"disturbed", steal > o.steal_threshold},
                      {"achieved_ratio", verdict.achieved_ratio},
                      {"in_window_ratio", verdict.in_window_ratio},
                      {"late_completions", r.late_completions},
                      {"drain_s", r.drain_s},
                      {"unfinished", r.unfinished},
                      {"overloaded", verdict.overloaded},
                      {"crosscheck",
                       {{"client_connections_reached", reached},
                        {"passive_opens", passive},
                        {"ratio", reached > 0 ? passive / reached : 0.0}}}};
    rep["status"] = "ok";
    return rep;
  } catch (const std::exception& e) {
    server->kill_now();
    return failed(rep, std::string("repetition aborted: ") + e.what());
  }
}

namespace {

struct Series {
  std::vector<double> values;
  nlohmann::json to_json() const {
    const auto ci = stats::median_interval(values);
    return {{"median", stats::median(values)}, {"ci_low", ci.low}, {"ci_high", ci.high},
            {"ci_coverage", ci.coverage},      {"cv", stats::cv(values)}, {"values", values}};
  }
};

nlohmann::json latency_summary(const Histogram& h) {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return {{"count", h.count()},          {"p50", us(h.percentile(50))},     {"p90", us(h.percentile(90))},
          {"p99", us(h.percentile(99))}, {"p999", us(h.percentile(99.9))}, {"p9999", us(h.percentile(99.99))},
          {"max", us(h.max())},          {"mean", h.mean() / 1000.0}};
}

}  // namespace

nlohmann::json summarize_config(const RunConfig& /*config*/, const nlohmann::json& reps) {
  Series conn_rate, req_rate, cpu_per_conn, ctx_per_conn, p99, client_util, server_util, machine_cpu, client_cpu, jain,
      client_busy;
  int overloaded = 0, disturbed = 0, coarse = 0, from_exit_stats = 0;
  std::uint64_t late_completions = 0;
  std::set<std::string> cpu_sources, machine_sources;
  Histogram connect, ttfb, total, total_uncorrected, lateness;
  int late_reps = 0;
  std::vector<double> per_acceptor;
  double wasted = 0, accepted = 0, eagain = 0, listen_wakeups = 0, epoll_wakeups = 0, mutex_acq = 0, mutex_cont = 0;
  nlohmann::json kernel = nlohmann::json::object();
  nlohmann::json client_errors = nlohmann::json::object();
  nlohmann::json server_errors = nlohmann::json::object();
  bool saturated = false;
  double worst_crosscheck = 0;
  std::vector<std::string> failures;
  std::string cannot_hold;
  Series server_bytes, client_bytes;
  double held_min = -1, hold_threads = 0, hold_processes = 0;
  int ok = 0;
  for (const auto& rep : reps) {
    if (rep.value("status", "") == "cannot_hold" && cannot_hold.empty()) cannot_hold = rep.value("reason", "");
    if (rep.value("status", "") != "ok") {
      failures.push_back(rep.value("reason", "unknown"));
      continue;
    }
    ++ok;
    if (rep.contains("hold")) {
      const auto& h = rep["hold"];
      if (!h["server_bytes_per_conn"].is_null()) server_bytes.values.push_back(h["server_bytes_per_conn"]);
      client_bytes.values.push_back(h["client_bytes_per_conn"]);
      const double n = h["held"];
      held_min = held_min < 0 ? n : std::min(held_min, n);
      hold_threads = std::max(hold_threads, h["server_threads"].get<double>());
      hold_processes = std::max(hold_processes, h["server_processes"].get<double>());
    }
    const auto& d = rep["derived"];
    conn_rate.values.push_back(d["conn_per_s"]);
    req_rate.values.push_back(d["req_per_s"]);
    cpu_per_conn.values.push_back(d["server_cpu_us_per_conn"]);
    ctx_per_conn.values.push_back(d["ctx_switches_per_conn"]);
    p99.values.push_back(d["p99_total_us"]);
    client_util.values.push_back(d["client_max_thread_utilization"]);
    server_util.values.push_back(d["server_cpu_utilization"]);
    saturated = saturated || d["client_saturated"].get<bool>();
    machine_cpu.values.push_back(d.value("machine_cpu_us_per_conn", 0.0));
    client_cpu.values.push_back(d.value("client_cpu_us_per_conn", 0.0));
    client_busy.values.push_back(d.value("client_cpus_busy_fraction", 0.0));
    overloaded += d.value("overloaded", false);
    disturbed += d.value("disturbed", false);
    coarse += d.value("server_cpu_coarse", true);
    late_completions += d.value("late_completions", std::uint64_t{0});
    if (rep.contains("server_cpu")) cpu_sources.insert(rep["server_cpu"]["source"].get<std::string>());
    if (rep.contains("machine")) machine_sources.insert(rep["machine"]["source"].get<std::string>());
    // Fairness per repetition, from the window's snapshot difference: an imbalance that flips
    // between repetitions must not cancel out in a sum.
    std::vector<double> reps_acceptors;
    if (d.contains("per_acceptor_accepted")) {
      reps_acceptors = d["per_acceptor_accepted"].get<std::vector<double>>();
      from_exit_stats += d.value("counters_source", "") != "snapshot";
    } else {
      for (const auto& a : rep["server"]["acceptors"]) reps_acceptors.push_back(a["accepted"].get<double>());
      ++from_exit_stats;
    }
    jain.values.push_back(stats::jain_index(reps_acceptors));
    const double ratio = d["crosscheck"]["ratio"];
    worst_crosscheck = std::max(worst_crosscheck, std::abs(1.0 - ratio));
    const auto& l = rep["client"]["latency_ns"];
    connect.merge(Histogram::from_json(l["connect"]));
    ttfb.merge(Histogram::from_json(l["ttfb"]));
    total.merge(Histogram::from_json(l["total"]));
    total_uncorrected.merge(Histogram::from_json(l["total_uncorrected"]));
    if (l.contains("start_lateness")) lateness.merge(Histogram::from_json(l["start_lateness"]));
    late_reps += d.value("client_late", false) ? 1 : 0;
    if (per_acceptor.size() < reps_acceptors.size()) per_acceptor.resize(reps_acceptors.size(), 0);
    for (std::size_t i = 0; i < reps_acceptors.size(); ++i) per_acceptor[i] += reps_acceptors[i];
    const auto& t = rep.contains("snapshot") ? rep["snapshot"]["totals"] : rep["server"]["totals"];
    wasted += t["wasted_wakeups"].get<double>();
    accepted += t["accepted"].get<double>();
    eagain += t["accept_eagain"].get<double>();
    listen_wakeups += t["listen_wakeups"].get<double>();
    epoll_wakeups += t["epoll_wakeups"].get<double>();
    mutex_acq += t["mutex_acquired"].get<double>();
    mutex_cont += t["mutex_contended"].get<double>();
    for (const auto& [k, v] : rep["kernel"].items()) kernel[k] = kernel.value(k, 0.0) + v.get<double>();
    for (const auto& [k, v] : rep["client"]["errors"].items()) client_errors[k] = client_errors.value(k, 0.0) + v.get<double>();
    for (const auto& [k, v] : rep["server"]["totals"]["errors"].items()) server_errors[k] = server_errors.value(k, 0.0) + v.get<double>();
  }
  nlohmann::json out;
  if (!cannot_hold.empty()) {
    // A model that cannot hold the background is a finding, not a failure: no figures.
    out["status"] = "cannot_hold";
    out["reason"] = cannot_hold;
    out["summary"] = nullptr;
    return out;
  }
  if (ok == 0) {
    out["status"] = "failed";
    out["reason"] = failures.empty() ? "no repetitions" : failures.front();
    out["summary"] = nullptr;
    return out;
  }
  double max_acc = 0, min_acc = per_acceptor.empty() ? 0 : per_acceptor[0];
  for (double a : per_acceptor) {
    max_acc = std::max(max_acc, a);
    min_acc = std::min(min_acc, a);
  }
  nlohmann::json summary = {
      {"repetitions_ok", ok},
      {"conn_per_s", conn_rate.to_json()},
      {"req_per_s", req_rate.to_json()},
      {"latency_us",
       {{"connect", latency_summary(connect)},
        {"ttfb", latency_summary(ttfb)},
        {"total", latency_summary(total)},
        {"total_uncorrected", latency_summary(total_uncorrected)}}},
      {"p99_total_us", p99.to_json()},
      {"fairness",
       {{"per_acceptor_accepted", per_acceptor},
        {"jain_index", stats::median(jain.values)},
        {"jain_worst", *std::min_element(jain.values.begin(), jain.values.end())},
        {"jain_per_repetition", jain.values},
        {"source", from_exit_stats == 0 ? "snapshot" : "exit-stats"},
        {"max_min_ratio", min_acc > 0 ? nlohmann::json(max_acc / min_acc) : nlohmann::json(nullptr)},
        {"cv", stats::cv(per_acceptor)}}},
      {"accept",
       {{"accepted", accepted},
        {"wasted_wakeups_per_accept", accepted > 0 ? wasted / accepted : 0.0},
        {"eagain_per_accept", accepted > 0 ? eagain / accepted : 0.0},
        {"listen_wakeups_per_accept", accepted > 0 ? listen_wakeups / accepted : 0.0},
        {"epoll_wakeups_per_accept", accepted > 0 ? epoll_wakeups / accepted : 0.0},
        {"mutex_acquired", mutex_acq},
        {"mutex_contended", mutex_cont}}},
      {"server_cpu_us_per_conn", cpu_per_conn.to_json()},
      {"server_cpu_coarse", coarse > 0},
      {"server_cpu_source", std::vector<std::string>(cpu_sources.begin(), cpu_sources.end())},
      {"machine_cpu_us_per_conn", machine_cpu.to_json()},
      {"machine_cpu_source", std::vector<std::string>(machine_sources.begin(), machine_sources.end())},
      {"client_cpu_us_per_conn", client_cpu.to_json()},
      {"client_cpus_busy_fraction", client_busy.to_json()},
      {"overloaded_repetitions", overloaded},
      {"disturbed_repetitions", disturbed},
      {"late_completions", late_completions},
      {"server_cpu_utilization", server_util.to_json()},
      {"ctx_switches_per_conn", ctx_per_conn.to_json()},
      {"kernel_deltas_sum", kernel},
      {"errors", {{"client", client_errors}, {"server", server_errors}}},
      {"client_max_thread_utilization", client_util.to_json()},
      {"client_saturated", saturated},
      {"start_lateness_us", {{"p50", static_cast<double>(lateness.percentile(50)) / 1000.0},
                             {"p99", static_cast<double>(lateness.percentile(99)) / 1000.0},
                             {"max", static_cast<double>(lateness.max()) / 1000.0}}},
      {"client_late", late_reps > 0},
      {"client_late_repetitions", late_reps},
      {"crosscheck_max_deviation", worst_crosscheck},
      {"crosscheck_within_1pct", worst_crosscheck <= 0.01}};
  if (held_min >= 0) {
    summary["hold"] = {{"held_min", held_min},
                       {"server_bytes_per_conn", server_bytes.values.empty() ? nlohmann::json(nullptr) : server_bytes.to_json()},
                       {"client_bytes_per_conn", client_bytes.to_json()},
                       {"server_threads_max", hold_threads},
                       {"server_processes_max", hold_processes}};
  }
  out["summary"] = summary;
  if (failures.empty() && 2 * overloaded >= ok) {
    // It could not hold the offered rate in most repetitions: its numbers are kept but it
    // is never ranked with the others.
    out["status"] = "overloaded";
    out["reason"] = fmt::format("{} of {} repetitions achieved < the overload ratio of the offered rate or left "
                                "connections unfinished after the drain", overloaded, ok);
  } else if (failures.empty()) {
    out["status"] = "ok";
  } else {
    out["status"] = "failed";
    out["reason"] = fmt::format("{} of {} repetitions failed; first: {}", failures.size(), reps.size(), failures.front());
  }
  return out;
}

}  // namespace acceptbench
