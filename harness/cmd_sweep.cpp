// acceptbench run, sweep and experiment: a matrix of configurations run with their
// repetitions interleaved into a results file, then the summary table.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "cli.hpp"
#include "commands.hpp"
#include "console.hpp"
#include "env.hpp"
#include "layout.hpp"
#include "matrix.hpp"
#include "results.hpp"
#include "runner.hpp"
#include "summary.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace acceptbench {

namespace {

struct SweepRun {
  std::vector<RunConfig> configs;
  std::vector<ModelInfo> catalog;
  std::string bin_dir;         // where the server binaries are (on the server's host)
  RunnerOptions base_options;  // launcher and target
};

// Runs the configurations into `file` with their repetitions interleaved: round 1 runs
// repetition 1 of every configuration, round 2 repetition 2, and so on, each round in an
// order shuffled by `seed` (and the round), so drift of the machine spreads over every
// configuration instead of landing on one. Every repetition is saved as it finishes, with
// the execution record (seed, the sequence run); a configuration's summary is computed when
// its last repetition is in. Resuming keeps the repetitions already saved (a configuration
// that completed but failed starts over). Progress on stderr.
void run_matrix(const SweepRun& sweep, ResultsFile& file, bool resume, std::uint64_t seed) {
  const ProgressLine progress(120);
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t n = sweep.configs.size();
  std::vector<nlohmann::json> reps(n, nlohmann::json::array());
  int rounds = 0, reps_total = 0, reps_done = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const RunConfig& c = sweep.configs[i];
    rounds = std::max(rounds, c.repetitions);
    if (const std::optional<ConfigResult> have = resume ? file.find(c.key()) : std::nullopt) {
      const nlohmann::json& saved = have->repetitions;
      const bool complete = static_cast<int>(saved.size()) >= c.repetitions;
      // overloaded is a measured outcome (kept, not ranked), not a failure to redo; one that could
      // not hold its background is finished too: it would not the next time.
      const ConfigStatus st = have->status;
      if ((complete && (st == ConfigStatus::kOk || st == ConfigStatus::kOverloaded)) || st == ConfigStatus::kCannotHold) {
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
      progress.update(fmt::format("round {}/{} [{:>3}/{}] {:<16} {:<9} t={} {} rep {}/{}  {}", round + 1, rounds, i + 1,
                                  n, c.model, c.workload, c.server_threads,
                                  c.rate > 0 ? fmt::format("{:.0f}/s", c.rate) : fmt::format("c={}", c.connections),
                                  reps[i].size() + 1, c.repetitions,
                                  elapsed_and_eta(elapsed, reps_done, reps_total - reps_done, c.duration_s + c.warmup_s + 0.5)));
      nlohmann::json rep = run_repetition(c, o);
      const auto position = execution["sequence"].size();
      rep["round"] = round + 1;
      rep["sequence_index"] = position;
      reps[i].push_back(std::move(rep));
      ++reps_done;
      execution["sequence"].push_back({{"round", round + 1}, {"key", c.key()}});
      ConfigResult result;
      const bool held_not = cannot_hold(i);
      if (static_cast<int>(reps[i].size()) >= c.repetitions || held_not) {
        result = summarize_config(c, reps[i]);
        if (held_not) {
          const int skipped = c.repetitions - static_cast<int>(reps[i].size());
          result.repetitions_skipped = skipped;
          reps_total -= skipped;
        }
        if (result.status != ConfigStatus::kOk) {
          progress.message(fmt::format("[{:>3}/{}] {} {}: {}", i + 1, n, c.key(),
                                       result.status == ConfigStatus::kOverloaded    ? "OVERLOADED"
                                       : result.status == ConfigStatus::kCannotHold ? "CANNOT HOLD"
                                                                                    : "FAILED",
                                       result.reason.value_or("")));
        }
      } else {
        result.config = c;
        result.status = ConfigStatus::kRunning;
        result.repetitions = reps[i];
      }
      file.put(result, "execution", execution);
    }
  }
  progress.finish();
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
          "A configuration with status overloaded did not hold its offered rate (completed in the window < 98% of the offered with a backlog over 50 ms, "
          "connections unfinished after the drain, or a drain over 200 ms): its numbers are kept and drawn apart, never ranked."};
}

// run (single: exactly one configuration) and sweep; `experiment` names the experiment whose
// preset this is, recorded in the results.
int sweep_command(int argc, char** argv, bool single, const std::string& experiment) {
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
    const std::vector<ConfigResult> results = configs_of(file.doc());
    print_summary(results);
    fmt::print("\nresults: {}\n", out);
    int failed = 0;
    for (const auto& r : results) failed += r.status == ConfigStatus::kFailed;
    if (failed) fmt::print(stderr, "acceptbench: {} configurations failed (see their reason in the JSON)\n", failed);
  } catch (const std::exception& e) {
    fmt::print(stderr, "acceptbench: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

// The named experiments: a preset each (NAME.json, and NAME-quick.json for tests), and a
// section of the report (plots/experiments.py).

// The named experiments: a preset each (NAME.json, and NAME-quick.json for tests), and a
// section of the report (plots/experiments.py).
constexpr std::array<const char*, 4> kExperiments = {"herd", "skew", "stall", "c10k"};

}  // namespace

int cmd_run(int argc, char** argv) { return sweep_command(argc, argv, true, ""); }

int cmd_sweep(int argc, char** argv) { return sweep_command(argc, argv, false, ""); }

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
  const int rc = sweep_command(static_cast<int>(args.size()), cargv.data(), false, name);
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

}  // namespace acceptbench
