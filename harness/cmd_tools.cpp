// acceptbench merge, probe, export and attach-cost-model: the tools around results files.
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "cgroup.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "env.hpp"
#include "export.hpp"
#include "kernel.hpp"
#include "layout.hpp"
#include "loadgen.hpp"
#include "matrix.hpp"
#include "process.hpp"
#include "results.hpp"
#include "supervise.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace acceptbench {

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

namespace {

// Which primitives (cost_model benchmark names) each model pays per connection: the
// "primitives" of each model in models.json.
nlohmann::json primitives_per_model(const std::vector<ModelInfo>& catalog) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& m : catalog)
    if (!m.primitives.empty()) out[m.id] = m.primitives;
  return out;
}

}  // namespace

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
    const nlohmann::json gb = read_json_file(cost);
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


}  // namespace acceptbench
