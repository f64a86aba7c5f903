// acceptbench: runs the models under the load client, repeats, collects evidence, writes
// results JSON, and compares runs. `acceptbench --help` lists the subcommands (the table
// below); each lives in a cmd_*.cpp (commands.hpp).
#include <sys/resource.h>

#include <csignal>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  const char* args;  // after the name in the usage, e.g. "NAME"
  const char* help;  // one line; a '\n' continues it under the column of the first
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", "", "one configuration x R repetitions", acceptbench::cmd_run},
    {"sweep", "", "a matrix of configurations (--preset default|quick, --config FILE, flags)", acceptbench::cmd_sweep},
    {"compare", "BASE NEW", "per configuration, median ratios and an exact rank test; exit 1 on a regression",
     acceptbench::cmd_compare},
    {"ab", "", "two builds (or binaries) run interleaved A B, B A in one job, then compared round by round",
     acceptbench::cmd_ab},
    {"merge", "", "loadgen JSON results of several clients merged into one (histograms exactly)",
     acceptbench::cmd_merge},
    {"probe", "",
     "prints a server process's CPU and context switches (--pid), its cgroup's CPU and memory\n"
     "(--cgroup), the kernel's TCP counters (--kernel) and the host's sysctls (--sysctls) as JSON:\n"
     "the reader the harness runs on the server's and clients' hosts behind ssh or netns",
     acceptbench::cmd_probe},
    {"supervise", "-- SERVER...", "runs a server in a cgroup of its own on this host (the harness's ssh launcher)",
     acceptbench::cmd_supervise},
    {"export", "", "RESULTS.json as CSV (one row per repetition) or HdrHistogram .hgrm files", acceptbench::cmd_export},
    {"attach-cost-model", "", "folds cost_model's Google Benchmark JSON into a results file",
     acceptbench::cmd_attach_cost_model},
    {"experiment", "NAME", "a named experiment (herd, skew, stall, c10k): its preset's sweep, then the report",
     acceptbench::cmd_experiment},
};

std::string usage() {
  std::string out =
      "acceptbench: compares the ways a Linux TCP server can accept connections.\n\n"
      "Usage: acceptbench <command> [options]   (acceptbench <command> --help for its options)\n\n"
      "Commands:\n";
  for (const Command& c : kCommands) {
    const std::string label = *c.args ? fmt::format("{} {}", c.name, c.args) : c.name;
    std::string_view help = c.help;
    for (bool first = true; !help.empty() || first; first = false) {
      const std::size_t nl = help.find('\n');
      out += fmt::format("  {:<19} {}\n", first ? label : "", help.substr(0, nl));
      help = nl == std::string_view::npos ? std::string_view() : help.substr(nl + 1);
    }
  }
  return out;
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
    fmt::print(argc < 2 ? stderr : stdout, "{}", usage());
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  // Each subcommand parses argv[1..]: its own name stands where a program name would.
  for (const Command& c : kCommands) {
    if (cmd == c.name) return c.run(argc - 1, argv + 1);
  }
  fmt::print(stderr, "acceptbench: error: unknown command '{}'\n\n{}", cmd, usage());
  return 2;
}
