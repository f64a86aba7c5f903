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

OpenLoopVerdict judge_open_loop(double rate, double window_s, double in_window, double late, double unfinished,
                                double drain_s, double overload_ratio, double overload_drain_s, double overload_backlog_s) {
  OpenLoopVerdict v;
  const double offered = rate * window_s;
  if (!(rate > 0) || !(offered > 0)) return v;  // closed loop: nothing offered to hold
  v.in_window_ratio = in_window / offered;
  v.achieved_ratio = (in_window + late) / offered;
  v.backlog_s = std::max(0.0, offered - in_window) / rate;
  v.overloaded = (v.in_window_ratio < overload_ratio && v.backlog_s > overload_backlog_s) || unfinished > 0 ||
                 drain_s > overload_drain_s;
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
    // The client's on-time spin (empty polls just before a due start) is waiting, not work:
    // it comes out of the client's CPU, the client CPUs' busy fraction and, when the client
    // runs on this machine, the machine's busy time.
    double spin_s = 0;
    for (const auto& t : r.cpu) spin_s += t.spin_s;
    const double client_cpu_s = std::max(0.0, rep["client"]["client_cpu"]["total_s"].get<double>() - spin_s);
    const double local_spin_us = o.client_hosts.empty() ? spin_s * 1e6 : 0.0;
    const double machine_busy_us = std::max(0.0, m["busy_us"].get<double>() - local_spin_us);
    const double client_cpus_wall_us = m["wall_us"].get<double>() * static_cast<double>(std::max<std::size_t>(1, m["client_cpus"]["cpus"].size()));
    const double client_busy = std::max(0.0, m["client_cpus"]["busy_fraction"].get<double>() -
                                                 (client_cpus_wall_us > 0 ? local_spin_us / client_cpus_wall_us : 0.0));
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
                      {"machine_cpu_us_per_conn", per_conn(machine_busy_us)},
                      {"client_spin_s", spin_s},
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
                      {"client_cpus_busy_fraction", client_busy},
                      {"client_saturated", client_busy > o.saturation_threshold},
                      {"steal_fraction", steal},
                      {"disturbed", steal > o.steal_threshold},
                      {"achieved_ratio", verdict.achieved_ratio},
                      {"in_window_ratio", verdict.in_window_ratio},
                      {"backlog_s", verdict.backlog_s},
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

}  // namespace acceptbench
