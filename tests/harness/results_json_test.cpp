// The typed results structures against their JSON: every field survives a round trip, a real
// results file (an older acceptbench/2 one) re-serialises to the same JSON, and a malformed
// summary is a clear std::invalid_argument naming the field.
#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "compare.hpp"
#include "process.hpp"
#include "results.hpp"
#include "run_config.hpp"
#include "summary.hpp"

namespace acceptbench {
namespace {

const std::string kFixtures = ACCEPTBENCH_SOURCE_DIR "/tests/fixtures/";

nlohmann::json quick_results() {
  std::ifstream in(kFixtures + "quick_results.json");
  return nlohmann::json::parse(in);
}

// What `f` threw as std::invalid_argument; empty when it threw nothing.
template <class F>
std::string invalid_argument_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

RunConfig every_field_set() {
  RunConfig c;
  c.model = "reuseport";
  c.workload = "slowclient";
  c.server_threads = 4;
  c.client_threads = 2;
  c.connections = 48;
  c.requests_per_conn = 3;
  c.work_us = 5;
  c.sleep_us = 7;
  c.response_bytes = 1024;
  c.duration_s = 1.25;
  c.warmup_s = 0.75;
  c.repetitions = 6;
  c.close = ClosePolicy::kReset;
  c.slow_fraction = 0.05;
  c.slow_ms = 50;
  c.server_cpus = {2, 3};
  c.client_cpus = {0, 1};
  c.server_args = {"--accept-batch", "0"};
  c.variant = "stall";
  c.hold = 1000;
  return c;
}

TEST(RunConfigJsonTest, RoundTripsEveryFieldInBothModes) {
  RunConfig closed = every_field_set();
  EXPECT_EQ(RunConfig::from_json(closed.to_json()), closed);
  const nlohmann::json j = closed.to_json();
  EXPECT_EQ(j["mode"], "closed");
  EXPECT_TRUE(j["rate"].is_null());
  EXPECT_EQ(j["close"], "rst");
  EXPECT_EQ(j["key"], closed.key());
  RunConfig open = closed;
  open.rate = 2500.5;
  const nlohmann::json o = open.to_json();
  EXPECT_EQ(o["mode"], "open");
  EXPECT_TRUE(o["connections"].is_null());
  // connections is null in open loop, so it reads back as the default.
  open.connections = RunConfig{}.connections;
  EXPECT_EQ(RunConfig::from_json(o), open);
}

TEST(RunConfigJsonTest, MalformedConfigsNameTheField) {
  nlohmann::json j = every_field_set().to_json();
  j["close"] = "sideways";
  const std::string why = invalid_argument_of([&] { RunConfig::from_json(j); });
  EXPECT_NE(why.find("close: "), std::string::npos) << "a close policy 'sideways': " << why;
  j = every_field_set().to_json();
  j.erase("rate");
  EXPECT_THROW(RunConfig::from_json(j), std::invalid_argument);
  j = every_field_set().to_json();
  j.erase("hold");  // came later: absent in older files, the default
  EXPECT_EQ(RunConfig::from_json(j).hold, 0);
}

TEST(ProcSampleJsonTest, RoundTripsEveryField) {
  const ProcSample s{1.5, 0.25, 3.0, 0.5, 123, 45, 20480, 10240, 9, 17};
  EXPECT_EQ(proc_sample_from_json(to_json(s)), s);
  nlohmann::json j = to_json(s);
  j.erase("open_fds");
  EXPECT_THROW(proc_sample_from_json(j), std::runtime_error);
}

// A summary with every optional part set, as summarize_config makes it today, from the
// repetitions of a real results file.
ConfigResult summarized_from_fixture(std::size_t index) {
  const nlohmann::json c = quick_results()["configs"][index];
  ConfigResult r = summarize_config(RunConfig::from_json(c["config"]), c["repetitions"]);
  r.repetitions_skipped = 1;  // not from the fixture: set to take part in the round trip
  return r;
}

TEST(ConfigResultJsonTest, RoundTripsASummaryWithEveryPart) {
  ConfigResult r = summarized_from_fixture(1);
  ASSERT_TRUE(r.summary.has_value()) << r.reason.value_or("");
  Summary& s = *r.summary;
  EXPECT_TRUE(s.machine_cpu_us_per_conn && s.start_lateness_us && s.fairness.jain_worst && s.late_completions);
  s.hold = HoldSummary{1000, std::nullopt, Series::of({180.0, 190.0, 200.0}), 4, 1};
  EXPECT_EQ(ConfigResult::from_json(r.to_json()), r);
  const nlohmann::json j = r.to_json();
  EXPECT_TRUE(j["summary"]["hold"]["server_bytes_per_conn"].is_null());
  EXPECT_EQ(j["status"], to_string(r.status));
  s.fairness.max_min_ratio.reset();
  s.hold->server_bytes_per_conn = Series::of({4096.0});
  EXPECT_EQ(ConfigResult::from_json(r.to_json()), r);
  EXPECT_TRUE(r.to_json()["summary"]["fairness"]["max_min_ratio"].is_null());
}

TEST(ConfigResultJsonTest, WithoutASummaryRoundTripsAndWritesNull) {
  ConfigResult r;
  r.config = every_field_set();
  r.status = ConfigStatus::kCannotHold;
  r.reason = "the server closed 3 of the 1000 held idle connections during the run";
  r.repetitions = nlohmann::json::array({{{"status", "cannot_hold"}, {"reason", *r.reason}}});
  const nlohmann::json j = r.to_json();
  EXPECT_TRUE(j.contains("summary") && j["summary"].is_null());
  EXPECT_FALSE(j.contains("repetitions_skipped"));
  EXPECT_EQ(ConfigResult::from_json(j), r);
}

// An older acceptbench/2 file: its summaries lack what came later, its configs lack
// slow_fraction, slow_ms, variant and hold. Everything in it reads back and is written out
// the same; the config gains only the later fields, at their defaults.
TEST(ConfigResultJsonTest, AFixturesConfigsReserialiseToTheSameJson) {
  const nlohmann::json doc = quick_results();
  const std::vector<ConfigResult> results = configs_of(doc);
  ASSERT_EQ(results.size(), doc["configs"].size());
  const nlohmann::json later = {{"slow_fraction", 0.0}, {"slow_ms", 0}, {"variant", ""}, {"hold", 0}};
  for (std::size_t i = 0; i < results.size(); ++i) {
    nlohmann::json expected = doc["configs"][i];
    for (const auto& [field, value] : later.items()) {
      ASSERT_FALSE(expected["config"].contains(field)) << "the fixture has " << field << " now: drop it here";
      expected["config"][field] = value;
    }
    EXPECT_EQ(results[i].to_json(), expected) << expected["config"]["key"];
    EXPECT_FALSE(results[i].summary->machine_cpu_us_per_conn.has_value()) << "absent in the file: not made up";
  }
}

TEST(ConfigResultJsonTest, AMalformedSummaryIsAClearInvalidArgument) {
  nlohmann::json doc = quick_results();
  doc["configs"][2]["summary"]["fairness"]["jain_index"] = "high";
  const std::string high = invalid_argument_of([&] { configs_of(doc); });
  EXPECT_NE(high.find("configs[2]"), std::string::npos) << "a jain_index 'high': " << high;
  EXPECT_NE(high.find("summary.fairness.jain_index: not a number"), std::string::npos) << high;
  doc = quick_results();
  doc["configs"][0]["summary"].erase("conn_per_s");
  const std::string missing = invalid_argument_of([&] { compare_results(quick_results(), doc, {}); });
  EXPECT_NE(missing.find("NEW: configs[0]"), std::string::npos) << "no conn_per_s: " << missing;
  EXPECT_NE(missing.find("summary.conn_per_s: missing"), std::string::npos) << missing;
  doc = quick_results();
  doc["configs"][0]["status"] = "finished";
  EXPECT_THROW(configs_of(doc), std::invalid_argument);
}

}  // namespace
}  // namespace acceptbench
