// acceptbench compare and ab: two results (or two builds run interleaved) compared per
// configuration with an exact Mann-Whitney U test and Holm's correction.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "cli.hpp"
#include "commands.hpp"
#include "compare.hpp"
#include "console.hpp"
#include "env.hpp"
#include "junit.hpp"
#include "layout.hpp"
#include "matrix.hpp"
#include "results.hpp"
#include "runner.hpp"
#include "summary.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace acceptbench {

int cmd_compare(int argc, char** argv) {
  std::string base, next, markdown, json_out, junit;
  CompareOptions o;
  po::options_description d(
      "acceptbench compare BASE NEW: per configuration, the median ratio of conn/s, server CPU per connection and p99\n"
      "latency, with an exact two-sided Mann-Whitney U test over repetitions (ties handled) and Holm's correction over\n"
      "the configurations; when both files come from one ab job (the same ab.job), the exact Wilcoxon signed-rank\n"
      "test of the per-round ratios, and the ratio shown is their median. A regression: the change is beyond the\n"
      "threshold and the adjusted p < alpha.\n"
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
  // Its rounds are paired (compare uses the signed-rank test): enough for that to reach alpha.
  if (rounds == 0) rounds = std::max(8, repetitions_to_reach(o.alpha, static_cast<int>(configs.size()), true));
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
  const ProgressLine progress(100);
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
        progress.update(fmt::format("[{}/{}] {} round {}/{} side {}", index, configs.size(), c.key(), round + 1, rounds,
                                    run_a ? "A" : "B"));
        nlohmann::json rep = run_repetition(c, ro);
        rep["round"] = round + 1;
        (run_a ? reps_a : reps_b).push_back(std::move(rep));
      }
    }
    for (auto [file, reps] : {std::pair{&fa, &reps_a}, std::pair{&fb, &reps_b}}) file->put(summarize_config(c, *reps));
  }
  progress.finish();
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

}  // namespace acceptbench
