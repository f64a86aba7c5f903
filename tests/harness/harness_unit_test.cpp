#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <fstream>

#include "compare.hpp"
#include "kernel.hpp"
#include "matrix.hpp"
#include "results.hpp"
#include "runner.hpp"

namespace acceptbench {
namespace {

const std::string kFixtures = ACCEPTBENCH_SOURCE_DIR "/tests/fixtures/";

TEST(KernelCountersTest, ParsesHeaderAndValueLines) {
  const auto c = parse_proc_net_pairs(
      "Tcp: RtoAlgorithm PassiveOpens AttemptFails\nTcp: 1 42 3\n"
      "TcpExt: ListenOverflows ListenDrops\nTcpExt: 5 6\n");
  EXPECT_EQ(c.at("Tcp.PassiveOpens"), 42);
  EXPECT_EQ(c.at("TcpExt.ListenDrops"), 6);
}

TEST(KernelCountersTest, ReadsThisMachine) {
  const auto before = read_kernel_counters();
  ASSERT_TRUE(before.contains("Tcp.PassiveOpens"));
  ASSERT_TRUE(before.contains("TcpExt.ListenOverflows"));
  const auto d = kernel_deltas(before, read_kernel_counters());
  EXPECT_GE(d.at("Tcp.PassiveOpens").get<long>(), 0);
}

TEST(CompareTest, TwentyPercentSlowerIsARegression) {
  const auto r = compare_results(load_results(kFixtures + "compare_base.json"),
                                 load_results(kFixtures + "compare_slow.json"), {});
  EXPECT_EQ(r.compared_configs, 2);
  EXPECT_GE(r.regressions, 2);  // conn/s of both configurations (and CPU per connection)
  EXPECT_NE(r.markdown.find("**REGRESSION**"), std::string::npos);
}

TEST(CompareTest, NoiseIsNotARegression) {
  const auto r = compare_results(load_results(kFixtures + "compare_base.json"),
                                 load_results(kFixtures + "compare_noise.json"), {});
  EXPECT_EQ(r.regressions, 0);
  EXPECT_EQ(r.compared_configs, 2);
}

TEST(CompareTest, ThreeVersusThreeCannotDecide) {
  const auto r = compare_results(load_results(kFixtures + "compare3_base.json"),
                                 load_results(kFixtures + "compare3_slow.json"), {});
  EXPECT_TRUE(r.unreachable);
  EXPECT_EQ(r.regressions, 0);  // 20% slower, but 3 vs 3 can never reach p < 0.05
  EXPECT_NE(r.cannot_decide.find("cannot reach significance at alpha=0.05"), std::string::npos) << r.cannot_decide;
  EXPECT_FALSE(compare_results(load_results(kFixtures + "compare8_base.json"),
                               load_results(kFixtures + "compare8_noise.json"), {})
                   .unreachable);
}

TEST(CompareTest, EightVersusEightFlagsFivePercentSlowerNotNoise) {
  const auto slow = compare_results(load_results(kFixtures + "compare8_base.json"),
                                    load_results(kFixtures + "compare8_slow5.json"), {});
  ASSERT_FALSE(slow.unreachable) << slow.cannot_decide;
  int conn_rate_regressions = 0;
  for (const auto& row : slow.rows)
    if (row["metric"] == "conn_per_s" && row["verdict"] == "REGRESSION") ++conn_rate_regressions;
  EXPECT_EQ(conn_rate_regressions, 1) << slow.table;
  const auto noise = compare_results(load_results(kFixtures + "compare8_base.json"),
                                     load_results(kFixtures + "compare8_noise.json"), {});
  EXPECT_EQ(noise.regressions, 0) << noise.table;
  EXPECT_EQ(noise.improvements, 0) << noise.table;
}

TEST(CompareTest, HolmKeepsTwentyNoiseRowsQuiet) {
  const auto r = compare_results(load_results(kFixtures + "compare20_base.json"),
                                 load_results(kFixtures + "compare20_noise.json"), {});
  EXPECT_EQ(r.compared_configs, 20);
  EXPECT_FALSE(r.unreachable) << r.cannot_decide;
  EXPECT_EQ(r.regressions, 0) << r.table;
  EXPECT_EQ(r.improvements, 0) << r.table;
  // The fixture is a real test of the correction: without it, some row would be flagged.
  int flagged_unadjusted = 0;
  for (const auto& row : r.rows) {
    const double ratio = row["ratio"], threshold = row["threshold"];
    if (row["p_value"].get<double>() < 0.05 && std::abs(ratio - 1) > threshold) ++flagged_unadjusted;
  }
  EXPECT_GE(flagged_unadjusted, 1) << r.table;
}

// Two results files as `acceptbench ab` writes them: one configuration, a repetition per
// round with the round recorded, and (with `job`) the job id that pairs them.
nlohmann::json ab_side(const std::vector<double>& cpu, const std::string& job, const std::vector<double>& p99 = {}) {
  nlohmann::json reps = nlohmann::json::array();
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    reps.push_back({{"status", "ok"},
                    {"round", i + 1},
                    {"derived",
                     {{"conn_per_s", 4000.0}, {"server_cpu_us_per_conn", cpu[i]}, {"p99_total_us", p99.empty() ? 500.0 : p99[i]}}}});
  }
  RunConfig config;
  config.model = "reuseport";
  config.workload = "cost";
  config.rate = 4000;
  nlohmann::json doc = {
      {"schema", "acceptbench/2"},
      {"configs",
       {{{"config", config.to_json()}, {"status", "ok"}, {"summary", nullptr}, {"repetitions", reps}}}}};
  if (!job.empty()) doc["ab"] = {{"job", job}};
  return doc;
}

TEST(CompareTest, AbRoundsArePairedSoDriftCancels) {
  // The machine drifts between rounds by far more than the change (+-20%), and B is 5% more
  // expensive in every round: unpaired, the samples overlap and nothing can be said; paired
  // by round (A and B ran back to back), every round says B costs more.
  const std::vector<double> a = {50, 70, 55, 80, 60, 75, 52, 68};
  std::vector<double> b;
  for (double x : a) b.push_back(x * 1.05);
  auto cpu_row = [](const CompareReport& r) {
    for (const auto& row : r.rows)
      if (row["metric"] == "server_cpu_us_per_conn") return row;
    return nlohmann::json();
  };
  const auto paired = compare_results(ab_side(a, "job-1"), ab_side(b, "job-1"), {}, "A", "B");
  EXPECT_EQ(cpu_row(paired)["test"], "wilcoxon-signed-rank") << paired.table;
  EXPECT_EQ(cpu_row(paired)["pairs"], 8);
  EXPECT_NEAR(cpu_row(paired)["p_value"].get<double>(), 2.0 / 256.0, 1e-12);
  EXPECT_EQ(cpu_row(paired)["verdict"], "REGRESSION") << paired.table;
  EXPECT_NE(paired.table.find("signed-rank"), std::string::npos);
  // Files of two different jobs (or not from ab) are not paired: Mann-Whitney, no verdict.
  for (const auto& other : {std::string("job-2"), std::string()}) {
    const auto unpaired = compare_results(ab_side(a, "job-1"), ab_side(b, other), {}, "A", "B");
    EXPECT_EQ(cpu_row(unpaired)["test"], "mann-whitney");
    EXPECT_GT(cpu_row(unpaired)["p_value"].get<double>(), 0.3) << unpaired.table;
    EXPECT_EQ(unpaired.regressions, 0);
  }
  // The effect shown is the median per-round ratio: B 5% dearer in even rounds, 10% in odd
  // ones -> the geometric middle of the two, whatever the two sides' medians say.
  std::vector<double> mixed;
  for (std::size_t i = 0; i < a.size(); ++i) mixed.push_back(a[i] * (i % 2 ? 1.10 : 1.05));
  EXPECT_NEAR(cpu_row(compare_results(ab_side(a, "j"), ab_side(mixed, "j"), {}))["ratio"].get<double>(),
              std::sqrt(1.05 * 1.10), 1e-9);
  // p99 from histogram buckets ties in 3 of 8 rounds: ties are evidence of no change in those
  // rounds, not too few rounds; the row is decided on all 8 (here: not significant).
  const std::vector<double> p99a = {500, 500, 500, 500, 500, 500, 500, 500}, p99b = {500, 600, 500, 600, 600, 500, 600, 600};
  const auto ties = compare_results(ab_side(a, "j", p99a), ab_side(b, "j", p99b), {});
  EXPECT_FALSE(ties.unreachable) << ties.cannot_decide;
  // A job id must be a non-empty string to pair.
  EXPECT_EQ(cpu_row(compare_results(ab_side(a, "j"), ab_side(b, "j"), {}))["test"], "wilcoxon-signed-rank");
  auto no_id_a = ab_side(a, "j"), no_id_b = ab_side(b, "j");
  no_id_a["ab"]["job"] = nullptr;
  no_id_b["ab"]["job"] = nullptr;
  EXPECT_EQ(cpu_row(compare_results(no_id_a, no_id_b, {}))["test"], "mann-whitney");
  // Noise paired the same way is not flagged.
  std::vector<double> noise;
  for (std::size_t i = 0; i < a.size(); ++i) noise.push_back(a[i] * (i % 2 ? 1.01 : 0.99));
  EXPECT_EQ(compare_results(ab_side(a, "j"), ab_side(noise, "j"), {}).regressions, 0);
  // A metric equal in every round (an open loop's conn/s is the offered rate) has no
  // non-zero difference: p = 1, and it does not make the rounds "too few to decide".
  EXPECT_FALSE(paired.unreachable) << paired.cannot_decide;
  // Three paired rounds can never decide (2/8 = 0.25): exit 2's message names paired rounds.
  const auto few = compare_results(ab_side({50, 70, 55}, "j"), ab_side({60, 80, 65}, "j"), {});
  EXPECT_TRUE(few.unreachable);
  EXPECT_NE(few.cannot_decide.find("3 paired rounds"), std::string::npos) << few.cannot_decide;
}

TEST(CompareTest, RepetitionsToReach) {
  EXPECT_EQ(repetitions_to_reach(0.05, 1), 4);   // 2/C(8,4) = 0.029
  EXPECT_EQ(repetitions_to_reach(0.05, 20), 6);  // 20 * 2/C(12,6) = 0.043
  EXPECT_EQ(repetitions_to_reach(0.05, 1, true), 6);    // 2/2^6 = 0.031
  EXPECT_EQ(repetitions_to_reach(0.05, 20, true), 10);  // 20 * 2/2^10 = 0.039
}

TEST(CompareTest, BadInputIsAClearError) {
  const auto dir = std::filesystem::temp_directory_path() / "acceptbench_compare_test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  EXPECT_THROW(load_results((dir / "missing.json").string()), std::invalid_argument);
  EXPECT_THROW(load_results(write("garbage.json", "{not json")), std::invalid_argument);
  EXPECT_THROW(load_results(write("other.json", R"({"schema": "other/1", "configs": []})")), std::invalid_argument);
  const auto empty = load_results(write("empty.json", R"({"schema": "acceptbench/2", "configs": []})"));
  EXPECT_THROW(compare_results(load_results(kFixtures + "compare_base.json"), empty, {}), std::invalid_argument);
}

TEST(OpenLoopVerdictTest, LateCompletionsDoNotMakeUpForAShortfall) {
  // fork-per-conn at 4000/s in the quick preset's 0.3 s window (a measured repetition): 1200
  // offered, 637 completed in the window, 563 in a 188 ms drain. It was behind its load by
  // half, and p99 was 206 ms; counting late completions as achieved called it ok.
  const auto behind = judge_open_loop(4000, 0.3, 637, 563, 0, 0.188, 0.98, 0.2);
  EXPECT_TRUE(behind.overloaded);
  EXPECT_NEAR(behind.in_window_ratio, 637.0 / 1200, 1e-12);
  EXPECT_NEAR(behind.achieved_ratio, 1.0, 1e-12);
  EXPECT_NEAR(behind.backlog_s, 563.0 / 4000, 1e-12);
  // A healthy server: only rate x latency in flight at the window's end.
  EXPECT_FALSE(judge_open_loop(4000, 0.3, 1196, 4, 0, 0.002, 0.98, 0.2).overloaded);
  // A busy machine's hiccup at the end of a short window: 10% short, but a 30 ms backlog.
  EXPECT_FALSE(judge_open_loop(4000, 0.3, 1080, 120, 0, 0.03, 0.98, 0.2).overloaded);
  // A long window 3% short: a 300 ms backlog, behind its load.
  EXPECT_TRUE(judge_open_loop(1000, 10, 9700, 300, 0, 0.15, 0.98, 0.2).overloaded);
  // Unfinished after the drain, or a long drain, is overloaded whatever the ratio.
  EXPECT_TRUE(judge_open_loop(4000, 0.3, 1199, 0, 1, 0.001, 0.98, 0.2).overloaded);
  EXPECT_TRUE(judge_open_loop(100, 10, 1000, 1, 0, 0.5, 0.98, 0.2).overloaded);
  // Closed loop: nothing was offered, nothing to hold.
  EXPECT_FALSE(judge_open_loop(0, 0.3, 5000, 0, 0, 0, 0.98, 0.2).overloaded);
}

TEST(MatrixTest, ExpandsModelsThreadsAndWorkloads) {
  const std::vector<ModelInfo> catalog = {{"iterative", false, "", {}}, {"reuseport", true, "", {}}};
  MatrixSpec spec;
  spec.apply(nlohmann::json::parse(R"({"models": "all", "server_threads": [1, 4], "workloads": ["conn", "cost"],
                                       "connections": [8, 64], "rates": [1000]})"));
  spec.server_cpus = {1};
  spec.client_cpus = {0};
  const auto configs = spec.expand(catalog);
  // iterative: 1 thread x (2 conn + 1 cost); reuseport: 2 threads x 3.
  EXPECT_EQ(configs.size(), 9u);
  std::set<std::string> keys;
  for (const auto& c : configs) keys.insert(c.key());
  EXPECT_EQ(keys.size(), configs.size());
  EXPECT_THROW(spec.apply(nlohmann::json::parse(R"({"modles": []})")), std::invalid_argument);
  spec.models = {"nope"};
  EXPECT_THROW(spec.expand(catalog), std::invalid_argument);
}

TEST(RunConfigTest, JsonRoundTripKeepsTheKey) {
  RunConfig c;
  c.model = "reuseport";
  c.rate = 5000;
  c.server_threads = 4;
  c.server_cpus = {1};
  c.client_cpus = {0};
  EXPECT_EQ(RunConfig::from_json(c.to_json()).key(), c.key());
  EXPECT_THROW(RunConfig::from_json(nlohmann::json::object()), std::invalid_argument);
}

}  // namespace
}  // namespace acceptbench
